"""signaling.auth: tokens, credentials, and the rendezvous-style rules through the handler table.

A rendezvous routes hosts exactly and serves any host, so here a token for one host used for
another is PERMISSION_DENIED, and a call uuid is bound to the principal that created it.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator

import jwt
import pytest
from grpclib import GRPCError, Status
from grpclib.client import Channel
from grpclib.testing import ChannelFor

from peer.handlers import HandlerTable
from peer.operations import OperationManager
from peer.sessions import SessionManager
from signaling.answerer import Answerer
from signaling.auth import (
    CREDS_API_KEY,
    CREDS_ROBOT_SECRET,
    ApiKey,
    Authenticator,
    AuthService,
    PermissionDeniedError,
    RequestAuthorizer,
    RobotCredentials,
    UnauthenticatedError,
)
from signaling.errors import SignalingError
from signaling.gen.proto.rpc.v1 import auth_pb2
from signaling.gen.proto.rpc.v1.auth_grpc import AuthServiceStub
from signaling.gen.proto.rpc.webrtc.v1 import signaling_pb2 as pb
from signaling.gen.proto.rpc.webrtc.v1.signaling_grpc import SignalingServiceStub
from signaling.internal import internal_answerer
from signaling.memory_queue import MemoryCallQueue
from signaling.service import SignalingService

from .fakes import HOST, OFFER_B64, FakePeer, cand, eventually, md, update

ALICE = ApiKey("alice", "alice-secret")
MALLORY = ApiKey("mallory", "mallory-secret")
ROBOT_SECRET = "robot-secret-value"
KEY = b"k" * 64
OTHER_HOST = "other.robot"


def make_authenticator(**options: object) -> Authenticator:
    return Authenticator([ALICE, MALLORY], robot_secret=ROBOT_SECRET, signing_key=KEY, **options)  # type: ignore[arg-type]


def unsigned(claims: dict[str, object]) -> str:
    """A token with ``alg: none`` (PyJWT refuses to verify these; built by hand to be sure of the bytes)."""
    def part(obj: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


# --- tokens ---------------------------------------------------------------------------------------------


def test_issued_token_carries_the_claims_and_verifies() -> None:
    auth = make_authenticator()
    token = auth.authenticate("alice", CREDS_API_KEY, "alice-secret", HOST)
    header = jwt.get_unverified_header(token)
    claims = jwt.decode(token, options={"verify_signature": False})
    assert header["alg"] == "HS256"
    assert claims["sub"] == "alice" and claims["aud"] == [HOST] and claims["iss"] == "peerbot"
    assert claims["exp"] > claims["iat"] and claims["rpc_creds_type"] == CREDS_API_KEY and claims["jti"]
    principal = auth.verify(token)
    assert (principal.entity, principal.creds_type, principal.audience) == ("alice", CREDS_API_KEY, (HOST,))


@pytest.mark.parametrize(
    ("make_token", "reason"),
    [
        (lambda a: a.issue("alice", CREDS_API_KEY, HOST, now=time.time() - 2 * a.token_ttl), "expired"),
        (lambda a: jwt.encode({"sub": "alice", "aud": [HOST], "iss": "peerbot", "iat": int(time.time()),
                               "exp": int(time.time()) + 60}, b"x" * 64, algorithm="HS256"), "Signature"),
        (lambda a: unsigned({"sub": "alice", "aud": [HOST], "iss": "peerbot", "iat": int(time.time()),
                             "exp": int(time.time()) + 60}), "alg"),
        (lambda a: jwt.encode({"sub": "alice", "aud": [HOST], "iss": "peerbot", "iat": int(time.time()),
                               "exp": int(time.time()) + 60}, KEY, algorithm="HS512"), "alg"),
        (lambda a: jwt.encode({"sub": "alice", "aud": [HOST], "iss": "someone", "iat": int(time.time()),
                               "exp": int(time.time()) + 60}, KEY, algorithm="HS256"), "issuer"),
        (lambda a: jwt.encode({"sub": "alice", "aud": [HOST], "iss": "peerbot", "iat": int(time.time())},
                              KEY, algorithm="HS256"), "exp"),
        (lambda a: "not.a.token", ""),
    ],
    ids=["expired", "bad-signature", "alg-none", "alg-hs512", "issuer", "no-exp", "garbage"],
)
def test_bad_tokens_are_unauthenticated(make_token: object, reason: str) -> None:
    auth = make_authenticator()
    token = make_token(auth)  # type: ignore[operator]
    with pytest.raises(UnauthenticatedError) as caught:
        auth.verify(token)
    assert caught.value.status is Status.UNAUTHENTICATED
    assert reason.lower() in caught.value.message.lower()


def test_audience_outside_the_realm_is_unauthenticated_inside_it_permission_denied() -> None:
    auth = make_authenticator(hosts=[HOST, OTHER_HOST])
    elsewhere = auth.verify(jwt.encode({"sub": "alice", "aud": ["api.example.com"], "iss": "peerbot",
                                        "iat": int(time.time()), "exp": int(time.time()) + 60}, KEY))
    with pytest.raises(UnauthenticatedError, match="invalid audience"):
        auth.check_audience(elsewhere, HOST)
    other = auth.verify(auth.issue("alice", CREDS_API_KEY, OTHER_HOST))
    with pytest.raises(PermissionDeniedError, match="not allowed on host"):
        auth.check_audience(other, HOST)
    auth.check_audience(other, OTHER_HOST)


def test_credentials() -> None:
    auth = make_authenticator()
    with pytest.raises(PermissionDeniedError, match="failed to authenticate"):
        auth.check_credentials("alice", CREDS_API_KEY, "mallory-secret", HOST)
    with pytest.raises(PermissionDeniedError):
        auth.check_credentials("nobody", CREDS_API_KEY, "alice-secret", HOST)
    with pytest.raises(PermissionDeniedError):
        auth.check_credentials(HOST, CREDS_ROBOT_SECRET, "alice-secret", HOST)
    with pytest.raises(SignalingError, match="do not know how to handle") as unknown:
        auth.check_credentials("alice", "password", "alice-secret", HOST)
    assert unknown.value.status is Status.INVALID_ARGUMENT
    auth.check_credentials(HOST, CREDS_ROBOT_SECRET, ROBOT_SECRET, HOST)
    assert Authenticator([ALICE]).key_ids == {"alice"}
    with pytest.raises(PermissionDeniedError):
        Authenticator([ALICE]).check_credentials(HOST, CREDS_ROBOT_SECRET, "", HOST)


def test_api_key_parse_and_repr_hides_the_secret() -> None:
    key = ApiKey.parse("id-1:se:cret")
    assert (key.id, key.secret) == ("id-1", "se:cret")
    assert "se:cret" not in repr(key)
    for bad in ("nocolon", ":secret", "id:"):
        with pytest.raises(ValueError):
            ApiKey.parse(bad)
    with pytest.raises(ValueError, match="twice"):
        Authenticator([ALICE, ApiKey("alice", "x")])


# --- through the handler table (a rendezvous: exact routing, any host) ----------------------------------


class Rig:
    def __init__(self, channel: Channel, peer: FakePeer, auth: Authenticator) -> None:
        self.signaling = SignalingServiceStub(channel)
        self.auth_stub = AuthServiceStub(channel)
        self.peer = peer
        self.auth = auth

    async def token(self, key: ApiKey, host: str = HOST) -> str:
        reply = await self.auth_stub.Authenticate(
            auth_pb2.AuthenticateRequest(entity=key.id, credentials=auth_pb2.Credentials(type=CREDS_API_KEY,
                                                                                           payload=key.secret)),
            metadata=md(host),
        )
        return reply.access_token


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    queue = MemoryCallQueue(offline_delay=0.3)
    service = SignalingService(queue, offer_deadline=2.0)
    auth = make_authenticator()
    authorizer = RequestAuthorizer(auth)
    table = HandlerTable([service, AuthService(authorizer)], operations=OperationManager(),
                         sessions=SessionManager(lambda name: asyncio.sleep(0)))
    table.auth = authorizer
    peer = FakePeer(block=True)
    try:
        async with ChannelFor([table]) as channel, internal_answerer(service, [HOST], peer, reconnect_wait=0.05):
            yield Rig(channel, peer, auth)
    finally:
        await queue.close()


def bearer(token: str, host: str = HOST) -> list[tuple[str, str]]:
    return md(host, authorization=f"Bearer {token}")


async def test_call_update_with_a_foreign_uuid_is_not_found_and_the_offer_carries_the_caller(rig: Rig) -> None:
    alice, mallory = await rig.token(ALICE), await rig.token(MALLORY)
    async with rig.signaling.Call.open(metadata=bearer(alice)) as call:
        await call.send_message(pb.CallRequest(sdp=OFFER_B64), end=True)
        first = await asyncio.wait_for(call.recv_message(), 5)
        assert first is not None and first.HasField("init")
        assert [offer.caller for offer in rig.peer.offers] == ["alice"]
        with pytest.raises(GRPCError) as caught:
            await rig.signaling.CallUpdate(update(first.uuid, cand(1)), metadata=bearer(mallory))
        assert caught.value.status is Status.NOT_FOUND
        await rig.signaling.CallUpdate(update(first.uuid, cand(2)), metadata=bearer(alice))
        await eventually(lambda: [c.candidate for c in rig.peer.received[first.uuid]] == [cand(2).candidate], 5)
        await call.cancel()


async def test_token_for_another_host_is_permission_denied_on_call(rig: Rig) -> None:
    other = await rig.token(ALICE, host=OTHER_HOST)
    async with rig.signaling.Call.open(metadata=bearer(other, HOST)) as call:
        await call.send_message(pb.CallRequest(sdp=OFFER_B64), end=True)
        with pytest.raises(GRPCError) as caught:
            await asyncio.wait_for(call.recv_message(), 5)
    assert caught.value.status is Status.PERMISSION_DENIED
    assert rig.peer.offers == []


async def test_only_robot_credentials_may_answer(rig: Rig) -> None:
    alice = await rig.token(ALICE)
    with pytest.raises(GRPCError) as caught:
        async with rig.signaling.Answer.open(metadata=bearer(alice)) as answer:
            await answer.send_request()
            await asyncio.wait_for(answer.recv_message(), 5)
    assert caught.value.status is Status.PERMISSION_DENIED and "robot" in (caught.value.message or "")
    robot = await rig.auth_stub.Authenticate(
        auth_pb2.AuthenticateRequest(entity=HOST, credentials=auth_pb2.Credentials(type=CREDS_ROBOT_SECRET,
                                                                                     payload=ROBOT_SECRET)),
        metadata=md(HOST),
    )
    assert rig.auth.verify(robot.access_token).is_robot
    with pytest.raises(GRPCError) as caught:
        await rig.auth_stub.Authenticate(
            auth_pb2.AuthenticateRequest(entity=HOST, credentials=auth_pb2.Credentials(type=CREDS_ROBOT_SECRET,
                                                                                         payload="guess")),
            metadata=md(HOST),
        )
    assert caught.value.status is Status.PERMISSION_DENIED


async def test_authenticate_errors(rig: Rig) -> None:
    token = await rig.token(ALICE)
    cases = [
        (auth_pb2.AuthenticateRequest(entity="alice"), md(HOST), Status.INVALID_ARGUMENT),
        (auth_pb2.AuthenticateRequest(entity="alice", credentials=auth_pb2.Credentials(type="magic", payload="x")),
         md(HOST), Status.INVALID_ARGUMENT),
        (auth_pb2.AuthenticateRequest(entity="alice", credentials=auth_pb2.Credentials(type=CREDS_API_KEY,
                                                                                         payload="alice-secret")),
         bearer(token), Status.INVALID_ARGUMENT),
        (auth_pb2.AuthenticateRequest(entity="alice", credentials=auth_pb2.Credentials(type=CREDS_API_KEY,
                                                                                         payload="wrong")),
         md(HOST), Status.PERMISSION_DENIED),
    ]
    for request, metadata, status in cases:
        with pytest.raises(GRPCError) as caught:
            await rig.auth_stub.Authenticate(request, metadata=metadata)
        assert caught.value.status is status, (request, caught.value)
    # the Rust dialer's fake Basic header is not a token: Authenticate still works with it
    reply = await rig.auth_stub.Authenticate(
        auth_pb2.AuthenticateRequest(entity="alice", credentials=auth_pb2.Credentials(type=CREDS_API_KEY,
                                                                                        payload="alice-secret")),
        metadata=md(HOST, authorization="Basic ZmFrZSB1c2VybmFtZTpmYWtlIHBhc3N3b3Jk"),
    )
    assert rig.auth.verify(reply.access_token).entity == "alice"


async def test_signaling_without_rpc_host_on_a_rendezvous_is_refused(rig: Rig) -> None:
    token = await rig.token(ALICE)
    with pytest.raises(GRPCError) as caught:
        await rig.signaling.OptionalWebRTCConfig(pb.OptionalWebRTCConfigRequest(),
                                                 metadata=[("authorization", f"Bearer {token}")])
    assert caught.value.status is Status.PERMISSION_DENIED and "rpc-host" in (caught.value.message or "")


@pytest.fixture
async def rendezvous() -> AsyncIterator[tuple[Channel, MemoryCallQueue]]:
    """An authenticating rendezvous with no answerer of its own (robots register over the wire)."""
    queue = MemoryCallQueue(offline_delay=0.3)
    service = SignalingService(queue, offer_deadline=2.0)
    authorizer = RequestAuthorizer(make_authenticator())
    table = HandlerTable([service, AuthService(authorizer)], operations=OperationManager(),
                         sessions=SessionManager(lambda name: asyncio.sleep(0)))
    table.auth = authorizer
    try:
        async with ChannelFor([table]) as channel:
            yield channel, queue
    finally:
        await queue.close()


async def test_a_remote_answerer_registers_with_the_robot_secret(rendezvous: tuple[Channel, MemoryCallQueue]) -> None:
    channel, queue = rendezvous
    peer = FakePeer(block=True)
    credentials = RobotCredentials(channel, OTHER_HOST, ROBOT_SECRET)
    async with Answerer(channel, [OTHER_HOST], peer, metadata=credentials, reconnect_wait=0.05):
        await eventually(lambda: queue.stats().present.get(OTHER_HOST, 0) > 0)
        first = await credentials()
        assert await credentials() == first  # cached until close to expiry
        reply = await AuthServiceStub(channel).Authenticate(
            auth_pb2.AuthenticateRequest(entity=ALICE.id, credentials=auth_pb2.Credentials(type=CREDS_API_KEY,
                                                                                             payload=ALICE.secret)),
            metadata=md(OTHER_HOST))
        async with SignalingServiceStub(channel).Call.open(metadata=bearer(reply.access_token, OTHER_HOST)) as call:
            await call.send_message(pb.CallRequest(sdp=OFFER_B64), end=True)
            response = await asyncio.wait_for(call.recv_message(), 5)
            assert response is not None and response.HasField("init")
            assert [offer.caller for offer in peer.offers] == [ALICE.id]
            await call.cancel()


async def test_a_remote_answerer_with_a_wrong_secret_never_registers(
    rendezvous: tuple[Channel, MemoryCallQueue], caplog: pytest.LogCaptureFixture
) -> None:
    channel, queue = rendezvous
    peer = FakePeer()
    async with Answerer(channel, [OTHER_HOST], peer, metadata=RobotCredentials(channel, OTHER_HOST, "guess"),
                        reconnect_wait=0.05) as answerer:
        await eventually(lambda: "failed to authenticate" in caplog.text)
        assert answerer.stats.streams == 0 and queue.stats().present.get(OTHER_HOST, 0) == 0


def test_verified_tokens_are_cached_until_they_expire(monkeypatch: pytest.MonkeyPatch) -> None:
    auth = make_authenticator(token_ttl=60)
    token = auth.issue("alice", CREDS_API_KEY, HOST)
    decoded: list[str] = []
    original = auth._decode

    def counting(tok: str) -> tuple[object, float]:
        decoded.append(tok)
        return original(tok)

    monkeypatch.setattr(auth, "_decode", counting)
    assert auth.verify(token).entity == auth.verify(token).entity == "alice"
    assert len(decoded) == 1
    later = time.time() + 120
    monkeypatch.setattr("signaling.auth.time.time", lambda: later)
    auth.verify(token)  # PyJWT's own clock still says valid; the point is the cache was not trusted
    assert len(decoded) == 2
    with pytest.raises(UnauthenticatedError):
        auth.verify(token + "x")
