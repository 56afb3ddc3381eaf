"""aiortc's SCTP with :mod:`peer.webrtc.sctp_tuning` installed: still a correct SCTP, in fewer datagrams.

Two real ``RTCPeerConnection`` objects talk over loopback (the conftest keeps ICE on 127.0.0.1, no
STUN): ordered delivery of many small messages both ways, a burst of mixed sizes that fragment,
deterministic packet loss (retransmission with bundling and delayed SACKs), ``bufferedAmount``
and ``bufferedamountlow``, interop with an association left on stock aiortc, when SACKs go (after
the delay, at every second packet, at once for a gap or an RFC 7053 I bit), and the datagram count
of a request/response exchange with and without the patch. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import logging
import random
import types
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from struct import pack

import aiortc
import pytest
from aiortc import RTCConfiguration, RTCDataChannel, RTCPeerConnection
from aiortc.rtcsctptransport import DataChunk, RTCSctpTransport, parse_packet
from google_crc32c import value as crc32c

from peer.webrtc import sctp_tuning
from peer.webrtc.rtc import new_peer_connection

from .conftest import WAIT

pytestmark = pytest.mark.timeout(90)

#: Loss tests: every ``DROP_EVERY``-th SCTP packet (after the channel opened) is dropped, both ways.
DROP_EVERY = 20
#: Bound on a whole transfer under loss: aiortc's T3 is at least 1 s, and a tail loss needs it.
LOSS_WAIT = 40.0


@pytest.fixture(autouse=True)
def tuned(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The patch is in place for every test here (even with ``PEERBOT_SCTP_TUNING=0`` outside), and
    afterwards the process is as it was before the test."""
    was_installed = sctp_tuning.installed()
    monkeypatch.delenv(sctp_tuning.DISABLE_ENV, raising=False)
    sctp_tuning.uninstall()
    assert sctp_tuning.install(), "sctp_tuning refused to install on the pinned aiortc"
    try:
        yield
    finally:
        sctp_tuning.uninstall()
        if was_installed:
            sctp_tuning.install()


@contextmanager
def stock_sctp() -> Iterator[None]:
    """aiortc's own SCTP for associations created inside (the patch is put back on exit)."""
    sctp_tuning.uninstall()
    try:
        yield
    finally:
        assert sctp_tuning.install()


def make_stock(transport: RTCSctpTransport) -> None:
    """This one association runs aiortc's stock methods, whatever the class has."""
    for name, function in sctp_tuning._STOCK.items():
        setattr(transport, name, types.MethodType(function, transport))


# -- a connected pair ----------------------------------------------------------------------------
@dataclass
class End:
    pc: RTCPeerConnection
    channel: RTCDataChannel
    received: list[bytes] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    expected: int = 0

    @property
    def sctp(self) -> RTCSctpTransport:
        transport = self.pc.sctp
        assert transport is not None
        return transport

    def listen(self) -> None:
        def on_message(message: bytes | str) -> None:
            assert isinstance(message, bytes)
            self.received.append(message)
            if len(self.received) >= self.expected:
                self.arrived.set()

        self.channel.on("message", on_message)

    async def wait_for(self, count: int, timeout: float = WAIT) -> None:
        self.expected = count
        if len(self.received) < count:
            self.arrived.clear()
            async with asyncio.timeout(timeout):
                while len(self.received) < count:
                    await self.arrived.wait()
                    self.arrived.clear()


@asynccontextmanager
async def connected_pair(*, stock_b: bool = False) -> AsyncIterator[tuple[End, End]]:
    """Two peer connections with one negotiated, ordered, reliable channel each, open; closed on exit."""
    a = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    b = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        end_a = End(a, a.createDataChannel("data", negotiated=True, id=0, ordered=True))
        end_b = End(b, b.createDataChannel("data", negotiated=True, id=0, ordered=True))
        if stock_b:
            make_stock(end_b.sctp)
        opened = [asyncio.Event(), asyncio.Event()]
        end_a.channel.on("open", opened[0].set)
        end_b.channel.on("open", opened[1].set)
        end_a.listen()
        end_b.listen()
        async with asyncio.timeout(WAIT):
            await a.setLocalDescription(await a.createOffer())
            await b.setRemoteDescription(a.localDescription)
            await b.setLocalDescription(await b.createAnswer())
            await a.setRemoteDescription(b.localDescription)
            await opened[0].wait()
            await opened[1].wait()
        yield end_a, end_b
    finally:
        for pc in (a, b):
            async with asyncio.timeout(WAIT):
                await pc.close()


def count_datagrams(*ends: End) -> Callable[[], int]:
    """Count every UDP datagram the ends send from now on (at the ICE transport, under DTLS)."""
    total = [0]
    for end in ends:
        ice = end.sctp.transport.transport
        send = ice._send

        async def counted(data: bytes, send: Callable[[bytes], Awaitable[None]] = send) -> None:
            total[0] += 1
            await send(data)

        ice._send = counted
    return lambda: total[0]


def drop_packets(*ends: End, every: int = DROP_EVERY) -> Callable[[], int]:
    """From now on, drop every ``every``-th SCTP packet each end sends (deterministic loss)."""
    dropped = [0]
    for end in ends:
        dtls = end.sctp.transport
        send_data = dtls._send_data
        sent = [0]

        async def lossy(data: bytes, send_data: Callable[[bytes], Awaitable[None]] = send_data,
                        sent: list[int] = sent) -> None:
            sent[0] += 1
            if sent[0] % every == every // 2:
                dropped[0] += 1
                return
            await send_data(data)

        dtls._send_data = lossy  # type: ignore[method-assign]
    return lambda: dropped[0]


def numbered(count: int, rng: random.Random, sizes: list[int]) -> list[bytes]:
    """``count`` messages whose first 4 bytes are their index, of sizes drawn from ``sizes``."""
    return [i.to_bytes(4, "big") + rng.randbytes(max(0, rng.choice(sizes) - 4)) for i in range(count)]


# -- installation ------------------------------------------------------------------------------
def test_install_is_idempotent_and_patches_the_pinned_aiortc() -> None:
    assert aiortc.__version__ == sctp_tuning.AIORTC_VERSION
    assert sctp_tuning.install() and sctp_tuning.install() and sctp_tuning.installed()
    assert RTCSctpTransport._transmit is not sctp_tuning._STOCK["_transmit"]
    sctp_tuning.uninstall()
    assert not sctp_tuning.installed()
    assert RTCSctpTransport._transmit is sctp_tuning._STOCK["_transmit"]


async def test_connections_made_by_the_peer_package_install_it() -> None:
    sctp_tuning.uninstall()
    pc = new_peer_connection()
    try:
        assert sctp_tuning.installed()
    finally:
        await pc.close()


def test_another_aiortc_version_keeps_stock_behaviour(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    sctp_tuning.uninstall()
    monkeypatch.setattr(aiortc, "__version__", "1.17.0")
    with caplog.at_level(logging.WARNING, logger=sctp_tuning.__name__):
        assert not sctp_tuning.install()
        assert not sctp_tuning.install()  # refused once, warned once
    assert [r.getMessage() for r in caplog.records if "1.17.0" in r.getMessage()] and len(caplog.records) == 1
    assert RTCSctpTransport._transmit is sctp_tuning._STOCK["_transmit"]
    assert not sctp_tuning.installed()


def test_the_environment_can_turn_it_off(monkeypatch: pytest.MonkeyPatch) -> None:
    sctp_tuning.uninstall()
    monkeypatch.setenv(sctp_tuning.DISABLE_ENV, "0")
    assert not sctp_tuning.install()
    assert RTCSctpTransport._handle_data is sctp_tuning._STOCK["_handle_data"]


# -- delivery --------------------------------------------------------------------------------------
async def test_a_thousand_small_messages_each_way_arrive_complete_and_in_order() -> None:
    async with connected_pair() as (a, b):
        to_b = [b"a%04d" % i for i in range(1000)]
        to_a = [b"b%04d" % i for i in range(1000)]
        for x, y in zip(to_b, to_a, strict=True):
            a.channel.send(x)
            b.channel.send(y)
        await asyncio.gather(b.wait_for(1000), a.wait_for(1000))
        assert b.received == to_b and a.received == to_a
        for end in (a, b):
            stats = sctp_tuning.stats(end.sctp)
            # 1000 DATA chunks went out in far fewer packets than stock aiortc's 1000
            assert stats.chunks_sent >= 1000 and stats.packets_sent < 200, stats


async def test_a_burst_of_mixed_sizes_arrives_intact() -> None:
    rng = random.Random(4960)
    sizes = [1, 2, 3, 4, 5, 99, 1155, 1159, 1160, 1161, 1176, 1188, 2321, 4096, 16_384, 65_535, 100_000, 200 * 1024]
    async with connected_pair() as (a, b):
        to_b = numbered(120, rng, sizes)
        to_a = numbered(60, rng, sizes)
        for message in to_b:
            a.channel.send(message)
        for message in to_a:
            b.channel.send(message)
        await asyncio.gather(b.wait_for(len(to_b), 30.0), a.wait_for(len(to_a), 30.0))
        assert b.received == to_b and a.received == to_a


async def test_everything_arrives_in_order_despite_packet_loss() -> None:
    rng = random.Random(9260)
    sizes = [1, 20, 100, 600, 1160, 1500, 3000, 20_000]
    async with connected_pair() as (a, b):
        dropped = drop_packets(a, b)
        to_b = numbered(400, rng, sizes)
        to_a = numbered(400, rng, sizes)
        for x, y in zip(to_b, to_a, strict=True):
            a.channel.send(x)
            b.channel.send(y)
        await asyncio.gather(b.wait_for(len(to_b), LOSS_WAIT), a.wait_for(len(to_a), LOSS_WAIT))
        assert b.received == to_b and a.received == to_a
        assert dropped() >= 10  # the loss was real, and was repaired
        assert all(sctp_tuning.stats(end.sctp).sacks_immediate > 0 for end in (a, b))  # gaps were reported at once


async def test_request_response_survives_lost_packets_and_lost_delayed_sacks() -> None:
    """Ping-pong, where each lost packet is the only one in flight: T3 and duplicate SACKs recover it."""
    async with connected_pair() as (a, b):

        def respond(message: bytes | str) -> None:
            assert isinstance(message, bytes)
            if message.endswith(b"/2"):
                for part in (b"/1", b"/2", b"/3"):
                    b.channel.send(message[:-2] + b"=" + part)

        b.channel.on("message", respond)
        dropped = drop_packets(a, b, every=16)
        rounds = 40
        for i in range(rounds):
            a.channel.send(b"%d/1" % i)
            a.channel.send(b"%d/2" % i)
            await a.wait_for(3 * (i + 1), LOSS_WAIT)
        assert a.received == [b"%d=/%d" % (i, part) for i in range(rounds) for part in (1, 2, 3)]
        assert b.received == [b"%d/%d" % (i, part) for i in range(rounds) for part in (1, 2)]
        assert dropped() >= 2


async def test_buffered_amount_drains_to_zero_and_bufferedamountlow_fires() -> None:
    async with connected_pair() as (a, b):
        low = asyncio.Event()
        fired = [0]

        def on_low() -> None:
            fired[0] += 1
            low.set()

        a.channel.bufferedAmountLowThreshold = 64 * 1024
        a.channel.on("bufferedamountlow", on_low)
        chunk = bytes(16 * 1024)
        for _ in range(128):  # 2 MiB, far more than the congestion window admits at once
            a.channel.send(chunk)
        assert a.channel.bufferedAmount > 64 * 1024
        async with asyncio.timeout(30.0):
            await low.wait()
            while a.channel.bufferedAmount:  # noqa: ASYNC110 - aiortc has no event for "empty"
                await asyncio.sleep(0.01)
        assert fired[0] == 1
        await b.wait_for(128, 30.0)
        assert sum(map(len, b.received)) == 128 * len(chunk)


async def test_a_tuned_association_talks_to_a_stock_one() -> None:
    rng = random.Random(3758)
    async with connected_pair(stock_b=True) as (a, b):
        assert sctp_tuning.stats(b.sctp).packets_sent == 0
        to_b = numbered(300, rng, [1, 50, 1160, 5000, 70_000])
        to_a = numbered(300, rng, [1, 50, 1160, 5000, 70_000])
        for x, y in zip(to_b, to_a, strict=True):
            a.channel.send(x)
            b.channel.send(y)
        await asyncio.gather(b.wait_for(len(to_b), 30.0), a.wait_for(len(to_a), 30.0))
        assert b.received == to_b and a.received == to_a
        assert sctp_tuning.stats(a.sctp).packets_sent > 0 and sctp_tuning.stats(b.sctp).packets_sent == 0


# -- when SACKs go ---------------------------------------------------------------------------------
async def wait_acknowledged(end: End, timeout: float = WAIT) -> None:
    """Until everything ``end`` sent is acknowledged (its retransmission queue is empty)."""
    async with asyncio.timeout(timeout):
        while end.sctp._sent_queue or end.sctp._outbound_queue:  # noqa: ASYNC110 - no event for this
            await asyncio.sleep(0.002)


async def test_a_lone_message_is_acknowledged_after_the_delay(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sctp_tuning, "SACK_DELAY_S", 0.05)
    async with connected_pair() as (a, b):
        before = sctp_tuning.stats(b.sctp).sacks_delayed
        loop = asyncio.get_running_loop()
        start = loop.time()
        a.channel.send(b"nobody answers this")
        await b.wait_for(1)
        assert a.sctp._sent_queue  # not acknowledged yet: B holds its SACK back
        await wait_acknowledged(a)
        assert loop.time() - start >= 0.04
        assert sctp_tuning.stats(b.sctp).sacks_delayed == before + 1
        assert a.sctp._t3_handle is None  # nothing outstanding, T3 stopped


async def test_every_second_packet_is_acknowledged_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sctp_tuning, "SACK_DELAY_S", 5.0)  # only the second packet can trigger it
    async with connected_pair() as (a, b):
        a.channel.send(b"first")
        await b.wait_for(1)
        await asyncio.sleep(0.05)
        assert a.sctp._sent_queue
        a.channel.send(b"second")  # a packet of its own: the first has gone
        await b.wait_for(2)
        await wait_acknowledged(a, timeout=1.0)  # well before the 5 s delay


async def test_a_peer_asking_for_immediate_sacks_gets_them(monkeypatch: pytest.MonkeyPatch) -> None:
    """RFC 7053: a DATA chunk with the I bit is acknowledged at once (dcSCTP sets it when cwnd is small)."""
    monkeypatch.setattr(sctp_tuning, "SACK_DELAY_S", 5.0)
    async with connected_pair() as (a, b):
        dtls = a.sctp.transport
        send_data = dtls._send_data

        async def with_i_bit(data: bytes) -> None:
            _, _, _, chunks = parse_packet(data)
            for chunk in chunks:
                if isinstance(chunk, DataChunk):
                    chunk.flags |= 0x08
            body = b"".join(bytes(chunk) for chunk in chunks)
            header = data[:8]
            await send_data(header + pack("<L", crc32c(header + b"\x00\x00\x00\x00" + body)) + body)

        dtls._send_data = with_i_bit  # type: ignore[method-assign]
        immediate = sctp_tuning.stats(b.sctp).sacks_immediate
        a.channel.send(b"ack me now")
        await b.wait_for(1)
        await wait_acknowledged(a, timeout=1.0)
        assert sctp_tuning.stats(b.sctp).sacks_immediate == immediate + 1


async def test_a_gap_is_reported_at_once_and_repaired(monkeypatch: pytest.MonkeyPatch) -> None:
    """RFC 9260 §6.7: the packet after a lost one gets a SACK with a gap block at once, not after the delay."""
    monkeypatch.setattr(sctp_tuning, "SACK_DELAY_S", 5.0)
    async with connected_pair() as (a, b):
        dtls = a.sctp.transport
        send_data = dtls._send_data
        lost: list[bytes] = []

        async def lose_first(data: bytes) -> None:
            if not lost:
                lost.append(data)
                return
            await send_data(data)

        dtls._send_data = lose_first  # type: ignore[method-assign]
        immediate = sctp_tuning.stats(b.sctp).sacks_immediate
        a.channel.send(b"lost once")
        await asyncio.sleep(0.05)
        a.channel.send(b"after the gap")
        async with asyncio.timeout(1.0):  # well before the 5 s delay, and before A's 1 s T3
            while sctp_tuning.stats(b.sctp).sacks_immediate == immediate:  # noqa: ASYNC110
                await asyncio.sleep(0.002)
        assert b.received == [] and lost
        await b.wait_for(2, timeout=8.0)  # T3 (3 s before any RTT sample) resends the first; the gap closes
        assert b.received == [b"lost once", b"after the gap"]
        await wait_acknowledged(a, timeout=1.0)


# -- datagrams per call ------------------------------------------------------------------------------
async def datagrams_per_round_trip(rounds: int) -> float:
    """The tunnel's unary shape: 2 messages out (headers, message), 3 back (headers, message, trailers)."""
    async with connected_pair() as (a, b):

        def respond(message: bytes | str) -> None:
            if isinstance(message, bytes) and message.startswith(b"message"):
                for frame in (b"headers", b"response", b"trailers"):
                    b.channel.send(frame)

        b.channel.on("message", respond)
        for _ in range(5):  # warm up (the first SACKs, cwnd)
            a.channel.send(b"headers")
            a.channel.send(b"message")
            await a.wait_for(len(a.received) + 3)
        await asyncio.sleep(2 * sctp_tuning.SACK_DELAY_S)  # let a pending delayed SACK go
        sent = count_datagrams(a, b)
        for _ in range(rounds):
            a.channel.send(b"headers")
            a.channel.send(b"message")
            await a.wait_for(len(a.received) + 3)
        await asyncio.sleep(2 * sctp_tuning.SACK_DELAY_S)  # the last response's SACK counts too
        return sent() / rounds


async def test_a_request_response_exchange_takes_fewer_datagrams() -> None:
    rounds = 50
    with stock_sctp():
        stock = await datagrams_per_round_trip(rounds)
    tuned = await datagrams_per_round_trip(rounds)
    logging.getLogger(__name__).info("datagrams per round trip: stock %.2f, tuned %.2f", stock, tuned)
    assert stock >= 9.5  # one packet per message, one SACK per packet: 2 + 2 + 3 + 3
    assert tuned <= 2.1  # the request with the SACK of the last response; the response with its SACK
    assert tuned < stock
