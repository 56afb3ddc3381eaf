from __future__ import annotations

import asyncio
import time

import pytest
from grpclib import GRPCError, Status

from peer.components.motor import FakeMotor
from peer.errors import OperationCancelledError, ValidationError
from peer.gen.viam.common.v1 import common_pb2
from peer.gen.viam.component.motor.v1 import motor_pb2
from peer.gen.viam.component.motor.v1.motor_grpc import MotorServiceStub
from peer.operations import Operation
from peer.protoutil import struct_to_dict
from peer.resource import API, Model, ResourceConfig

from .helpers import serve_resources

# 600 rpm = 10 rev/s keeps every motion in these tests well under a second.
FAST = 600.0


async def _until_stopped(stub: MotorServiceStub, name: str) -> None:
    deadline = time.monotonic() + 1.0
    while (await stub.IsMoving(motor_pb2.IsMovingRequest(name=name))).is_moving:
        assert time.monotonic() < deadline, "motor kept moving"
        await asyncio.sleep(0.01)


async def test_set_power_turns_until_stopped() -> None:
    async with serve_resources([FakeMotor("m", max_rpm=FAST)]) as channel:
        stub = MotorServiceStub(channel)
        await stub.SetPower(motor_pb2.SetPowerRequest(name="m", power_pct=0.5))
        powered = await stub.IsPowered(motor_pb2.IsPoweredRequest(name="m"))
        assert (powered.is_on, powered.power_pct) == (True, 0.5)
        assert (await stub.IsMoving(motor_pb2.IsMovingRequest(name="m"))).is_moving
        first = (await stub.GetPosition(motor_pb2.GetPositionRequest(name="m"))).position
        await asyncio.sleep(0.05)
        second = (await stub.GetPosition(motor_pb2.GetPositionRequest(name="m"))).position
        assert second > first > 0  # 5 rev/s

        await stub.Stop(motor_pb2.StopRequest(name="m"))
        powered = await stub.IsPowered(motor_pb2.IsPoweredRequest(name="m"))
        assert (powered.is_on, powered.power_pct) == (False, 0.0)
        assert not (await stub.IsMoving(motor_pb2.IsMovingRequest(name="m"))).is_moving
        frozen = (await stub.GetPosition(motor_pb2.GetPositionRequest(name="m"))).position
        await asyncio.sleep(0.02)
        assert (await stub.GetPosition(motor_pb2.GetPositionRequest(name="m"))).position == frozen


async def test_negative_power_turns_backwards() -> None:
    motor = FakeMotor("m", max_rpm=FAST)
    await motor.set_power(-1.0)
    await asyncio.sleep(0.02)
    assert await motor.get_position() < 0
    assert await motor.is_powered() == (True, -1.0)


@pytest.mark.parametrize("power", [1.5, -1.01])
async def test_power_out_of_range_is_invalid(power: float) -> None:
    async with serve_resources([FakeMotor("m")]) as channel:
        with pytest.raises(GRPCError) as err:
            await MotorServiceStub(channel).SetPower(motor_pb2.SetPowerRequest(name="m", power_pct=power))
    assert err.value.status == Status.INVALID_ARGUMENT
    assert "[-1, 1]" in (err.value.message or "")


async def test_go_for_takes_time_and_lands_on_target() -> None:
    async with serve_resources([FakeMotor("m", max_rpm=FAST)]) as channel:
        stub = MotorServiceStub(channel)
        start = time.monotonic()
        await stub.GoFor(motor_pb2.GoForRequest(name="m", rpm=FAST, revolutions=1.0))
        elapsed = time.monotonic() - start
        assert 0.09 <= elapsed < 0.5  # 1 rev at 10 rev/s
        position = (await stub.GetPosition(motor_pb2.GetPositionRequest(name="m"))).position
        assert position == pytest.approx(1.0)
        assert not (await stub.IsMoving(motor_pb2.IsMovingRequest(name="m"))).is_moving
        assert not (await stub.IsPowered(motor_pb2.IsPoweredRequest(name="m"))).is_on

        # Negative rpm with positive revolutions goes backwards.
        await stub.GoFor(motor_pb2.GoForRequest(name="m", rpm=-FAST, revolutions=0.5))
        position = (await stub.GetPosition(motor_pb2.GetPositionRequest(name="m"))).position
        assert position == pytest.approx(0.5)


async def test_go_for_caps_rpm_at_max() -> None:
    motor = FakeMotor("m", max_rpm=FAST)
    start = time.monotonic()
    await motor.go_for(10 * FAST, 0.5)  # capped to 10 rev/s: 0.05 s, not 0.005 s
    assert time.monotonic() - start >= 0.045
    assert await motor.get_position() == pytest.approx(0.5)


async def test_go_for_zero_revolutions_spins_until_stopped() -> None:
    motor = FakeMotor("m", max_rpm=FAST)
    await motor.go_for(-300, 0)  # returns at once, as set_rpm would
    assert await motor.is_powered() == (True, -0.5)
    await asyncio.sleep(0.02)
    assert await motor.get_position() < 0
    await motor.stop()
    assert not await motor.is_moving()


async def test_go_for_zero_rpm_is_invalid() -> None:
    async with serve_resources([FakeMotor("m")]) as channel:
        with pytest.raises(GRPCError) as err:
            await MotorServiceStub(channel).GoFor(motor_pb2.GoForRequest(name="m", rpm=0, revolutions=1))
    assert err.value.status == Status.INVALID_ARGUMENT


async def test_go_to_moves_towards_target_whatever_the_rpm_sign() -> None:
    async with serve_resources([FakeMotor("m", max_rpm=FAST)]) as channel:
        stub = MotorServiceStub(channel)
        await stub.GoTo(motor_pb2.GoToRequest(name="m", rpm=FAST, position_revolutions=-0.5))
        assert (await stub.GetPosition(motor_pb2.GetPositionRequest(name="m"))).position == pytest.approx(-0.5)
        await stub.GoTo(motor_pb2.GoToRequest(name="m", rpm=-FAST, position_revolutions=0.25))
        assert (await stub.GetPosition(motor_pb2.GetPositionRequest(name="m"))).position == pytest.approx(0.25)


async def test_stop_ends_a_running_go_for() -> None:
    async with serve_resources([FakeMotor("m", max_rpm=60)]) as channel:
        stub = MotorServiceStub(channel)
        # 10 revolutions at 1 rev/s would take 10 s.
        call = asyncio.create_task(stub.GoFor(motor_pb2.GoForRequest(name="m", rpm=60, revolutions=10)))
        await asyncio.sleep(0.05)
        assert (await stub.IsMoving(motor_pb2.IsMovingRequest(name="m"))).is_moving
        await stub.Stop(motor_pb2.StopRequest(name="m"))
        await asyncio.wait_for(call, 1.0)
        position = (await stub.GetPosition(motor_pb2.GetPositionRequest(name="m"))).position
        assert 0 < position < 0.5


async def test_deadline_cancels_go_for_and_stops_the_motor() -> None:
    async with serve_resources([FakeMotor("m", max_rpm=60)]) as channel:
        stub = MotorServiceStub(channel)
        with pytest.raises((GRPCError, asyncio.TimeoutError)):
            await stub.GoFor(motor_pb2.GoForRequest(name="m", rpm=60, revolutions=10), timeout=0.1)
        await _until_stopped(stub, "m")
        assert not (await stub.IsPowered(motor_pb2.IsPoweredRequest(name="m"))).is_on


async def test_cancelled_operation_stops_go_for() -> None:
    motor = FakeMotor("m", max_rpm=60)
    op = Operation("test")
    call = asyncio.create_task(motor.go_for(60, 10, viam_operation=op))
    await asyncio.sleep(0.03)
    op.cancel()
    with pytest.raises(OperationCancelledError):
        await asyncio.wait_for(call, 1.0)
    assert not await motor.is_moving()


async def test_set_rpm_runs_until_stopped() -> None:
    async with serve_resources([FakeMotor("m", max_rpm=FAST)]) as channel:
        stub = MotorServiceStub(channel)
        await stub.SetRPM(motor_pb2.SetRPMRequest(name="m", rpm=-300))
        powered = await stub.IsPowered(motor_pb2.IsPoweredRequest(name="m"))
        assert (powered.is_on, powered.power_pct) == (True, -0.5)
        await asyncio.sleep(0.03)
        assert (await stub.GetPosition(motor_pb2.GetPositionRequest(name="m"))).position < 0
        assert (await stub.IsMoving(motor_pb2.IsMovingRequest(name="m"))).is_moving
        await stub.Stop(motor_pb2.StopRequest(name="m"))
        assert not (await stub.IsMoving(motor_pb2.IsMovingRequest(name="m"))).is_moving


async def test_reset_zero_position_sets_the_current_reading() -> None:
    async with serve_resources([FakeMotor("m", max_rpm=FAST)]) as channel:
        stub = MotorServiceStub(channel)
        await stub.GoFor(motor_pb2.GoForRequest(name="m", rpm=FAST, revolutions=0.5))
        await stub.ResetZeroPosition(motor_pb2.ResetZeroPositionRequest(name="m", offset=2.0))
        assert (await stub.GetPosition(motor_pb2.GetPositionRequest(name="m"))).position == pytest.approx(2.0)
        await stub.GoTo(motor_pb2.GoToRequest(name="m", rpm=FAST, position_revolutions=1.5))
        assert (await stub.GetPosition(motor_pb2.GetPositionRequest(name="m"))).position == pytest.approx(1.5)


async def test_properties_and_status() -> None:
    async with serve_resources([FakeMotor("m", max_rpm=FAST)]) as channel:
        stub = MotorServiceStub(channel)
        props = await stub.GetProperties(motor_pb2.GetPropertiesRequest(name="m"))
        assert props.position_reporting
        await stub.SetPower(motor_pb2.SetPowerRequest(name="m", power_pct=0.25))
        status = struct_to_dict((await stub.GetStatus(common_pb2.GetStatusRequest(name="m"))).result)
        assert status["is_powered"] is True and status["is_moving"] is True
        assert status["position"] >= 0


async def test_unknown_motor_is_not_found() -> None:
    async with serve_resources([FakeMotor("m")]) as channel:
        with pytest.raises(GRPCError) as err:
            await MotorServiceStub(channel).IsMoving(motor_pb2.IsMovingRequest(name="nope"))
    assert err.value.status == Status.NOT_FOUND


def _config(**attributes: object) -> ResourceConfig:
    return ResourceConfig("m", API.component("motor"), Model.builtin("fake"), attributes, path="components[0]")


def test_config_validation_and_creation() -> None:
    with pytest.raises(ValidationError) as err:
        FakeMotor.validate(_config(max_rpm=0))
    assert err.value.path == "components[0].attributes.max_rpm"
    assert FakeMotor.validate(_config(max_rpm=200)) == []
    assert FakeMotor.new(_config(max_rpm=200), {}).max_rpm == 200.0
    assert FakeMotor.new(_config(), {}).max_rpm == 100.0
