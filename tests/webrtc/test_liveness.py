"""IceLiveness decisions with the probe and the packet counter replaced (times scaled down ~10x).

The real path (aiortc peers, a SIGKILLed viewer, a crashed Chromium tab) is tested in
tests/stream/test_stream.py and tests/browser/test_video.py; here, the rules: a slow but answering
peer is kept, a peer that is heard from (packets) needs no probe, a stall of our own loop closes
nothing, and a silent peer is closed once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from peer.webrtc import liveness
from peer.webrtc.liveness import IceLiveness

INTERVAL = 0.1
DEAD_AFTER = 0.4


class Peer:
    """What the watchdog sees of the other side: a probe answer and a received-packet count."""

    def __init__(self, answer: Callable[[], Awaitable[bool]]) -> None:
        self.answer = answer
        self.packets: int | None = None


@pytest.fixture
def peer(monkeypatch: pytest.MonkeyPatch) -> Peer:
    async def never() -> bool:
        raise AssertionError("set peer.answer")

    fake = Peer(never)

    async def probe(pc: Any) -> bool:
        return await fake.answer()

    monkeypatch.setattr(liveness, "probe_selected_pair", probe)
    monkeypatch.setattr(liveness, "packets_received", lambda pc: fake.packets)
    return fake


class Reasons(list[str]):
    """What ``on_dead`` was called with; :attr:`called` is set at the first call."""

    def __init__(self) -> None:
        super().__init__()
        self.called = asyncio.Event()

    def __call__(self, reason: str) -> None:
        self.append(reason)
        self.called.set()


def watch() -> tuple[IceLiveness, Reasons]:
    reasons = Reasons()
    pc: Any = object()  # never touched: the probe and the counter are replaced
    watchdog = IceLiveness(pc, reasons, tag="t", interval=INTERVAL, dead_after=DEAD_AFTER)
    watchdog.start()
    return watchdog, reasons


def answering_after(delay: float, result: bool = True) -> Callable[[], Awaitable[bool]]:
    async def answer() -> bool:
        await asyncio.sleep(delay)
        return result
    return answer


async def test_silent_peer_is_closed_once(peer: Peer) -> None:
    peer.answer = answering_after(0.15, False)  # every probe times out
    watchdog, reasons = watch()
    try:
        await asyncio.wait_for(reasons.called.wait(), 5)
        await asyncio.sleep(0.3)
        assert len(reasons) == 1 and "ICE probes" in reasons[0] and not watchdog.running
        assert watchdog.missed >= liveness.MIN_MISSES
    finally:
        await watchdog.aclose()


async def test_slow_answers_keep_the_peer(peer: Peer) -> None:
    """Answers slower than the probe interval (a distant relay) still count: probes overlap."""
    peer.answer = answering_after(3 * INTERVAL)
    watchdog, reasons = watch()
    try:
        await asyncio.sleep(12 * INTERVAL + DEAD_AFTER)
        assert reasons == [] and watchdog.running and watchdog.answered >= 5
    finally:
        await watchdog.aclose()


async def test_a_peer_that_sends_needs_no_probe(peer: Peer) -> None:
    peer.answer = answering_after(0.01, False)  # would be closed if it were asked
    peer.packets = 0
    watchdog, reasons = watch()

    async def traffic() -> None:
        while True:
            await asyncio.sleep(INTERVAL / 3)
            assert peer.packets is not None
            peer.packets += 1

    sender = asyncio.ensure_future(traffic())
    try:
        await asyncio.sleep(10 * INTERVAL + DEAD_AFTER)
        assert reasons == [] and watchdog.sent == 0 and watchdog.heard >= 5
    finally:
        sender.cancel()
        await asyncio.wait({sender})
        await watchdog.aclose()


async def test_a_stall_of_our_own_loop_closes_nothing(peer: Peer) -> None:
    peer.answer = answering_after(0.01)
    watchdog, reasons = watch()
    try:
        await asyncio.sleep(2 * INTERVAL)
        time.sleep(3 * DEAD_AFTER)  # noqa: ASYNC251 - on purpose: our loop stalls, nothing is heard meanwhile
        await asyncio.sleep(6 * INTERVAL)
        assert reasons == [] and watchdog.running
    finally:
        await watchdog.aclose()
