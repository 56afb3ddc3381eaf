"""Auth on ``peerbot signal``: API-key callers, robots answering with their robot secret.

A :class:`~web.signal.Rendezvous` and :class:`~web.robot.Robot` run in process (aioice kept on
127.0.0.1 by tests/webrtc/conftest.py's fixtures), the pure-Python dialer is the caller. The queue
records every operation, so "refused before the queue is touched" is checked, not assumed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager

import aiohttp
import jwt
import pytest
from grpclib import GRPCError, Status
from grpclib.client import Channel

from peer.gen.viam.common.v1 import common_pb2
from peer.gen.viam.component.sensor.v1.sensor_grpc import SensorServiceStub
from peer.resource import ResourceBase
from peer.resource.build import build_resources
from peer.webrtc.dial import dial
from signaling.answerer import Answerer
from signaling.auth import (
    CREDS_API_KEY,
    CREDS_ROBOT_SECRET,
    ApiKey,
    Authenticator,
    RobotCredentials,
    RobotSecret,
)
from signaling.const import RPC_HOST_KEY
from signaling.errors import ErrorStatus
from signaling.external import ExternalSignaling
from signaling.gen.proto.rpc.v1 import auth_pb2
from signaling.gen.proto.rpc.v1.auth_grpc import AuthServiceStub
from signaling.gen.proto.rpc.webrtc.v1 import signaling_pb2 as pb
from signaling.gen.proto.rpc.webrtc.v1.signaling_grpc import SignalingServiceStub
from signaling.memory_queue import MemoryCallQueue
from signaling.queue import AnswererExchange, CallerExchange
from signaling.sdp import IceCandidate, SessionDescription, encode_sdp
from tests.nat.test_rendezvous import free_port
from tests.signaling.test_auth import unsigned
from tests.web import wire
from tests.webrtc.conftest import eventually, loopback_only, no_leaked_tasks  # noqa: F401 (autouse fixtures)
from web.config import builtin_config
from web.robot import Robot, robot_authenticator
from web.signal import Rendezvous

KEY = ApiKey("caller-key", "caller-secret")
ROBOT = RobotSecret(("robot.test", "robot.alias"), "robot-secret")
OTHER = RobotSecret(("other.test",), "other-secret")
GET_READINGS = "/viam.component.sensor.v1.SensorService/GetReadings"
RPC_TIMEOUT = 15.0
OFFER = encode_sdp(SessionDescription("offer", "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"))
FAST = {"reconnect_wait": 0.05, "max_reconnect_wait": 0.4, "min_deadline": 1.0}


class RecordingQueue(MemoryCallQueue):
    """The in-memory queue, noting every operation a signaling handler asks of it."""

    def __init__(self) -> None:
        super().__init__(offline_delay=0.2)
        self.touched: list[str] = []

    async def send_offer_init(self, host: str, sdp: str, disable_trickle: bool, *, deadline: float,
                              caller: str = "") -> tuple[str, CallerExchange]:
        self.touched.append(f"init {host}")
        return await super().send_offer_init(host, sdp, disable_trickle, deadline=deadline, caller=caller)

    async def send_offer_update(self, host: str, uuid: str, candidate: IceCandidate, *, caller: str = "") -> None:
        self.touched.append(f"update {host}")
        await super().send_offer_update(host, uuid, candidate, caller=caller)

    async def send_offer_done(self, host: str, uuid: str, *, caller: str = "") -> None:
        self.touched.append(f"done {host}")
        await super().send_offer_done(host, uuid, caller=caller)

    async def send_offer_error(self, host: str, uuid: str, error: ErrorStatus, *, caller: str = "") -> None:
        self.touched.append(f"error {host}")
        await super().send_offer_error(host, uuid, error, caller=caller)

    def answerer_presence(self, hosts: Sequence[str]) -> AbstractAsyncContextManager[None]:
        self.touched.append(f"presence {','.join(hosts)}")
        return super().answerer_presence(hosts)

    async def recv_offer(self, hosts: Sequence[str]) -> AnswererExchange:
        self.touched.append(f"recv {','.join(hosts)}")
        return await super().recv_offer(hosts)


def rendezvous_auth(signing_key: bytes | None = None) -> Authenticator:
    """What ``peerbot signal --api-key … --robot-secret …`` builds (see web.signal.signal_authenticator)."""
    robots = [ROBOT, OTHER]
    return Authenticator([KEY], robot_secrets=robots, hosts=[h for r in robots for h in r.hosts],
                         signing_key=signing_key)


async def authenticate(address: str, host: str, entity: str, creds_type: str, payload: str) -> str:
    name, port = address.rsplit(":", 1)
    channel = Channel(name, int(port))
    try:
        reply = await AuthServiceStub(channel).Authenticate(
            auth_pb2.AuthenticateRequest(entity=entity, credentials=auth_pb2.Credentials(type=creds_type,
                                                                                         payload=payload)),
            metadata=[(RPC_HOST_KEY, host)], timeout=RPC_TIMEOUT,
        )
    finally:
        channel.close()
    return reply.access_token


async def readings_via(address: str, host: str, token: str | None) -> dict[str, object]:
    metadata = {"authorization": f"Bearer {token}"} if token is not None else None
    async with await dial(address, host=host, timeout=RPC_TIMEOUT, metadata=metadata) as channel:
        reply = await SensorServiceStub(channel.as_channel()).GetReadings(
            common_pb2.GetReadingsRequest(name="sensor1"), timeout=RPC_TIMEOUT
        )
    return dict(reply.readings)


@pytest.fixture
async def rendezvous() -> AsyncIterator[tuple[Rendezvous, RecordingQueue]]:
    queue = RecordingQueue()
    async with Rendezvous(queue, auth=rendezvous_auth()) as server:
        await server.start("127.0.0.1", 0)
        yield server, queue


def robot_at(address: str, hosts: Sequence[str], secret: str | None) -> Robot:
    """A robot (the built-in sensors) answering at the rendezvous on ``address`` for ``hosts``."""
    return Robot(resources, external_signaling=ExternalSignaling(address, tuple(hosts), secret=secret, insecure=True,
                                                                               options=FAST))


resources: list[ResourceBase] = []


@pytest.fixture(autouse=True)
async def built_resources() -> None:
    resources[:] = await build_resources(builtin_config().resources)


async def test_robot_with_its_secret_answers_and_an_api_key_caller_reads_its_sensor(
    rendezvous: tuple[Rendezvous, RecordingQueue],
) -> None:
    server, _queue = rendezvous
    address = server.addresses[0]
    async with robot_at(address, ROBOT.hosts, ROBOT.secret) as robot:
        await robot.start("127.0.0.1", 0)
        answerer = robot.external_answerer
        assert answerer is not None
        await eventually(lambda: answerer.stats.streams > 0, timeout=10, what="the robot registered")
        for host in ROBOT.hosts:  # one robot token covers every name the robot answers for
            token = await authenticate(address, host, KEY.id, CREDS_API_KEY, KEY.secret)
            readings = await readings_via(address, host, token)
            assert {"temperature_c", "humidity_pct"} <= set(readings)
        # the calls ran on the robot over the data channel, as the principal the rendezvous vouched for
        assert robot.server.handlers.stats.by_method[GET_READINGS]["webrtc"] == 2
        assert {session.principal.entity for session in robot.peer_sessions if session.principal} <= {KEY.id}


async def test_robot_with_a_wrong_secret_is_refused_and_keeps_retrying(
    rendezvous: tuple[Rendezvous, RecordingQueue], caplog: pytest.LogCaptureFixture
) -> None:
    server, queue = rendezvous
    address = server.addresses[0]
    caplog.set_level(logging.INFO)
    # wrong secret; and another robot's (correct) secret for this robot's name
    for secret in ("guessed", OTHER.secret):
        caplog.clear()
        async with robot_at(address, ROBOT.hosts, secret) as robot:
            await robot.start("127.0.0.1", 0)
            answerer = robot.external_answerer
            assert answerer is not None
            waits: list[float] = []

            async def record(delay: float, waits: list[float] = waits) -> None:
                waits.append(delay)
                await asyncio.sleep(0.01)

            answerer._sleep = record
            await eventually(lambda w=waits: len(w) >= 8, timeout=10, what="repeated attempts")
            assert answerer.stats.streams == 0 and not any(t.startswith("presence") for t in queue.touched)
            assert max(waits) > min(waits)  # backing off, not hammering
            assert "failed to authenticate: invalid robot secret" in caplog.text
            assert any(r.levelno == logging.WARNING and "refused us" in r.getMessage() for r in caplog.records)
            assert answerer.running  # still trying; and the robot still serves its own port
            assert "temperature_c" in await readings_via(f"127.0.0.1:{robot.port}", "anything", None)
            with pytest.raises(GRPCError) as offline:  # nobody answers for the robot's name
                await readings_via(address, ROBOT.hosts[0],
                                   await authenticate(address, ROBOT.hosts[0], KEY.id, CREDS_API_KEY, KEY.secret))
            assert offline.value.status is Status.NOT_FOUND


async def test_a_robot_token_does_not_cover_a_name_it_has_no_secret_for(
    rendezvous: tuple[Rendezvous, RecordingQueue], caplog: pytest.LogCaptureFixture
) -> None:
    """Right secret, but the robot also claims ``other.test``: the Answer stream itself is refused."""
    server, queue = rendezvous
    hosts = (ROBOT.hosts[0], OTHER.hosts[0])
    async with robot_at(server.addresses[0], hosts, ROBOT.secret) as robot:
        await robot.start("127.0.0.1", 0)
        answerer = robot.external_answerer
        assert answerer is not None
        await eventually(lambda: caplog.text.count("refused us: PERMISSION_DENIED") >= 3, timeout=10,
                         what="refusals")
        assert "is not allowed on host 'other.test'" in caplog.text
        assert answerer.stats.streams == 0 and queue.touched == []
        assert "registered with signaling" not in caplog.text


def forged(claims: dict[str, object], key: bytes = b"not-the-rendezvous-key-0123456789abcdef") -> str:
    return jwt.encode(claims, key, algorithm="HS256")


async def test_callers_without_a_valid_token_for_the_host_are_refused_before_the_queue(
    rendezvous: tuple[Rendezvous, RecordingQueue],
) -> None:
    server, queue = rendezvous
    address = server.addresses[0]
    host = ROBOT.hosts[0]
    good = await authenticate(address, host, KEY.id, CREDS_API_KEY, KEY.secret)
    other_host = await authenticate(address, OTHER.hosts[0], KEY.id, CREDS_API_KEY, KEY.secret)
    now = int(time.time())
    claims: dict[str, object] = {"sub": KEY.id, "aud": [host], "iss": "peerbot", "iat": now, "exp": now + 60,
                                 "rpc_creds_type": CREDS_API_KEY}
    assert server.auth is not None
    expired = server.auth.issue(KEY.id, CREDS_API_KEY, host, now=now - 2 * server.auth.token_ttl)
    cases: dict[str, tuple[list[tuple[str, str]], Status]] = {
        "no token": ([], Status.UNAUTHENTICATED),
        "basic": ([("authorization", "Basic ZmFrZTpmYWtl")], Status.UNAUTHENTICATED),
        "foreign key": ([("authorization", f"Bearer {forged(claims)}")], Status.UNAUTHENTICATED),
        "alg none": ([("authorization", f"Bearer {unsigned(claims)}")], Status.UNAUTHENTICATED),
        "expired": ([("authorization", f"Bearer {expired}")], Status.UNAUTHENTICATED),
        "another robot's host": ([("authorization", f"Bearer {other_host}")], Status.PERMISSION_DENIED),
    }
    name, port = address.rsplit(":", 1)
    channel = Channel(name, int(port))
    try:
        stub = SignalingServiceStub(channel)
        for label, (auth, status) in cases.items():
            metadata = [(RPC_HOST_KEY, host), *auth]
            with pytest.raises(GRPCError) as call:
                async with stub.Call.open(metadata=metadata, timeout=RPC_TIMEOUT) as stream:
                    await stream.send_message(pb.CallRequest(sdp=OFFER), end=True)
                    await stream.recv_message()
            assert call.value.status is status, label
            update = pb.CallUpdateRequest(uuid="00000000-0000-0000-0000-000000000000", done=True)
            with pytest.raises(GRPCError) as call_update:
                await stub.CallUpdate(update, metadata=metadata, timeout=RPC_TIMEOUT)
            assert call_update.value.status is status, label
            with pytest.raises(GRPCError) as config:
                await stub.OptionalWebRTCConfig(pb.OptionalWebRTCConfigRequest(), metadata=metadata,
                                                timeout=RPC_TIMEOUT)
            assert config.value.status is status, label
        # an API key's genuine token for the host may call, but never Answer for it
        with pytest.raises(GRPCError) as answer:
            async with stub.Answer.open(metadata=[(RPC_HOST_KEY, host), ("authorization", f"Bearer {good}")],
                                        timeout=RPC_TIMEOUT) as stream:
                await stream.send_request()
                await stream.recv_message()
        assert answer.value.status is Status.PERMISSION_DENIED
        assert "robot-secret" in (answer.value.message or "")
        assert queue.touched == []
        # the control: the same token for the right host does reach the queue (offline: no robot)
        with pytest.raises(GRPCError) as offline:
            async with stub.Call.open(metadata=[(RPC_HOST_KEY, host), ("authorization", f"Bearer {good}")],
                                      timeout=RPC_TIMEOUT) as stream:
                await stream.send_message(pb.CallRequest(sdp=OFFER), end=True)
                await stream.recv_message()
        assert offline.value.status is Status.NOT_FOUND
        assert queue.touched == [f"init {host}"]
    finally:
        channel.close()


async def test_an_api_key_gets_no_token_for_a_host_no_robot_may_answer_for(
    rendezvous: tuple[Rendezvous, RecordingQueue],
) -> None:
    server, _queue = rendezvous
    with pytest.raises(GRPCError) as caught:
        await authenticate(server.addresses[0], "ghost.test", KEY.id, CREDS_API_KEY, KEY.secret)
    assert caught.value.status is Status.PERMISSION_DENIED


async def test_a_token_for_a_host_this_rendezvous_does_not_serve_is_an_invalid_audience(
    rendezvous: tuple[Rendezvous, RecordingQueue],
) -> None:
    """Same signing key, audience outside the rendezvous's robots: UNAUTHENTICATED "invalid audience"."""
    key = b"s" * 48
    queue = RecordingQueue()
    async with Rendezvous(queue, auth=rendezvous_auth(signing_key=key)) as shared:
        await shared.start("127.0.0.1", 0)
        elsewhere = Authenticator([KEY], signing_key=key).issue(KEY.id, CREDS_API_KEY, "ghost.test")
        name, port = shared.addresses[0].rsplit(":", 1)
        channel = Channel(name, int(port))
        try:
            with pytest.raises(GRPCError) as caught:
                await SignalingServiceStub(channel).OptionalWebRTCConfig(
                    pb.OptionalWebRTCConfigRequest(),
                    metadata=[(RPC_HOST_KEY, ROBOT.hosts[0]), ("authorization", f"Bearer {elsewhere}")],
                    timeout=RPC_TIMEOUT)
        finally:
            channel.close()
    assert caught.value.status is Status.UNAUTHENTICATED and caught.value.message == "invalid audience"
    assert queue.touched == []


async def test_robot_reauthenticates_after_the_rendezvous_restarts_with_a_new_key() -> None:
    port = free_port()
    address = f"127.0.0.1:{port}"
    async with robot_at(address, ROBOT.hosts, ROBOT.secret) as robot:
        await robot.start("127.0.0.1", 0)
        answerer = robot.external_answerer
        assert answerer is not None
        for _restart in range(2):  # a fresh random signing key each time: the old token is worthless
            async with Rendezvous(RecordingQueue(), auth=rendezvous_auth()) as server:
                await server.start("127.0.0.1", port)
                opened = answerer.stats.streams
                await eventually(lambda o=opened: answerer.stats.streams > o, timeout=15, what="re-registered")
                token = await authenticate(address, ROBOT.hosts[0], KEY.id, CREDS_API_KEY, KEY.secret)
                assert {"temperature_c"} <= set(await readings_via(address, ROBOT.hosts[0], token))


async def test_robot_credentials_renew_before_expiry(monkeypatch: pytest.MonkeyPatch) -> None:
    async with Rendezvous(RecordingQueue(), auth=Authenticator(
            [KEY], robot_secrets=[ROBOT], hosts=ROBOT.hosts, token_ttl=600)) as server:
        await server.start("127.0.0.1", 0)
        name, port = server.addresses[0].rsplit(":", 1)
        channel = Channel(name, int(port))
        try:
            credentials = RobotCredentials(channel, ROBOT.hosts[0], ROBOT.secret, renew_before=60)
            first = await credentials()
            assert await credentials() == first
            claims = jwt.decode(first["authorization"].removeprefix("Bearer "), options={"verify_signature": False})
            assert claims["aud"] == list(ROBOT.hosts) and claims["rpc_creds_type"] == CREDS_ROBOT_SECRET
            later = time.time() + 600 - 30  # inside the renewal window
            monkeypatch.setattr("signaling.auth.time.time", lambda: later)
            renewed = await credentials()
            assert renewed != first
            credentials.forget()
            assert await credentials() != renewed
        finally:
            channel.close()


async def test_answerer_counts_a_refused_stream_as_a_failure_not_a_registration(
    rendezvous: tuple[Rendezvous, RecordingQueue],
) -> None:
    """The stream-level refusal arrives as trailers-only; the answerer must not call that registered."""
    server, queue = rendezvous
    name, port = server.addresses[0].rsplit(":", 1)
    channel = Channel(name, int(port))
    token = await authenticate(server.addresses[0], ROBOT.hosts[0], KEY.id, CREDS_API_KEY, KEY.secret)

    async def never(*args: object) -> None:
        raise AssertionError("no offer expected")

    try:
        async with Answerer(channel, [ROBOT.hosts[0]], never, workers=1, reconnect_wait=0.05,
                            metadata={"authorization": f"Bearer {token}"}) as answerer:
            waits: list[float] = []

            async def record(delay: float) -> None:
                waits.append(delay)
                await asyncio.sleep(0.01)

            answerer._sleep = record
            await eventually(lambda: len(waits) >= 3, timeout=10, what="retries")
            assert answerer.stats.streams == 0 and queue.touched == []
            assert waits[2] > waits[0]  # the wait grows: no stream ever opened
    finally:
        channel.close()


async def test_authenticate_without_rpc_host_covers_every_host_the_rendezvous_serves(
    rendezvous: tuple[Rendezvous, RecordingQueue],
) -> None:
    """viam-sdk's Rust dialer sends no ``rpc-host`` to Authenticate (measured): its token must still work."""
    server, _queue = rendezvous
    name, port = server.addresses[0].rsplit(":", 1)
    channel = Channel(name, int(port))
    try:
        stub = AuthServiceStub(channel)
        tokens = {}
        for entity, creds_type, payload in ((KEY.id, CREDS_API_KEY, KEY.secret),
                                            (OTHER.hosts[0], CREDS_ROBOT_SECRET, OTHER.secret)):
            reply = await stub.Authenticate(auth_pb2.AuthenticateRequest(
                entity=entity, credentials=auth_pb2.Credentials(type=creds_type, payload=payload)), timeout=RPC_TIMEOUT)
            tokens[creds_type] = jwt.decode(reply.access_token, options={"verify_signature": False})["aud"]
        with pytest.raises(GRPCError) as wrong:  # without rpc-host a robot is its entity: its own secret only
            await stub.Authenticate(auth_pb2.AuthenticateRequest(
                entity=OTHER.hosts[0], credentials=auth_pb2.Credentials(type=CREDS_ROBOT_SECRET,
                                                                        payload=ROBOT.secret)), timeout=RPC_TIMEOUT)
    finally:
        channel.close()
    assert tokens[CREDS_API_KEY] == sorted([*ROBOT.hosts, *OTHER.hosts])
    assert tokens[CREDS_ROBOT_SECRET] == list(OTHER.hosts)
    assert wrong.value.status is Status.PERMISSION_DENIED


async def test_a_robot_with_its_own_keys_runs_rendezvous_calls_as_the_vouched_caller(
    rendezvous: tuple[Rendezvous, RecordingQueue],
) -> None:
    """The robot trusts the rendezvous it authenticated to (goutils: no auth on the WebRTC path);
    its own port still wants its own tokens, and a token on the data channel is checked against
    the robot's key (so the rendezvous's token there is refused: viam-sdk sends none)."""
    server, _queue = rendezvous
    address = server.addresses[0]
    own = robot_authenticator([ApiKey("robot-own", "robot-own-secret")])
    external = ExternalSignaling(address, ROBOT.hosts, secret=ROBOT.secret, insecure=True, options=FAST)
    async with Robot(resources, auth=own, external_signaling=external) as robot:
        await robot.start("127.0.0.1", 0)
        answerer = robot.external_answerer
        assert answerer is not None
        await eventually(lambda: answerer.stats.streams > 0, timeout=10, what="the robot registered")
        token = await authenticate(address, ROBOT.hosts[0], KEY.id, CREDS_API_KEY, KEY.secret)
        async with await dial(address, host=ROBOT.hosts[0], timeout=RPC_TIMEOUT,
                              metadata={"authorization": f"Bearer {token}"}) as channel:
            sensor = SensorServiceStub(channel.as_channel())
            request = common_pb2.GetReadingsRequest(name="sensor1")
            assert (await sensor.GetReadings(request, timeout=RPC_TIMEOUT)).readings
            [session] = [s for s in robot.peer_sessions if s.principal is not None]
            assert session.principal is not None and session.principal.entity == KEY.id
            with pytest.raises(GRPCError) as foreign:
                await sensor.GetReadings(request, metadata={"authorization": f"Bearer {token}"}, timeout=RPC_TIMEOUT)
            assert foreign.value.status is Status.UNAUTHENTICATED
        with pytest.raises(GRPCError) as direct:  # the robot's own signaling: its own keys only
            await readings_via(f"127.0.0.1:{robot.port}", "anything", token)
        assert direct.value.status is Status.UNAUTHENTICATED


async def test_a_robot_secret_against_a_rendezvous_without_auth_says_so(caplog: pytest.LogCaptureFixture) -> None:
    async with Rendezvous(RecordingQueue()) as server:
        await server.start("127.0.0.1", 0)
        async with robot_at(server.addresses[0], ROBOT.hosts, ROBOT.secret) as robot:
            await robot.start("127.0.0.1", 0)
            await eventually(lambda: "the signaling server has no auth" in caplog.text, timeout=10,
                             what="the robot's explanation")
            assert robot.external_answerer is not None and robot.external_answerer.stats.streams == 0


async def test_grpc_web_on_the_rendezvous_needs_the_token_too(rendezvous: tuple[Rendezvous, RecordingQueue]) -> None:
    server, _queue = rendezvous
    assert server.port is not None
    path = "/proto.rpc.webrtc.v1.SignalingService/OptionalWebRTCConfig"
    token = await authenticate(server.addresses[0], ROBOT.hosts[0], KEY.id, CREDS_API_KEY, KEY.secret)
    async with aiohttp.ClientSession() as http:
        without = await wire.call(http, server.port, path, pb.OptionalWebRTCConfigRequest(),
                                  headers={"rpc-host": ROBOT.hosts[0]})
        with_token = await wire.call(http, server.port, path, pb.OptionalWebRTCConfigRequest(),
                                     headers={"rpc-host": ROBOT.hosts[0], "authorization": f"Bearer {token}"})
    assert without.status == Status.UNAUTHENTICATED.value
    assert with_token.status == 0
