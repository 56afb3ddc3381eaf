"""A GPS + IMU that drives round a circle: every reading is derived from one consistent motion.

Starting at (latitude, longitude), the sensor moves forward at ``speed_mps`` while turning left
on a circle of ``radius_m``, so position, heading, orientation, the yaw rate and the centripetal
acceleration all agree with each other at every instant. The motion is a pure function of the
monotonic time since creation: nothing runs in the background.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from typing import Any

from ...errors import ValidationError
from ...gen.viam.common.v1 import common_pb2
from ...gen.viam.component.movementsensor.v1 import movementsensor_pb2
from ...resource import ResourceBase, ResourceConfig, ResourceName
from .api import Accuracy, MovementSensor, Properties

#: Mean Earth radius (m); plenty for turning metres into degrees over a few hundred metres.
EARTH_RADIUS_M = 6_371_008.8
#: Horizontal/vertical dilution of precision and compass error the fake reports.
HDOP, VDOP, COMPASS_ERROR_DEG = 0.8, 1.2, 0.5
#: NMEA GGA fix quality 4: RTK fixed.
NMEA_FIX_RTK = 4

_DEFAULTS: dict[str, float] = {
    "latitude": 40.6892,
    "longitude": -74.0445,
    "altitude_m": 12.0,
    "radius_m": 20.0,
    "speed_mps": 1.5,
}


def _number(config: ResourceConfig, key: str, low: float, high: float, *, low_inclusive: bool = True) -> float:
    value = config.attributes.get(key, _DEFAULTS[key])
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        ok = (value >= low if low_inclusive else value > low) and value <= high
    if not ok:
        bracket = "[" if low_inclusive else "("
        raise ValidationError(
            f"must be a number in {bracket}{low:g}, {high:g}], not {value!r}", f"{config.path}.attributes.{key}"
        )
    return float(value)


class FakeMovementSensor(MovementSensor):
    """Circles left at constant speed; supports every getter."""

    def __init__(
        self,
        name: str,
        *,
        latitude: float = _DEFAULTS["latitude"],
        longitude: float = _DEFAULTS["longitude"],
        altitude_m: float = _DEFAULTS["altitude_m"],
        radius_m: float = _DEFAULTS["radius_m"],
        speed_mps: float = _DEFAULTS["speed_mps"],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(name)
        self.latitude = latitude
        self.longitude = longitude
        self.altitude_m = altitude_m
        self.radius_m = radius_m
        self.speed_mps = speed_mps
        self._clock = clock
        self._t0 = clock()

    @staticmethod
    def validate(config: ResourceConfig) -> list[str]:
        _number(config, "latitude", -90.0, 90.0)
        _number(config, "longitude", -180.0, 180.0)
        _number(config, "altitude_m", -500.0, 50_000.0)
        _number(config, "radius_m", 0.0, 100_000.0, low_inclusive=False)
        _number(config, "speed_mps", 0.0, 1_000.0)
        return []

    @classmethod
    def new(cls, config: ResourceConfig, dependencies: Mapping[ResourceName, ResourceBase]) -> FakeMovementSensor:
        def value(key: str) -> float:
            return float(config.attributes.get(key, _DEFAULTS[key]))

        return cls(
            config.name,
            latitude=value("latitude"),
            longitude=value("longitude"),
            altitude_m=value("altitude_m"),
            radius_m=value("radius_m"),
            speed_mps=value("speed_mps"),
        )

    # -- the motion -----------------------------------------------------------------------------

    def _angle(self) -> float:
        """Radians turned (counter-clockwise seen from above) since the start."""
        return self.speed_mps * (self._clock() - self._t0) / self.radius_m

    def _yaw_rate(self) -> float:
        """Radians per second, positive = turning left."""
        return self.speed_mps / self.radius_m

    # -- API --------------------------------------------------------------------------------------

    async def get_position(
        self, *, extra: Mapping[str, Any] | None = None, timeout: float | None = None, **kwargs: Any
    ) -> tuple[common_pb2.GeoPoint, float]:
        angle = self._angle()
        # Start heading north from the configured point; the circle's centre is radius_m to the west.
        east = self.radius_m * (math.cos(angle) - 1.0)
        north = self.radius_m * math.sin(angle)
        lat = self.latitude + math.degrees(north / EARTH_RADIUS_M)
        lng = self.longitude + math.degrees(east / (EARTH_RADIUS_M * math.cos(math.radians(self.latitude))))
        lng = (lng + 180.0) % 360.0 - 180.0
        return common_pb2.GeoPoint(latitude=lat, longitude=lng), self.altitude_m

    async def get_linear_velocity(
        self, *, extra: Mapping[str, Any] | None = None, timeout: float | None = None, **kwargs: Any
    ) -> common_pb2.Vector3:
        return common_pb2.Vector3(x=0.0, y=self.speed_mps, z=0.0)

    async def get_angular_velocity(
        self, *, extra: Mapping[str, Any] | None = None, timeout: float | None = None, **kwargs: Any
    ) -> common_pb2.Vector3:
        return common_pb2.Vector3(x=0.0, y=0.0, z=math.degrees(self._yaw_rate()))

    async def get_linear_acceleration(
        self, *, extra: Mapping[str, Any] | None = None, timeout: float | None = None, **kwargs: Any
    ) -> common_pb2.Vector3:
        # Centripetal, towards the centre on the left (x points right); gravity excluded.
        return common_pb2.Vector3(x=-self.speed_mps**2 / self.radius_m, y=0.0, z=0.0)

    async def get_compass_heading(
        self, *, extra: Mapping[str, Any] | None = None, timeout: float | None = None, **kwargs: Any
    ) -> float:
        return (-math.degrees(self._angle())) % 360.0

    async def get_orientation(
        self, *, extra: Mapping[str, Any] | None = None, timeout: float | None = None, **kwargs: Any
    ) -> common_pb2.Orientation:
        # Level, yawed left of north by the angle turned: theta in (-180, 180].
        theta = 180.0 - (180.0 - math.degrees(self._angle())) % 360.0
        return common_pb2.Orientation(o_x=0.0, o_y=0.0, o_z=1.0, theta=theta)

    async def get_properties(
        self, *, extra: Mapping[str, Any] | None = None, timeout: float | None = None, **kwargs: Any
    ) -> Properties:
        return Properties(True, True, True, True, True, True)

    async def get_accuracy(
        self, *, extra: Mapping[str, Any] | None = None, timeout: float | None = None, **kwargs: Any
    ) -> Accuracy:
        return movementsensor_pb2.GetAccuracyResponse(
            accuracy={"hDOP": HDOP, "vDOP": VDOP},
            position_hdop=HDOP,
            position_vdop=VDOP,
            position_nmea_gga_fix=NMEA_FIX_RTK,
            compass_degrees_error=COMPASS_ERROR_DEG,
        )
