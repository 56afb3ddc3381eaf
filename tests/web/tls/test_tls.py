"""TLS on the one port: ALPN routing, cleartext beside it, bad and slow handshakes, closing.

Every test runs on asyncio and on uvloop (``peerbot serve`` runs on uvloop by default; see
conftest.py): the TLS path hands accepted sockets to the loop's own TLS
(``connect_accepted_socket``), which the two loops implement separately.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import ssl
from pathlib import Path

import aiohttp
import pytest
from grpclib.client import Channel

from peer.gen.viam.robot.v1 import robot_pb2
from peer.gen.viam.robot.v1.robot_grpc import RobotServiceStub
from web.const import H2_PREFACE, TLS_SHUTDOWN_TIMEOUT_S
from web.oneport import Kind
from web.robot import Robot
from web.tls import server_context

from ...pki import ThrowawayPKI, make_pki
from ..conftest import MakeRobot, eventually
from ..wire import call

RESOURCE_NAMES = "/viam.robot.v1.RobotService/ResourceNames"
WAIT = 5.0


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> ThrowawayPKI:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
async def robot(make_robot: MakeRobot, pki: ThrowawayPKI) -> Robot:
    return await make_robot(ssl_context=server_context(pki.cert, pki.key))


def no_connections(robot: Robot) -> bool:
    return not any(robot.listener.connections.values())


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def resource_count(port: int, tls: ssl.SSLContext | None = None) -> int:
    channel = Channel("127.0.0.1", port, ssl=tls)
    try:
        reply = await asyncio.wait_for(RobotServiceStub(channel).ResourceNames(robot_pb2.ResourceNamesRequest()), WAIT)
        return len(reply.resources)
    finally:
        channel.close()


async def stats(http: aiohttp.ClientSession, port: int) -> dict[str, object]:
    async with http.get(f"http://127.0.0.1:{port}/stats") as resp:
        result: dict[str, object] = await resp.json()
        return result


async def tls_connection(port: int, context: ssl.SSLContext) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.wait_for(
        asyncio.open_connection("127.0.0.1", port, ssl=context, server_hostname="localhost"), WAIT)


async def handshake(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, context: ssl.SSLContext) -> None:
    """A TLS handshake by hand over a plain connection, which stays usable for raw bytes after it."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    client = context.wrap_bio(incoming, outgoing, server_hostname="localhost")
    while True:
        try:
            client.do_handshake()
        except ssl.SSLWantReadError:
            writer.write(outgoing.read())
            data = await asyncio.wait_for(reader.read(65536), WAIT)
            assert data, "the server closed during the handshake"
            incoming.write(data)
        else:
            writer.write(outgoing.read())  # our Finished (TLS 1.3)
            await writer.drain()
            return


async def http_get_over_tls(port: int, context: ssl.SSLContext, path: str) -> tuple[str | None, bytes]:
    """A raw HTTP/1.1 GET over TLS: the negotiated ALPN protocol and the whole response."""
    reader, writer = await tls_connection(port, context)
    try:
        alpn = writer.get_extra_info("ssl_object").selected_alpn_protocol()
        writer.write(f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode())
        return alpn, await asyncio.wait_for(reader.read(), WAIT)
    finally:
        writer.close()


async def test_h2_over_tls_reaches_grpc(robot: Robot, pki: ThrowawayPKI, http: aiohttp.ClientSession) -> None:
    tls = pki.client_context("h2")  # what grpclib, tonic and viam-sdk's direct dialer offer
    channel = Channel("127.0.0.1", robot.port, ssl=tls)
    try:
        stub = RobotServiceStub(channel)
        reply = await asyncio.wait_for(stub.ResourceNames(robot_pb2.ResourceNamesRequest()), WAIT)
        assert len(reply.resources) == 11
        assert robot.listener.connections[Kind.H2] == 1  # kept open by the channel
        assert robot.listener.secure_connections == 1
    finally:
        channel.close()
    assert (await stats(http, robot.port))["rpcs"] == {"webrtc": 0, "grpc": 1, "grpc-web": 0}


async def test_grpc_web_page_and_stats_over_https(robot: Robot, pki: ThrowawayPKI, http: aiohttp.ClientSession) -> None:
    tls = pki.client_context()
    answer = await call(http, robot.port, RESOURCE_NAMES, robot_pb2.ResourceNamesRequest(), tls=tls)
    assert answer.status == 0 and answer.http_status == 200
    reply = robot_pb2.ResourceNamesResponse.FromString(answer.messages[0])
    assert len(reply.resources) == 11
    async with http.get(f"https://127.0.0.1:{robot.port}/", ssl=tls) as resp:
        assert resp.status == 200 and resp.content_type == "text/html"
        assert "peerbot" in await resp.text()
    async with http.get(f"https://localhost:{robot.port}/stats", ssl=tls) as resp:
        assert resp.status == 200
        counted = await resp.json()
    assert counted["rpcs"] == {"webrtc": 0, "grpc": 0, "grpc-web": 1}


async def test_cleartext_h2c_and_http_keep_working_beside_tls(robot: Robot, pki: ThrowawayPKI,
                                                              http: aiohttp.ClientSession) -> None:
    assert await resource_count(robot.port) == 11  # h2c prior knowledge
    assert await resource_count(robot.port, pki.client_context("h2")) == 11
    answer = await call(http, robot.port, RESOURCE_NAMES, robot_pb2.ResourceNamesRequest())  # http://
    assert answer.status == 0
    assert (await stats(http, robot.port))["rpcs"] == {"webrtc": 0, "grpc": 2, "grpc-web": 1}


async def test_browser_alpn_gets_http1_and_no_alpn_reaches_aiohttp(robot: Robot, pki: ThrowawayPKI) -> None:
    # a browser offers h2 first: the server's order (http/1.1 first) sends it to aiohttp anyway
    alpn, response = await http_get_over_tls(robot.port, pki.client_context("h2", "http/1.1"), "/stats")
    assert alpn == "http/1.1"
    assert response.startswith(b"HTTP/1.1 200 OK\r\n") and b'"rpcs"' in response
    alpn, response = await http_get_over_tls(robot.port, pki.client_context(), "/stats")
    assert alpn is None
    assert response.startswith(b"HTTP/1.1 200 OK\r\n") and b'"rpcs"' in response
    await eventually(lambda: no_connections(robot), what="the HTTPS connections to close")


async def test_h2_preface_over_tls_without_alpn_reaches_grpc(robot: Robot, pki: ThrowawayPKI) -> None:
    reader, writer = await tls_connection(robot.port, pki.client_context())
    try:
        writer.write(H2_PREFACE)
        header = await asyncio.wait_for(reader.readexactly(9), WAIT)
        assert header[3] == 0x4, "the server's first HTTP/2 frame is SETTINGS"
        assert robot.listener.connections[Kind.H2] == 1
    finally:
        writer.close()


async def test_untrusted_client_and_garbage_are_closed_quietly(
    robot: Robot, pki: ThrowawayPKI, tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    await resource_count(robot.port)  # warm up: lazily opened files (certs, pages) are not leaks
    await eventually(lambda: no_connections(robot), what="the warm-up connection to close")
    fds = open_fds()
    tasks = asyncio.all_tasks()

    # 1. a client that does not trust our CA aborts its handshake
    stranger = make_pki(tmp_path)
    with pytest.raises(ssl.SSLCertVerificationError):
        await tls_connection(robot.port, stranger.client_context("h2"))
    # 2. a TLS record header followed by junk: no handshake at all
    _, writer = await asyncio.open_connection("127.0.0.1", robot.port)
    writer.write(b"\x16\x03\x01\x00\x05hello" + os.urandom(64))
    await writer.drain()
    # 3. a complete handshake, then bytes that are no TLS record
    reader, tls_writer = await asyncio.open_connection("127.0.0.1", robot.port)
    await handshake(reader, tls_writer, pki.client_context("h2"))
    await eventually(lambda: robot.listener.secure_connections == 1, what="the server to finish its handshake")
    tls_writer.write(b"\x00not a TLS record, sent under the TLS layer\r\n" * 4)
    # read() returns at EOF: session tickets, the server's SETTINGS, perhaps an alert, then the close
    await asyncio.wait_for(reader.read(), WAIT)

    await eventually(lambda: no_connections(robot), what="the broken connections to close")
    writer.close()
    tls_writer.close()
    assert await resource_count(robot.port, pki.client_context("h2")) == 11, "the port keeps serving"
    await eventually(lambda: no_connections(robot), what="the last connection to close")
    await eventually(lambda: open_fds() <= fds, what=f"open fds back to {fds}")
    await eventually(lambda: not {t for t in asyncio.all_tasks() - tasks if not t.done()}, what="no tasks left")
    assert loud_records(caplog) == []
    assert any("TLS handshake failed" in r.getMessage() for r in caplog.records), "failures are logged at debug"


def loud_records(caplog: pytest.LogCaptureFixture) -> list[tuple[str, str]]:
    """Records a peer's bad input must not cause: warnings and above, or any traceback."""
    return [(r.name, r.getMessage()) for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]


async def test_partial_client_hello_times_out(robot: Robot, pki: ThrowawayPKI,
                                              caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    robot.listener.tls_handshake_timeout = 0.3
    outgoing = ssl.MemoryBIO()
    client = pki.client_context("h2").wrap_bio(ssl.MemoryBIO(), outgoing, server_hostname="localhost")
    with pytest.raises(ssl.SSLWantReadError):
        client.do_handshake()
    hello = outgoing.read()
    reader, writer = await asyncio.open_connection("127.0.0.1", robot.port)
    writer.write(hello[: len(hello) // 2])  # half a ClientHello, then silence
    await writer.drain()
    await eventually(lambda: robot.listener.connections[Kind.SNIFFING] == 1, what="the handshake to start")
    try:
        assert await asyncio.wait_for(reader.read(), WAIT) == b"", "the server gives up on the handshake"
    except ConnectionResetError:
        pass  # an abort (RST) is as good a way to give up
    await eventually(lambda: no_connections(robot), what="the stalled handshake to be dropped")
    writer.close()
    assert await resource_count(robot.port, pki.client_context("h2")) == 11
    assert loud_records(caplog) == []
    assert any("TLS handshake failed" in r.getMessage() for r in caplog.records), "the timeout is logged at debug"


async def test_silent_connections_are_closed_before_any_byte(make_robot: MakeRobot, pki: ThrowawayPKI) -> None:
    robot = await make_robot(ssl_context=server_context(pki.cert, pki.key), first_bytes_timeout=0.3)
    reader, writer = await asyncio.open_connection("127.0.0.1", robot.port)
    await eventually(lambda: robot.listener.connections[Kind.SNIFFING] == 1, what="the connection to be seen")
    assert await asyncio.wait_for(reader.read(), WAIT) == b""
    await eventually(lambda: no_connections(robot), what="the silent connection to go")
    writer.close()
    for alpn in ("h2", "http/1.1"):  # after the handshake, silence is bounded the same way
        reader, writer = await asyncio.open_connection("127.0.0.1", robot.port)
        await handshake(reader, writer, pki.client_context(alpn))
        await eventually(lambda: robot.listener.secure_connections == 1, what="the server to finish its handshake")
        assert robot.listener.connections[Kind.SNIFFING] == 1, "not handed over before its first byte"
        await asyncio.wait_for(reader.read(), WAIT)  # session tickets, then EOF
        await eventually(lambda: no_connections(robot), what=f"the silent {alpn} connection to go")
        writer.close()


async def test_close_drops_tls_calls_and_half_open_handshakes(make_robot: MakeRobot, pki: ThrowawayPKI) -> None:
    # warm up: what is opened once per process stays open (under uvloop the first call leaves a
    # /dev/null descriptor behind, with or without TLS)
    warm = await make_robot(ssl_context=server_context(pki.cert, pki.key))
    assert await resource_count(warm.port, pki.client_context("h2")) == 11
    await warm.close()
    await asyncio.sleep(0)
    baseline = asyncio.all_tasks()
    fds = open_fds()
    robot = await make_robot(ssl_context=server_context(pki.cert, pki.key), close_grace=2.0)
    channel = Channel("127.0.0.1", robot.port, ssl=pki.client_context("h2"))
    socks: list[socket.socket] = []
    try:
        assert len((await asyncio.wait_for(
            RobotServiceStub(channel).ResourceNames(robot_pb2.ResourceNamesRequest()), WAIT)).resources) == 11
        silent = socket.create_connection(("127.0.0.1", robot.port))  # peeking
        half = socket.create_connection(("127.0.0.1", robot.port))  # in its handshake
        socks += [silent, half]
        half.sendall(b"\x16\x03\x01\x02\x00\x01")
        await eventually(lambda: robot.listener.connections[Kind.SNIFFING] == 2, what="two pending connections")
        await robot.close()
        assert no_connections(robot)
        assert robot.addresses == []
    finally:
        channel.close()
        for sock in socks:
            sock.close()

    def leaked() -> set[asyncio.Task[object]]:
        return {t for t in asyncio.all_tasks() if t not in baseline and not t.done()}

    await eventually(lambda: not leaked(), what="no tasks left")
    await eventually(lambda: open_fds() <= fds, what=f"open fds back to {fds}")


async def test_close_does_not_wait_out_a_client_that_ignores_close_notify(make_robot: MakeRobot,
                                                                          pki: ThrowawayPKI) -> None:
    robot = await make_robot(ssl_context=server_context(pki.cert, pki.key), close_grace=60.0)
    reader, writer = await asyncio.open_connection("127.0.0.1", robot.port)
    await handshake(reader, writer, pki.client_context("http/1.1"))  # then never reads again
    await eventually(lambda: robot.listener.secure_connections == 1, what="the server to finish its handshake")
    # TLS_SHUTDOWN_TIMEOUT_S bounds the wait for the client's close_notify, far below the grace
    await asyncio.wait_for(robot.close(), 3 * TLS_SHUTDOWN_TIMEOUT_S)
    assert no_connections(robot)
    writer.close()
