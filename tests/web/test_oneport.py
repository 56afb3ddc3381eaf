"""One TCP port: h2c gRPC, gRPC-web, /stats and the page, TLS probes, odd first bytes, closing."""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from pathlib import Path

import aiohttp
import pytest
from google.protobuf.wrappers_pb2 import StringValue
from grpclib.client import Channel, UnaryUnaryMethod
from grpclib.exceptions import GRPCError, StreamTerminatedError

from peer.gen.viam.robot.v1 import robot_pb2
from peer.gen.viam.robot.v1.robot_grpc import RobotServiceStub
from web.const import H2_PREFACE, TLS_REFUSAL
from web.oneport import Kind
from web.robot import Robot

from ..serverproc import ServerProcess, tcp_and_unix
from .conftest import MakeRobot, eventually
from .probe import PREFIX, Probe
from .wire import CONTENT_TYPE, call, frame

RESOURCE_NAMES = "/viam.robot.v1.RobotService/ResourceNames"
WAIT = 3.0


def no_connections(robot: Robot) -> bool:
    return not any(robot.listener.connections.values())


async def resource_count(port: int) -> int:
    channel = Channel("127.0.0.1", port)
    try:
        reply = await asyncio.wait_for(RobotServiceStub(channel).ResourceNames(robot_pb2.ResourceNamesRequest()), WAIT)
        return len(reply.resources)
    finally:
        channel.close()


async def test_one_port_serves_everything_and_counts_per_transport(robot: Robot, http: aiohttp.ClientSession) -> None:
    assert await resource_count(robot.port) == 11
    assert await resource_count(robot.port) == 11
    answer = await call(http, robot.port, RESOURCE_NAMES, robot_pb2.ResourceNamesRequest())
    assert answer.status == 0
    async with http.get(f"http://127.0.0.1:{robot.port}/stats") as resp:
        assert resp.status == 200 and resp.headers["Cache-Control"] == "no-cache"
        stats = await resp.json()
    assert stats["peers"] == 0
    assert stats["rpcs"] == {"webrtc": 0, "grpc": 2, "grpc-web": 1}
    assert stats["methods"] == {RESOURCE_NAMES: {"webrtc": 0, "grpc": 2, "grpc-web": 1}}
    async with http.get(f"http://127.0.0.1:{robot.port}/") as resp:
        assert resp.status == 200 and resp.content_type == "text/html"
        assert resp.headers["Cache-Control"] == "no-cache"
        assert "peerbot" in await resp.text()


def tls_handshake_error(port: int) -> ssl.SSLError:
    """What viam-sdk's direct dialer does first (ALPN h2, no verification on 127.x)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["h2"])
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as sock:
        try:
            ctx.wrap_socket(sock, server_hostname="127.0.0.1")
        except ssl.SSLError as exc:
            return exc
    raise AssertionError("the TLS handshake succeeded on a cleartext port")


async def test_tls_client_hello_is_refused_cleanly(robot: Robot) -> None:
    error = await asyncio.to_thread(tls_handshake_error, robot.port)
    # viam-sdk only downgrades to cleartext on exactly this reason (viam/rpc/dial.py _dial_direct)
    assert error.reason == "WRONG_VERSION_NUMBER"
    await eventually(lambda: no_connections(robot), what="the TLS connection to close")
    assert await resource_count(robot.port) == 11


async def test_tls_refusal_is_plaintext_then_eof(robot: Robot) -> None:
    outgoing = ssl.MemoryBIO()
    client = ssl.create_default_context().wrap_bio(ssl.MemoryBIO(), outgoing, server_hostname="robot")
    with pytest.raises(ssl.SSLWantReadError):
        client.do_handshake()
    hello = outgoing.read()  # a real ClientHello, as OpenSSL would send it
    assert hello[:2] == b"\x16\x03"
    reader, writer = await asyncio.open_connection("127.0.0.1", robot.port)
    writer.write(hello[:3])  # split: the listener waits for the whole record before answering
    await writer.drain()
    await asyncio.sleep(0.05)
    writer.write(hello[3:])
    await writer.drain()
    assert await asyncio.wait_for(reader.read(), WAIT) == TLS_REFUSAL  # read() returns at EOF: a FIN, no RST
    writer.close()
    await writer.wait_closed()
    await eventually(lambda: no_connections(robot), what="the TLS connection to close")


async def test_connection_closed_before_any_byte(robot: Robot) -> None:
    for _ in range(3):
        _, writer = await asyncio.open_connection("127.0.0.1", robot.port)
        writer.close()
        await writer.wait_closed()
    await eventually(lambda: no_connections(robot), what="the empty connections to go")
    assert await resource_count(robot.port) == 11


async def test_preface_split_across_packets(robot: Robot) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", robot.port)
    for part in (H2_PREFACE[:1], H2_PREFACE[1:10], H2_PREFACE[10:]):
        writer.write(part)
        await writer.drain()
        await asyncio.sleep(0.05)
    header = await asyncio.wait_for(reader.readexactly(9), WAIT)
    length = int.from_bytes(header[:3], "big")
    assert header[3] == 0x4, "the server's first HTTP/2 frame is SETTINGS"
    assert length % 6 == 0
    assert robot.listener.connections[Kind.H2] == 1
    writer.close()
    await writer.wait_closed()


async def test_http_request_whose_first_byte_looks_like_the_preface(robot: Robot, probe: Probe) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", robot.port)
    body = frame(StringValue(value="x"))
    request = (f"POST {PREFIX}Metadata HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {CONTENT_TYPE}\r\n"
               f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body
    writer.write(request[:1])  # "P": still a possible HTTP/2 preface
    await writer.drain()
    await asyncio.sleep(0.05)
    assert robot.listener.connections[Kind.SNIFFING] == 1
    writer.write(request[1:])
    await writer.drain()
    response = await asyncio.wait_for(reader.read(), WAIT)
    assert response.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"grpc-status: 0" in response
    writer.close()
    await writer.wait_closed()


async def test_silent_and_stalled_connections_are_closed(make_robot: MakeRobot) -> None:
    robot = await make_robot(first_bytes_timeout=0.3)
    silent_reader, silent_writer = await asyncio.open_connection("127.0.0.1", robot.port)
    stalled_reader, stalled_writer = await asyncio.open_connection("127.0.0.1", robot.port)
    stalled_writer.write(H2_PREFACE[:16])  # a slowloris: part of a preface, then nothing
    await stalled_writer.drain()
    started = time.monotonic()
    assert await asyncio.wait_for(silent_reader.read(), WAIT) == b""
    assert await asyncio.wait_for(stalled_reader.read(), WAIT) == b""
    assert 0.2 < time.monotonic() - started < 2.0
    for writer in (silent_writer, stalled_writer):
        writer.close()
        await writer.wait_closed()
    await eventually(lambda: no_connections(robot), what="the idle connections to go")
    assert await resource_count(robot.port) == 11


async def test_close_ends_running_calls_and_leaks_no_tasks(make_robot: MakeRobot, probe: Probe) -> None:
    await asyncio.sleep(0)
    baseline = asyncio.all_tasks()
    robot = await make_robot(close_grace=2.0)
    channel = Channel("127.0.0.1", robot.port)
    session = aiohttp.ClientSession()
    try:
        # a native call and a gRPC-web call, both stuck in a handler; plus an idle sniffing socket
        sleep = UnaryUnaryMethod(channel, PREFIX + "Sleep", StringValue, StringValue)
        h2_call = asyncio.ensure_future(sleep(StringValue(value="h2")))
        await asyncio.wait_for(probe.sleeping.wait(), WAIT)
        web_call = asyncio.ensure_future(call(session, robot.port, PREFIX + "Sleep", StringValue(value="web")))
        await eventually(lambda: len(robot.server.operations) == 2, what="two calls running")
        _, idle = await asyncio.open_connection("127.0.0.1", robot.port)

        started = time.monotonic()
        await robot.close()
        assert time.monotonic() - started < 1.5, "closing waits for nothing that was cancelled"
        with pytest.raises((GRPCError, StreamTerminatedError, ConnectionError)):
            await asyncio.wait_for(h2_call, WAIT)
        with pytest.raises(aiohttp.ClientError):
            await asyncio.wait_for(web_call, WAIT)
        assert no_connections(robot)
        assert len(robot.server.operations) == 0
        idle.close()
    finally:
        channel.close()
        await session.close()

    def leaked() -> set[asyncio.Task[object]]:
        return {t for t in asyncio.all_tasks() if t not in baseline and not t.done()}

    try:
        await eventually(lambda: not leaked(), what="no tasks left")
    except AssertionError:
        raise AssertionError(f"tasks left after close: {leaked()}") from None


def test_command_line_serves_one_port_and_unix(tmp_path: Path) -> None:
    sock = str(tmp_path / "robot.sock")
    proc = ServerProcess.peerbot(["--host", "127.0.0.1", "--port", "0", "--unix", sock,
                                  "--allow-origin", "http://laptop.local:5173"])
    with proc:
        tcp, unix = tcp_and_unix(proc.wait_ready(2, 30))
        assert unix == sock
        port = int(tcp.rsplit(":", 1)[1])

        async def client() -> None:
            assert await resource_count(port) == 11
            unix_channel = Channel(path=sock)
            try:
                reply = await asyncio.wait_for(
                    RobotServiceStub(unix_channel).ResourceNames(robot_pb2.ResourceNamesRequest()), WAIT)
                assert len(reply.resources) == 11
            finally:
                unix_channel.close()
            async with aiohttp.ClientSession() as session:
                answer = await call(session, port, RESOURCE_NAMES, robot_pb2.ResourceNamesRequest(),
                                    headers={"Origin": "http://laptop.local:5173"})
                assert answer.status == 0
                assert answer.headers["access-control-allow-origin"] == "http://laptop.local:5173"
                async with session.get(f"http://127.0.0.1:{port}/stats") as resp:
                    stats = await resp.json()
                assert stats["rpcs"] == {"webrtc": 0, "grpc": 2, "grpc-web": 1}

        asyncio.run(client())
        assert proc.terminate(10) == 0, proc.log()
    assert not Path(sock).exists()
