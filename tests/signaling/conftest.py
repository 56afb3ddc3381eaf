"""Fixtures for signaling tests: a real SignalingService and in-memory queue behind grpclib's ChannelFor.

Every test also checks that it leaves no asyncio task behind (the goleak discipline of goutils).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from grpclib.client import Channel
from grpclib.testing import ChannelFor

from signaling.gen.proto.rpc.webrtc.v1.signaling_grpc import SignalingServiceStub
from signaling.memory_queue import MemoryCallQueue
from signaling.service import SignalingService

from .fakes import FakePeer

LEAK_SETTLE = 1.0


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


@pytest.fixture
def queue() -> MemoryCallQueue:
    return MemoryCallQueue(offline_delay=0.3)


@pytest.fixture
async def service(queue: MemoryCallQueue) -> AsyncIterator[SignalingService]:
    svc = SignalingService(queue, offer_deadline=2.0, heartbeat_interval=0.05)
    yield svc
    await queue.close()


@pytest.fixture
async def channel(service: SignalingService) -> AsyncIterator[Channel]:
    async with ChannelFor([service]) as ch:
        yield ch


@pytest.fixture
def stub(channel: Channel) -> SignalingServiceStub:
    return SignalingServiceStub(channel)


@pytest.fixture
def peer() -> FakePeer:
    return FakePeer()
