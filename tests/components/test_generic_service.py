"""The generic *service* (rdk:service:generic); it lives here to share the test helpers."""

from __future__ import annotations

import pytest
from grpclib import GRPCError, Status

from peer.gen.viam.common.v1 import common_pb2
from peer.gen.viam.service.generic.v1.generic_grpc import GenericServiceStub
from peer.protoutil import dict_to_struct, struct_to_dict
from peer.resource import API, Model, ResourceConfig
from peer.services.generic import FakeGenericService, Generic

from .helpers import serve_resources

NESTED = {"plan": {"waypoints": [{"x": 1, "y": 2.5}, {"x": -3, "y": 0}], "loop": False}, "tags": ["a", None]}


async def test_nested_command_round_trips() -> None:
    async with serve_resources([FakeGenericService("svc")]) as channel:
        response = await GenericServiceStub(channel).DoCommand(
            common_pb2.DoCommandRequest(name="svc", command=dict_to_struct(NESTED))
        )
    assert struct_to_dict(response.result) == NESTED


async def test_count_command_and_status() -> None:
    async with serve_resources([FakeGenericService("svc")]) as channel:
        stub = GenericServiceStub(channel)
        for _ in range(2):
            await stub.DoCommand(common_pb2.DoCommandRequest(name="svc", command=dict_to_struct({"a": 1})))
        response = await stub.DoCommand(
            common_pb2.DoCommandRequest(name="svc", command=dict_to_struct({"command": "count"}))
        )
        assert struct_to_dict(response.result) == {"count": 3}
        status = await stub.GetStatus(common_pb2.GetStatusRequest(name="svc"))
        assert struct_to_dict(status.result) == {"commands": 3}


async def test_unknown_service_is_not_found() -> None:
    async with serve_resources([FakeGenericService("svc")]) as channel:
        with pytest.raises(GRPCError) as err:
            await GenericServiceStub(channel).DoCommand(common_pb2.DoCommandRequest(name="nope"))
    assert err.value.status == Status.NOT_FOUND


def test_is_a_service_and_created_from_config() -> None:
    assert str(Generic.API) == "rdk:service:generic"
    config = ResourceConfig("svc", API.service("generic"), Model.builtin("fake"), {}, path="services[0]")
    assert FakeGenericService.validate(config) == []
    assert FakeGenericService.new(config, {}).name == "svc"
