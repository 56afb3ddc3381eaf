"""The auth matrix on a real robot (one port, h2c and gRPC-web): every bad token on every transport
is refused before its handler runs; a good token gets through.

The robot's realm here is two hosts (itself and ``OTHER_HOST``, as robots sharing one signing key
would be), so "a genuine token for another host" (PERMISSION_DENIED) differs from "a token for an
audience this server does not serve at all" (UNAUTHENTICATED, goutils' "invalid audience").
Handlers are counted by wrapping the service classes before the robot is built, so a refused call
that reached its handler anyway would show up as a count.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import jwt
import pytest
from grpclib import GRPCError, Status
from grpclib.client import Channel

from peer.gen.viam.robot.v1 import robot_pb2
from peer.gen.viam.robot.v1.robot_grpc import RobotServiceStub
from peer.robot.service import RobotService
from signaling.auth import CREDS_API_KEY, CREDS_ROBOT_SECRET, ApiKey, Authenticator
from signaling.gen.proto.rpc.v1 import auth_pb2
from signaling.gen.proto.rpc.v1.auth_grpc import AuthServiceStub
from signaling.gen.proto.rpc.webrtc.v1 import signaling_pb2 as pb
from signaling.gen.proto.rpc.webrtc.v1.signaling_grpc import SignalingServiceStub
from signaling.memory_queue import MemoryCallQueue
from signaling.sdp import IceCandidate, SessionDescription, candidate_to_proto, encode_sdp
from signaling.service import SignalingService
from web.robot import ANSWER_WORKERS, SELF_HOST, Robot

from .conftest import MakeRobot, eventually
from .wire import call as grpc_web_call
from .wire import frame

KEY = ApiKey("key-1", "key-1-secret")
SIGNING_KEY = b"s" * 64
ROBOT_SECRET = "robot-secret"
OTHER_HOST = "robot-b.example"
RPC_HOST = "127.0.0.1:8080"
RESOURCE_NAMES = "/viam.robot.v1.RobotService/ResourceNames"
CALL = "/proto.rpc.webrtc.v1.SignalingService/Call"
OFFER_B64 = encode_sdp(SessionDescription("offer", "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"))
COUNTED = [(SignalingService, "Call"), (SignalingService, "CallUpdate"), (SignalingService, "Answer"),
           (RobotService, "ResourceNames")]


def _claims(aud: list[str]) -> dict[str, Any]:
    now = int(time.time())
    return {"sub": KEY.id, "aud": aud, "iss": "peerbot", "iat": now, "exp": now + 600, "rpc_creds_type": CREDS_API_KEY}


def _unsigned(claims: dict[str, Any]) -> str:
    def part(obj: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


def make_authenticator() -> Authenticator:
    return Authenticator([KEY], robot_secret=ROBOT_SECRET, hosts=[SELF_HOST, OTHER_HOST], signing_key=SIGNING_KEY)


#: row -> (authorization header or None, expected status)
BAD: dict[str, tuple[Callable[[Authenticator], str | None], Status]] = {
    "no-token": (lambda a: None, Status.UNAUTHENTICATED),
    "fake-basic": (lambda a: "Basic ZmFrZSB1c2VybmFtZTpmYWtlIHBhc3N3b3Jk", Status.UNAUTHENTICATED),
    "expired": (lambda a: "Bearer " + a.issue(KEY.id, CREDS_API_KEY, SELF_HOST, now=time.time() - 2 * a.token_ttl),
                Status.UNAUTHENTICATED),
    "wrong-audience": (lambda a: "Bearer " + jwt.encode(_claims(["api.example.com"]), SIGNING_KEY, "HS256"),
                       Status.UNAUTHENTICATED),
    "alg-none": (lambda a: "Bearer " + _unsigned(_claims([SELF_HOST])), Status.UNAUTHENTICATED),
    "bad-signature": (lambda a: "Bearer " + jwt.encode(_claims([SELF_HOST]), b"x" * 64, "HS256"),
                      Status.UNAUTHENTICATED),
    "another-host": (lambda a: "Bearer " + a.issue(KEY.id, CREDS_API_KEY, OTHER_HOST), Status.PERMISSION_DENIED),
}


class Rig:
    def __init__(self, robot: Robot, channel: Channel, http: aiohttp.ClientSession, counts: Counter[str]) -> None:
        self.robot = robot
        self.channel = channel
        self.http = http
        self.counts = counts
        self.signaling = SignalingServiceStub(channel)
        self.auth = robot.auth
        assert self.auth is not None

    def metadata(self, authorization: str | None) -> list[tuple[str, str]]:
        pairs = [("rpc-host", RPC_HOST)]
        if authorization is not None:
            pairs.append(("authorization", authorization))
        return pairs


@pytest.fixture
async def rig(make_robot: MakeRobot, http: aiohttp.ClientSession,
              monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Rig]:
    counts: Counter[str] = Counter()
    for cls, name in COUNTED:
        original = getattr(cls, name)

        def counting(original: Any = original, name: str = name) -> Callable[..., Awaitable[None]]:
            async def handler(self: Any, stream: Any) -> None:
                counts[name] += 1
                await original(self, stream)
            return handler

        monkeypatch.setattr(cls, name, counting())
    robot = await make_robot(auth=make_authenticator())
    # the robot's own answerer calls Answer in process (not through the handler table): let its
    # streams open, then count from there
    await eventually(lambda: counts["Answer"] == ANSWER_WORKERS, what="internal answerer streams open")
    counts.clear()
    channel = Channel("127.0.0.1", robot.port)
    try:
        yield Rig(robot, channel, http, counts)
    finally:
        channel.close()


# --- one function per transport: the call's final status ------------------------------------------------


async def _status(coro: Awaitable[Any]) -> Status:
    try:
        await asyncio.wait_for(coro, 10)
    except GRPCError as exc:
        return exc.status
    return Status.OK


async def via_call(rig: Rig, authorization: str | None) -> Status:
    async def run() -> None:
        async with rig.signaling.Call.open(metadata=rig.metadata(authorization)) as call:
            await call.send_message(pb.CallRequest(sdp=OFFER_B64), end=True)
            while await call.recv_message() is not None:
                pass
    return await _status(run())


async def via_call_update(rig: Rig, authorization: str | None) -> Status:
    candidate = candidate_to_proto(IceCandidate("candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host", sdp_mid="0"))
    request = pb.CallUpdateRequest(uuid="5b3c9f5e-0000-4000-8000-000000000000", candidate=candidate)
    return await _status(rig.signaling.CallUpdate(request, metadata=rig.metadata(authorization)))


async def via_answer(rig: Rig, authorization: str | None) -> Status:
    async def run() -> None:
        async with rig.signaling.Answer.open(metadata=rig.metadata(authorization)) as answer:
            await answer.send_request()
            await answer.recv_message()
    return await _status(run())


async def via_h2c(rig: Rig, authorization: str | None) -> Status:
    stub = RobotServiceStub(rig.channel)
    return await _status(stub.ResourceNames(robot_pb2.ResourceNamesRequest(), metadata=rig.metadata(authorization)))


async def via_grpc_web(rig: Rig, authorization: str | None) -> Status:
    headers = {} if authorization is None else {"authorization": authorization}
    answer = await grpc_web_call(rig.http, rig.robot.port, RESOURCE_NAMES, robot_pb2.ResourceNamesRequest(),
                                 headers=headers)
    return Status(answer.status)


async def via_grpc_web_call(rig: Rig, authorization: str | None) -> Status:
    headers = {"rpc-host": RPC_HOST, **({} if authorization is None else {"authorization": authorization})}
    answer = await grpc_web_call(rig.http, rig.robot.port, CALL, frame(pb.CallRequest(sdp=OFFER_B64)),
                                 headers=headers)
    return Status(answer.status)


TRANSPORTS: dict[str, tuple[Callable[[Rig, str | None], Awaitable[Status]], str]] = {
    "Call": (via_call, "Call"),
    "CallUpdate": (via_call_update, "CallUpdate"),
    "Answer": (via_answer, "Answer"),
    "direct-h2c": (via_h2c, "ResourceNames"),
    "grpc-web": (via_grpc_web, "ResourceNames"),
    "grpc-web-Call": (via_grpc_web_call, "Call"),
}


@pytest.mark.parametrize("transport", list(TRANSPORTS))
@pytest.mark.parametrize("row", list(BAD))
async def test_bad_credentials_are_refused_before_the_handler(rig: Rig, row: str, transport: str) -> None:
    make_header, expected = BAD[row]
    via, counted = TRANSPORTS[transport]
    assert rig.auth is not None
    status = await via(rig, make_header(rig.auth))
    assert status is expected, f"{row} x {transport}: {status.name}, expected {expected.name}"
    assert rig.counts[counted] == 0, f"{row} x {transport}: the handler ran"
    assert isinstance(queue := rig.robot.signaling.queue, MemoryCallQueue) and queue.stats().calls == 0


async def _token(rig: Rig) -> str:
    stub = AuthServiceStub(rig.channel)
    reply = await stub.Authenticate(auth_pb2.AuthenticateRequest(
        entity=KEY.id, credentials=auth_pb2.Credentials(type=CREDS_API_KEY, payload=KEY.secret)))
    return reply.access_token


@pytest.mark.parametrize("transport", ["Call", "CallUpdate", "direct-h2c", "grpc-web", "grpc-web-Call"])
async def test_a_good_token_reaches_the_handler(rig: Rig, transport: str) -> None:
    via, counted = TRANSPORTS[transport]
    status = await via(rig, f"Bearer {await _token(rig)}")
    assert status not in (Status.UNAUTHENTICATED, Status.PERMISSION_DENIED), status
    assert rig.counts[counted] == 1
    if transport in ("direct-h2c", "grpc-web"):
        assert status is Status.OK
    if transport == "CallUpdate":
        assert status is Status.NOT_FOUND  # authorized, and the uuid names no call


async def test_answer_needs_robot_credentials(rig: Rig) -> None:
    assert rig.auth is not None
    api_key_token = f"Bearer {await _token(rig)}"
    assert await via_answer(rig, api_key_token) is Status.PERMISSION_DENIED
    assert rig.counts["Answer"] == 0
    robot_token = "Bearer " + rig.auth.issue(SELF_HOST, CREDS_ROBOT_SECRET, SELF_HOST)
    task = asyncio.create_task(via_answer(rig, robot_token))
    try:
        await eventually(lambda: rig.counts["Answer"] == 1, what="Answer handler invoked")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_authenticate_needs_no_token_and_checks_the_secret(rig: Rig) -> None:
    stub = AuthServiceStub(rig.channel)
    with pytest.raises(GRPCError) as caught:
        await stub.Authenticate(auth_pb2.AuthenticateRequest(
            entity=KEY.id, credentials=auth_pb2.Credentials(type=CREDS_API_KEY, payload="wrong")))
    assert caught.value.status is Status.PERMISSION_DENIED
    token = await _token(rig)
    assert rig.auth is not None and rig.auth.verify(token).audience == (SELF_HOST,)
    # over gRPC-web too (the TS SDK authenticates there)
    request = auth_pb2.AuthenticateRequest(entity=KEY.id, credentials=auth_pb2.Credentials(type=CREDS_API_KEY,
                                                                                           payload=KEY.secret))
    answer = await grpc_web_call(rig.http, rig.robot.port, "/proto.rpc.v1.AuthService/Authenticate", request,
                                 headers={"rpc-host": RPC_HOST})
    assert answer.status == 0
    reply = auth_pb2.AuthenticateResponse.FromString(answer.messages[0])
    assert rig.auth.verify(reply.access_token).entity == KEY.id


async def test_page_and_stats_stay_open(rig: Rig) -> None:
    for path in ("/", "/stats"):
        async with rig.http.get(f"http://127.0.0.1:{rig.robot.port}{path}") as response:
            assert response.status == 200, path


async def test_without_auth_authenticate_is_unimplemented(make_robot: MakeRobot) -> None:
    robot = await make_robot()
    channel = Channel("127.0.0.1", robot.port)
    try:
        with pytest.raises(GRPCError) as caught:
            await AuthServiceStub(channel).Authenticate(auth_pb2.AuthenticateRequest(entity="x"))
        assert caught.value.status is Status.UNIMPLEMENTED
        reply = await RobotServiceStub(channel).ResourceNames(robot_pb2.ResourceNamesRequest())
        assert reply.resources
    finally:
        channel.close()


async def test_signaling_without_rpc_host_is_for_the_robot_itself(rig: Rig) -> None:
    """A robot checks such a call against its own host; the handler then judges the metadata."""
    token = await _token(rig)
    reply = await rig.signaling.ReportConnectionMetadata(pb.ReportConnectionMetadataRequest(),
                                                         metadata={"authorization": f"Bearer {token}"})
    assert reply == pb.ReportConnectionMetadataResponse()
    with pytest.raises(GRPCError) as caught:
        await rig.signaling.CallUpdate(pb.CallUpdateRequest(uuid="x"), metadata={"authorization": f"Bearer {token}"})
    assert caught.value.status is Status.UNKNOWN and "rpc-host" in (caught.value.message or "")
    assert rig.counts["CallUpdate"] == 1
