"""Kinematics of the fake arm: a Cartesian (gantry) arm with a spherical wrist and a straight tool.

Joints, base to tip: ``x``, ``y``, ``z`` slide along the base axes (mm); ``wrist_yaw`` turns about
z, ``wrist_pitch`` about the new y, ``wrist_roll`` about the new z (degrees). The tool sticks out
``tool_length_mm`` along the wrist's final z axis.

The wrist is exactly the Z-Y-Z decomposition behind Viam's orientation vector
(``R = Rz(lon) · Ry(lat) · Rz(theta)``, with ``(o_x, o_y, o_z)`` the tool axis), so both forward
and inverse kinematics are closed form and exact: what ``get_kinematics`` reports is the model
the fake really moves by.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass

from ...errors import ValidationError
from ...gen.viam.common.v1 import common_pb2

#: Below this, the tool axis counts as pointing straight up or down, where longitude is undefined.
POLE_EPSILON = 1e-12

Matrix = tuple[tuple[float, float, float], tuple[float, float, float], tuple[float, float, float]]


@dataclass(frozen=True)
class Joint:
    id: str
    prismatic: bool
    axis: tuple[float, float, float]
    min: float
    max: float


JOINTS: tuple[Joint, ...] = (
    Joint("x", True, (1, 0, 0), -1000.0, 1000.0),
    Joint("y", True, (0, 1, 0), -1000.0, 1000.0),
    Joint("z", True, (0, 0, 1), 0.0, 1000.0),
    Joint("wrist_yaw", False, (0, 0, 1), -360.0, 360.0),
    Joint("wrist_pitch", False, (0, 1, 0), -180.0, 180.0),
    Joint("wrist_roll", False, (0, 0, 1), -360.0, 360.0),
)
DOF = len(JOINTS)
MODEL_NAME = "peerbot_fake_cartesian_arm"
END_EFFECTOR = "tool"


def _rz(deg: float) -> Matrix:
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    return ((c, -s, 0.0), (s, c, 0.0), (0.0, 0.0, 1.0))


def _ry(deg: float) -> Matrix:
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    return ((c, 0.0, s), (0.0, 1.0, 0.0), (-s, 0.0, c))


def _mul(a: Matrix, b: Matrix) -> Matrix:
    rows = [tuple(sum(a[i][k] * b[k][j] for k in range(3)) for j in range(3)) for i in range(3)]
    return (rows[0], rows[1], rows[2])  # type: ignore[return-value]


def _normalize_deg(angle: float) -> float:
    """An angle in (-180, 180]."""
    wrapped = math.fmod(angle, 360.0)
    if wrapped <= -180.0:
        wrapped += 360.0
    elif wrapped > 180.0:
        wrapped -= 360.0
    return wrapped


def check_joints(values: Sequence[float], what: str = "joint positions") -> list[float]:
    """``values`` as floats, or a ValidationError naming the joint that is wrong."""
    if len(values) != DOF:
        raise ValidationError(f"{what}: the arm has {DOF} joints, got {len(values)} values")
    out = []
    for joint, value in zip(JOINTS, values, strict=True):
        unit = "mm" if joint.prismatic else "degrees"
        if not math.isfinite(value) or not joint.min <= value <= joint.max:
            raise ValidationError(
                f"{what}: joint {joint.id} must be within [{joint.min:g}, {joint.max:g}] {unit}, got {value}"
            )
        out.append(float(value))
    return out


def forward(joints: Sequence[float], tool_length_mm: float) -> common_pb2.Pose:
    """The tool pose (mm, orientation vector in degrees) for the given joint positions."""
    x, y, z, yaw, pitch, roll = joints
    rot = _mul(_mul(_rz(yaw), _ry(pitch)), _rz(roll))
    ox, oy, oz = rot[0][2], rot[1][2], rot[2][2]
    lat = math.degrees(math.acos(max(-1.0, min(1.0, oz))))
    lon = math.degrees(math.atan2(oy, ox)) if math.hypot(ox, oy) > POLE_EPSILON else 0.0
    rest = _mul(_mul(_ry(-lat), _rz(-lon)), rot)  # == Rz(theta)
    theta = math.degrees(math.atan2(rest[1][0], rest[0][0]))
    return common_pb2.Pose(
        x=x + tool_length_mm * ox, y=y + tool_length_mm * oy, z=z + tool_length_mm * oz,
        o_x=ox, o_y=oy, o_z=oz, theta=theta,
    )


def inverse(pose: common_pb2.Pose, tool_length_mm: float) -> list[float]:
    """Joint positions that put the tool at ``pose``; a ValidationError if out of reach."""
    values = (pose.x, pose.y, pose.z, pose.o_x, pose.o_y, pose.o_z, pose.theta)
    if not all(math.isfinite(v) for v in values):
        raise ValidationError("pose values must be finite numbers")
    norm = math.sqrt(pose.o_x**2 + pose.o_y**2 + pose.o_z**2)
    # A zero orientation vector means "pointing up", as in RDK.
    ox, oy, oz = (pose.o_x / norm, pose.o_y / norm, pose.o_z / norm) if norm > 0 else (0.0, 0.0, 1.0)
    lat = math.degrees(math.acos(max(-1.0, min(1.0, oz))))
    lon = math.degrees(math.atan2(oy, ox)) if math.hypot(ox, oy) > POLE_EPSILON else 0.0
    joints = [
        pose.x - tool_length_mm * ox,
        pose.y - tool_length_mm * oy,
        pose.z - tool_length_mm * oz,
        lon,
        lat,
        _normalize_deg(pose.theta),
    ]
    return check_joints(joints, "pose out of reach")


def _vector(v: tuple[float, float, float]) -> common_pb2.Vector3:
    return common_pb2.Vector3(x=v[0], y=v[1], z=v[2])


def model(tool_length_mm: float) -> common_pb2.KinematicModel:
    """The structured kinematic chain: base_link, the six joints in series, then the tool link."""
    joints = []
    parent = "base_link"
    for joint in JOINTS:
        joints.append(common_pb2.KinematicJoint(
            id=joint.id,
            parent=parent,
            type=common_pb2.JOINT_TYPE_PRISMATIC if joint.prismatic else common_pb2.JOINT_TYPE_REVOLUTE,
            axis=_vector(joint.axis),
            limits=common_pb2.JointLimits(min=joint.min, max=joint.max),
        ))
        parent = joint.id
    links = [
        common_pb2.KinematicLink(id="base_link", parent="world",
                                 pose=common_pb2.LinkPose(translation=common_pb2.Vector3())),
        common_pb2.KinematicLink(id=END_EFFECTOR, parent=parent,
                                 pose=common_pb2.LinkPose(translation=common_pb2.Vector3(z=tool_length_mm))),
    ]
    return common_pb2.KinematicModel(name=MODEL_NAME, links=links, joints=joints, output_frames=[END_EFFECTOR])


def sva_json(tool_length_mm: float) -> bytes:
    """The same chain in RDK's JSON model format (spatial vector algebra parameters)."""
    parents = ["base_link", *(j.id for j in JOINTS[:-1])]
    document = {
        "name": MODEL_NAME,
        "kinematic_param_type": "SVA",
        "links": [
            {"id": "base_link", "parent": "world", "translation": {"x": 0, "y": 0, "z": 0}},
            {"id": END_EFFECTOR, "parent": JOINTS[-1].id, "translation": {"x": 0, "y": 0, "z": tool_length_mm}},
        ],
        "joints": [
            {
                "id": j.id,
                "type": "prismatic" if j.prismatic else "revolute",
                "parent": parent,
                "axis": {"x": j.axis[0], "y": j.axis[1], "z": j.axis[2]},
                "min": j.min,
                "max": j.max,
            }
            for j, parent in zip(JOINTS, parents, strict=True)
        ],
    }
    return json.dumps(document, indent=2).encode()
