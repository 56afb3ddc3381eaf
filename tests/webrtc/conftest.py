"""aiortc ↔ aiortc on loopback: the fake robot served over WebRTC, in process.

Composition (what the robot's composition root does): ``Server`` (the built-in fake robot plus the
echo service of the tunnel tests) → its ``HandlerTable``, which also serves the
``SignalingService`` on a grpclib listener on 127.0.0.1:0, and an internal answerer whose offer
handler is our :class:`~peer.webrtc.OfferAnswerer`. Clients reach it with :func:`peer.webrtc.dial`.

Every test is kept on loopback: aioice gathers only 127.0.0.1, no STUN server is configured, and
aioice's mDNS resolver is replaced by :class:`FakeMDns` so a ``.local`` candidate never sends a
multicast query. Every test also checks that it leaves no task behind.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import aioice.ice
import aioice.mdns
import aioice.turn
import pytest

from peer.resource.build import build_resources
from peer.server import Server
from peer.webrtc import OfferAnswerer, PeerSessions, set_udp_receive_buffer
from signaling.answerer import Answerer
from signaling.internal import internal_answerer
from signaling.memory_queue import MemoryCallQueue
from signaling.service import SignalingService
from tests.tunnel.echo import EchoService
from web.config import builtin_config

WAIT = 10.0
LEAK_SETTLE = 3.0


class FakeMDns:
    """Stands in for aioice's mDNS protocol: resolves names from ``table``, never touches the network."""

    def __init__(self) -> None:
        self.table: dict[str, str] = {}
        self.queries: list[str] = []
        self.created = 0
        self.closed = 0

    async def resolve(self, hostname: str, timeout: float | None = 1.0) -> str | None:
        self.queries.append(hostname)
        await asyncio.sleep(0)
        return self.table.get(hostname)

    async def publish(self, hostname: str, addr: str) -> None:
        raise AssertionError("nothing in these tests publishes mDNS names")

    async def close(self) -> None:
        self.closed += 1


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeMDns]:
    """ICE on 127.0.0.1 only (aioice normally skips it and uses every other interface); no multicast."""
    mdns = FakeMDns()

    async def create_mdns_protocol() -> FakeMDns:
        mdns.created += 1
        return mdns

    monkeypatch.setattr(aioice.ice, "get_host_addresses", lambda use_ipv4, use_ipv6: ["127.0.0.1"])
    monkeypatch.setattr(aioice.turn, "UDP_SOCKET_BUFFER_SIZE", aioice.turn.UDP_SOCKET_BUFFER_SIZE)
    set_udp_receive_buffer()  # what the robot does at start-up (restored by monkeypatch)
    monkeypatch.setattr(aioice.mdns, "create_mdns_protocol", create_mdns_protocol)
    yield mdns


@pytest.fixture(autouse=True)
async def no_leaked_tasks() -> AsyncIterator[None]:
    """Fail a test that leaves tasks running, after letting cancellations settle (bounded), or that
    lets an exception reach the event loop's handler (an unretrieved task exception, a callback error)."""
    loop = asyncio.get_running_loop()
    reported: list[dict[str, Any]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: reported.append(context))
    before = set(asyncio.all_tasks())
    try:
        yield
        await _settle_tasks(before)
        gc.collect()  # unretrieved task exceptions are reported when the task is collected
        await asyncio.sleep(0)
    finally:
        loop.set_exception_handler(previous)
    assert not reported, f"exceptions reached the event loop: {[c.get('message') for c in reported]} {reported}"


async def _settle_tasks(before: set[asyncio.Task[Any]]) -> None:
    loop = asyncio.get_running_loop()
    give_up = loop.time() + LEAK_SETTLE
    current = asyncio.current_task()
    while True:
        leaked = [t for t in asyncio.all_tasks() if t is not current and t not in before and not t.done()]
        if not leaked or loop.time() > give_up:
            break
        await asyncio.sleep(0.02)
    assert not leaked, f"leaked tasks: {[t.get_name() for t in leaked]}"


@dataclass
class Robot:
    server: Server
    signaling: SignalingService
    sessions: PeerSessions
    answerer: Answerer
    echo: EchoService
    address: str
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def webrtc_calls(self) -> int:
        return self.server.handlers.stats.by_transport["webrtc"]

    def method_calls(self, path: str, transport: str = "webrtc") -> int:
        return self.server.handlers.stats.by_method.get(path, {}).get(transport, 0)


@pytest.fixture
async def robot() -> AsyncIterator[Robot]:
    resources = await build_resources(builtin_config().resources)
    server = Server(resources)
    echo = EchoService()
    queue = MemoryCallQueue(offline_delay=0.2)
    signaling = SignalingService(queue, offer_deadline=5.0)
    server.handlers.add([signaling, echo])
    await server.start("127.0.0.1", 0)
    address = f"127.0.0.1:{server.port}"
    sessions = PeerSessions()
    handle_offer = OfferAnswerer(server.handlers, sessions)
    try:
        async with internal_answerer(
            signaling, [address, "robot.test"], handle_offer, reconnect_wait=0.05, min_deadline=1.0
        ) as answerer:
            yield Robot(server, signaling, sessions, answerer, echo, address)
            # every test closes its clients: the server must have torn each session down by itself
            await eventually(lambda: len(sessions) == 0, timeout=5.0, what="server sessions of closed clients gone")
    finally:
        await sessions.close_all()
        await server.close()
        await queue.close()


async def eventually(ready: Any, timeout: float = WAIT, what: str = "condition") -> None:
    """Poll, bounded, for state that changes in callbacks with no event of its own to await."""
    try:
        async with asyncio.timeout(timeout):
            while not ready():  # noqa: ASYNC110 - nothing to await for these conditions
                await asyncio.sleep(0.01)
    except TimeoutError:
        raise AssertionError(f"{what} not reached within {timeout:g} s") from None
