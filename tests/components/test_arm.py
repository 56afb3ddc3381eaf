from __future__ import annotations

import asyncio
import json
import time

import pytest
from google.protobuf import duration_pb2
from grpclib import GRPCError, Status

from peer.components.arm import FakeArm
from peer.errors import OperationCancelledError, ValidationError
from peer.gen.viam.common.v1 import common_pb2
from peer.gen.viam.component.arm.v1 import arm_pb2
from peer.gen.viam.component.arm.v1.arm_grpc import ArmServiceStub
from peer.operations import Operation
from peer.protoutil import struct_to_dict
from peer.resource import API, Model, ResourceConfig

from .helpers import serve_resources

JP = arm_pb2.JointPositions
Req = arm_pb2.MoveThroughJointPositionsStreamedRequest


def fast_arm(name: str = "arm") -> FakeArm:
    # 900 deg/s and 1000 mm/s: a 90 degree or 100 mm move takes 0.1 s.
    return FakeArm(name, speed_degs_per_sec=900, speed_mm_per_sec=1000)


async def _joints(stub: ArmServiceStub, name: str = "arm") -> list[float]:
    return list((await stub.GetJointPositions(arm_pb2.GetJointPositionsRequest(name=name))).positions.values)


async def _moving(stub: ArmServiceStub, name: str = "arm") -> bool:
    return (await stub.IsMoving(arm_pb2.IsMovingRequest(name=name))).is_moving


async def test_joint_move_takes_time_and_sets_the_end_pose() -> None:
    async with serve_resources([fast_arm()]) as channel:
        stub = ArmServiceStub(channel)
        start = time.monotonic()
        await stub.MoveToJointPositions(arm_pb2.MoveToJointPositionsRequest(
            name="arm", positions=JP(values=[100, 0, 50, 0, 0, 0])))
        assert 0.095 <= time.monotonic() - start < 0.5
        assert await _joints(stub) == pytest.approx([100, 0, 50, 0, 0, 0])
        assert not await _moving(stub)
        pose = (await stub.GetEndPosition(arm_pb2.GetEndPositionRequest(name="arm"))).pose
        # The 100 mm tool points straight up at rest.
        assert (pose.x, pose.y, pose.z) == pytest.approx((100, 0, 150))
        assert (pose.o_x, pose.o_y, pose.o_z, pose.theta) == pytest.approx((0, 0, 1, 0))


@pytest.mark.parametrize(("values", "text"), [([0, 0, 0], "6 joints"), ([0, 0, -5, 0, 0, 0], "joint z")])
async def test_bad_joint_positions_are_invalid(values: list[float], text: str) -> None:
    async with serve_resources([fast_arm()]) as channel:
        with pytest.raises(GRPCError) as err:
            await ArmServiceStub(channel).MoveToJointPositions(
                arm_pb2.MoveToJointPositionsRequest(name="arm", positions=JP(values=values)))
    assert err.value.status == Status.INVALID_ARGUMENT
    assert text in (err.value.message or "")


async def test_move_to_position_reaches_the_pose() -> None:
    target = common_pb2.Pose(x=150, y=-50, z=100, o_x=1, o_y=0, o_z=0, theta=30)
    async with serve_resources([fast_arm()]) as channel:
        stub = ArmServiceStub(channel)
        await stub.MoveToPosition(arm_pb2.MoveToPositionRequest(name="arm", to=target))
        pose = (await stub.GetEndPosition(arm_pb2.GetEndPositionRequest(name="arm"))).pose
        joints = await _joints(stub)
    for field in ("x", "y", "z", "o_x", "o_y", "o_z", "theta"):
        assert getattr(pose, field) == pytest.approx(getattr(target, field), abs=1e-6), field
    # Tool along +x: the slides stop 100 mm short in x; the wrist pitches 90 degrees and rolls 30.
    assert joints == pytest.approx([50, -50, 100, 0, 90, 30], abs=1e-6)


async def test_unreachable_pose_is_invalid() -> None:
    async with serve_resources([fast_arm()]) as channel:
        with pytest.raises(GRPCError) as err:
            await ArmServiceStub(channel).MoveToPosition(
                arm_pb2.MoveToPositionRequest(name="arm", to=common_pb2.Pose(x=5000, o_z=1)))
    assert err.value.status == Status.INVALID_ARGUMENT
    assert "out of reach" in (err.value.message or "")


async def test_move_through_waypoints_obeys_speed_ceilings() -> None:
    async with serve_resources([fast_arm()]) as channel:
        stub = ArmServiceStub(channel)
        waypoints = [JP(values=[0, 0, 0, 45, 0, 0]), JP(values=[0, 0, 0, 0, 0, 0])]
        start = time.monotonic()
        await stub.MoveThroughJointPositions(arm_pb2.MoveThroughJointPositionsRequest(name="arm", positions=waypoints))
        unlimited = time.monotonic() - start  # 2 x 45 degrees at 900 deg/s = 0.1 s
        start = time.monotonic()
        await stub.MoveThroughJointPositions(arm_pb2.MoveThroughJointPositionsRequest(
            name="arm", positions=waypoints, options=arm_pb2.MoveOptions(max_vel_degs_per_sec=450)))
        limited = time.monotonic() - start  # 0.2 s
        assert 0.095 <= unlimited < limited
        assert limited >= 0.195
        assert await _joints(stub) == pytest.approx([0] * 6)

        # An empty list is a no-op; a zero ceiling that is set is not "no limit".
        await stub.MoveThroughJointPositions(arm_pb2.MoveThroughJointPositionsRequest(name="arm"))
        with pytest.raises(GRPCError) as err:
            await stub.MoveThroughJointPositions(arm_pb2.MoveThroughJointPositionsRequest(
                name="arm", positions=waypoints, options=arm_pb2.MoveOptions(max_vel_degs_per_sec=0)))
        assert err.value.status == Status.INVALID_ARGUMENT
        with pytest.raises(GRPCError) as err:
            await stub.MoveThroughJointPositions(arm_pb2.MoveThroughJointPositionsRequest(
                name="arm", positions=[waypoints[0], JP(values=[1, 2])]))
        assert err.value.status == Status.INVALID_ARGUMENT
        assert "waypoint 1" in (err.value.message or "")


async def test_stop_interrupts_a_move() -> None:
    async with serve_resources([FakeArm("arm", speed_mm_per_sec=100)]) as channel:
        stub = ArmServiceStub(channel)
        call = asyncio.create_task(stub.MoveToJointPositions(arm_pb2.MoveToJointPositionsRequest(
            name="arm", positions=JP(values=[500, 0, 0, 0, 0, 0]))))  # 5 s
        await asyncio.sleep(0.05)
        assert await _moving(stub)
        await stub.Stop(arm_pb2.StopRequest(name="arm"))
        await asyncio.wait_for(call, 1.0)
        assert not await _moving(stub)
        assert 0 < (await _joints(stub))[0] < 50


async def test_deadline_stops_the_arm() -> None:
    async with serve_resources([FakeArm("arm", speed_mm_per_sec=100)]) as channel:
        stub = ArmServiceStub(channel)
        with pytest.raises((GRPCError, asyncio.TimeoutError)):
            await stub.MoveToJointPositions(arm_pb2.MoveToJointPositionsRequest(
                name="arm", positions=JP(values=[500, 0, 0, 0, 0, 0])), timeout=0.05)
        deadline = time.monotonic() + 1.0
        while await _moving(stub):
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)


async def test_cancelled_operation_stops_the_arm() -> None:
    arm = FakeArm("arm", speed_mm_per_sec=100)
    op = Operation("test")
    call = asyncio.create_task(arm.move_to_joint_positions(JP(values=[500, 0, 0, 0, 0, 0]), viam_operation=op))
    await asyncio.sleep(0.03)
    op.cancel()
    with pytest.raises(OperationCancelledError):
        await asyncio.wait_for(call, 1.0)
    assert not await arm.is_moving()


def _point(seconds: float, values: list[float]) -> arm_pb2.TrajectoryPoint:
    at = duration_pb2.Duration()
    at.FromNanoseconds(round(seconds * 1e9))
    return arm_pb2.TrajectoryPoint(time=at, positions=JP(values=values))


async def test_streamed_trajectory_follows_batches_until_the_last_point() -> None:
    async with serve_resources([fast_arm()]) as channel:
        stub = ArmServiceStub(channel)
        start = time.monotonic()
        async with stub.MoveThroughJointPositionsStreamed.open() as stream:
            await stream.send_message(Req(name="arm", init=Req.Init()))
            await stream.send_message(Req(batch=Req.TrajectoryBatch(points=[
                _point(0, [0] * 6), _point(0.05, [20, 0, 0, 0, 0, 0])])))
            assert await asyncio.wait_for(stream.recv_message(), 1.0) is not None  # ack
            await stream.send_message(Req(batch=Req.TrajectoryBatch(points=[_point(0.1, [20, 0, 0, 10, 0, 0])])))
            assert await asyncio.wait_for(stream.recv_message(), 1.0) is not None
            assert await _moving(stub)
            await stream.end()
            assert await asyncio.wait_for(stream.recv_message(), 1.0) is None  # ends once the arm arrives
        assert time.monotonic() - start >= 0.095
        assert await _joints(stub) == pytest.approx([20, 0, 0, 10, 0, 0])
        assert not await _moving(stub)


@pytest.mark.parametrize(("first", "text"), [
    (Req(batch=Req.TrajectoryBatch(points=[_point(0, [0] * 6)])), "init"),
    (Req(name="arm", init=Req.Init()), "time zero"),
])
async def test_streamed_trajectory_contract_is_enforced(first: Req, text: str) -> None:
    async with serve_resources([fast_arm()]) as channel:
        async with ArmServiceStub(channel).MoveThroughJointPositionsStreamed.open() as stream:
            await stream.send_message(first)
            await stream.send_message(Req(batch=Req.TrajectoryBatch(points=[_point(0.5, [0] * 6)])), end=True)
            with pytest.raises(GRPCError) as err:
                await asyncio.wait_for(stream.recv_message(), 1.0)
    assert err.value.status == Status.INVALID_ARGUMENT
    assert text in (err.value.message or "")


async def test_stop_cancels_a_streamed_trajectory() -> None:
    async with serve_resources([fast_arm()]) as channel:
        stub = ArmServiceStub(channel)
        async with stub.MoveThroughJointPositionsStreamed.open() as stream:
            await stream.send_message(Req(name="arm", init=Req.Init()))
            await stream.send_message(Req(batch=Req.TrajectoryBatch(points=[
                _point(0, [0] * 6), _point(5, [0, 0, 500, 0, 0, 0])])), end=True)
            assert await asyncio.wait_for(stream.recv_message(), 1.0) is not None
            await asyncio.sleep(0.05)
            await stub.Stop(arm_pb2.StopRequest(name="arm"))
            # After messages, grpclib reports the failure in the trailers.
            with pytest.raises(GRPCError) as err:
                assert await asyncio.wait_for(stream.recv_message(), 1.0) is None
                await asyncio.wait_for(stream.recv_trailing_metadata(), 1.0)
        assert err.value.status == Status.CANCELLED
        assert not await _moving(stub)
        assert 0 < (await _joints(stub))[2] < 50


async def test_client_cancelling_a_streamed_trajectory_stops_the_arm() -> None:
    async with serve_resources([fast_arm()]) as channel:
        stub = ArmServiceStub(channel)
        async with stub.MoveThroughJointPositionsStreamed.open() as stream:
            await stream.send_message(Req(name="arm", init=Req.Init()))
            await stream.send_message(Req(batch=Req.TrajectoryBatch(points=[
                _point(0, [0] * 6), _point(5, [0, 0, 500, 0, 0, 0])])))
            assert await asyncio.wait_for(stream.recv_message(), 1.0) is not None
            assert await _moving(stub)
            await stream.cancel()
        deadline = time.monotonic() + 1.0
        while await _moving(stub):
            assert time.monotonic() < deadline, "the arm kept following an abandoned trajectory"
            await asyncio.sleep(0.01)


async def test_kinematics_describe_the_arm() -> None:
    async with serve_resources([fast_arm()]) as channel:
        stub = ArmServiceStub(channel)
        kin = await stub.GetKinematics(common_pb2.GetKinematicsRequest(name="arm"))
        models = await stub.Get3DModels(common_pb2.Get3DModelsRequest(name="arm"))
    assert kin.format == common_pb2.KINEMATICS_FILE_FORMAT_SVA
    document = json.loads(kin.kinematics_data)
    assert [j["type"] for j in document["joints"]] == ["prismatic"] * 3 + ["revolute"] * 3
    assert [j.id for j in kin.model.joints] == [j["id"] for j in document["joints"]]
    assert kin.model.joints[4].type == common_pb2.JOINT_TYPE_REVOLUTE
    assert kin.model.joints[4].axis.y == 1
    assert list(kin.model.output_frames) == ["tool"]
    assert kin.model.links[-1].pose.translation.z == 100
    assert dict(models.models) == {}


async def test_manual_mode_blocks_commanded_motion() -> None:
    async with serve_resources([fast_arm()]) as channel:
        stub = ArmServiceStub(channel)
        props = await stub.GetProperties(arm_pb2.GetPropertiesRequest(name="arm"))
        assert props.support_manual_mode and props.support_cartesian_commands
        await stub.SetManualMode(arm_pb2.SetManualModeRequest(name="arm", manual_mode=True))
        assert (await stub.GetManualMode(arm_pb2.GetManualModeRequest(name="arm"))).manual_mode
        with pytest.raises(GRPCError) as err:
            await stub.MoveToJointPositions(arm_pb2.MoveToJointPositionsRequest(
                name="arm", positions=JP(values=[10, 0, 0, 0, 0, 0])))
        assert err.value.status == Status.FAILED_PRECONDITION
        await stub.SetManualMode(arm_pb2.SetManualModeRequest(name="arm", manual_mode=False))
        await stub.MoveToJointPositions(arm_pb2.MoveToJointPositionsRequest(
            name="arm", positions=JP(values=[10, 0, 0, 0, 0, 0])))
        with pytest.raises(GRPCError) as err:
            await stub.SetManualMode(arm_pb2.SetManualModeRequest(name="arm", manual_mode=True, enabled_for=-1))
        assert err.value.status == Status.INVALID_ARGUMENT


async def test_manual_mode_expires() -> None:
    arm = fast_arm()
    await arm.set_manual_mode(True, enabled_for=1)
    assert await arm.get_manual_mode()
    arm._manual_until = time.monotonic()  # as if the second had passed
    assert not await arm.get_manual_mode()


async def test_status_and_unknown_arm() -> None:
    async with serve_resources([fast_arm()]) as channel:
        stub = ArmServiceStub(channel)
        status = struct_to_dict((await stub.GetStatus(common_pb2.GetStatusRequest(name="arm"))).result)
        assert status["joint_positions"] == [0] * 6
        assert status["end_position"]["z"] == 100
        assert status["is_moving"] is False
        with pytest.raises(GRPCError) as err:
            await stub.GetEndPosition(arm_pb2.GetEndPositionRequest(name="nope"))
        assert err.value.status == Status.NOT_FOUND


def _config(**attributes: object) -> ResourceConfig:
    return ResourceConfig("arm", API.component("arm"), Model.builtin("fake"), attributes, path="components[4]")


async def test_config_validation_and_creation() -> None:
    with pytest.raises(ValidationError) as err:
        FakeArm.validate(_config(speed_degs_per_sec=0))
    assert err.value.path == "components[4].attributes.speed_degs_per_sec"
    with pytest.raises(ValidationError) as err:
        FakeArm.validate(_config(joint_positions=[0, 0, 0]))
    assert err.value.path == "components[4].attributes.joint_positions"
    arm = FakeArm.new(_config(tool_length_mm=0, joint_positions=[1, 2, 3, 4, 5, 6]), {})
    assert list((await arm.get_joint_positions()).values) == [1, 2, 3, 4, 5, 6]
    assert (await arm.get_end_position()).z == pytest.approx(3)
