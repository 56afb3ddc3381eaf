from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

import pytest
from grpclib import GRPCError, Status

from peer.components.gripper import FakeGripper, Gripper, KinematicsReturn
from peer.errors import OperationCancelledError, ValidationError
from peer.gen.viam.common.v1 import common_pb2
from peer.gen.viam.component.gripper.v1 import gripper_pb2 as pb
from peer.gen.viam.component.gripper.v1.gripper_grpc import GripperServiceStub
from peer.operations import Operation
from peer.protoutil import dict_to_struct, struct_to_dict
from peer.resource import Actuator, Model, Registry, ResourceConfig

from .helpers import serve_resources

# 100 mm in 0.2 s: closing from 100 mm onto a 40 mm object takes 0.12 s.
FAST = 0.2


async def width(stub: GripperServiceStub) -> float:
    return (await stub.GetCurrentInputs(pb.GetCurrentInputsRequest(name="g"))).values[0]


async def is_moving(stub: GripperServiceStub) -> bool:
    return (await stub.IsMoving(pb.IsMovingRequest(name="g"))).is_moving


async def holding(stub: GripperServiceStub) -> pb.IsHoldingSomethingResponse:
    return await stub.IsHoldingSomething(pb.IsHoldingSomethingRequest(name="g"))


async def test_grab_closes_on_the_object_and_open_releases_it() -> None:
    async with serve_resources([FakeGripper("g", travel_time_s=FAST)]) as channel:
        stub = GripperServiceStub(channel)
        start = time.monotonic()
        grab = asyncio.create_task(stub.Grab(pb.GrabRequest(name="g")))
        await asyncio.sleep(0.04)
        assert await is_moving(stub)
        assert 40 < await width(stub) < 100
        assert (await asyncio.wait_for(grab, 1.0)).success
        assert 0.11 <= time.monotonic() - start < 0.8
        assert not await is_moving(stub)
        held = await holding(stub)
        assert held.is_holding_something
        assert struct_to_dict(held.meta) == {"width_mm": 40, "object_width_mm": 40}
        assert await width(stub) == pytest.approx(40.0)

        start = time.monotonic()
        await stub.Open(pb.OpenRequest(name="g"))
        assert 0.11 <= time.monotonic() - start < 0.8
        assert await width(stub) == pytest.approx(100.0)
        assert not (await holding(stub)).is_holding_something


async def test_grab_without_an_object_closes_fully_and_fails() -> None:
    async with serve_resources([FakeGripper("g", travel_time_s=FAST, object_width_mm=None)]) as channel:
        stub = GripperServiceStub(channel)
        assert not (await stub.Grab(pb.GrabRequest(name="g"))).success
        assert await width(stub) == pytest.approx(0.0)
        assert not (await holding(stub)).is_holding_something


async def test_do_command_places_and_removes_the_object() -> None:
    async with serve_resources([FakeGripper("g", travel_time_s=FAST / 2)]) as channel:
        stub = GripperServiceStub(channel)
        removed = await stub.DoCommand(
            common_pb2.DoCommandRequest(name="g", command=dict_to_struct({"object_width_mm": None}))
        )
        assert struct_to_dict(removed.result) == {"object_width_mm": None}
        assert not (await stub.Grab(pb.GrabRequest(name="g"))).success
        await stub.DoCommand(common_pb2.DoCommandRequest(name="g", command=dict_to_struct({"object_width_mm": 25})))
        assert not (await stub.Grab(pb.GrabRequest(name="g"))).success  # shut fingers: it does not fit
        await stub.Open(pb.OpenRequest(name="g"))
        assert (await stub.Grab(pb.GrabRequest(name="g"))).success
        assert await width(stub) == pytest.approx(25.0)

        with pytest.raises(GRPCError) as err:
            await stub.DoCommand(common_pb2.DoCommandRequest(name="g", command=dict_to_struct({"squeeze": 1})))
        assert err.value.status == Status.UNIMPLEMENTED
        with pytest.raises(GRPCError) as err:
            await stub.DoCommand(
                common_pb2.DoCommandRequest(name="g", command=dict_to_struct({"object_width_mm": 500}))
            )
        assert err.value.status == Status.INVALID_ARGUMENT


async def test_stop_interrupts_a_grab() -> None:
    async with serve_resources([FakeGripper("g", travel_time_s=1.0)]) as channel:  # 60 mm takes 0.6 s
        stub = GripperServiceStub(channel)
        grab = asyncio.create_task(stub.Grab(pb.GrabRequest(name="g")))
        await asyncio.sleep(0.1)
        assert await is_moving(stub)
        await stub.Stop(pb.StopRequest(name="g"))
        response = await asyncio.wait_for(grab, 1.0)
        assert not response.success
        assert not await is_moving(stub)
        stopped = await width(stub)
        assert 40 < stopped < 100
        await asyncio.sleep(0.05)
        assert await width(stub) == stopped
        assert not (await holding(stub)).is_holding_something
        status = struct_to_dict((await stub.GetStatus(common_pb2.GetStatusRequest(name="g"))).result)
        assert status == {"is_moving": False, "width_mm": stopped, "is_holding_something": False}


async def test_deadline_stops_the_fingers() -> None:
    async with serve_resources([FakeGripper("g", travel_time_s=1.0)]) as channel:
        stub = GripperServiceStub(channel)
        with pytest.raises((GRPCError, TimeoutError)):  # grpclib's client raises TimeoutError on its deadline
            await stub.Grab(pb.GrabRequest(name="g"), timeout=0.1)
        await asyncio.sleep(0.05)  # let the server side observe its cancellation
        assert not await is_moving(stub)
        assert 40 < await width(stub) < 100


async def test_cancelled_operation_holds_the_fingers() -> None:
    gripper = FakeGripper("g", travel_time_s=1.0)
    op = Operation("test")
    op.cancel()
    with pytest.raises(OperationCancelledError):
        await gripper.grab(viam_operation=op)
    assert not await gripper.is_moving()
    assert isinstance(gripper, Actuator)


async def test_go_to_inputs_moves_and_stops_on_the_object() -> None:
    async with serve_resources([FakeGripper("g", travel_time_s=FAST)]) as channel:
        stub = GripperServiceStub(channel)
        await stub.GoToInputs(pb.GoToInputsRequest(name="g", values=[70.0]))
        assert await width(stub) == pytest.approx(70.0)
        assert not (await holding(stub)).is_holding_something
        await stub.GoToInputs(pb.GoToInputsRequest(name="g", values=[10.0]))
        assert await width(stub) == pytest.approx(40.0)  # the object is in the way
        assert (await holding(stub)).is_holding_something
        for values in ([], [1.0, 2.0], [-1.0], [101.0]):
            with pytest.raises(GRPCError) as err:
                await stub.GoToInputs(pb.GoToInputsRequest(name="g", values=values))
            assert err.value.status == Status.INVALID_ARGUMENT


class WithKinematics(FakeGripper):
    async def get_kinematics(
        self,
        *,
        include_collision_meshes: bool = False,
        include_visual_meshes: bool = False,
        extra: Mapping[str, Any] | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> KinematicsReturn:
        mesh = common_pb2.Mesh(content_type="stl", mesh=b"solid")
        return (common_pb2.KINEMATICS_FILE_FORMAT_URDF, b"<robot/>", {"finger.stl": mesh},
                common_pb2.KinematicModel(name="g"))


async def test_kinematics_unsupported_unless_configured() -> None:
    async with serve_resources([FakeGripper("g"), WithKinematics("k")]) as channel:
        stub = GripperServiceStub(channel)
        with pytest.raises(GRPCError) as err:
            await stub.GetKinematics(common_pb2.GetKinematicsRequest(name="g"))
        assert err.value.status == Status.UNIMPLEMENTED
        assert "no kinematics" in (err.value.message or "")
        response = await stub.GetKinematics(common_pb2.GetKinematicsRequest(name="k"))
    assert response.kinematics_data == b"<robot/>"
    assert response.meshes_by_urdf_filepath["finger.stl"].mesh == b"solid"
    assert response.model.name == "g"


async def test_geometries_and_unknown_name() -> None:
    async with serve_resources([FakeGripper("g")]) as channel:
        stub = GripperServiceStub(channel)
        geometries = (await stub.GetGeometries(common_pb2.GetGeometriesRequest(name="g"))).geometries
        with pytest.raises(GRPCError) as err:
            await stub.Grab(pb.GrabRequest(name="nope"))
        assert err.value.status == Status.NOT_FOUND
    assert len(geometries) == 1
    box = geometries[0].box.dims_mm
    assert (box.x, box.y, box.z) == (120.0, 30.0, 80.0)
    assert geometries[0].label == "g"


@pytest.mark.parametrize(
    ("attributes", "key"),
    [
        ({"max_width_mm": 0}, "max_width_mm"),
        ({"travel_time_s": -1}, "travel_time_s"),
        ({"travel_time_s": 60}, "travel_time_s"),
        ({"object_width_mm": 100}, "object_width_mm"),
        ({"object_width_mm": "big"}, "object_width_mm"),
        ({"start_open": "yes"}, "start_open"),
    ],
)
def test_bad_attributes_name_their_path(attributes: dict[str, object], key: str) -> None:
    config = ResourceConfig("g", Gripper.API, Model.from_string("fake"), attributes, path="components[2]")
    with pytest.raises(ValidationError) as err:
        FakeGripper.validate(config)
    assert err.value.path == f"components[2].attributes.{key}"


async def test_fake_model_is_registered_and_builds_from_config() -> None:
    attrs = {"max_width_mm": 50, "object_width_mm": None, "start_open": False}
    config = ResourceConfig("g", Gripper.API, Model.from_string("fake"), attrs)
    FakeGripper.validate(config)
    gripper = Registry.lookup_resource_creator(Gripper.API, Model.from_string("fake"))(config, {})
    assert isinstance(gripper, FakeGripper)
    assert (gripper.max_width_mm, gripper.object_width_mm) == (50.0, None)
    assert await gripper.get_current_inputs() == [0.0]
