"""Calls over a real aiortc ↔ aiortc connection on loopback: the fake robot's handlers, unchanged."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from google.protobuf import duration_pb2, wrappers_pb2
from grpclib import GRPCError, Status

from peer.gen.viam.common.v1 import common_pb2
from peer.gen.viam.component.arm.v1 import arm_pb2
from peer.gen.viam.component.arm.v1.arm_grpc import ArmServiceStub
from peer.gen.viam.component.sensor.v1.sensor_grpc import SensorServiceStub
from peer.gen.viam.robot.v1 import robot_pb2
from peer.gen.viam.robot.v1.robot_grpc import RobotServiceStub
from peer.tunnel.constants import MAX_MESSAGE_SIZE
from peer.webrtc import DialedChannel, dial
from tests.tunnel.echo import EchoStub

from .conftest import WAIT, Robot, eventually

pytestmark = pytest.mark.timeout(60)

RESOURCE_NAMES = "/viam.robot.v1.RobotService/ResourceNames"
GET_READINGS = "/viam.component.sensor.v1.SensorService/GetReadings"
STREAM_STATUS = "/viam.robot.v1.RobotService/StreamStatus"
ARM_STREAMED = "/viam.component.arm.v1.ArmService/MoveThroughJointPositionsStreamed"
ArmReq = arm_pb2.MoveThroughJointPositionsStreamedRequest


@pytest.fixture
async def channel(robot: Robot) -> AsyncIterator[DialedChannel]:
    dialed = await asyncio.wait_for(dial(robot.address, timeout=WAIT), WAIT + 1)
    try:
        yield dialed
    finally:
        await asyncio.wait_for(dialed.close(), WAIT)


def _every(seconds: float) -> duration_pb2.Duration:
    every = duration_pb2.Duration()
    every.FromNanoseconds(round(seconds * 1e9))
    return every


def _point(seconds: float, values: list[float]) -> arm_pb2.TrajectoryPoint:
    return arm_pb2.TrajectoryPoint(time=_every(seconds), positions=arm_pb2.JointPositions(values=values))


async def test_resource_names_and_readings_travel_over_the_data_channel(robot: Robot, channel: DialedChannel) -> None:
    names = await RobotServiceStub(channel.as_channel()).ResourceNames(robot_pb2.ResourceNamesRequest(), timeout=WAIT)
    found = {(n.subtype, n.name) for n in names.resources}
    assert found >= {("sensor", "sensor1"), ("camera", "cam1"), ("arm", "arm1")}
    readings = await SensorServiceStub(channel.as_channel()).GetReadings(
        common_pb2.GetReadingsRequest(name="sensor1"), timeout=WAIT
    )
    assert "temperature_c" in readings.readings

    assert robot.method_calls(RESOURCE_NAMES) == 1 and robot.method_calls(GET_READINGS) == 1
    assert robot.method_calls(RESOURCE_NAMES, "grpc") == 0  # the signaling calls are the only native ones
    (session,) = robot.sessions
    assert session.is_open and len(robot.sessions) == robot.sessions.open_count == 1
    assert session.peer.addr() is not None and session.peer.addr()[0] == "127.0.0.1"  # type: ignore[index]


async def test_setup_timings_are_recorded_in_order(channel: DialedChannel) -> None:
    timings = channel.timings
    assert timings is not None and channel.uuid
    steps = [timings.answer_s, timings.ice_connected_s, timings.connected_s, timings.data_open_s]
    assert all(step is not None for step in steps), timings
    assert steps == sorted(steps)  # type: ignore[type-var]
    assert 0 < timings.total_s < WAIT and timings.config_s > 0 and timings.offer_s > 0


async def test_unary_and_server_streaming_against_real_handlers(robot: Robot, channel: DialedChannel) -> None:
    sensor = SensorServiceStub(channel.as_channel())
    for _ in range(3):
        assert (await sensor.GetReadings(common_pb2.GetReadingsRequest(name="sensor1"), timeout=WAIT)).readings
    with pytest.raises(GRPCError) as err:  # a handler's own error status arrives intact
        await sensor.GetReadings(common_pb2.GetReadingsRequest(name="no-such-sensor"), timeout=WAIT)
    assert err.value.status is Status.NOT_FOUND

    robot_stub = RobotServiceStub(channel.as_channel())
    request = robot_pb2.StreamStatusRequest(every=_every(0.01))
    async with robot_stub.StreamStatus.open(timeout=WAIT) as stream:
        await stream.send_message(request, end=True)
        for _ in range(3):
            status = await stream.recv_message()
            assert status is not None and len(status.status) > 0
        await stream.cancel()
    assert robot.method_calls(GET_READINGS) == 4 and robot.method_calls(STREAM_STATUS) == 1


async def test_bidi_streaming_against_the_fake_arm(robot: Robot, channel: DialedChannel) -> None:
    arm = ArmServiceStub(channel.as_channel())
    async with arm.MoveThroughJointPositionsStreamed.open(timeout=WAIT) as stream:
        await stream.send_message(ArmReq(name="arm1", init=ArmReq.Init()))
        await stream.send_message(ArmReq(batch=ArmReq.TrajectoryBatch(points=[_point(0, [0] * 6),
                                                                              _point(0.02, [1, 0, 0, 0, 0, 0])])))
        assert await asyncio.wait_for(stream.recv_message(), WAIT) is not None  # the batch's ack
        await stream.end()
        assert await asyncio.wait_for(stream.recv_message(), WAIT) is None  # ends once the arm arrives
    joints = await arm.GetJointPositions(arm_pb2.GetJointPositionsRequest(name="arm1"), timeout=WAIT)
    assert list(joints.positions.values) == pytest.approx([1, 0, 0, 0, 0, 0])
    assert robot.method_calls(ARM_STREAMED) == 1


async def test_client_streaming_and_bidi_through_the_echo_service(channel: DialedChannel) -> None:
    echo = EchoStub(channel)
    Bytes = wrappers_pb2.BytesValue
    reply = await echo.Sum([Bytes(value=b"ab"), Bytes(value=b""), Bytes(value=b"cde")], timeout=WAIT)
    assert reply.value == 5 * 1000 + 3
    async with echo.Chat.open(timeout=WAIT) as chat:
        for word in (b"abc", b"xyz"):
            await chat.send_message(Bytes(value=word))
            answer = await chat.recv_message()
            assert answer is not None and answer.value == word[::-1]
        await chat.end()
        assert await chat.recv_message() is None


async def test_a_request_over_32_mib_is_refused_and_the_channel_keeps_working(
    robot: Robot, channel: DialedChannel
) -> None:
    echo = EchoStub(channel)
    # BytesValue{value: N bytes} serializes to 1 + 4 (length varint) + N bytes: exactly the cap + 1.
    too_big = wrappers_pb2.BytesValue(value=b"\x5a" * (MAX_MESSAGE_SIZE - 4))
    assert too_big.ByteSize() == MAX_MESSAGE_SIZE + 1
    with pytest.raises(GRPCError) as err:
        await echo.Unary(too_big, timeout=30)
    assert err.value.status is Status.RESOURCE_EXHAUSTED
    assert robot.echo.calls == []  # the handler never saw it
    assert (await echo.Unary(wrappers_pb2.BytesValue(value=b"still here"), timeout=WAIT)).value == b"still here"
    readings = await SensorServiceStub(channel.as_channel()).GetReadings(
        common_pb2.GetReadingsRequest(name="sensor1"), timeout=WAIT
    )
    assert readings.readings


async def test_reset_mid_stream_cancels_the_handler(robot: Robot, channel: DialedChannel) -> None:
    (session,) = robot.sessions
    robot_stub = RobotServiceStub(channel.as_channel())
    async with robot_stub.StreamStatus.open(timeout=WAIT) as stream:
        await stream.send_message(robot_pb2.StreamStatusRequest(every=_every(0.05)), end=True)
        assert await stream.recv_message() is not None
        assert session.tunnel.active_streams == 1
        assert [op.method for op in robot.server.operations.list()] == [STREAM_STATUS]
        await stream.cancel()  # Request{rst_stream}
    await eventually(lambda: not session.tunnel.tasks and session.tunnel.active_streams == 0, what="handler cancelled")
    assert robot.server.operations.list() == []

    # the unary echo handler sees the CancelledError itself
    echo = EchoStub(channel)
    async with echo.Sleep.open(timeout=WAIT) as sleeper:
        await sleeper.send_message(wrappers_pb2.DoubleValue(value=30), end=True)
        await asyncio.wait_for(robot.echo.started.wait(), WAIT)
        await sleeper.cancel()
    await asyncio.wait_for(robot.echo.cancelled_event.wait(), WAIT)
    assert robot.echo.cancelled == 1 and robot.echo.running == 0
    assert (await echo.Unary(wrappers_pb2.BytesValue(value=b"ok"), timeout=WAIT)).value == b"ok"


async def test_stats_count_every_tunnelled_call_under_webrtc(robot: Robot, channel: DialedChannel) -> None:
    before = dict(robot.server.handlers.stats.by_transport)
    echo = EchoStub(channel)
    for n in range(5):
        await echo.Unary(wrappers_pb2.BytesValue(value=bytes([n])), timeout=WAIT)
    await echo.Count(wrappers_pb2.Int64Value(value=3), timeout=WAIT)
    after = robot.server.handlers.stats.by_transport
    assert after["webrtc"] - before["webrtc"] == 6
    assert after["grpc"] == before["grpc"] and after["grpc-web"] == before["grpc-web"]
    assert robot.server.handlers.stats.snapshot()["methods"]["/test.tunnel.Echo/Unary"]["webrtc"] == 5


async def test_several_peers_at_once(robot: Robot) -> None:
    dialed = await asyncio.wait_for(asyncio.gather(*(dial(robot.address, timeout=WAIT) for _ in range(3))), WAIT + 1)
    try:
        assert len(robot.sessions) == 3 and len({d.uuid for d in dialed}) == 3
        replies = await asyncio.gather(*(
            RobotServiceStub(d.as_channel()).ResourceNames(robot_pb2.ResourceNamesRequest(), timeout=WAIT)
            for d in dialed
        ))
        assert all(r.resources for r in replies)
    finally:
        await asyncio.gather(*(d.close() for d in dialed))
    await eventually(lambda: len(robot.sessions) == 0, what="every session closed")
