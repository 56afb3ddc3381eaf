"""Fixtures for signaling tests: real SignalingServices behind grpclib's ChannelFor, over one of three queue setups.

The conformance tests (test_queue.py, test_service.py) run unchanged on every setup, as goutils
runs its queue suite on memory, one MongoDB queue and two:

* ``memory``: one :class:`MemoryCallQueue`;
* ``redis1``: one :class:`RedisCallQueue` on a real redis-server;
* ``redis2``: two RedisCallQueues (two signaling instances) sharing that Redis. Callers use
  instance A (``setup.caller``, the ``stub``), answerers instance B (``setup.answerer``, ``channel``).

Every test also checks that it leaves no asyncio task behind (the goleak discipline of goutils).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from grpclib.client import Channel
from grpclib.testing import ChannelFor

from signaling.gen.proto.rpc.webrtc.v1.signaling_grpc import SignalingServiceStub
from signaling.memory_queue import MemoryCallQueue
from signaling.queue import CallQueue
from signaling.redis_queue import RedisCallQueue
from signaling.service import SignalingService
from tests.redisserver import RedisServer, flushed, private_redis, redis_server

from .fakes import FakePeer

__all__ = ["private_redis", "redis_server"]

LEAK_SETTLE = 1.0
SETUPS = ("memory", "redis1", "redis2")
#: Short TTLs so that tests can watch an instance's answerers expire.
REDIS_FAST = {"refresh_interval": 0.2, "presence_ttl": 1.0, "presence_poll": 0.02}


@pytest.fixture(autouse=True)
async def no_leaked_tasks() -> AsyncIterator[None]:
    """Fail a test that leaves tasks running, after letting cancellations settle (bounded)."""
    before = set(asyncio.all_tasks())
    yield
    loop = asyncio.get_running_loop()
    give_up = loop.time() + LEAK_SETTLE
    current = asyncio.current_task()
    while True:
        leaked = [t for t in asyncio.all_tasks() if t is not current and t not in before and not t.done()]
        if not leaked or loop.time() > give_up:
            break
        await asyncio.sleep(0.01)
    assert not leaked, f"leaked tasks: {[t.get_name() for t in leaked]}"


@dataclass(frozen=True, slots=True)
class Stats:
    """The queue-independent part of MemoryQueueStats / RedisQueueStats; all zero when idle."""

    calls: int = 0
    pending: int = 0
    waiting_answerers: int = 0
    present: dict[str, int] = field(default_factory=dict)
    callers: dict[str, int] = field(default_factory=dict)


IDLE = Stats()


@dataclass(slots=True)
class QueueSetup:
    name: str
    caller: CallQueue
    answerer: CallQueue
    redis: RedisServer | None = None

    @property
    def queues(self) -> tuple[CallQueue, ...]:
        return (self.caller,) if self.caller is self.answerer else (self.caller, self.answerer)

    async def stats(self) -> Stats:
        if isinstance(self.caller, MemoryCallQueue):
            s = self.caller.stats()
            return Stats(s.calls, s.pending, s.waiting_answerers, s.present, s.callers)
        assert isinstance(self.caller, RedisCallQueue) and isinstance(self.answerer, RedisCallQueue)
        shared = await self.caller.stats()  # calls, offers and counts live in Redis: one view
        waiting = shared.waiting_answerers
        if self.answerer is not self.caller:
            waiting += (await self.answerer.stats()).waiting_answerers
        return Stats(shared.calls, shared.pending, waiting, shared.present, shared.callers)

    async def eventually(self, predicate: Callable[[Stats], bool], timeout: float = 1.0) -> None:
        """Poll the stats until ``predicate`` holds, failing after ``timeout`` seconds."""
        loop = asyncio.get_running_loop()
        give_up = loop.time() + timeout
        while not predicate(stats := await self.stats()):
            if loop.time() > give_up:
                raise AssertionError(f"condition not reached in time: {stats}")
            await asyncio.sleep(0.01)

    async def eventually_idle(self, timeout: float = 1.0) -> None:
        await self.eventually(lambda stats: stats == IDLE, timeout)

    async def close(self) -> None:
        for queue in self.queues:
            await queue.close()


MakeSetup = Callable[..., Awaitable[QueueSetup]]


@pytest.fixture(params=SETUPS)
async def make_setup(request: pytest.FixtureRequest) -> AsyncIterator[MakeSetup]:
    """``await make_setup(**queue_options)``: a fresh setup of this test's kind, closed at teardown."""
    kind: str = request.param
    server = flushed(request.getfixturevalue("redis_server")) if kind != "memory" else None
    made: list[QueueSetup] = []

    async def make(**options: Any) -> QueueSetup:
        if server is None:
            queue = MemoryCallQueue(**options)
            setup = QueueSetup(kind, queue, queue)
        else:
            options = {**REDIS_FAST, **options}
            a = await RedisCallQueue.connect(server.url, **options)
            b = await RedisCallQueue.connect(server.url, **options) if kind == "redis2" else a
            setup = QueueSetup(kind, a, b, server)
        made.append(setup)
        return setup

    yield make
    for setup in made:
        await setup.close()


@pytest.fixture
async def setup(make_setup: MakeSetup) -> QueueSetup:
    return await make_setup(offline_delay=0.3)


@pytest.fixture
async def service(setup: QueueSetup) -> SignalingService:
    """The instance callers reach."""
    return SignalingService(setup.caller, offer_deadline=2.0, heartbeat_interval=0.05)


@pytest.fixture
async def answer_service(setup: QueueSetup, service: SignalingService) -> SignalingService:
    """The instance answerers reach (the same one unless the setup has two)."""
    if setup.answerer is setup.caller:
        return service
    return SignalingService(setup.answerer, offer_deadline=2.0, heartbeat_interval=0.05)


@pytest.fixture
async def caller_channel(service: SignalingService) -> AsyncIterator[Channel]:
    async with ChannelFor([service]) as ch:
        yield ch


@pytest.fixture
async def channel(
    answer_service: SignalingService, service: SignalingService, caller_channel: Channel
) -> AsyncIterator[Channel]:
    """The answerers' channel."""
    if answer_service is service:
        yield caller_channel
        return
    async with ChannelFor([answer_service]) as ch:
        yield ch


@pytest.fixture
def stub(caller_channel: Channel) -> SignalingServiceStub:
    return SignalingServiceStub(caller_channel)


@pytest.fixture
def peer() -> FakePeer:
    return FakePeer()
