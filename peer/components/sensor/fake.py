"""A sensor whose readings drift like a real environment sensor's."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Any

from ...errors import ValidationError
from ...resource import ResourceBase, ResourceConfig, ResourceName
from .api import Sensor


class FakeSensor(Sensor):
    """Temperature and humidity follow slow waves; ``samples`` counts calls, so every read differs."""

    def __init__(self, name: str, *, period_s: float = 60.0) -> None:
        super().__init__(name)
        self.period_s = period_s
        self.samples = 0
        self._t0 = time.monotonic()

    @staticmethod
    def validate(config: ResourceConfig) -> list[str]:
        period = config.attributes.get("period_s", 60.0)
        if not isinstance(period, int | float) or isinstance(period, bool) or period <= 0:
            raise ValidationError("must be a positive number of seconds", f"{config.path}.attributes.period_s")
        return []

    @classmethod
    def new(cls, config: ResourceConfig, dependencies: Mapping[ResourceName, ResourceBase]) -> FakeSensor:
        return cls(config.name, period_s=float(config.attributes.get("period_s", 60.0)))

    async def get_readings(
        self, *, extra: Mapping[str, Any] | None = None, timeout: float | None = None, **kwargs: Any
    ) -> Mapping[str, Any]:
        self.samples += 1
        phase = 2 * math.pi * (time.monotonic() - self._t0) / self.period_s
        return {
            "temperature_c": round(21.5 + 2.0 * math.sin(phase), 3),
            "humidity_pct": round(45.0 + 5.0 * math.cos(phase), 3),
            "samples": self.samples,
            "ok": True,
        }
