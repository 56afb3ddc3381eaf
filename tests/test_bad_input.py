"""Hostile and broken requests against the real HTTP/2 listeners (in-process and `peerbot serve`).

The built-in fake robot is served two ways: by :class:`peer.server.Server` in this process on
127.0.0.1 port 0, and by a ``peerbot serve`` subprocess (its one-port TCP listener, the production
path); the wire-level tests run against both. Every bad call must end in a precise gRPC status and
leave the server answering ``ResourceNames`` normally; in-process, it must also leave no asyncio
task or tracked operation behind.

Two client paths are used: grpclib (what viam-sdk uses) with a pass-through codec, so the body is
any bytes we like inside a well-formed gRPC frame; and a few lines of raw ``h2`` for what grpclib
cannot send (broken frames, no message at all) and to look at the response headers on the wire.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import h2.config
import h2.connection
import h2.events
import pytest
from grpclib import GRPCError, Status
from grpclib.client import Channel
from grpclib.const import Cardinality
from grpclib.encoding.base import CodecBase

from peer.gen.viam.robot.v1 import robot_pb2
from peer.gen.viam.robot.v1.robot_grpc import RobotServiceStub
from peer.resource.build import build_resources
from peer.server import Server
from web.config import builtin_config

from .serverproc import ServerProcess

CALL_TIMEOUT_S = 5.0
SETTLE_S = 2.0
READY_TIMEOUT_S = 30.0
EXIT_TIMEOUT_S = 10.0
GET_READINGS = "/viam.component.sensor.v1.SensorService/GetReadings"
GET_IMAGES = "/viam.component.camera.v1.CameraService/GetImages"
RESOURCE_NAMES = "/viam.robot.v1.RobotService/ResourceNames"
GENERIC_DO_COMMAND = "/viam.component.generic.v1.GenericService/DoCommand"
BUILTIN_COUNT = 11

#: Bodies that no protobuf message parses: truncated length-delimited field, bad UTF-8 in a
#: string field, wire type 7, an over-long varint, ASCII garbage (0x67 = field 12, wire type 7).
MALFORMED_BODIES = {
    "truncated_field": b"\x0a\x05ab",
    "bad_utf8_name": b"\x0a\x02\xff\xfe",
    "wire_type_7": b"\x0f",
    "overlong_varint": b"\x08" + b"\xff" * 11,
    "ascii_garbage": b"garbage!",
}


class RawCodec(CodecBase):
    """Pass bytes through unchanged: grpclib still frames them (flag + length) correctly."""

    __content_subtype__ = "proto"

    def encode(self, message: Any, message_type: Any) -> bytes:
        assert isinstance(message, bytes)
        return message

    def decode(self, data: bytes, message_type: Any) -> bytes:
        return data


def frame(body: bytes, *, compressed: bool = False) -> bytes:
    return struct.pack(">?I", compressed, len(body)) + body


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    resources = await build_resources(builtin_config().resources)
    srv = Server(resources)
    try:
        await srv.start("127.0.0.1", 0)
        yield srv
    finally:
        await asyncio.wait_for(srv.close(), 15)


@pytest.fixture(scope="module")
def peerbot_port() -> Iterator[int]:
    """``peerbot serve`` (the production TCP listener) as a subprocess, for the wire-level tests."""
    proc = ServerProcess.peerbot(["--host", "127.0.0.1", "--port", "0"])
    try:
        proc.start()
        address = proc.wait_ready(1, READY_TIMEOUT_S)[0]
        yield int(address.rsplit(":", 1)[1])
        code = proc.terminate(EXIT_TIMEOUT_S)
        assert code == 0, f"peerbot exit code {code} after SIGTERM; stderr:\n{proc.log()}"
    finally:
        proc.kill()


@pytest.fixture(params=["in-process", "peerbot-serve"])
def port(request: pytest.FixtureRequest) -> int:
    """The TCP port of peer.server.Server in this process, or of a ``peerbot serve`` subprocess."""
    if request.param == "in-process":
        srv: Server = request.getfixturevalue("server")
        assert srv.port is not None
        return srv.port
    value: int = request.getfixturevalue("peerbot_port")
    return value


@pytest.fixture
async def raw_channel(port: int) -> AsyncIterator[Channel]:
    channel = Channel("127.0.0.1", port, codec=RawCodec())
    try:
        yield channel
    finally:
        channel.close()


async def raw_call(channel: Channel, path: str, body: bytes) -> tuple[Status, str | None]:
    """A unary call with ``body`` as the (framed) request; the status grpclib's client reports."""
    try:
        async with channel.request(path, Cardinality.UNARY_UNARY, bytes, bytes, timeout=CALL_TIMEOUT_S) as stream:
            await stream.send_message(body, end=True)
            await stream.recv_message()
            await stream.recv_trailing_metadata()
    except GRPCError as exc:
        return exc.status, exc.message
    return Status.OK, None


@dataclass
class H2Response:
    headers: list[tuple[str, str]] = field(default_factory=list)
    trailers: list[tuple[str, str]] = field(default_factory=list)
    data: bytes = b""
    reset: int | None = None

    def grpc_status(self) -> tuple[int | None, str | None]:
        """grpc-status/-message from the trailers or, for a trailers-only response, the headers."""
        block = dict(self.trailers) if self.trailers else dict(self.headers)
        status = block.get("grpc-status")
        return (int(status) if status is not None else None), block.get("grpc-message")


async def h2_call(port: int, path: str, body: bytes, extra_headers: Sequence[tuple[str, str]] = ()) -> H2Response:
    """One raw HTTP/2 request with exactly ``body`` as DATA, then END_STREAM; bounded in time."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        async with asyncio.timeout(CALL_TIMEOUT_S):
            conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
            conn.initiate_connection()
            sid = conn.get_next_available_stream_id()
            conn.send_headers(sid, [
                (":method", "POST"), (":scheme", "http"), (":path", path), (":authority", f"127.0.0.1:{port}"),
                ("content-type", "application/grpc"), ("te", "trailers"), *extra_headers,
            ])
            conn.send_data(sid, body, end_stream=True)
            writer.write(conn.data_to_send())
            response = H2Response()
            done = False
            while not done:
                chunk = await reader.read(65536)
                if not chunk:
                    break
                for event in conn.receive_data(chunk):
                    if isinstance(event, h2.events.ResponseReceived):
                        response.headers = [(str(k), str(v)) for k, v in event.headers or []]
                    elif isinstance(event, h2.events.TrailersReceived):
                        response.trailers = [(str(k), str(v)) for k, v in event.headers or []]
                    elif isinstance(event, h2.events.DataReceived):
                        response.data += event.data or b""
                        conn.acknowledge_received_data(event.flow_controlled_length or 0, sid)
                    elif isinstance(event, h2.events.StreamEnded) and event.stream_id == sid:
                        done = True
                    elif isinstance(event, h2.events.StreamReset) and event.stream_id == sid:
                        response.reset = event.error_code
                        done = True
                writer.write(conn.data_to_send())
            return response
    finally:
        writer.close()
        await writer.wait_closed()


async def assert_still_serving(port: int) -> None:
    async with Channel("127.0.0.1", port) as fresh:
        reply = await RobotServiceStub(fresh).ResourceNames(robot_pb2.ResourceNamesRequest(), timeout=CALL_TIMEOUT_S)
    assert len(reply.resources) == BUILTIN_COUNT


# -- (a) malformed protobuf bodies inside valid gRPC frames ------------------------------------
# ResourceNamesRequest has no field 1, so for it "bad_utf8_name" is a valid unknown field: not a case.
MALFORMED_CASES = [
    (path, body_name)
    for path in (GET_READINGS, GET_IMAGES, RESOURCE_NAMES, GENERIC_DO_COMMAND)
    for body_name in sorted(MALFORMED_BODIES)
    if (path, body_name) != (RESOURCE_NAMES, "bad_utf8_name")
]


@pytest.mark.parametrize(("path", "body_name"), MALFORMED_CASES)
async def test_malformed_protobuf_is_a_clear_error(
    port: int, raw_channel: Channel, path: str, body_name: str
) -> None:
    status, message = await raw_call(raw_channel, path, MALFORMED_BODIES[body_name])
    assert status in (Status.INVALID_ARGUMENT, Status.INTERNAL), (status, message)
    assert message and "malformed" in message, message
    await assert_still_serving(port)


async def test_malformed_protobuf_reports_invalid_argument_with_the_type(raw_channel: Channel) -> None:
    """What peerbot answers precisely (grpclib alone would say UNKNOWN 'Internal Server Error')."""
    status, message = await raw_call(raw_channel, GET_READINGS, MALFORMED_BODIES["truncated_field"])
    assert status == Status.INVALID_ARGUMENT
    assert message is not None and "viam.common.v1.GetReadingsRequest" in message


async def test_valid_empty_message_is_not_a_decode_error(port: int, raw_channel: Channel) -> None:
    """An empty body is a valid GetReadingsRequest with name "": NOT_FOUND, not a parse error."""
    status, message = await raw_call(raw_channel, GET_READINGS, b"")
    assert status == Status.NOT_FOUND, (status, message)
    await assert_still_serving(port)


# -- (a2) broken gRPC framing, sent as raw HTTP/2 ------------------------------------------------
@pytest.mark.parametrize(
    ("case", "body", "allowed"),
    [
        # The length prefix promises 100 bytes, the stream ends after 3: a framing error.
        ("truncated_frame", b"\x00\x00\x00\x00\x64abc", {Status.INTERNAL, Status.INVALID_ARGUMENT}),
        # Fewer than the 5 bytes of a frame header.
        ("short_prefix", b"\x00\x00", {Status.INTERNAL, Status.INVALID_ARGUMENT}),
        # Compressed flag without any grpc-encoding: INTERNAL per the gRPC spec, UNIMPLEMENTED tolerated.
        ("compressed_flag", frame(b"\x0a\x07sensor1", compressed=True), {Status.INTERNAL, Status.UNIMPLEMENTED}),
        # A unary call with no request message at all (cardinality violation).
        ("no_message", b"", {Status.INTERNAL, Status.INVALID_ARGUMENT, Status.UNIMPLEMENTED}),
    ],
)
async def test_broken_framing_is_a_clear_error(port: int, case: str, body: bytes, allowed: set[Status]) -> None:
    response = await h2_call(port, GET_READINGS, body)
    code, message = response.grpc_status()
    assert code is not None, f"{case}: no grpc-status at all: {response}"
    assert Status(code) in allowed, f"{case}: {Status(code).name} {message!r}"
    assert message, f"{case}: no grpc-message"
    await assert_still_serving(port)


# -- (b) unknown methods -------------------------------------------------------------------------
UNKNOWN_METHODS = [
    "/viam.component.sensor.v1.SensorService/NoSuchMethod",  # known service, unknown method
    "/no.such.v1.Service/Method",  # unknown service
    "/viam.component.camera.v1.CameraService/GetImage",  # removed from the API; no client calls it
]


@pytest.mark.parametrize("path", UNKNOWN_METHODS)
async def test_unknown_method_is_unimplemented_on_the_wire(port: int, path: str) -> None:
    response = await h2_call(port, path, frame(b""))
    assert response.grpc_status()[0] == Status.UNIMPLEMENTED.value, response
    await assert_still_serving(port)


@pytest.mark.parametrize("path", UNKNOWN_METHODS)
async def test_unknown_method_trailers_only_response_has_grpc_content_type(port: int, path: str) -> None:
    """PROTOCOL-HTTP2: Trailers-Only = HTTP-Status Content-Type Trailers. grpc-go and grpclib
    clients reject a response without ``content-type`` (see the next test)."""
    response = await h2_call(port, path, frame(b""))
    headers = dict(response.headers)
    assert headers.get(":status") == "200", response
    assert headers.get("content-type", "").startswith("application/grpc"), response


@pytest.mark.parametrize("path", UNKNOWN_METHODS)
async def test_unknown_method_is_unimplemented_for_grpclib_clients(
    port: int, raw_channel: Channel, path: str
) -> None:
    """viam-sdk's transport is grpclib: it must see UNIMPLEMENTED (sessions etc. rely on it)."""
    status, message = await raw_call(raw_channel, path, b"")
    assert status == Status.UNIMPLEMENTED, (status, message)
    await assert_still_serving(port)


# -- (c) unknown resources -----------------------------------------------------------------------
async def test_unknown_resource_is_not_found_with_the_name(port: int, raw_channel: Channel) -> None:
    # DoCommandRequest{name: "nope-xyz"}: every resource API has DoCommand with this request type.
    body = b"\x0a\x08nope-xyz"
    paths = sorted(p for p in Server().handlers.__mapping__() if p.endswith("/DoCommand"))
    assert len(paths) >= BUILTIN_COUNT - 1, paths  # sensor/camera/motor/... + generic service
    wrong = {}
    for path in [*paths, GET_READINGS, GET_IMAGES]:
        status, message = await raw_call(raw_channel, path, body)
        if status != Status.NOT_FOUND or "nope-xyz" not in (message or ""):
            wrong[path] = (status.name, message)
    assert wrong == {}
    await assert_still_serving(port)


async def test_wrong_api_for_an_existing_name_is_not_found(port: int, raw_channel: Channel) -> None:
    """sensor1 exists, but not as a camera."""
    status, message = await raw_call(raw_channel, GET_IMAGES, b"\x0a\x07sensor1")
    assert status == Status.NOT_FOUND, (status, message)
    assert "sensor1" in (message or "")
    await assert_still_serving(port)


# -- (d)+(e) the server stays healthy and leaks nothing ------------------------------------------
async def test_bad_calls_leak_no_tasks_or_operations(server: Server) -> None:
    """In-process only: counts this event loop's tasks and the server's tracked operations."""
    assert server.port is not None
    async with (
        Channel("127.0.0.1", server.port) as channel,
        Channel("127.0.0.1", server.port, codec=RawCodec()) as raw_channel,
    ):
        await _bad_calls_leak_nothing(server, channel, raw_channel)


async def _bad_calls_leak_nothing(server: Server, channel: Channel, raw_channel: Channel) -> None:
    stub = RobotServiceStub(channel)
    await stub.ResourceNames(robot_pb2.ResourceNamesRequest(), timeout=CALL_TIMEOUT_S)  # warm the connection
    await raw_call(raw_channel, RESOURCE_NAMES, b"")
    before = set(asyncio.all_tasks())

    assert server.port is not None
    for _ in range(3):
        for body in MALFORMED_BODIES.values():
            await raw_call(raw_channel, GET_READINGS, body)
        for path in UNKNOWN_METHODS:
            await raw_call(raw_channel, path, b"")
        await raw_call(raw_channel, GET_READINGS, b"\x0a\x04nope")
        await h2_call(server.port, GET_READINGS, b"\x00\x00\x00\x00\x64abc")
        await h2_call(server.port, GET_READINGS, b"")
        reply = await stub.ResourceNames(robot_pb2.ResourceNamesRequest(), timeout=CALL_TIMEOUT_S)
        assert len(reply.resources) == BUILTIN_COUNT

    deadline = asyncio.get_running_loop().time() + SETTLE_S
    while True:
        extra = set(asyncio.all_tasks()) - before
        if not extra or asyncio.get_running_loop().time() >= deadline:
            break
        await asyncio.sleep(0.05)
    assert extra == set(), f"tasks left behind: {extra}"
    assert len(server.operations) == 0, server.operations.list()


async def test_abrupt_disconnect_mid_request_leaks_nothing(server: Server) -> None:
    """A client that sends headers and half a frame, then vanishes."""
    assert server.port is not None
    await assert_still_serving(server.port)
    before = set(asyncio.all_tasks())
    for _ in range(5):
        _reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
        conn.initiate_connection()
        sid = conn.get_next_available_stream_id()
        conn.send_headers(sid, [(":method", "POST"), (":scheme", "http"), (":path", GET_READINGS),
                                (":authority", "x"), ("content-type", "application/grpc"), ("te", "trailers")])
        conn.send_data(sid, b"\x00\x00\x00\x00\x10ab")
        writer.write(conn.data_to_send())
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.close()
        await writer.wait_closed()
    deadline = asyncio.get_running_loop().time() + SETTLE_S
    while True:
        extra = set(asyncio.all_tasks()) - before
        if not extra or asyncio.get_running_loop().time() >= deadline:
            break
        await asyncio.sleep(0.05)
    assert extra == set(), f"tasks left behind: {extra}"
    assert len(server.operations) == 0, server.operations.list()
    await assert_still_serving(server.port)
