"""The gripper API: open, grab, report whether something is held."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ...errors import NotSupportedError
from ...gen.viam.common.v1 import common_pb2
from ...resource import API, ComponentBase

#: ``(format, data)``, optionally followed by meshes by URDF path and a structured model, as in the Viam SDK.
KinematicsReturn = (
    tuple["common_pb2.KinematicsFileFormat.ValueType", bytes]
    | tuple["common_pb2.KinematicsFileFormat.ValueType", bytes, Mapping[str, common_pb2.Mesh]]
    | tuple[
        "common_pb2.KinematicsFileFormat.ValueType", bytes, Mapping[str, common_pb2.Mesh], common_pb2.KinematicModel
    ]
)


@dataclass(frozen=True)
class HoldingStatus:
    """Whether the fingers hold an object; ``meta`` carries driver details (width, force, ...)."""

    is_holding_something: bool
    meta: Mapping[str, Any] | None = None


class Gripper(ComponentBase):
    """A gripper is an actuator: ``stop`` and ``is_moving`` make StopAll and session expiry work."""

    API = API.component("gripper")

    @abstractmethod
    async def open(self, *, extra: Mapping[str, Any] | None = None, timeout: float | None = None,
                   **kwargs: Any) -> None:
        """Open fully; returns when open (or stopped)."""

    @abstractmethod
    async def grab(self, *, extra: Mapping[str, Any] | None = None, timeout: float | None = None,
                   **kwargs: Any) -> bool:
        """Close until an object stops the fingers or they shut; True if something was grabbed."""

    @abstractmethod
    async def is_holding_something(
        self, *, extra: Mapping[str, Any] | None = None, timeout: float | None = None, **kwargs: Any
    ) -> HoldingStatus: ...

    @abstractmethod
    async def stop(self, *, extra: Mapping[str, Any] | None = None, timeout: float | None = None,
                   **kwargs: Any) -> None:
        """Stop where the fingers are; a running open/grab returns."""

    @abstractmethod
    async def is_moving(self) -> bool: ...

    @abstractmethod
    async def get_current_inputs(
        self, *, extra: Mapping[str, Any] | None = None, timeout: float | None = None, **kwargs: Any
    ) -> Sequence[float]:
        """Joint values of the gripper (for a parallel gripper: the opening in mm)."""

    @abstractmethod
    async def go_to_inputs(
        self, values: Sequence[float], *, extra: Mapping[str, Any] | None = None, timeout: float | None = None,
        **kwargs: Any,
    ) -> None:
        """Move the joints to ``values``; returns when there (or stopped)."""

    async def get_kinematics(
        self,
        *,
        include_collision_meshes: bool = False,
        include_visual_meshes: bool = False,
        extra: Mapping[str, Any] | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> KinematicsReturn:
        """The kinematic model, for motion planning; a gripper without one says so."""
        raise NotSupportedError(f"gripper {self.name!r} has no kinematics configured")
