from __future__ import annotations

import pytest
from grpclib import GRPCError, Status

from peer.components.sensor import FakeSensor
from peer.gen.viam.common.v1 import common_pb2
from peer.gen.viam.component.sensor.v1.sensor_grpc import SensorServiceStub
from peer.protoutil import value_to_python

from .helpers import serve_resources


async def test_readings_change_between_calls() -> None:
    async with serve_resources([FakeSensor("sensor1")]) as channel:
        stub = SensorServiceStub(channel)
        first = await stub.GetReadings(common_pb2.GetReadingsRequest(name="sensor1"))
        second = await stub.GetReadings(common_pb2.GetReadingsRequest(name="sensor1"))
    a = {k: value_to_python(v) for k, v in first.readings.items()}
    b = {k: value_to_python(v) for k, v in second.readings.items()}
    assert set(a) == {"temperature_c", "humidity_pct", "samples", "ok"}
    assert 19.0 <= a["temperature_c"] <= 24.0
    assert b["samples"] == a["samples"] + 1


async def test_unknown_sensor_is_not_found() -> None:
    async with serve_resources([FakeSensor("sensor1")]) as channel:
        with pytest.raises(GRPCError) as err:
            await SensorServiceStub(channel).GetReadings(common_pb2.GetReadingsRequest(name="nope"))
    assert err.value.status == Status.NOT_FOUND
    assert "nope" in (err.value.message or "")


async def test_do_command_unsupported_is_unimplemented() -> None:
    async with serve_resources([FakeSensor("sensor1")]) as channel:
        with pytest.raises(GRPCError) as err:
            await SensorServiceStub(channel).DoCommand(common_pb2.DoCommandRequest(name="sensor1"))
    assert err.value.status == Status.UNIMPLEMENTED
