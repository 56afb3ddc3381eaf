"""gRPC-web over HTTP/1.1 against a real robot: frames, statuses, streaming, deadlines, disconnects."""

from __future__ import annotations

import asyncio
import logging
import struct

import aiohttp
import pytest
from google.protobuf import duration_pb2
from google.protobuf.wrappers_pb2 import StringValue

from peer.gen.viam.common.v1 import common_pb2
from peer.gen.viam.robot.v1 import robot_pb2
from web.robot import Robot

from .conftest import eventually
from .probe import PREFIX, Probe
from .wire import CONTENT_TYPE, call, frame

RESOURCE_NAMES = "/viam.robot.v1.RobotService/ResourceNames"
GET_READINGS = "/viam.component.sensor.v1.SensorService/GetReadings"
STREAM_STATUS = "/viam.robot.v1.RobotService/StreamStatus"


async def test_unary_resource_names(robot: Robot, http: aiohttp.ClientSession) -> None:
    answer = await call(http, robot.port, RESOURCE_NAMES, robot_pb2.ResourceNamesRequest())
    assert answer.http_status == 200
    assert answer.headers["content-type"] == CONTENT_TYPE
    assert not answer.trailers_only
    assert answer.trailers == {"grpc-status": "0"}
    (payload,) = answer.messages
    names = robot_pb2.ResourceNamesResponse.FromString(payload).resources
    assert "sensor/sensor1" in {f"{n.subtype}/{n.name}" for n in names}
    assert len(names) == 11


async def test_unary_get_readings_plain_grpc_web_content_type(robot: Robot, http: aiohttp.ClientSession) -> None:
    answer = await call(http, robot.port, GET_READINGS, common_pb2.GetReadingsRequest(name="sensor1"),
                        headers={"Content-Type": "application/grpc-web"})
    assert answer.status == 0, answer.message
    assert answer.headers["content-type"] == "application/grpc-web"
    readings = common_pb2.GetReadingsResponse.FromString(answer.messages[0]).readings
    assert readings, "the fake sensor reports something"


async def test_unknown_resource_is_a_trailers_only_not_found(robot: Robot, http: aiohttp.ClientSession) -> None:
    answer = await call(http, robot.port, GET_READINGS, common_pb2.GetReadingsRequest(name="nope"))
    assert answer.http_status == 200
    assert answer.trailers_only
    assert answer.status == 5
    assert "nope" in answer.message
    assert answer.messages == [] and answer.trailers is None


async def test_unknown_method_is_unimplemented(robot: Robot, http: aiohttp.ClientSession) -> None:
    answer = await call(http, robot.port, "/viam.robot.v1.RobotService/NoSuchMethod", robot_pb2.ResourceNamesRequest())
    assert answer.trailers_only and answer.status == 12
    assert "NoSuchMethod" in answer.message


async def test_malformed_bodies_get_a_clear_status(robot: Robot, http: aiohttp.ClientSession) -> None:
    truncated = struct.pack(">BI", 0, 10) + b"abc"
    answer = await call(http, robot.port, RESOURCE_NAMES, truncated)
    assert answer.trailers_only and answer.status == 3
    assert "declares 10 bytes but 3 follow" in answer.message

    stray = frame(robot_pb2.ResourceNamesRequest()) + b"\x00\x00"
    answer = await call(http, robot.port, RESOURCE_NAMES, stray)
    assert answer.status == 3 and "stray bytes" in answer.message

    not_protobuf = frame(b"\xff\xff\xff")
    answer = await call(http, robot.port, GET_READINGS, not_protobuf)
    assert answer.status == 3 and "malformed viam.common.v1.GetReadingsRequest" in answer.message

    compressed = frame(robot_pb2.ResourceNamesRequest(), flag=1)
    answer = await call(http, robot.port, RESOURCE_NAMES, compressed)
    assert answer.status == 12 and "compressed" in answer.message

    two = frame(robot_pb2.ResourceNamesRequest()) * 2
    answer = await call(http, robot.port, RESOURCE_NAMES, two)
    assert answer.status == 3 and "one request message" in answer.message

    answer = await call(http, robot.port, GET_READINGS, b"")
    assert answer.status == 3 and "missing" in answer.message


async def test_wrong_content_type_and_bad_timeout(robot: Robot, http: aiohttp.ClientSession) -> None:
    answer = await call(http, robot.port, RESOURCE_NAMES, frame(robot_pb2.ResourceNamesRequest()),
                        headers={"Content-Type": "application/grpc-web-text"})
    assert answer.http_status == 415 and answer.status == 2
    assert "application/grpc-web+proto" in answer.message
    answer = await call(http, robot.port, RESOURCE_NAMES, robot_pb2.ResourceNamesRequest(),
                        headers={"grpc-timeout": "soon"})
    assert answer.status == 2 and "grpc-timeout" in answer.message


async def test_server_streaming_arrives_message_by_message(robot: Robot, http: aiohttp.ClientSession) -> None:
    request = robot_pb2.StreamStatusRequest(every=duration_pb2.Duration(nanos=20_000_000))
    url = f"http://127.0.0.1:{robot.port}{STREAM_STATUS}"
    async with http.post(url, data=frame(request), headers={"Content-Type": CONTENT_TYPE}) as resp:
        assert resp.status == 200 and "grpc-status" not in resp.headers
        for _ in range(2):  # the call never ends by itself: each frame must be flushed on its own
            flag, length = struct.unpack(">BI", await asyncio.wait_for(resp.content.readexactly(5), 3))
            assert flag == 0
            robot_pb2.StreamStatusResponse.FromString(await resp.content.readexactly(length))
        await eventually(lambda: len(robot.server.operations) == 1, what="one running StreamStatus")
    # leaving the block closes the connection: the handler is cancelled, its operation ends
    await eventually(lambda: len(robot.server.operations) == 0, what="StreamStatus cancelled")


async def test_client_disconnect_cancels_the_handler(robot: Robot, probe: Probe) -> None:
    _, writer = await asyncio.open_connection("127.0.0.1", robot.port)
    body = frame(StringValue(value="zz"))
    writer.write(f"POST {PREFIX}Sleep HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {CONTENT_TYPE}\r\n"
                 f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    await writer.drain()
    await asyncio.wait_for(probe.sleeping.wait(), 3)
    writer.close()
    await writer.wait_closed()
    await asyncio.wait_for(probe.cancelled.wait(), 3)
    await eventually(lambda: len(robot.server.operations) == 0, what="the operation to end")


async def test_deadline_from_grpc_timeout(robot: Robot, http: aiohttp.ClientSession, probe: Probe) -> None:
    answer = await call(http, robot.port, PREFIX + "Sleep", StringValue(value="x"), headers={"grpc-timeout": "100m"})
    assert answer.trailers_only and answer.status == 4
    assert probe.cancelled.is_set()


async def test_metadata_both_ways(robot: Robot, http: aiohttp.ClientSession) -> None:
    answer = await call(http, robot.port, PREFIX + "Metadata", StringValue(value="hi"),
                        headers={"rpc-host": "robot.local"})
    assert answer.headers["x-initial"] == "one"
    assert answer.trailers == {"grpc-status": "0", "x-trailing": "two"}
    echoed = StringValue.FromString(answer.messages[0]).value
    assert echoed == ("hi|{'rpc-host': 'robot.local', 'x-grpc-web': '1', 'host': None, 'content-length': None}"
                      "|tests/web")


async def test_client_and_bidi_streaming_take_the_whole_body(robot: Robot, http: aiohttp.ClientSession) -> None:
    body = b"".join(frame(StringValue(value=v)) for v in ("a", "b", "c"))
    answer = await call(http, robot.port, PREFIX + "Collect", body)
    assert answer.status == 0
    assert [StringValue.FromString(m).value for m in answer.messages] == ["a,b,c"]
    answer = await call(http, robot.port, PREFIX + "Echo", body)
    assert answer.status == 0
    assert [StringValue.FromString(m).value for m in answer.messages] == ["A", "B", "C"]
    answer = await call(http, robot.port, PREFIX + "Collect", b"")
    assert answer.status == 0 and [StringValue.FromString(m).value for m in answer.messages] == [""]


async def test_error_after_a_message_goes_in_the_trailer_frame(robot: Robot, http: aiohttp.ClientSession) -> None:
    answer = await call(http, robot.port, PREFIX + "FailAfterOne", StringValue())
    assert not answer.trailers_only
    assert [StringValue.FromString(m).value for m in answer.messages] == ["first"]
    assert answer.status == 10
    assert answer.trailers is not None and "%" in answer.trailers["grpc-message"]  # percent-encoded on the wire
    assert answer.message == "gave up: 100% sûre\nsecond line"


async def test_calls_are_counted_as_grpc_web(robot: Robot, http: aiohttp.ClientSession) -> None:
    await call(http, robot.port, RESOURCE_NAMES, robot_pb2.ResourceNamesRequest())
    snapshot = robot.server.handlers.stats.snapshot()
    assert snapshot["methods"][RESOURCE_NAMES] == {"webrtc": 0, "grpc": 0, "grpc-web": 1}


async def test_client_leaving_mid_request_body(robot: Robot, caplog: pytest.LogCaptureFixture) -> None:
    _, writer = await asyncio.open_connection("127.0.0.1", robot.port)
    writer.write(f"POST {GET_READINGS} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {CONTENT_TYPE}\r\n"
                 f"Content-Length: 100\r\n\r\n".encode() + b"\x00\x00\x00\x00\x5f" + b"x" * 10)
    await writer.drain()
    await asyncio.sleep(0.05)
    writer.close()
    await writer.wait_closed()
    await eventually(lambda: not any(robot.listener.connections.values()), what="the connection to go")
    assert len(robot.server.operations) == 0
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    answer_port = robot.port
    async with aiohttp.ClientSession() as session:
        answer = await call(session, answer_port, RESOURCE_NAMES, robot_pb2.ResourceNamesRequest())
    assert answer.status == 0
