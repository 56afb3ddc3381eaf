"""The movement sensor API: where the robot is, which way it points and how it moves (GPS, IMU, odometry)."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ...gen.viam.common.v1 import common_pb2
from ...gen.viam.component.movementsensor.v1 import movementsensor_pb2
from ...resource import API, ComponentBase

#: What :meth:`MovementSensor.get_accuracy` returns (the wire message, as in the Viam SDK).
Accuracy = movementsensor_pb2.GetAccuracyResponse


@dataclass(frozen=True)
class Properties:
    """Which getters the sensor can answer; the others raise NotSupportedError."""

    linear_acceleration_supported: bool = False
    angular_velocity_supported: bool = False
    orientation_supported: bool = False
    position_supported: bool = False
    compass_heading_supported: bool = False
    linear_velocity_supported: bool = False

    @property
    def proto(self) -> movementsensor_pb2.GetPropertiesResponse:
        return movementsensor_pb2.GetPropertiesResponse(
            linear_acceleration_supported=self.linear_acceleration_supported,
            angular_velocity_supported=self.angular_velocity_supported,
            orientation_supported=self.orientation_supported,
            position_supported=self.position_supported,
            compass_heading_supported=self.compass_heading_supported,
            linear_velocity_supported=self.linear_velocity_supported,
        )

    @classmethod
    def from_proto(cls, proto: movementsensor_pb2.GetPropertiesResponse) -> Properties:
        return cls(
            linear_acceleration_supported=proto.linear_acceleration_supported,
            angular_velocity_supported=proto.angular_velocity_supported,
            orientation_supported=proto.orientation_supported,
            position_supported=proto.position_supported,
            compass_heading_supported=proto.compass_heading_supported,
            linear_velocity_supported=proto.linear_velocity_supported,
        )


def vector3_reading(v: common_pb2.Vector3, kind: str = "vector3") -> dict[str, Any]:
    """A vector as GetReadings carries it: ``_type`` lets SDK clients turn it back into a Vector3."""
    return {"x": v.x, "y": v.y, "z": v.z, "_type": kind}


def geopoint_reading(p: common_pb2.GeoPoint) -> dict[str, Any]:
    return {"lat": p.latitude, "lng": p.longitude, "_type": "geopoint"}


def orientation_reading(o: common_pb2.Orientation) -> dict[str, Any]:
    return {"ox": o.o_x, "oy": o.o_y, "oz": o.o_z, "theta": o.theta, "_type": "orientation_vector_degrees"}


class MovementSensor(ComponentBase):
    API = API.component("movement_sensor")

    @abstractmethod
    async def get_position(
        self, *, extra: Mapping[str, Any] | None = None, timeout: float | None = None, **kwargs: Any
    ) -> tuple[common_pb2.GeoPoint, float]:
        """Latitude/longitude (degrees) and altitude (metres)."""

    @abstractmethod
    async def get_linear_velocity(
        self, *, extra: Mapping[str, Any] | None = None, timeout: float | None = None, **kwargs: Any
    ) -> common_pb2.Vector3:
        """Metres per second, in the sensor's frame (y points forward)."""

    @abstractmethod
    async def get_angular_velocity(
        self, *, extra: Mapping[str, Any] | None = None, timeout: float | None = None, **kwargs: Any
    ) -> common_pb2.Vector3:
        """Degrees per second about x, y and z (z up: positive turns left)."""

    @abstractmethod
    async def get_linear_acceleration(
        self, *, extra: Mapping[str, Any] | None = None, timeout: float | None = None, **kwargs: Any
    ) -> common_pb2.Vector3:
        """Metres per second squared, in the sensor's frame."""

    @abstractmethod
    async def get_compass_heading(
        self, *, extra: Mapping[str, Any] | None = None, timeout: float | None = None, **kwargs: Any
    ) -> float:
        """Degrees clockwise from north, in [0, 360)."""

    @abstractmethod
    async def get_orientation(
        self, *, extra: Mapping[str, Any] | None = None, timeout: float | None = None, **kwargs: Any
    ) -> common_pb2.Orientation:
        """Orientation vector, theta in degrees."""

    @abstractmethod
    async def get_properties(
        self, *, extra: Mapping[str, Any] | None = None, timeout: float | None = None, **kwargs: Any
    ) -> Properties:
        """Which of the getters above this sensor supports."""

    @abstractmethod
    async def get_accuracy(
        self, *, extra: Mapping[str, Any] | None = None, timeout: float | None = None, **kwargs: Any
    ) -> Accuracy:
        """Accuracy figures (free-form map plus DOPs, NMEA fix quality and compass error)."""

    async def get_readings(
        self, *, extra: Mapping[str, Any] | None = None, timeout: float | None = None, **kwargs: Any
    ) -> Mapping[str, Any]:
        """Every supported value in one map, keyed and tagged as viam-server does.

        Keys: ``position``, ``altitude``, ``linear_velocity``, ``angular_velocity``,
        ``linear_acceleration``, ``compass``, ``orientation``; structured values carry a ``_type``
        so SDK clients rebuild GeoPoint/Vector3/Orientation objects from them.
        """
        props = await self.get_properties(extra=extra, timeout=timeout)
        readings: dict[str, Any] = {}
        if props.position_supported:
            point, altitude = await self.get_position(extra=extra, timeout=timeout)
            readings["position"] = geopoint_reading(point)
            readings["altitude"] = altitude
        if props.linear_velocity_supported:
            readings["linear_velocity"] = vector3_reading(await self.get_linear_velocity(extra=extra, timeout=timeout))
        if props.angular_velocity_supported:
            velocity = await self.get_angular_velocity(extra=extra, timeout=timeout)
            readings["angular_velocity"] = vector3_reading(velocity, "angular_velocity")
        if props.linear_acceleration_supported:
            acceleration = await self.get_linear_acceleration(extra=extra, timeout=timeout)
            readings["linear_acceleration"] = vector3_reading(acceleration)
        if props.compass_heading_supported:
            readings["compass"] = await self.get_compass_heading(extra=extra, timeout=timeout)
        if props.orientation_supported:
            readings["orientation"] = orientation_reading(await self.get_orientation(extra=extra, timeout=timeout))
        return readings
