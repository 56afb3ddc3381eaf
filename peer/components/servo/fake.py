"""A hobby servo: it sweeps towards the commanded angle at a fixed speed.

As in the fake motor, the angle is evaluated lazily from the start of the sweep, so nothing runs
in the background; ``move`` waits for the sweep to end and returns early when ``stop`` or a newer
``move`` supersedes it. Cancelling the call holds the servo where it is.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Any

from ...errors import ValidationError
from ...resource import ResourceBase, ResourceConfig, ResourceName
from ...resource.motion import wait_for_motion
from .api import Servo

MIN_ANGLE_DEG = 0
MAX_ANGLE_DEG = 180
#: How often a move checks for cancellation (seconds).


class FakeServo(Servo):
    """Sweeps at ``speed_deg_per_sec`` (default 600, about a hobby servo's 0.1 s per 60°)."""

    def __init__(self, name: str, *, speed_deg_per_sec: float = 600.0, angle_deg: int = 0) -> None:
        super().__init__(name)
        self.speed_deg_per_sec = speed_deg_per_sec
        self._from = float(angle_deg)
        self._to = float(angle_deg)
        self._t0 = time.monotonic()
        self._t_end = self._t0
        self._generation = 0

    @staticmethod
    def validate(config: ResourceConfig) -> list[str]:
        speed = config.attributes.get("speed_deg_per_sec", 600.0)
        if not isinstance(speed, int | float) or isinstance(speed, bool) or not 0 < speed < math.inf:
            raise ValidationError("must be a positive number of degrees per second",
                                  f"{config.path}.attributes.speed_deg_per_sec")
        angle = config.attributes.get("angle_deg", 0)
        if not isinstance(angle, int) or isinstance(angle, bool) or not MIN_ANGLE_DEG <= angle <= MAX_ANGLE_DEG:
            raise ValidationError(f"must be a whole number of degrees in [{MIN_ANGLE_DEG}, {MAX_ANGLE_DEG}]",
                                  f"{config.path}.attributes.angle_deg")
        return []

    @classmethod
    def new(cls, config: ResourceConfig, dependencies: Mapping[ResourceName, ResourceBase]) -> FakeServo:
        return cls(
            config.name,
            speed_deg_per_sec=float(config.attributes.get("speed_deg_per_sec", 600.0)),
            angle_deg=int(config.attributes.get("angle_deg", 0)),
        )

    def _angle_at(self, now: float) -> float:
        if now >= self._t_end:
            return self._to
        fraction = (now - self._t0) / (self._t_end - self._t0)
        return self._from + (self._to - self._from) * fraction

    def _sweep(self, target: float) -> int:
        now = time.monotonic()
        self._from = self._angle_at(now)
        self._to = target
        self._t0 = now
        self._t_end = now + abs(target - self._from) / self.speed_deg_per_sec
        self._generation += 1
        return self._generation

    def _hold(self) -> None:
        self._sweep(self._angle_at(time.monotonic()))

    async def move(
        self, angle: int, *, extra: Mapping[str, Any] | None = None, timeout: float | None = None, **kwargs: Any
    ) -> None:
        if isinstance(angle, bool) or not isinstance(angle, int) or not MIN_ANGLE_DEG <= angle <= MAX_ANGLE_DEG:
            raise ValidationError(f"angle must be a whole number of degrees in [{MIN_ANGLE_DEG}, {MAX_ANGLE_DEG}],"
                                  f" got {angle!r}")
        generation = self._sweep(float(angle))
        await wait_for_motion(self.get_operation(kwargs), is_current=lambda: self._generation == generation,
                              ends_at=lambda: self._t_end, halt=self._hold, what=f"servo {self.name!r}: move")

    async def get_position(
        self, *, extra: Mapping[str, Any] | None = None, timeout: float | None = None, **kwargs: Any
    ) -> int:
        return round(self._angle_at(time.monotonic()))

    async def stop(
        self, *, extra: Mapping[str, Any] | None = None, timeout: float | None = None, **kwargs: Any
    ) -> None:
        self._hold()

    async def is_moving(self) -> bool:
        return time.monotonic() < self._t_end

    async def get_status(self, *, timeout: float | None = None, **kwargs: Any) -> Mapping[str, Any]:
        now = time.monotonic()
        return {"position_deg": round(self._angle_at(now)), "is_moving": now < self._t_end}

    async def close(self) -> None:
        self._hold()
