"""API keys scoped to robots on ``peerbot signal``, end to end in process.

One :class:`~web.signal.Rendezvous` (authenticator built from the real command-line flags) and two
:class:`~web.robot.Robot` s registered there with their own secrets; the pure-Python dialer is the
caller over WebRTC on loopback (aioice kept on 127.0.0.1 by tests/webrtc/conftest.py's fixtures).
A key scoped to robot A reaches A; for robot B it gets no token, and no token it could hold
(A's, an older wide one, a forged one) gets its Call or CallUpdate past the handler table: the
queue records every operation, and robot B's answerer counts the offers it received.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import AsyncIterator
from pathlib import Path

import jwt
import pytest
from grpclib import GRPCError, Status
from grpclib.client import Channel

from signaling.auth import CREDS_API_KEY, Authenticator
from signaling.const import RPC_HOST_KEY
from signaling.gen.proto.rpc.v1 import auth_pb2
from signaling.gen.proto.rpc.v1.auth_grpc import AuthServiceStub
from signaling.gen.proto.rpc.webrtc.v1 import signaling_pb2 as pb
from signaling.gen.proto.rpc.webrtc.v1.signaling_grpc import SignalingServiceStub
from tests.nat.test_rendezvous_auth import (  # noqa: F401 (built_resources: autouse fixture)
    OFFER,
    OTHER,
    ROBOT,
    RPC_TIMEOUT,
    RecordingQueue,
    authenticate,
    built_resources,
    readings_via,
    robot_at,
)
from tests.webrtc.conftest import eventually, loopback_only, no_leaked_tasks  # noqa: F401 (autouse fixtures)
from web.main import _parser
from web.robot import Robot
from web.signal import Rendezvous, signal_authenticator

SIGNING_KEY = "0123456789abcdef" * 3
LAB = ("lab", "lab-secret")  # scoped to robot A's two names
OPS = ("ops", "ops-secret")  # every robot, written explicitly


def flags(signing_key_file: str) -> argparse.Namespace:
    """The flags ``peerbot signal`` would get, parsed by its own parser."""
    return _parser().parse_args([
        "signal", "--signing-key-file", signing_key_file,
        "--api-key", f"{LAB[0]}:{LAB[1]}@{','.join(ROBOT.hosts)}", "--api-key", f"{OPS[0]}:{OPS[1]}@*",
        "--robot-secret", f"{','.join(ROBOT.hosts)}={ROBOT.secret}",
        "--robot-secret", f"{','.join(OTHER.hosts)}={OTHER.secret}",
    ])


@pytest.fixture
async def scoped(tmp_path: Path) -> AsyncIterator[tuple[Rendezvous, RecordingQueue, Robot, Robot]]:
    key_file = tmp_path / "signing.key"
    key_file.write_text(SIGNING_KEY)
    auth = signal_authenticator(flags(str(key_file)))
    assert auth is not None
    queue = RecordingQueue()
    async with Rendezvous(queue, auth=auth) as server:
        await server.start("127.0.0.1", 0)
        address = server.addresses[0]
        async with robot_at(address, ROBOT.hosts, ROBOT.secret) as robot_a, \
                robot_at(address, OTHER.hosts, OTHER.secret) as robot_b:
            for robot in (robot_a, robot_b):
                await robot.start("127.0.0.1", 0)
            for robot in (robot_a, robot_b):
                answerer = robot.external_answerer
                assert answerer is not None
                await eventually(lambda a=answerer: a.stats.streams > 0, timeout=10, what="the robot registered")
            yield server, queue, robot_a, robot_b


def offers_to(queue: RecordingQueue, host: str) -> list[str]:
    """The caller-side queue operations for ``host`` (a robot's own presence/recv are not offers)."""
    return [op for op in queue.touched if op.split(" ", 1)[0] in {"init", "update", "done", "error"}
            and op.endswith(f" {host}")]


async def call_and_update(address: str, host: str, token: str) -> tuple[Status, Status]:
    """The statuses of a Call and a CallUpdate for ``host`` with ``token``."""
    name, port = address.rsplit(":", 1)
    channel = Channel(name, int(port))
    metadata = [(RPC_HOST_KEY, host), ("authorization", f"Bearer {token}")]
    statuses: list[Status] = []
    try:
        stub = SignalingServiceStub(channel)
        try:
            async with stub.Call.open(metadata=metadata, timeout=RPC_TIMEOUT) as call:
                await call.send_message(pb.CallRequest(sdp=OFFER), end=True)
                await call.recv_message()
            statuses.append(Status.OK)
        except GRPCError as exc:
            statuses.append(exc.status)
        try:
            await stub.CallUpdate(pb.CallUpdateRequest(uuid="00000000-0000-0000-0000-000000000000", done=True),
                                  metadata=metadata, timeout=RPC_TIMEOUT)
            statuses.append(Status.OK)
        except GRPCError as exc:
            statuses.append(exc.status)
    finally:
        channel.close()
    return statuses[0], statuses[1]


async def test_a_key_scoped_to_robot_a_reaches_a_and_never_b(
    scoped: tuple[Rendezvous, RecordingQueue, Robot, Robot],
) -> None:
    server, queue, robot_a, robot_b = scoped
    address = server.addresses[0]
    for host in ROBOT.hosts:  # both names of A are in the scope
        token = await authenticate(address, host, *LAB[:1], CREDS_API_KEY, LAB[1])
        assert {"temperature_c", "humidity_pct"} <= set(await readings_via(address, host, token))
    assert robot_a.external_answerer is not None and robot_a.external_answerer.stats.offers == 2

    b = OTHER.hosts[0]
    with pytest.raises(GRPCError) as denied:  # no token for B at all
        await authenticate(address, b, LAB[0], CREDS_API_KEY, LAB[1])
    assert denied.value.status is Status.PERMISSION_DENIED
    assert denied.value.message == f"API key 'lab' may not reach host '{b}'"

    a_token = await authenticate(address, ROBOT.hosts[0], LAB[0], CREDS_API_KEY, LAB[1])
    with pytest.raises(GRPCError) as dialed:  # our dialer with A's token, aimed at B
        await readings_via(address, b, a_token)
    assert dialed.value.status is Status.PERMISSION_DENIED
    assert await call_and_update(address, b, a_token) == (Status.PERMISSION_DENIED, Status.PERMISSION_DENIED)

    assert offers_to(queue, b) == []
    assert robot_b.external_answerer is not None and robot_b.external_answerer.stats.offers == 0
    assert len(robot_b.peer_sessions) == 0


async def test_without_rpc_host_the_token_names_only_the_scope(
    scoped: tuple[Rendezvous, RecordingQueue, Robot, Robot],
) -> None:
    """viam-sdk's Rust dialer authenticates without ``rpc-host``: a scoped key's token still covers
    only its robots, an ``@*`` key's every robot."""
    server, queue, _robot_a, robot_b = scoped
    address = server.addresses[0]
    name, port = address.rsplit(":", 1)
    channel = Channel(name, int(port))
    tokens: dict[str, str] = {}
    try:
        for key_id, secret in (LAB, OPS):
            reply = await AuthServiceStub(channel).Authenticate(auth_pb2.AuthenticateRequest(
                entity=key_id, credentials=auth_pb2.Credentials(type=CREDS_API_KEY, payload=secret)),
                timeout=RPC_TIMEOUT)
            tokens[key_id] = reply.access_token
    finally:
        channel.close()

    def aud(token: str) -> list[str]:
        value = jwt.decode(token, options={"verify_signature": False})["aud"]
        assert isinstance(value, list)
        return value

    assert aud(tokens["lab"]) == sorted(ROBOT.hosts)
    assert aud(tokens["ops"]) == sorted([*ROBOT.hosts, *OTHER.hosts])
    b = OTHER.hosts[0]
    assert await call_and_update(address, b, tokens["lab"]) == (Status.PERMISSION_DENIED, Status.PERMISSION_DENIED)
    assert offers_to(queue, b) == []
    assert "temperature_c" in await readings_via(address, b, tokens["ops"])  # the control: @* reaches B
    assert robot_b.external_answerer is not None and robot_b.external_answerer.stats.offers == 1


async def test_forged_and_older_wider_tokens_do_not_reach_b(
    scoped: tuple[Rendezvous, RecordingQueue, Robot, Robot],
) -> None:
    server, queue, _robot_a, robot_b = scoped
    address = server.addresses[0]
    b = OTHER.hosts[0]
    now = int(time.time())
    claims: dict[str, object] = {"sub": LAB[0], "aud": [b], "iss": "peerbot", "iat": now, "exp": now + 60,
                                 "rpc_creds_type": CREDS_API_KEY}
    forged = jwt.encode(claims, b"not-the-rendezvous-signing-key-0123456789", algorithm="HS256")
    # a genuine token from before the key was narrowed: same --signing-key-file, key then unscoped
    before = Authenticator([], robot_secrets=[ROBOT, OTHER], hosts=[*ROBOT.hosts, *OTHER.hosts],
                           signing_key=SIGNING_KEY.encode())
    older = before.issue(LAB[0], CREDS_API_KEY, b)
    assert await call_and_update(address, b, forged) == (Status.UNAUTHENTICATED, Status.UNAUTHENTICATED)
    assert await call_and_update(address, b, older) == (Status.PERMISSION_DENIED, Status.PERMISSION_DENIED)
    with pytest.raises(GRPCError) as dialed:
        await readings_via(address, b, older)
    assert dialed.value.status is Status.PERMISSION_DENIED
    assert "may not reach host" in (dialed.value.message or "")
    assert offers_to(queue, b) == []
    assert robot_b.external_answerer is not None and robot_b.external_answerer.stats.offers == 0
