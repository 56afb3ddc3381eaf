"""The base API: the mobile platform that carries the robot around."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ...gen.viam.common.v1 import common_pb2
from ...resource import API, ComponentBase


class Base(ComponentBase):
    """Distances in mm, angles in degrees; positive angles turn left (counter-clockwise)."""

    API = API.component("base")

    @dataclass(frozen=True)
    class Properties:
        width_meters: float
        turning_radius_meters: float
        wheel_circumference_meters: float

    @abstractmethod
    async def move_straight(
        self,
        distance: int,
        velocity: float,
        *,
        extra: Mapping[str, Any] | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> None:
        """Drive ``distance`` mm at ``velocity`` mm/s (the signs' product is the direction); blocks until done."""

    @abstractmethod
    async def spin(
        self,
        angle: float,
        velocity: float,
        *,
        extra: Mapping[str, Any] | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> None:
        """Turn in place by ``angle`` degrees at ``velocity`` deg/s; blocks until done."""

    @abstractmethod
    async def set_power(
        self,
        linear: common_pb2.Vector3,
        angular: common_pb2.Vector3,
        *,
        extra: Mapping[str, Any] | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> None:
        """Drive with power fractions in [-1, 1] (``linear.y`` forward, ``angular.z`` left) until stopped."""

    @abstractmethod
    async def set_velocity(
        self,
        linear: common_pb2.Vector3,
        angular: common_pb2.Vector3,
        *,
        extra: Mapping[str, Any] | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> None:
        """Drive at ``linear`` mm/s and ``angular`` deg/s until stopped."""

    @abstractmethod
    async def stop(
        self, *, extra: Mapping[str, Any] | None = None, timeout: float | None = None, **kwargs: Any
    ) -> None: ...

    @abstractmethod
    async def is_moving(self) -> bool: ...

    @abstractmethod
    async def get_properties(
        self, *, extra: Mapping[str, Any] | None = None, timeout: float | None = None, **kwargs: Any
    ) -> Base.Properties: ...
