from __future__ import annotations

import asyncio
import math
import time
from typing import Any

import pytest
from grpclib import GRPCError, Status

from peer.components.base import FakeBase
from peer.errors import OperationCancelledError, ValidationError
from peer.gen.viam.common.v1 import common_pb2
from peer.gen.viam.component.base.v1 import base_pb2
from peer.gen.viam.component.base.v1.base_grpc import BaseServiceStub
from peer.operations import Operation
from peer.protoutil import dict_to_struct, struct_to_dict
from peer.resource import API, Model, ResourceConfig

from .helpers import serve_resources

V = common_pb2.Vector3


async def _pose(stub: BaseServiceStub, name: str = "b") -> dict[str, Any]:
    response = await stub.DoCommand(
        common_pb2.DoCommandRequest(name=name, command=dict_to_struct({"command": "get_pose"}))
    )
    return struct_to_dict(response.result)


async def _moving(stub: BaseServiceStub, name: str = "b") -> bool:
    return (await stub.IsMoving(base_pb2.IsMovingRequest(name=name))).is_moving


async def test_move_straight_takes_distance_over_speed() -> None:
    async with serve_resources([FakeBase("b")]) as channel:
        stub = BaseServiceStub(channel)
        start = time.monotonic()
        await stub.MoveStraight(base_pb2.MoveStraightRequest(name="b", distance_mm=100, mm_per_sec=1000))
        assert 0.095 <= time.monotonic() - start < 0.5
        pose = await _pose(stub)
        assert pose["y_mm"] == pytest.approx(100.0)
        assert pose["x_mm"] == pytest.approx(0.0, abs=1e-9)
        assert not await _moving(stub)

        # A negative distance or a negative speed both mean backwards.
        await stub.MoveStraight(base_pb2.MoveStraightRequest(name="b", distance_mm=-30, mm_per_sec=1000))
        await stub.MoveStraight(base_pb2.MoveStraightRequest(name="b", distance_mm=20, mm_per_sec=-1000))
        assert (await _pose(stub))["y_mm"] == pytest.approx(50.0)


async def test_spin_then_drive_goes_left() -> None:
    async with serve_resources([FakeBase("b")]) as channel:
        stub = BaseServiceStub(channel)
        start = time.monotonic()
        await stub.Spin(base_pb2.SpinRequest(name="b", angle_deg=90, degs_per_sec=900))
        assert time.monotonic() - start >= 0.095
        await stub.MoveStraight(base_pb2.MoveStraightRequest(name="b", distance_mm=50, mm_per_sec=1000))
        pose = await _pose(stub)
        assert pose["heading_deg"] == pytest.approx(90.0)
        assert pose["x_mm"] == pytest.approx(-50.0)
        # the heading is integrated over time: within approx's 1e-6 of 90°, which leaves y at ~1e-9 mm
        assert pose["y_mm"] == pytest.approx(0.0, abs=1e-3)
        await stub.Spin(base_pb2.SpinRequest(name="b", angle_deg=-180, degs_per_sec=3600))
        assert (await _pose(stub))["heading_deg"] == pytest.approx(-90.0)


async def test_zero_speed_with_distance_is_invalid_and_zero_distance_stops() -> None:
    async with serve_resources([FakeBase("b")]) as channel:
        stub = BaseServiceStub(channel)
        with pytest.raises(GRPCError) as err:
            await stub.MoveStraight(base_pb2.MoveStraightRequest(name="b", distance_mm=10, mm_per_sec=0))
        assert err.value.status == Status.INVALID_ARGUMENT
        with pytest.raises(GRPCError) as err:
            await stub.Spin(base_pb2.SpinRequest(name="b", angle_deg=10, degs_per_sec=0))
        assert err.value.status == Status.INVALID_ARGUMENT

        await stub.SetVelocity(base_pb2.SetVelocityRequest(name="b", linear=V(y=100)))
        await stub.MoveStraight(base_pb2.MoveStraightRequest(name="b", distance_mm=0, mm_per_sec=0))
        assert not await _moving(stub)


async def test_set_power_drives_until_stopped() -> None:
    async with serve_resources([FakeBase("b", max_speed_mm_per_sec=1000)]) as channel:
        stub = BaseServiceStub(channel)
        await stub.SetPower(base_pb2.SetPowerRequest(name="b", linear=V(y=0.5), angular=V()))
        assert await _moving(stub)
        await asyncio.sleep(0.05)
        status = struct_to_dict((await stub.GetStatus(common_pb2.GetStatusRequest(name="b"))).result)
        assert status["is_moving"] is True
        assert status["linear_mm_per_sec"] == 500
        assert status["pose"]["y_mm"] > 10
        await stub.Stop(base_pb2.StopRequest(name="b"))
        assert not await _moving(stub)
        frozen = await _pose(stub)
        await asyncio.sleep(0.02)
        assert await _pose(stub) == frozen


@pytest.mark.parametrize(("linear", "angular"), [(V(y=1.5), V()), (V(), V(z=-1.2)), (V(x=2), V())])
async def test_power_out_of_range_is_invalid(linear: common_pb2.Vector3, angular: common_pb2.Vector3) -> None:
    async with serve_resources([FakeBase("b")]) as channel:
        with pytest.raises(GRPCError) as err:
            await BaseServiceStub(channel).SetPower(base_pb2.SetPowerRequest(name="b", linear=linear, angular=angular))
    assert err.value.status == Status.INVALID_ARGUMENT
    assert "[-1, 1]" in (err.value.message or "")


async def test_set_velocity_follows_an_arc() -> None:
    async with serve_resources([FakeBase("b")]) as channel:
        stub = BaseServiceStub(channel)
        await stub.SetVelocity(base_pb2.SetVelocityRequest(name="b", linear=V(y=100), angular=V(z=90)))
        await asyncio.sleep(0.1)
        await stub.Stop(base_pb2.StopRequest(name="b"))
        pose = await _pose(stub)
    heading = math.radians(pose["heading_deg"])
    radius = 100 / math.radians(90)
    assert heading > 0
    assert pose["x_mm"] == pytest.approx(radius * (math.cos(heading) - 1))
    assert pose["y_mm"] == pytest.approx(radius * math.sin(heading))


async def test_stop_ends_a_running_move_straight() -> None:
    async with serve_resources([FakeBase("b")]) as channel:
        stub = BaseServiceStub(channel)
        call = asyncio.create_task(
            stub.MoveStraight(base_pb2.MoveStraightRequest(name="b", distance_mm=1000, mm_per_sec=100))
        )
        await asyncio.sleep(0.05)
        assert await _moving(stub)
        await stub.Stop(base_pb2.StopRequest(name="b"))
        await asyncio.wait_for(call, 1.0)
        assert 0 < (await _pose(stub))["y_mm"] < 100


async def test_deadline_stops_the_base() -> None:
    async with serve_resources([FakeBase("b")]) as channel:
        stub = BaseServiceStub(channel)
        with pytest.raises((GRPCError, asyncio.TimeoutError)):
            await stub.Spin(base_pb2.SpinRequest(name="b", angle_deg=360, degs_per_sec=90), timeout=0.05)
        deadline = time.monotonic() + 1.0
        while await _moving(stub):
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)
        assert 0 < (await _pose(stub))["heading_deg"] < 90


async def test_cancelled_operation_stops_spin() -> None:
    base = FakeBase("b")
    op = Operation("test")
    call = asyncio.create_task(base.spin(360, 90, viam_operation=op))
    await asyncio.sleep(0.03)
    op.cancel()
    with pytest.raises(OperationCancelledError):
        await asyncio.wait_for(call, 1.0)
    assert not await base.is_moving()


async def test_properties_from_attributes() -> None:
    async with serve_resources([FakeBase("b"), FakeBase("c", width_mm=250, wheel_circumference_mm=200,
                                                          min_turning_radius_m=0.3)]) as channel:
        stub = BaseServiceStub(channel)
        default = await stub.GetProperties(base_pb2.GetPropertiesRequest(name="b"))
        custom = await stub.GetProperties(base_pb2.GetPropertiesRequest(name="c"))
    assert (default.width_meters, default.turning_radius_meters, default.wheel_circumference_meters) == (
        0.6, 0.0, 0.3)
    assert (custom.width_meters, custom.turning_radius_meters, custom.wheel_circumference_meters) == (
        0.25, 0.3, 0.2)


async def test_unknown_command_and_unknown_base() -> None:
    async with serve_resources([FakeBase("b")]) as channel:
        stub = BaseServiceStub(channel)
        with pytest.raises(GRPCError) as err:
            await stub.DoCommand(common_pb2.DoCommandRequest(name="b", command=dict_to_struct({"command": "fly"})))
        assert err.value.status == Status.UNIMPLEMENTED
        with pytest.raises(GRPCError) as err:
            await stub.Stop(base_pb2.StopRequest(name="nope"))
        assert err.value.status == Status.NOT_FOUND


def _config(**attributes: object) -> ResourceConfig:
    return ResourceConfig("b", API.component("base"), Model.builtin("fake"), attributes, path="components[3]")


def test_config_validation_and_creation() -> None:
    with pytest.raises(ValidationError) as err:
        FakeBase.validate(_config(width_mm=0))
    assert err.value.path == "components[3].attributes.width_mm"
    with pytest.raises(ValidationError) as err:
        FakeBase.validate(_config(min_turning_radius_m="wide"))
    assert err.value.path == "components[3].attributes.min_turning_radius_m"
    assert FakeBase.validate(_config(min_turning_radius_m=0)) == []
    base = FakeBase.new(_config(width_mm=300, max_speed_mm_per_sec=100), {})
    assert (base.width_mm, base.max_speed_mm_per_sec, base.wheel_circumference_mm) == (300.0, 100.0, 300.0)
