"""``peerbot signal`` routing, and a robot answering through it across rendezvous restarts.

The command itself runs as a child process on loopback (routing needs no WebRTC). The reconnect
test runs a :class:`~web.signal.Rendezvous` and a :class:`~web.robot.Robot` in process, with aioice
kept on 127.0.0.1 (tests/webrtc/conftest.py's fixtures) and the pure-Python dialer as the client.
"""

from __future__ import annotations

import asyncio
import socket
import sys
from collections.abc import AsyncIterator
from ssl import SSLContext

import aiohttp
import pytest
from grpclib import GRPCError, Status
from grpclib.client import Channel

from peer.gen.viam.robot.v1 import robot_grpc, robot_pb2
from peer.resource.build import build_resources
from peer.webrtc.dial import dial
from signaling.config import IceServer
from signaling.const import RPC_HOST_KEY
from signaling.external import ExternalSignaling
from signaling.gen.proto.rpc.webrtc.v1 import signaling_pb2 as pb
from signaling.gen.proto.rpc.webrtc.v1.signaling_grpc import SignalingServiceStub
from signaling.ice import IceSettings, TurnRest
from signaling.memory_queue import MemoryCallQueue
from signaling.sdp import SessionDescription, encode_sdp
from tests.serverproc import ServerProcess
from tests.web import wire
from tests.webrtc.conftest import eventually, loopback_only, no_leaked_tasks  # noqa: F401 (autouse fixtures)
from web.config import builtin_config
from web.robot import Robot
from web.signal import Rendezvous

OFFER = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
RPC_TIMEOUT = 15.0


async def call_error(address: str, host: str, *, ssl: SSLContext | None = None) -> GRPCError:
    """The status a Call for ``host`` ends with (a well-formed but unanswerable offer)."""
    name, port = address.rsplit(":", 1)
    channel = Channel(name, int(port), ssl=ssl)
    try:
        stub = SignalingServiceStub(channel)
        async with stub.Call.open(metadata=[(RPC_HOST_KEY, host)], timeout=RPC_TIMEOUT) as call:
            await call.send_message(pb.CallRequest(sdp=encode_sdp(SessionDescription("offer", OFFER))), end=True)
            try:
                async for _ in call:
                    pass
                await call.recv_trailing_metadata()
            except GRPCError as exc:
                return exc
    finally:
        channel.close()
    raise AssertionError(f"the Call for {host!r} succeeded")


async def test_signal_command_routes_exactly() -> None:
    """A rendezvous never maps hosts to itself: its own address is as unknown as any other name."""
    with ServerProcess([sys.executable, "-m", "web", "signal", "--host", "127.0.0.1", "--port", "0"]) as server:
        (address,) = await asyncio.to_thread(server.wait_ready, 1, 30)
        errors = await asyncio.gather(call_error(address, "nobody.test"), call_error(address, address))
        for error in errors:
            assert error.status is Status.NOT_FOUND
            assert error.message is not None and "host appears to be offline" in error.message
        async with aiohttp.ClientSession() as http, http.get(f"http://{address}/stats") as reply:
            stats = await reply.json()
        assert stats["methods"]["/proto.rpc.webrtc.v1.SignalingService/Call"]["grpc"] == 2
        assert server.poll() is None
        assert await asyncio.to_thread(server.terminate, 10) == 0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
async def robot_behind() -> AsyncIterator[tuple[Robot, int]]:
    """A robot answering at 127.0.0.1:PORT, where no rendezvous runs yet."""
    port = free_port()
    resources = await build_resources(builtin_config().resources)
    external = ExternalSignaling(f"127.0.0.1:{port}", ("robot.test",), insecure=True,
                                 options={"reconnect_wait": 0.05, "max_reconnect_wait": 0.4, "min_deadline": 1.0})
    async with Robot(resources, external_signaling=external) as robot:
        await robot.start("127.0.0.1", 0)
        yield robot, port


async def resource_count(address: str, host: str) -> int:
    async with await dial(address, host=host, timeout=RPC_TIMEOUT) as channel:
        reply = await robot_grpc.RobotServiceStub(channel.as_channel()).ResourceNames(
            robot_pb2.ResourceNamesRequest(), timeout=RPC_TIMEOUT
        )
        return len(reply.resources)


async def test_robot_registers_late_and_reconnects_after_the_rendezvous_restarts(
    robot_behind: tuple[Robot, int],
) -> None:
    robot, port = robot_behind
    rendezvous_address = f"127.0.0.1:{port}"
    # the rendezvous is down: the robot still serves its own port (internal signaling)
    expected = await resource_count(f"127.0.0.1:{robot.port}", "anything")
    assert expected > 0
    answerer = robot.external_answerer
    assert answerer is not None and answerer.stats.streams == 0

    for _restart in range(2):
        rendezvous = Rendezvous(MemoryCallQueue(offline_delay=0.2))
        try:
            await rendezvous.start("127.0.0.1", port)
            opened = answerer.stats.streams
            await eventually(lambda o=opened: answerer.stats.streams > o, timeout=10, what="answerer registered")
            assert await resource_count(rendezvous_address, "robot.test") == expected
            with pytest.raises(GRPCError) as unknown:
                await resource_count(rendezvous_address, "other.test")
            assert unknown.value.status is Status.NOT_FOUND
        finally:
            await rendezvous.close()
    # and the robot never noticed beyond its logs: its own port still answers
    assert await resource_count(f"127.0.0.1:{robot.port}", "anything") == expected


async def test_rendezvous_mints_rest_credentials_per_request() -> None:
    """OptionalWebRTCConfig goes through the provider every time (a fixed config would repeat itself)."""
    clock = [1_000_000.0]
    ice = IceSettings(rest=TurnRest(("turn:127.0.0.1:9?transport=tcp",), b"k", "bot", ttl=60), clock=lambda: clock[0])
    seen: list[tuple[str, ...]] = []
    async with Rendezvous(MemoryCallQueue(offline_delay=0.2), ice=ice) as rendezvous:
        await rendezvous.start("127.0.0.1", 0)
        assert rendezvous.port is not None
        channel = Channel("127.0.0.1", rendezvous.port)
        try:
            stub = SignalingServiceStub(channel)
            for _ in range(2):
                reply = await stub.OptionalWebRTCConfig(pb.OptionalWebRTCConfigRequest(),
                                                        metadata=[(RPC_HOST_KEY, "robot.test")], timeout=RPC_TIMEOUT)
                seen.append(tuple(s.username for s in reply.config.additional_ice_servers))
                clock[0] += 5
        finally:
            channel.close()
    assert seen == [("1000060:bot",), ("1000065:bot",)]


async def test_rendezvous_serves_grpc_web_with_cors_for_allowed_origins() -> None:
    """Browsers signal through the rendezvous with gRPC-web; only listed origins get CORS headers."""
    ice = IceSettings([IceServer(("stun:stun.test:3478",))])
    path = "/proto.rpc.webrtc.v1.SignalingService/OptionalWebRTCConfig"
    async with Rendezvous(MemoryCallQueue(), ice=ice, allowed_origins=["https://app.example.org"]) as rendezvous:
        await rendezvous.start("127.0.0.1", 0)
        assert rendezvous.port is not None
        async with aiohttp.ClientSession() as http:
            allowed = await wire.call(http, rendezvous.port, path, pb.OptionalWebRTCConfigRequest(),
                                      headers={"rpc-host": "robot.test", "Origin": "https://app.example.org"})
            other = await wire.call(http, rendezvous.port, path, pb.OptionalWebRTCConfigRequest(),
                                    headers={"rpc-host": "robot.test", "Origin": "https://evil.example.net"})
            robot_api = await wire.call(http, rendezvous.port, "/viam.robot.v1.RobotService/ResourceNames",
                                        robot_pb2.ResourceNamesRequest(), headers={"rpc-host": "robot.test"})
    assert allowed.status == 0
    assert allowed.headers["access-control-allow-origin"] == "https://app.example.org"
    (message,) = allowed.messages
    reply = pb.OptionalWebRTCConfigResponse.FromString(message)
    assert [list(s.urls) for s in reply.config.additional_ice_servers] == [["stun:stun.test:3478"]]
    assert "access-control-allow-origin" not in other.headers
    assert robot_api.status == Status.UNIMPLEMENTED.value  # signaling only: no robot behind it
