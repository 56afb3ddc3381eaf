"""Distributed signaling end to end: a real aiortc dial through two signaling instances sharing a real
redis-server, then Redis stalled (SIGSTOP) and killed (SIGKILL).

The robot's grpclib listener serves signaling instance A (where the dialer's Call lands); the
robot's internal answerer holds its Answer streams on instance B. The offer crosses Redis, the
peer connection forms, and from then on the session never touches Redis: it keeps serving while
new dials fail fast with UNAVAILABLE.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from google.protobuf import wrappers_pb2
from grpclib import GRPCError, Status

from peer.resource.build import build_resources
from peer.server import Server
from peer.webrtc import DialedChannel, OfferAnswerer, PeerSessions, dial
from signaling.answerer import Answerer
from signaling.internal import internal_answerer
from signaling.redis_queue import RedisCallQueue
from signaling.service import SignalingService
from tests.redisserver import RedisServer, private_redis
from tests.tunnel.echo import EchoService, EchoStub
from web.config import builtin_config

from .conftest import WAIT, eventually

__all__ = ["private_redis"]

pytestmark = pytest.mark.timeout(60)

#: Short enough that a stalled Redis fails a dial long before the dial's own timeout.
OP_TIMEOUT = 0.3
FAST = {"refresh_interval": 0.2, "presence_ttl": 1.0, "op_timeout": OP_TIMEOUT, "offline_delay": 0.5}


@dataclass
class TwoInstanceRobot:
    redis: RedisServer
    address: str
    answerer: Answerer
    sessions: PeerSessions


@pytest.fixture
async def robot(private_redis: RedisServer) -> AsyncIterator[TwoInstanceRobot]:
    queue_a = await RedisCallQueue.connect(private_redis.url, **FAST)
    queue_b = await RedisCallQueue.connect(private_redis.url, **FAST)
    server = Server(await build_resources(builtin_config().resources))
    server.handlers.add([SignalingService(queue_a, offer_deadline=5.0), EchoService()])
    await server.start("127.0.0.1", 0)
    address = f"127.0.0.1:{server.port}"
    sessions = PeerSessions()
    instance_b = SignalingService(queue_b, offer_deadline=5.0)
    try:
        async with internal_answerer(
            instance_b, [address], OfferAnswerer(server.handlers, sessions), reconnect_wait=0.05, min_deadline=1.0
        ) as answerer:
            yield TwoInstanceRobot(private_redis, address, answerer, sessions)
    finally:
        await sessions.close_all()
        await server.close()
        await queue_a.close()
        await queue_b.close()


async def _echo(channel: DialedChannel, payload: bytes) -> bytes:
    reply = await EchoStub(channel.as_channel()).Unary(wrappers_pb2.BytesValue(value=payload), timeout=WAIT)
    return bytes(reply.value)


async def _dial_fails_unavailable(address: str) -> GRPCError:
    with pytest.raises(GRPCError) as err:
        await asyncio.wait_for(dial(address, timeout=WAIT), WAIT + 1)
    return err.value


async def test_live_session_outlives_a_stalled_then_dead_redis(robot: TwoInstanceRobot) -> None:
    await eventually(lambda: robot.answerer.stats.streams >= 1, what="answer streams open on instance B")
    channel = await asyncio.wait_for(dial(robot.address, timeout=WAIT), WAIT + 1)
    try:
        assert await _echo(channel, b"before") == b"before"
        assert robot.answerer.stats.offers == 1  # the offer crossed Redis from A to B

        robot.redis.pause()
        try:
            stalled = await _dial_fails_unavailable(robot.address)
            # UNAVAILABLE from the store, not DEADLINE_EXCEEDED from the 5 s offer or 10 s dial bound.
            assert stalled.status is Status.UNAVAILABLE
            assert stalled.message == f"signaling store unavailable: no reply within {OP_TIMEOUT:g}s"
            assert await _echo(channel, b"during stall") == b"during stall"
        finally:
            robot.redis.resume()

        robot.redis.kill()
        gone = await _dial_fails_unavailable(robot.address)
        assert gone.status is Status.UNAVAILABLE
        assert gone.message is not None and gone.message.startswith("signaling store unavailable: ")
        assert await _echo(channel, b"after outage") == b"after outage"
    finally:
        await asyncio.wait_for(channel.close(), WAIT)
    await eventually(lambda: len(robot.sessions) == 0, timeout=5.0, what="server session of the closed client gone")
