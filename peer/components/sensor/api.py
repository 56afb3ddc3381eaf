"""The sensor API: anything that returns a map of named readings."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping
from typing import Any

from ...resource import API, ComponentBase


class Sensor(ComponentBase):
    API = API.component("sensor")

    @abstractmethod
    async def get_readings(
        self, *, extra: Mapping[str, Any] | None = None, timeout: float | None = None, **kwargs: Any
    ) -> Mapping[str, Any]:
        """Readings by name; values are JSON-like (numbers, strings, bools, lists, maps)."""
