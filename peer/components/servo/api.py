"""The servo API: an actuator that holds a commanded angle."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping
from typing import Any

from ...resource import API, ComponentBase


class Servo(ComponentBase):
    """Angles are whole degrees, as on the wire."""

    API = API.component("servo")

    @abstractmethod
    async def move(
        self, angle: int, *, extra: Mapping[str, Any] | None = None, timeout: float | None = None, **kwargs: Any
    ) -> None:
        """Turn to ``angle`` degrees and return on arrival."""

    @abstractmethod
    async def get_position(
        self, *, extra: Mapping[str, Any] | None = None, timeout: float | None = None, **kwargs: Any
    ) -> int:
        """The current angle in degrees."""

    @abstractmethod
    async def stop(
        self, *, extra: Mapping[str, Any] | None = None, timeout: float | None = None, **kwargs: Any
    ) -> None:
        """Hold where it is now; a move in progress returns early."""

    @abstractmethod
    async def is_moving(self) -> bool: ...
