"""A motor with an ideal encoder: its position integrates the commanded speed over time.

State is evaluated lazily from a start point, a constant speed and an optional end time, so no
background task is needed: a motion "finishes" simply because time passes its end. Blocking
motions (``go_for``/``go_to``) wait for that end, and return early when a newer command or
``stop`` supersedes them; cancelling the call stops the motor.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from typing import Any

from ...errors import ValidationError
from ...resource import ResourceBase, ResourceConfig, ResourceName
from ...resource.motion import wait_for_motion
from .api import Motor

logger = logging.getLogger(__name__)

#: How often a blocking motion checks for cancellation (seconds).


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValidationError(f"{what} must be a finite number, got {value!r}")
    return float(value)


class FakeMotor(Motor):
    """Turns at ``power * max_rpm``; ``go_for``/``go_to`` take ``revolutions / (|rpm| / 60)`` seconds."""

    def __init__(self, name: str, *, max_rpm: float = 100.0) -> None:
        super().__init__(name)
        self.max_rpm = max_rpm
        self._pos0 = 0.0  # revolutions at _t0
        self._t0 = time.monotonic()
        self._rps = 0.0  # signed revolutions per second
        self._t_end: float | None = None  # the motion stops by itself at this time
        self._power = 0.0
        #: Bumped by every command, so a waiting motion knows it was superseded.
        self._generation = 0

    @staticmethod
    def validate(config: ResourceConfig) -> list[str]:
        max_rpm = config.attributes.get("max_rpm", 100.0)
        if not isinstance(max_rpm, int | float) or isinstance(max_rpm, bool) or not 0 < max_rpm < math.inf:
            raise ValidationError("must be a positive number of revolutions per minute",
                                  f"{config.path}.attributes.max_rpm")
        return []

    @classmethod
    def new(cls, config: ResourceConfig, dependencies: Mapping[ResourceName, ResourceBase]) -> FakeMotor:
        return cls(config.name, max_rpm=float(config.attributes.get("max_rpm", 100.0)))

    # --- state over time -------------------------------------------------------------------------

    def _position_at(self, now: float) -> float:
        until = now if self._t_end is None else min(now, self._t_end)
        return self._pos0 + self._rps * (until - self._t0)

    def _moving_at(self, now: float) -> bool:
        return self._rps != 0.0 and (self._t_end is None or now < self._t_end)

    def _start(self, rps: float, power: float, duration: float | None) -> int:
        now = time.monotonic()
        self._pos0, self._t0 = self._position_at(now), now
        self._rps, self._power = rps, power
        self._t_end = None if duration is None else now + duration
        self._generation += 1
        return self._generation

    def _halt(self) -> None:
        self._start(0.0, 0.0, None)

    def _speed_rpm(self, rpm: float) -> float:
        """``|rpm|`` capped at ``max_rpm``, as a real driver saturates rather than refuses."""
        speed = abs(_number(rpm, "rpm"))
        if speed == 0.0:
            raise ValidationError("rpm must not be 0 for a motion; use stop to halt the motor")
        if speed > self.max_rpm:
            logger.warning("motor %s: %s rpm exceeds max_rpm %s, capping", self.name, speed, self.max_rpm)
            speed = self.max_rpm
        return speed

    async def _run(self, direction: float, speed_rpm: float, revolutions: float, kwargs: Mapping[str, Any]) -> None:
        """Turn ``revolutions`` (>= 0) in ``direction`` and wait until done, superseded or cancelled."""
        if revolutions == 0.0:  # already there
            self._halt()
            return
        generation = self._start(
            direction * speed_rpm / 60.0, direction * speed_rpm / self.max_rpm, revolutions / (speed_rpm / 60.0)
        )
        await wait_for_motion(self.get_operation(kwargs), is_current=lambda: self._generation == generation,
                              ends_at=lambda: self._t_end, halt=self._halt, what=f"motor {self.name!r}: motion")

    # --- API ---------------------------------------------------------------------------------------

    async def set_power(
        self, power: float, *, extra: Mapping[str, Any] | None = None, timeout: float | None = None, **kwargs: Any
    ) -> None:
        power = _number(power, "power")
        if not -1.0 <= power <= 1.0:
            raise ValidationError(f"power must be within [-1, 1], got {power}")
        if power == 0.0:
            self._halt()
            return
        self._start(power * self.max_rpm / 60.0, power, None)

    async def go_for(
        self,
        rpm: float,
        revolutions: float,
        *,
        extra: Mapping[str, Any] | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> None:
        speed = self._speed_rpm(rpm)
        revolutions = _number(revolutions, "revolutions")
        if revolutions == 0.0:
            # RDK's long-standing (deprecated) meaning of 0 revolutions: spin until stopped.
            logger.warning("motor %s: go_for with 0 revolutions spins indefinitely; use set_rpm", self.name)
            await self.set_rpm(rpm)
            return
        direction = math.copysign(1.0, rpm) * math.copysign(1.0, revolutions)
        await self._run(direction, speed, abs(revolutions), kwargs)

    async def go_to(
        self,
        rpm: float,
        position_revolutions: float,
        *,
        extra: Mapping[str, Any] | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> None:
        speed = self._speed_rpm(rpm)
        delta = _number(position_revolutions, "position_revolutions") - self._position_at(time.monotonic())
        await self._run(math.copysign(1.0, delta), speed, abs(delta), kwargs)

    async def set_rpm(
        self, rpm: float, *, extra: Mapping[str, Any] | None = None, timeout: float | None = None, **kwargs: Any
    ) -> None:
        if _number(rpm, "rpm") == 0.0:
            self._halt()
            return
        speed = math.copysign(self._speed_rpm(rpm), rpm)
        self._start(speed / 60.0, speed / self.max_rpm, None)

    async def reset_zero_position(
        self, offset: float, *, extra: Mapping[str, Any] | None = None, timeout: float | None = None, **kwargs: Any
    ) -> None:
        offset = _number(offset, "offset")
        now = time.monotonic()
        # Re-anchor the running motion (if any) at the new origin without interrupting it.
        shift = offset - self._position_at(now)
        self._pos0 += shift

    async def get_position(
        self, *, extra: Mapping[str, Any] | None = None, timeout: float | None = None, **kwargs: Any
    ) -> float:
        return self._position_at(time.monotonic())

    async def get_properties(
        self, *, extra: Mapping[str, Any] | None = None, timeout: float | None = None, **kwargs: Any
    ) -> Motor.Properties:
        return Motor.Properties(position_reporting=True)

    async def stop(
        self, *, extra: Mapping[str, Any] | None = None, timeout: float | None = None, **kwargs: Any
    ) -> None:
        self._halt()

    async def is_powered(
        self, *, extra: Mapping[str, Any] | None = None, timeout: float | None = None, **kwargs: Any
    ) -> tuple[bool, float]:
        if self._moving_at(time.monotonic()):
            return True, self._power
        return False, 0.0

    async def is_moving(self) -> bool:
        return self._moving_at(time.monotonic())

    async def get_status(self, *, timeout: float | None = None, **kwargs: Any) -> Mapping[str, Any]:
        now = time.monotonic()
        return {
            "is_powered": self._moving_at(now),
            "position": self._position_at(now),
            "is_moving": self._moving_at(now),
        }

    async def close(self) -> None:
        self._halt()
