"""A differential-drive base whose odometry is exact: the pose integrates the commanded motion.

The pose is evaluated lazily (closed form for a constant linear and angular speed), so no task
runs in the background. ``move_straight`` and ``spin`` wait for their motion to end and return
early when ``stop`` or a newer command supersedes them; cancelling the call stops the base.
``set_power`` and ``set_velocity`` drive until stopped.

Frame: x to the right, y forward at heading 0; headings in degrees, positive counter-clockwise.
The pose is exposed through ``get_status`` and ``do_command({"command": "get_pose"})``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Any

from ...errors import NotSupportedError, ValidationError
from ...gen.viam.common.v1 import common_pb2
from ...resource import ResourceBase, ResourceConfig, ResourceName
from ...resource.motion import wait_for_motion
from .api import Base

#: How often a blocking motion checks for cancellation (seconds).

#: Attribute name → (default, whether 0 is allowed).
ATTRIBUTES: dict[str, tuple[float, bool]] = {
    "width_mm": (600.0, False),
    "wheel_circumference_mm": (300.0, False),
    "min_turning_radius_m": (0.0, True),
    "max_speed_mm_per_sec": (500.0, False),
    "max_angular_deg_per_sec": (180.0, False),
}


def _finite(value: float, what: str) -> float:
    if not math.isfinite(value):
        raise ValidationError(f"{what} must be a finite number, got {value!r}")
    return float(value)


def _normalize_deg(angle: float) -> float:
    """An angle in [-180, 180)."""
    return (angle + 180.0) % 360.0 - 180.0


class FakeBase(Base):
    """Full power is ``max_speed_mm_per_sec`` forward and ``max_angular_deg_per_sec`` of turn."""

    def __init__(
        self,
        name: str,
        *,
        width_mm: float = 600.0,
        wheel_circumference_mm: float = 300.0,
        min_turning_radius_m: float = 0.0,
        max_speed_mm_per_sec: float = 500.0,
        max_angular_deg_per_sec: float = 180.0,
    ) -> None:
        super().__init__(name)
        self.width_mm = width_mm
        self.wheel_circumference_mm = wheel_circumference_mm
        self.min_turning_radius_m = min_turning_radius_m
        self.max_speed_mm_per_sec = max_speed_mm_per_sec
        self.max_angular_deg_per_sec = max_angular_deg_per_sec
        self._pose0 = (0.0, 0.0, 0.0)  # x mm, y mm, heading deg at _t0
        self._t0 = time.monotonic()
        self._linear = 0.0  # mm/s along the heading
        self._angular = 0.0  # deg/s, counter-clockwise
        self._t_end: float | None = None
        self._generation = 0

    @staticmethod
    def validate(config: ResourceConfig) -> list[str]:
        for key, (default, zero_ok) in ATTRIBUTES.items():
            value = config.attributes.get(key, default)
            ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
            if not ok or value < 0 or (value == 0 and not zero_ok):
                kind = "non-negative" if zero_ok else "positive"
                raise ValidationError(f"must be a {kind} number", f"{config.path}.attributes.{key}")
        return []

    @classmethod
    def new(cls, config: ResourceConfig, dependencies: Mapping[ResourceName, ResourceBase]) -> FakeBase:
        values = {key: float(config.attributes.get(key, default)) for key, (default, _) in ATTRIBUTES.items()}
        return cls(config.name, **values)

    # --- state over time -------------------------------------------------------------------------

    def _pose_at(self, now: float) -> tuple[float, float, float]:
        x0, y0, h0 = self._pose0
        dt = (now if self._t_end is None else min(now, self._t_end)) - self._t0
        heading = h0 + self._angular * dt
        if self._angular == 0.0:
            rad = math.radians(h0)
            x, y = x0 - self._linear * dt * math.sin(rad), y0 + self._linear * dt * math.cos(rad)
        else:
            radius = self._linear / math.radians(self._angular)  # signed, mm
            r0, r1 = math.radians(h0), math.radians(heading)
            x, y = x0 + radius * (math.cos(r1) - math.cos(r0)), y0 + radius * (math.sin(r1) - math.sin(r0))
        return x, y, heading

    def _moving_at(self, now: float) -> bool:
        driving = self._linear != 0.0 or self._angular != 0.0
        return driving and (self._t_end is None or now < self._t_end)

    def _start(self, linear: float, angular: float, duration: float | None) -> int:
        now = time.monotonic()
        self._pose0, self._t0 = self._pose_at(now), now
        self._linear, self._angular = linear, angular
        self._t_end = None if duration is None else now + duration
        self._generation += 1
        return self._generation

    def _halt(self) -> None:
        self._start(0.0, 0.0, None)

    async def _run(self, linear: float, angular: float, duration: float, kwargs: Mapping[str, Any]) -> None:
        generation = self._start(linear, angular, duration)
        await wait_for_motion(self.get_operation(kwargs), is_current=lambda: self._generation == generation,
                              ends_at=lambda: self._t_end, halt=self._halt, what=f"base {self.name!r}: motion")

    def pose(self) -> dict[str, float]:
        x, y, heading = self._pose_at(time.monotonic())
        return {"x_mm": x, "y_mm": y, "heading_deg": _normalize_deg(heading)}

    # --- API ---------------------------------------------------------------------------------------

    async def move_straight(
        self,
        distance: int,
        velocity: float,
        *,
        extra: Mapping[str, Any] | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> None:
        distance_mm = _finite(distance, "distance")
        speed = _finite(velocity, "velocity")
        if distance_mm == 0:
            self._halt()
            return
        if speed == 0:
            raise ValidationError(f"velocity must not be 0 to move {distance_mm:g} mm")
        direction = math.copysign(1.0, distance_mm) * math.copysign(1.0, speed)
        await self._run(direction * abs(speed), 0.0, abs(distance_mm) / abs(speed), kwargs)

    async def spin(
        self,
        angle: float,
        velocity: float,
        *,
        extra: Mapping[str, Any] | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> None:
        angle_deg = _finite(angle, "angle")
        speed = _finite(velocity, "velocity")
        if angle_deg == 0:
            self._halt()
            return
        if speed == 0:
            raise ValidationError(f"velocity must not be 0 to spin {angle_deg:g} degrees")
        direction = math.copysign(1.0, angle_deg) * math.copysign(1.0, speed)
        await self._run(0.0, direction * abs(speed), abs(angle_deg) / abs(speed), kwargs)

    async def set_power(
        self,
        linear: common_pb2.Vector3,
        angular: common_pb2.Vector3,
        *,
        extra: Mapping[str, Any] | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> None:
        for what, vector in (("linear", linear), ("angular", angular)):
            for axis in ("x", "y", "z"):
                value = _finite(getattr(vector, axis), f"{what}.{axis}")
                if not -1.0 <= value <= 1.0:
                    raise ValidationError(f"power {what}.{axis} must be within [-1, 1], got {value}")
        await self.set_velocity(
            common_pb2.Vector3(y=linear.y * self.max_speed_mm_per_sec),
            common_pb2.Vector3(z=angular.z * self.max_angular_deg_per_sec),
        )

    async def set_velocity(
        self,
        linear: common_pb2.Vector3,
        angular: common_pb2.Vector3,
        *,
        extra: Mapping[str, Any] | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> None:
        # A wheeled base only drives forward (y) and turns about its vertical axis (z).
        forward = _finite(linear.y, "linear.y")
        turn = _finite(angular.z, "angular.z")
        if forward == 0.0 and turn == 0.0:
            self._halt()
        else:
            self._start(forward, turn, None)

    async def stop(
        self, *, extra: Mapping[str, Any] | None = None, timeout: float | None = None, **kwargs: Any
    ) -> None:
        self._halt()

    async def is_moving(self) -> bool:
        return self._moving_at(time.monotonic())

    async def get_properties(
        self, *, extra: Mapping[str, Any] | None = None, timeout: float | None = None, **kwargs: Any
    ) -> Base.Properties:
        return Base.Properties(
            width_meters=self.width_mm / 1000.0,
            turning_radius_meters=self.min_turning_radius_m,
            wheel_circumference_meters=self.wheel_circumference_mm / 1000.0,
        )

    async def get_status(self, *, timeout: float | None = None, **kwargs: Any) -> Mapping[str, Any]:
        moving = self._moving_at(time.monotonic())
        return {
            "pose": self.pose(),
            "is_moving": moving,
            "linear_mm_per_sec": self._linear if moving else 0.0,
            "angular_deg_per_sec": self._angular if moving else 0.0,
        }

    async def do_command(
        self, command: Mapping[str, Any], *, timeout: float | None = None, **kwargs: Any
    ) -> Mapping[str, Any]:
        if command.get("command") == "get_pose":
            return self.pose()
        raise NotSupportedError(f"base {self.name!r} understands only {{'command': 'get_pose'}}, got {dict(command)}")

    async def close(self) -> None:
        self._halt()
