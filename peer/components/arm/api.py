"""The arm API: a manipulator moved by joint positions or by an end-effector pose.

Joint values are degrees for revolute joints and mm for prismatic ones, ordered base to tip.
Protobuf messages (``Pose``, ``JointPositions``, ``MoveOptions``, ``Mesh``) are used directly,
as in the Viam SDK.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeAlias

from ...errors import NotSupportedError, ValidationError
from ...gen.viam.common.v1 import common_pb2
from ...gen.viam.component.arm.v1 import arm_pb2
from ...resource import API, ComponentBase

#: (format, kinematics file bytes, meshes by URDF path, structured model or None).
KinematicsReturn: TypeAlias = tuple[
    "common_pb2.KinematicsFileFormat.ValueType",
    bytes,
    Mapping[str, common_pb2.Mesh],
    "common_pb2.KinematicModel | None",
]


class Arm(ComponentBase):
    API = API.component("arm")

    Properties: TypeAlias = arm_pb2.GetPropertiesResponse

    @dataclass(frozen=True)
    class KinematicConstraints:
        """Per-waypoint joint velocities (and optionally accelerations), one per joint."""

        velocities: list[float]
        accelerations: list[float] | None = None

    @dataclass(frozen=True)
    class TrajectoryPoint:
        """A waypoint of a streamed trajectory, ``time`` after the start of the motion."""

        time: timedelta
        positions: list[float]
        constraints: Arm.KinematicConstraints | None = None

        @classmethod
        def from_proto(cls, proto: arm_pb2.TrajectoryPoint) -> Arm.TrajectoryPoint:
            constraints = None
            if proto.HasField("constraints"):
                accelerations = None
                if proto.constraints.HasField("accelerations"):
                    accelerations = list(proto.constraints.accelerations.values)
                constraints = Arm.KinematicConstraints(list(proto.constraints.velocities.values), accelerations)
            return cls(proto.time.ToTimedelta(), list(proto.positions.values), constraints)

    @dataclass(frozen=True)
    class TrajectoryUpdate:
        """The arm's acknowledgement on a streamed trajectory (empty on the wire today)."""

        extra: Mapping[str, Any] = field(default_factory=dict)

    @abstractmethod
    async def get_end_position(
        self, *, extra: Mapping[str, Any] | None = None, timeout: float | None = None, **kwargs: Any
    ) -> common_pb2.Pose: ...

    @abstractmethod
    async def move_to_position(
        self,
        pose: common_pb2.Pose,
        *,
        extra: Mapping[str, Any] | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> None:
        """Move the end effector to ``pose``; returns on arrival."""

    @abstractmethod
    async def get_joint_positions(
        self, *, extra: Mapping[str, Any] | None = None, timeout: float | None = None, **kwargs: Any
    ) -> arm_pb2.JointPositions: ...

    @abstractmethod
    async def move_to_joint_positions(
        self,
        positions: arm_pb2.JointPositions,
        *,
        extra: Mapping[str, Any] | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> None:
        """Move every joint to ``positions``; returns on arrival."""

    @abstractmethod
    async def move_through_joint_positions(
        self,
        positions: Sequence[arm_pb2.JointPositions],
        options: arm_pb2.MoveOptions | None = None,
        *,
        extra: Mapping[str, Any] | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> None:
        """Visit each waypoint in order within the ceilings of ``options``; an empty list is a no-op."""

    def move_through_joint_positions_streamed(
        self,
        batches: AsyncIterator[list[Arm.TrajectoryPoint]],
        *,
        extra: Mapping[str, Any] | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[Arm.TrajectoryUpdate]:
        """Follow a time-parameterised trajectory that arrives in batches; yields an update per batch.

        Implementations are async generators and must yield at least once.
        """
        raise NotSupportedError(f"arm {self.name!r} does not follow streamed trajectories")

    @abstractmethod
    async def stop(
        self, *, extra: Mapping[str, Any] | None = None, timeout: float | None = None, **kwargs: Any
    ) -> None: ...

    @abstractmethod
    async def is_moving(self) -> bool: ...

    async def get_kinematics(
        self,
        *,
        include_collision_meshes: bool = False,
        include_visual_meshes: bool = False,
        extra: Mapping[str, Any] | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> KinematicsReturn:
        raise NotSupportedError(f"arm {self.name!r} has no kinematic model")

    async def get_3d_models(
        self, *, extra: Mapping[str, Any] | None = None, timeout: float | None = None, **kwargs: Any
    ) -> Mapping[str, common_pb2.Mesh]:
        """Meshes by name; an arm without models returns an empty mapping."""
        return {}

    async def set_manual_mode(
        self,
        manual_mode: bool,
        enabled_for: int = 0,
        *,
        extra: Mapping[str, Any] | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> None:
        """Enter or leave hand-guiding mode; ``enabled_for`` seconds, 0 for no limit."""
        raise NotSupportedError(f"arm {self.name!r} has no manual mode")

    async def get_manual_mode(
        self, *, extra: Mapping[str, Any] | None = None, timeout: float | None = None, **kwargs: Any
    ) -> bool:
        return False

    @abstractmethod
    async def get_properties(
        self, *, extra: Mapping[str, Any] | None = None, timeout: float | None = None, **kwargs: Any
    ) -> Arm.Properties: ...


class TrajectoryStreamValidator:
    """The streamed-trajectory contract, checked point by point across batches.

    The first point is at time zero and starts from rest, times strictly increase, and
    constraints carry one value per position. The service applies it for every model.
    """

    def __init__(self) -> None:
        self._seen_first = False
        self._last_time = timedelta()

    def check(self, point: Arm.TrajectoryPoint) -> None:
        if not self._seen_first:
            if point.time != timedelta():
                raise ValidationError("the first trajectory point must have time zero")
        elif point.time <= self._last_time:
            raise ValidationError("trajectory point times must strictly increase")
        if not point.positions:
            raise ValidationError("a trajectory point must carry at least one position")
        constraints = point.constraints
        if constraints is not None:
            if len(constraints.velocities) != len(point.positions):
                raise ValidationError("constraints must carry one velocity per position")
            if not self._seen_first and any(v != 0.0 for v in constraints.velocities):
                raise ValidationError("the first trajectory point must start from rest (all velocities zero)")
            if constraints.accelerations is not None and len(constraints.accelerations) != len(point.positions):
                raise ValidationError("constraints must carry one acceleration per position")
        self._seen_first = True
        self._last_time = point.time
