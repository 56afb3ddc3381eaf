from __future__ import annotations

import asyncio
import time

import pytest
from grpclib import GRPCError, Status

from peer.components.servo import FakeServo
from peer.errors import OperationCancelledError, ValidationError
from peer.gen.viam.common.v1 import common_pb2
from peer.gen.viam.component.servo.v1 import servo_pb2
from peer.gen.viam.component.servo.v1.servo_grpc import ServoServiceStub
from peer.operations import Operation
from peer.protoutil import struct_to_dict
from peer.resource import API, Model, ResourceConfig

from .helpers import serve_resources

# 1000 deg/s: a 90 degree move takes 90 ms.
FAST = 1000.0


async def test_move_takes_time_proportional_to_the_angle() -> None:
    async with serve_resources([FakeServo("s", speed_deg_per_sec=FAST)]) as channel:
        stub = ServoServiceStub(channel)
        start = time.monotonic()
        await stub.Move(servo_pb2.MoveRequest(name="s", angle_deg=90))
        elapsed = time.monotonic() - start
        assert 0.085 <= elapsed < 0.5
        assert (await stub.GetPosition(servo_pb2.GetPositionRequest(name="s"))).position_deg == 90
        assert not (await stub.IsMoving(servo_pb2.IsMovingRequest(name="s"))).is_moving

        start = time.monotonic()
        await stub.Move(servo_pb2.MoveRequest(name="s", angle_deg=80))
        assert time.monotonic() - start < 0.085  # 10 degrees is quicker than 90
        assert (await stub.GetPosition(servo_pb2.GetPositionRequest(name="s"))).position_deg == 80


async def test_position_sweeps_while_moving_and_stop_holds_it() -> None:
    async with serve_resources([FakeServo("s", speed_deg_per_sec=200)]) as channel:
        stub = ServoServiceStub(channel)
        call = asyncio.create_task(stub.Move(servo_pb2.MoveRequest(name="s", angle_deg=180)))  # 0.9 s
        await asyncio.sleep(0.1)
        assert (await stub.IsMoving(servo_pb2.IsMovingRequest(name="s"))).is_moving
        midway = (await stub.GetPosition(servo_pb2.GetPositionRequest(name="s"))).position_deg
        assert 0 < midway < 180
        await stub.Stop(servo_pb2.StopRequest(name="s"))
        await asyncio.wait_for(call, 1.0)
        assert not (await stub.IsMoving(servo_pb2.IsMovingRequest(name="s"))).is_moving
        held = (await stub.GetPosition(servo_pb2.GetPositionRequest(name="s"))).position_deg
        assert midway <= held < 180
        status = struct_to_dict((await stub.GetStatus(common_pb2.GetStatusRequest(name="s"))).result)
        assert status == {"position_deg": held, "is_moving": False}


async def test_angle_out_of_range_is_invalid() -> None:
    async with serve_resources([FakeServo("s")]) as channel:
        with pytest.raises(GRPCError) as err:
            await ServoServiceStub(channel).Move(servo_pb2.MoveRequest(name="s", angle_deg=181))
    assert err.value.status == Status.INVALID_ARGUMENT
    assert "[0, 180]" in (err.value.message or "")


async def test_negative_angle_is_invalid_in_python() -> None:
    with pytest.raises(ValidationError):
        await FakeServo("s").move(-1)


async def test_cancelled_move_holds_position() -> None:
    servo = FakeServo("s", speed_deg_per_sec=100)
    op = Operation("test")
    call = asyncio.create_task(servo.move(180, viam_operation=op))  # 1.8 s
    await asyncio.sleep(0.05)
    op.cancel()
    with pytest.raises(OperationCancelledError):
        await asyncio.wait_for(call, 1.0)
    assert not await servo.is_moving()
    assert 0 < await servo.get_position() < 180


async def test_deadline_stops_the_sweep() -> None:
    async with serve_resources([FakeServo("s", speed_deg_per_sec=100)]) as channel:
        stub = ServoServiceStub(channel)
        with pytest.raises((GRPCError, asyncio.TimeoutError)):
            await stub.Move(servo_pb2.MoveRequest(name="s", angle_deg=180), timeout=0.05)
        deadline = time.monotonic() + 1.0
        while (await stub.IsMoving(servo_pb2.IsMovingRequest(name="s"))).is_moving:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)
        assert (await stub.GetPosition(servo_pb2.GetPositionRequest(name="s"))).position_deg < 180


async def test_unknown_servo_is_not_found() -> None:
    async with serve_resources([FakeServo("s")]) as channel:
        with pytest.raises(GRPCError) as err:
            await ServoServiceStub(channel).GetPosition(servo_pb2.GetPositionRequest(name="nope"))
    assert err.value.status == Status.NOT_FOUND


def _config(**attributes: object) -> ResourceConfig:
    return ResourceConfig("s", API.component("servo"), Model.builtin("fake"), attributes, path="components[1]")


def test_config_validation_and_creation() -> None:
    with pytest.raises(ValidationError) as err:
        FakeServo.validate(_config(speed_deg_per_sec=-5))
    assert err.value.path == "components[1].attributes.speed_deg_per_sec"
    with pytest.raises(ValidationError) as err:
        FakeServo.validate(_config(angle_deg=270))
    assert err.value.path == "components[1].attributes.angle_deg"
    servo = FakeServo.new(_config(speed_deg_per_sec=90, angle_deg=45), {})
    assert servo.speed_deg_per_sec == 90.0


async def test_initial_angle_from_config() -> None:
    servo = FakeServo.new(_config(angle_deg=45), {})
    assert await servo.get_position() == 45
