"""A six-joint Cartesian arm (see :mod:`.kinematics`) that follows piecewise-linear joint trajectories.

The joint state is evaluated lazily from a list of timed waypoints, so nothing runs in the
background: unary moves plan the waypoints and wait for the last one, returning early when
``stop`` or a newer command supersedes them; cancelling a call stops the arm where it is.
Streamed trajectories append each batch to the plan as it arrives. Joints move at a constant
speed per segment (``speed_degs_per_sec`` / ``speed_mm_per_sec``, lowered by any ``MoveOptions``
ceilings); accelerations are not modelled.
"""

from __future__ import annotations

import itertools
import logging
import math
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from grpclib import Status

from ...errors import OperationCancelledError, PeerError, ValidationError
from ...gen.viam.common.v1 import common_pb2
from ...gen.viam.component.arm.v1 import arm_pb2
from ...resource import ResourceBase, ResourceConfig, ResourceName
from ...resource.motion import wait_for_motion
from . import kinematics
from .api import Arm, KinematicsReturn

logger = logging.getLogger(__name__)

#: How often a blocking motion checks for cancellation (seconds).
#: How far (degrees or mm) a streamed trajectory may start from the arm's current joints.
START_TOLERANCE = 1.0

Waypoint = tuple[float, list[float]]  # (monotonic time, joint values)


class ArmInManualModeError(PeerError):
    """The arm is being guided by hand, so it refuses commanded motion."""

    status = Status.FAILED_PRECONDITION


def _number(config: ResourceConfig, key: str, default: float, *, zero_ok: bool = False) -> float:
    value = config.attributes.get(key, default)
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < 0 or (value == 0 and not zero_ok):
        raise ValidationError(f"must be a {'non-negative' if zero_ok else 'positive'} number",
                              f"{config.path}.attributes.{key}")
    return float(value)


def _initial_joints(config: ResourceConfig) -> list[float]:
    value = config.attributes.get("joint_positions", [0.0] * kinematics.DOF)
    path = f"{config.path}.attributes.joint_positions"
    if not isinstance(value, list) or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value):
        raise ValidationError(f"must be a list of {kinematics.DOF} numbers", path)
    try:
        return kinematics.check_joints(value)
    except ValidationError as exc:
        raise ValidationError(exc.reason, path) from None


class FakeArm(Arm):
    """Attributes: ``tool_length_mm`` (100), ``speed_degs_per_sec`` (90), ``speed_mm_per_sec`` (200)
    and the starting ``joint_positions`` (all zero)."""

    def __init__(
        self,
        name: str,
        *,
        tool_length_mm: float = 100.0,
        speed_degs_per_sec: float = 90.0,
        speed_mm_per_sec: float = 200.0,
        joint_positions: Sequence[float] | None = None,
    ) -> None:
        super().__init__(name)
        self.tool_length_mm = tool_length_mm
        self.speed_degs_per_sec = speed_degs_per_sec
        self.speed_mm_per_sec = speed_mm_per_sec
        start = kinematics.check_joints(joint_positions or [0.0] * kinematics.DOF)
        self._trajectory: list[Waypoint] = [(time.monotonic(), start)]
        self._generation = 0
        self._manual = False
        self._manual_until: float | None = None

    @staticmethod
    def validate(config: ResourceConfig) -> list[str]:
        _number(config, "tool_length_mm", 100.0, zero_ok=True)
        _number(config, "speed_degs_per_sec", 90.0)
        _number(config, "speed_mm_per_sec", 200.0)
        _initial_joints(config)
        return []

    @classmethod
    def new(cls, config: ResourceConfig, dependencies: Mapping[ResourceName, ResourceBase]) -> FakeArm:
        return cls(
            config.name,
            tool_length_mm=_number(config, "tool_length_mm", 100.0, zero_ok=True),
            speed_degs_per_sec=_number(config, "speed_degs_per_sec", 90.0),
            speed_mm_per_sec=_number(config, "speed_mm_per_sec", 200.0),
            joint_positions=_initial_joints(config),
        )

    # --- state over time -------------------------------------------------------------------------

    def _joints_at(self, now: float) -> list[float]:
        trajectory = self._trajectory
        if now <= trajectory[0][0]:
            return list(trajectory[0][1])
        for (t_a, a), (t_b, b) in itertools.pairwise(trajectory):
            if now < t_b:
                fraction = (now - t_a) / (t_b - t_a) if t_b > t_a else 1.0
                return [va + (vb - va) * fraction for va, vb in zip(a, b, strict=True)]
        return list(trajectory[-1][1])

    def _moving_at(self, now: float) -> bool:
        return now < self._trajectory[-1][0]

    def _plan(self, waypoints: Sequence[Waypoint]) -> int:
        """Replace the plan with ``waypoints`` (absolute times), starting from where the arm is now."""
        now = time.monotonic()
        self._trajectory = [(now, self._joints_at(now)), *waypoints]
        self._generation += 1
        return self._generation

    def _halt(self) -> None:
        self._plan([])

    def _speeds(self, options: arm_pb2.MoveOptions | None = None) -> list[float]:
        """Per-joint speed (deg/s or mm/s): the arm's own, lowered by any ceilings in ``options``."""
        speeds = [self.speed_mm_per_sec if j.prismatic else self.speed_degs_per_sec for j in kinematics.JOINTS]
        if options is None:
            return speeds
        for name in ("max_vel_degs_per_sec", "max_acc_degs_per_sec2", "max_tcp_speed"):
            if options.HasField(name) and not getattr(options, name) > 0:
                raise ValidationError(f"options.{name} must be positive when set")
        for name in ("max_vel_degs_per_sec_joints", "max_acc_degs_per_sec2_joints"):
            values = list(getattr(options, name))
            if values and (len(values) != kinematics.DOF or not all(v > 0 for v in values)):
                raise ValidationError(f"options.{name} must hold {kinematics.DOF} positive values")
        ceilings: list[float | None] = [None] * kinematics.DOF
        if options.max_vel_degs_per_sec_joints:
            ceilings = list(options.max_vel_degs_per_sec_joints)
        elif options.HasField("max_vel_degs_per_sec"):
            ceilings = [None if j.prismatic else options.max_vel_degs_per_sec for j in kinematics.JOINTS]
        if options.HasField("max_tcp_speed"):
            # The slides carry the tool, so capping them caps the tool speed (wrist turns aside).
            ceilings = [min(c or math.inf, options.max_tcp_speed) if j.prismatic else c
                        for j, c in zip(kinematics.JOINTS, ceilings, strict=True)]
        return [s if c is None else min(s, c) for s, c in zip(speeds, ceilings, strict=True)]

    @staticmethod
    def _duration(a: Sequence[float], b: Sequence[float], speeds: Sequence[float]) -> float:
        return max(abs(vb - va) / s for va, vb, s in zip(a, b, speeds, strict=True))

    async def _wait(self, generation: int, kwargs: Mapping[str, Any]) -> bool:
        """Wait for the plan to finish: True when it did, False when a newer command superseded it."""
        return await wait_for_motion(
            self.get_operation(kwargs), is_current=lambda: self._generation == generation,
            ends_at=lambda: self._trajectory[-1][0], halt=self._halt, what=f"arm {self.name!r}: motion")

    def _in_manual_mode(self) -> bool:
        if self._manual and self._manual_until is not None and time.monotonic() >= self._manual_until:
            self._manual, self._manual_until = False, None
        return self._manual

    def _check_can_move(self) -> None:
        if self._in_manual_mode():
            raise ArmInManualModeError(f"arm {self.name!r} is in manual mode; leave it before commanding motion")

    async def _move_through(
        self, targets: Sequence[list[float]], options: arm_pb2.MoveOptions | None, kwargs: Mapping[str, Any]
    ) -> None:
        self._check_can_move()
        speeds = self._speeds(options)
        if not targets:
            return
        now = time.monotonic()
        previous, at, waypoints = self._joints_at(now), now, []
        for target in targets:
            at += self._duration(previous, target, speeds)
            waypoints.append((at, target))
            previous = target
        await self._wait(self._plan(waypoints), kwargs)

    # --- API ---------------------------------------------------------------------------------------

    async def get_end_position(
        self, *, extra: Mapping[str, Any] | None = None, timeout: float | None = None, **kwargs: Any
    ) -> common_pb2.Pose:
        return kinematics.forward(self._joints_at(time.monotonic()), self.tool_length_mm)

    async def move_to_position(
        self,
        pose: common_pb2.Pose,
        *,
        extra: Mapping[str, Any] | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> None:
        await self._move_through([kinematics.inverse(pose, self.tool_length_mm)], None, kwargs)

    async def get_joint_positions(
        self, *, extra: Mapping[str, Any] | None = None, timeout: float | None = None, **kwargs: Any
    ) -> arm_pb2.JointPositions:
        return arm_pb2.JointPositions(values=self._joints_at(time.monotonic()))

    async def move_to_joint_positions(
        self,
        positions: arm_pb2.JointPositions,
        *,
        extra: Mapping[str, Any] | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> None:
        await self._move_through([kinematics.check_joints(positions.values)], None, kwargs)

    async def move_through_joint_positions(
        self,
        positions: Sequence[arm_pb2.JointPositions],
        options: arm_pb2.MoveOptions | None = None,
        *,
        extra: Mapping[str, Any] | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> None:
        targets = [kinematics.check_joints(p.values, f"waypoint {i}") for i, p in enumerate(positions)]
        await self._move_through(targets, options, kwargs)

    async def move_through_joint_positions_streamed(
        self,
        batches: AsyncIterator[list[Arm.TrajectoryPoint]],
        *,
        extra: Mapping[str, Any] | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[Arm.TrajectoryUpdate]:
        """Time zero is when the first batch arrives; the stream ends once the last point is reached."""
        self._check_can_move()
        generation: int | None = None
        t0 = 0.0
        acknowledged = False
        try:
            async for batch in batches:
                if generation is not None and generation != self._generation:
                    raise OperationCancelledError(f"arm {self.name!r} was stopped during the streamed trajectory")
                points = [(p.time.total_seconds(), kinematics.check_joints(p.positions, "trajectory point"))
                          for p in batch]
                now = time.monotonic()
                if generation is None:
                    current = self._joints_at(now)
                    if max(abs(a - b) for a, b in zip(points[0][1], current, strict=True)) > START_TOLERANCE:
                        raise ValidationError(
                            f"the trajectory must start at the arm's current joint positions {current}"
                        )
                    t0 = now
                    generation = self._plan([(t0 + t, p) for t, p in points])
                else:
                    if t0 + points[0][0] < now:
                        logger.warning("arm %s: trajectory batch arrived %.3f s late", self.name,
                                       now - t0 - points[0][0])
                    self._trajectory.extend((t0 + t, p) for t, p in points)
                acknowledged = True
                yield Arm.TrajectoryUpdate()
            if generation is not None and not await self._wait(generation, kwargs):
                raise OperationCancelledError(f"arm {self.name!r} was stopped during the streamed trajectory")
            if not acknowledged:
                yield Arm.TrajectoryUpdate()
        except BaseException:
            # A fault, a cancelled call or an abandoned stream: the arm must not keep going.
            if generation is not None and generation == self._generation:
                self._halt()
            raise

    async def stop(
        self, *, extra: Mapping[str, Any] | None = None, timeout: float | None = None, **kwargs: Any
    ) -> None:
        self._halt()

    async def is_moving(self) -> bool:
        return self._moving_at(time.monotonic())

    async def get_kinematics(
        self,
        *,
        include_collision_meshes: bool = False,
        include_visual_meshes: bool = False,
        extra: Mapping[str, Any] | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> KinematicsReturn:
        return (
            common_pb2.KINEMATICS_FILE_FORMAT_SVA,
            kinematics.sva_json(self.tool_length_mm),
            {},
            kinematics.model(self.tool_length_mm),
        )

    async def set_manual_mode(
        self,
        manual_mode: bool,
        enabled_for: int = 0,
        *,
        extra: Mapping[str, Any] | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> None:
        if enabled_for < 0:
            raise ValidationError(f"enabled_for must be 0 (no limit) or a positive number of seconds, "
                                  f"got {enabled_for}")
        if manual_mode:
            self._halt()
        self._manual = manual_mode
        self._manual_until = time.monotonic() + enabled_for if manual_mode and enabled_for else None

    async def get_manual_mode(
        self, *, extra: Mapping[str, Any] | None = None, timeout: float | None = None, **kwargs: Any
    ) -> bool:
        return self._in_manual_mode()

    async def get_properties(
        self, *, extra: Mapping[str, Any] | None = None, timeout: float | None = None, **kwargs: Any
    ) -> Arm.Properties:
        return Arm.Properties(support_manual_mode=True, support_cartesian_commands=True)

    async def get_status(self, *, timeout: float | None = None, **kwargs: Any) -> Mapping[str, Any]:
        now = time.monotonic()
        joints = self._joints_at(now)
        pose = kinematics.forward(joints, self.tool_length_mm)
        return {
            "end_position": {k: getattr(pose, k) for k in ("x", "y", "z", "o_x", "o_y", "o_z", "theta")},
            "joint_positions": joints,
            "is_moving": self._moving_at(now),
            "manual_mode": self._in_manual_mode(),
        }

    async def close(self) -> None:
        self._halt()
