"""Auth over a real aiortc ↔ aiortc connection: the data channel runs as the Call's principal.

The robot here is the webrtc fixture's composition (exact host routing, the internal answerer)
with auth switched on in its handler table, as ``web.robot.Robot`` does.
"""

from __future__ import annotations

import asyncio

import pytest
from grpclib import GRPCError, Status

from peer.gen.viam.robot.v1 import robot_pb2
from peer.gen.viam.robot.v1.robot_grpc import RobotServiceStub
from peer.webrtc import DialedChannel, dial
from signaling.auth import CREDS_API_KEY, ApiKey, Authenticator, AuthService, RequestAuthorizer

from .conftest import WAIT, Robot

pytestmark = pytest.mark.timeout(60)

KEY = ApiKey("operator", "operator-secret")


@pytest.fixture
def authenticator(robot: Robot) -> Authenticator:
    auth = Authenticator([KEY])
    authorizer = RequestAuthorizer(auth, host=robot.address)
    robot.server.handlers.add([AuthService(authorizer)])
    robot.server.handlers.auth = authorizer
    return auth


def token(auth: Authenticator, robot: Robot) -> str:
    """(The wire Authenticate is tested in tests/web and tests/signaling; grpclib serves only the
    methods it had when this fixture's server started, so the token is minted directly.)"""
    return auth.authenticate(KEY.id, CREDS_API_KEY, KEY.secret, robot.address)


async def names(channel: DialedChannel, metadata: dict[str, str] | None = None) -> int:
    reply = await RobotServiceStub(channel.as_channel()).ResourceNames(
        robot_pb2.ResourceNamesRequest(), metadata=metadata, timeout=WAIT)
    return len(reply.resources)


async def test_the_session_runs_as_the_caller(robot: Robot, authenticator: Authenticator) -> None:
    bearer = f"Bearer {token(authenticator, robot)}"
    dialed = await asyncio.wait_for(dial(robot.address, timeout=WAIT, metadata={"authorization": bearer}), WAIT + 1)
    try:
        assert await names(dialed) > 0  # no token on the data channel: the Call's principal
        [session] = list(robot.sessions)
        assert session.principal is not None and session.principal.entity == KEY.id
        assert await names(dialed, {"authorization": bearer}) > 0  # a token there is checked, and fine
        assert await names(dialed, {"authorization": "Basic ZmFrZTpmYWtl"}) > 0  # not a token: ignored
        forged = "Bearer " + Authenticator([KEY]).issue(KEY.id, CREDS_API_KEY, robot.address)  # other signing key
        with pytest.raises(GRPCError) as caught:
            await names(dialed, {"authorization": forged})
        assert caught.value.status is Status.UNAUTHENTICATED
        assert robot.method_calls("/viam.robot.v1.RobotService/ResourceNames") == 4
    finally:
        await asyncio.wait_for(dialed.close(), WAIT)


async def test_dialing_without_a_token_is_refused_at_signaling(robot: Robot, authenticator: Authenticator) -> None:
    with pytest.raises(GRPCError) as caught:
        await asyncio.wait_for(dial(robot.address, timeout=WAIT), WAIT + 1)
    assert caught.value.status is Status.UNAUTHENTICATED
    assert robot.answerer.stats.offers == 0 and len(robot.sessions) == 0


async def test_a_session_without_a_principal_needs_a_token_per_call(robot: Robot) -> None:
    """Auth switched on while a session made without it is open: its calls are no longer trusted."""
    dialed = await asyncio.wait_for(dial(robot.address, timeout=WAIT), WAIT + 1)
    try:
        assert await names(dialed) > 0
        auth = Authenticator([KEY])
        authorizer = RequestAuthorizer(auth, host=robot.address)
        robot.server.handlers.add([AuthService(authorizer)])
        robot.server.handlers.auth = authorizer
        with pytest.raises(GRPCError) as caught:
            await names(dialed)
        assert caught.value.status is Status.UNAUTHENTICATED
        assert await names(dialed, {"authorization": f"Bearer {token(auth, robot)}"}) > 0
    finally:
        await asyncio.wait_for(dialed.close(), WAIT)
