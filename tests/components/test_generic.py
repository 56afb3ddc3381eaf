from __future__ import annotations

import pytest
from grpclib import GRPCError, Status

from peer.components.generic import FakeGeneric
from peer.gen.viam.common.v1 import common_pb2
from peer.gen.viam.component.generic.v1.generic_grpc import GenericServiceStub
from peer.protoutil import dict_to_struct, struct_to_dict
from peer.resource import API, Model, ResourceConfig

from .helpers import serve_resources

NESTED = {
    "name": "calibrate",
    "args": {"axes": ["x", "y"], "limits": {"min": -1.5, "max": 2}, "dry_run": True},
    "steps": [1, {"wait_s": 0.5}, [None, "z"]],
}


async def test_nested_command_round_trips() -> None:
    async with serve_resources([FakeGeneric("g")]) as channel:
        response = await GenericServiceStub(channel).DoCommand(
            common_pb2.DoCommandRequest(name="g", command=dict_to_struct(NESTED))
        )
    assert struct_to_dict(response.result) == NESTED


async def test_count_command_and_status() -> None:
    async with serve_resources([FakeGeneric("g")]) as channel:
        stub = GenericServiceStub(channel)
        await stub.DoCommand(common_pb2.DoCommandRequest(name="g", command=dict_to_struct({"ping": 1})))
        response = await stub.DoCommand(
            common_pb2.DoCommandRequest(name="g", command=dict_to_struct({"command": "count"}))
        )
        assert struct_to_dict(response.result) == {"count": 2}
        status = await stub.GetStatus(common_pb2.GetStatusRequest(name="g"))
        assert struct_to_dict(status.result) == {"commands": 2}
        geometries = await stub.GetGeometries(common_pb2.GetGeometriesRequest(name="g"))
        assert list(geometries.geometries) == []


async def test_unknown_generic_is_not_found() -> None:
    async with serve_resources([FakeGeneric("g")]) as channel:
        with pytest.raises(GRPCError) as err:
            await GenericServiceStub(channel).DoCommand(common_pb2.DoCommandRequest(name="nope"))
    assert err.value.status == Status.NOT_FOUND


def test_created_from_config() -> None:
    config = ResourceConfig("g", API.component("generic"), Model.builtin("fake"), {}, path="components[0]")
    assert FakeGeneric.validate(config) == []
    assert FakeGeneric.new(config, {}).name == "g"
