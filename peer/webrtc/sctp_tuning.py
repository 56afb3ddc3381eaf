"""Fewer datagrams for aiortc's SCTP: chunk bundling, SACK bundling and delayed SACK.

This is the one module that reaches into aiortc's ``RTCSctpTransport`` internals (design.md: every
use of aiortc internals sits in one adapter module, with aiortc pinned). It was written against
aiortc 1.16.0 (:data:`AIORTC_VERSION`); :func:`install` refuses, with one warning, to patch any
other version, and stock behaviour is always a correct fallback, only slower. The patch replaces
methods on the class (no subclass: aiortc builds its transports itself), so it applies to every
association of the process; :func:`install` is called where peer connections are made.

Why (performance.md §2d, measured here): stock aiortc puts every chunk in its own packet
(``_send_chunk``: "no bundling for now") and answers every packet that carries DATA with a SACK
of its own. A unary call over the tunnel is 5 data-channel messages (request headers and message;
response headers, message and trailers), so 10 UDP datagrams, each costing a DTLS record, a
``sendto``, a ``recvfrom`` and SCTP parsing on both sides. With this module it is 2 in steady
state: the request (the SACK of the previous response first), and the response (its SACK first).

What changes, and the RFC behind it (RFC 9260, which obsoletes RFC 4960 with the same numbering):

* **Chunk bundling** (§6.10: multiple chunks per packet, control chunks first, within the path
  MTU). ``_data_channel_flush`` hands the queued messages to the outbound queue as far as one
  transmit can send them (aiortc's cwnd and max-burst limit; stock aiortc moves one message at a
  time, with a transmit after each), then calls ``_transmit`` once, which packs its chunks, in
  order, into as few packets of at most ``SCTP_MAX_PACKET_LENGTH`` (1189 B, aiortc's own limit)
  as they fit in, control chunks (SACK, FORWARD TSN) first. Retransmitted chunks are bundled the
  same way. The decisions are aiortc's, statement for statement (:func:`_fill`): flight size, cwnd and
  max-burst, T3 start/restart, ``_sent_count``/``_sent_time``, fast recovery. ``bufferedAmount``
  is decremented per message after the transmit, as aiortc does, so ``bufferedamountlow`` fires as
  before. A send schedules one flush task per batch of sends instead of one per message.
* **SACK bundling and delayed SACK** (§6.2: "SHOULD be generated for at least every second packet
  ... and SHOULD be generated within 200 ms of the arrival of any unacknowledged DATA chunk"). A
  packet carrying DATA no longer gets a SACK of its own right away: the SACK goes first in the next
  packet of DATA we send (the response, typically within a millisecond), or alone after
  :data:`SACK_DELAY_S` (20 ms, as libdatachannel configures usrsctp). It is sent *at once* when:
  a second packet carrying DATA is unacknowledged (§6.2); the packet held a duplicate TSN (§6.2: a
  MUST when there is no new DATA; done for every duplicate); a gap is open before or after the
  packet, i.e. loss is being reported or repaired (§6.7: gap reports SHOULD go at once); the packet
  held a FORWARD TSN; a DATA chunk has the I bit (RFC 7053 SACK-IMMEDIATELY: dcSCTP sets it while
  its cwnd is under 10 MTUs, so a browser's requests are still acknowledged at once); or the
  association is not ESTABLISHED.
* **The retransmit scan** in ``_transmit`` (performance.md §2d: 25 % of sender CPU in bulk) runs
  only when a chunk may be marked for retransmission: after a SACK with gap blocks (fast
  retransmit marks chunks only there) or a T3 expiry (which marks them all), until a full scan
  finds none left. webrtc-rs guarded the same scan (webrtc-rs/rtc PR #111).
* Two receive fast paths with aiortc's exact results: the next in-order TSN skips the sort and
  filters of ``_mark_received``, and a whole, in-order message skips the reassembly queue.

Timers. The delay cannot provoke a retransmission: it is far below every peer's minimum RTO
(aiortc and webrtc-rs 1 s, libdatachannel's usrsctp 200 ms, dcSCTP 120 ms or more, an RTO its
options require to be "larger than an expected peer delayed ack timeout"). It adds at most 20 ms
to the peer's RTT samples, well inside those minimums. Loss recovery is unchanged: gaps and
duplicates are reported at once, so the peer's fast retransmit (3 missing reports) works as
before, and T3 timers are untouched; if a delayed SACK is itself lost, the peer's T3 resends, the
duplicate is acknowledged at once.

Set ``PEERBOT_SCTP_TUNING=0`` in the environment to keep stock behaviour (for comparisons, or if a
peer misbehaves); :func:`uninstall` restores it at run time (tests).
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from struct import pack
from typing import Any, Final, cast

import aiortc
from aiortc import rtcsctptransport as sctp
from aiortc.rtcdatachannel import RTCDataChannel
from aiortc.rtcsctptransport import (
    Chunk,
    DataChunk,
    ForwardTsnChunk,
    InitChunk,
    RTCSctpTransport,
    SackChunk,
)
from aiortc.utils import uint16_add
from google_crc32c import value as crc32c

logger = logging.getLogger(__name__)

__all__ = ["AIORTC_VERSION", "DISABLE_ENV", "SACK_DELAY_S", "TuningStats", "install", "installed", "stats",
           "uninstall"]

#: The aiortc release this module was written and tested against (pyproject pins it).
AIORTC_VERSION: Final = "1.16.0"
#: How long a SACK may wait for outgoing DATA to ride on (RFC 9260 §6.2: at most 200 ms).
SACK_DELAY_S: Final = 0.020
#: ``PEERBOT_SCTP_TUNING=0`` (or ``off``/``false``/``no``) keeps aiortc's stock SCTP behaviour.
DISABLE_ENV: Final = "PEERBOT_SCTP_TUNING"

#: RFC 7053: the sender asks for an immediate SACK.
_DATA_SACK_IMMEDIATELY: Final = 0x08
#: A delayed-SACK timer this close to its deadline sends (asyncio may run timers a little early).
_TIMER_SLACK_S: Final = 0.001
#: DATA flags of an ordered message in one chunk (both fragment bits, not unordered).
_WHOLE_ORDERED_MASK: Final = sctp.SCTP_DATA_FIRST_FRAG | sctp.SCTP_DATA_LAST_FRAG | sctp.SCTP_DATA_UNORDERED
_WHOLE_ORDERED: Final = sctp.SCTP_DATA_FIRST_FRAG | sctp.SCTP_DATA_LAST_FRAG
#: Room for chunks in one packet (the common header is 12 bytes).
_MAX_CHUNK_BYTES: Final = sctp.SCTP_MAX_PACKET_LENGTH - sctp.SCTP_COMMON_HEADER_LENGTH
_STATE_ATTR: Final = "_peerbot_sctp_tuning"
#: aiortc methods the patched ones call (checked before patching; instance attributes cannot be).
_REQUIRED: Final = (
    "_flight_size_increase", "_get_inbound_stream", "_receive", "_receive_chunk", "_reset_deferred_streams",
    "_send_chunk", "_t3_restart", "_t3_start", "_transmit_reconfig",
)


@dataclass(slots=True)
class TuningStats:
    """Per-transport counters (observability and tests)."""

    packets_sent: int = 0  # packets sent by ``_transmit`` (DATA / FORWARD TSN, possibly with a SACK)
    chunks_sent: int = 0
    sacks_bundled: int = 0  # SACKs that rode on a DATA packet
    sacks_immediate: int = 0  # SACKs sent at once (2nd packet, gap, duplicate, FORWARD TSN, I bit)
    sacks_delayed: int = 0  # SACKs sent alone when the delay ran out


@dataclass(slots=True)
class _State:
    stats: TuningStats
    #: A chunk in ``_sent_queue`` may have ``_retransmit`` set (True at first: the transport may
    #: predate :func:`install`).
    retransmit_marked: bool = True
    #: Packets carrying DATA received since our last SACK.
    unacked_packets: int = 0
    #: The packet being handled carried a DATA chunk we had already received.
    duplicate: bool = False
    #: When the pending SACK must go out at the latest (``loop.time()``); ``None``: nothing pending.
    sack_deadline: float | None = None
    #: The one timer that checks ``sack_deadline``. It is never cancelled: a SACK sent early just
    #: clears the deadline, and a timer that finds a later deadline re-arms itself for it, so a
    #: busy association pays one timer per :data:`SACK_DELAY_S`, not a timer per packet.
    sack_timer: asyncio.TimerHandle | None = None
    sack_task: asyncio.Task[None] | None = None
    #: The flush task scheduled by a send and not started yet (one per batch of sends, not per send).
    flush_task: asyncio.Future[None] | None = None


def _state(transport: RTCSctpTransport) -> _State:
    state: _State | None = transport.__dict__.get(_STATE_ATTR)
    if state is None:
        state = _State(TuningStats())
        transport.__dict__[_STATE_ATTR] = state
    return state


def stats(transport: RTCSctpTransport) -> TuningStats:
    """The counters of one transport (all zero while the patch is not installed)."""
    return _state(transport).stats


def _log_debug(transport: RTCSctpTransport) -> Callable[..., None]:
    """aiortc's per-transport debug logger (a no-op unless DEBUG was on when it started)."""
    log: Callable[..., None] = getattr(transport, "_RTCSctpTransport__log_debug", _no_log)
    return log


def _no_log(*args: object) -> None:
    pass


# -- sending: bundling ---------------------------------------------------------------------------
def _enqueue(
    self: RTCSctpTransport,
    stream_id: int,
    pp_id: int,
    user_data: bytes,
    expiry: float | None = None,
    max_retransmits: int | None = None,
    ordered: bool = True,
) -> None:
    """aiortc's ``_send`` without its ``_transmit``: fragment one message into the outbound queue."""
    if ordered:
        stream_seq = self._outbound_stream_seq.get(stream_id, 0)
    else:
        stream_seq = 0

    fragments = math.ceil(len(user_data) / sctp.USERDATA_MAX_LENGTH)
    pos = 0
    for fragment in range(0, fragments):
        chunk = DataChunk()
        chunk.flags = 0
        if not ordered:
            chunk.flags = sctp.SCTP_DATA_UNORDERED
        if fragment == 0:
            chunk.flags |= sctp.SCTP_DATA_FIRST_FRAG
        if fragment == fragments - 1:
            chunk.flags |= sctp.SCTP_DATA_LAST_FRAG
        chunk.tsn = self._local_tsn
        chunk.stream_id = stream_id
        chunk.stream_seq = stream_seq
        chunk.protocol = pp_id
        chunk.user_data = user_data[pos : pos + sctp.USERDATA_MAX_LENGTH]

        chunk._abandoned = False
        chunk._acked = False
        chunk._book_size = len(chunk.user_data)
        chunk._expiry = expiry
        chunk._in_flight = False
        chunk._max_retransmits = max_retransmits
        chunk._misses = 0
        chunk._retransmit = False
        chunk._sent_count = 0
        chunk._sent_time = None

        pos += sctp.USERDATA_MAX_LENGTH
        self._local_tsn = sctp.tsn_plus_one(self._local_tsn)
        self._outbound_queue.append(chunk)

    if ordered:
        self._outbound_stream_seq[stream_id] = uint16_add(stream_seq, 1)


async def _send(
    self: RTCSctpTransport,
    stream_id: int,
    pp_id: int,
    user_data: bytes,
    expiry: float | None = None,
    max_retransmits: int | None = None,
    ordered: bool = True,
) -> None:
    """Patched ``_send``: same contract (queue one message, transmit)."""
    _enqueue(self, stream_id, pp_id, user_data, expiry, max_retransmits, ordered)
    await self._transmit()


async def _data_channel_flush(self: RTCSctpTransport) -> None:
    """Patched ``_data_channel_flush``: the queued messages one transmit can send, then that transmit.

    Stock aiortc moves one message into the outbound queue, transmits, and moves the next only
    once the outbound queue is empty again; so after a flush the outbound queue holds at most what
    is left of one message, and the rest waits in the data-channel queue, counted in
    ``bufferedAmount``. Here as many messages move as the coming ``_transmit`` can send (flight size
    below ``min(flight + max burst, cwnd)``, aiortc's own limit; always at least one message), and
    that one ``_transmit`` packs them. The same invariant holds, so ``bufferedAmount`` keeps its
    meaning for the tunnel's back-pressure. (Stock aiortc grants each message a fresh max-burst
    allowance; here a flush gets one, as RFC 9260 §6.1's Max.Burst intends.)
    """
    if self._association_state != self.State.ESTABLISHED:
        return

    queue = self._data_channel_queue
    while queue and not self._outbound_queue:
        burst = (2 if self._fast_recovery_exit is not None else 4) * sctp.USERDATA_MAX_LENGTH
        room = min(self._flight_size + burst, self._cwnd) - self._flight_size  # as _fill computes it
        moved = 0
        handed: list[tuple[RTCDataChannel, int]] = []
        while queue and (not moved or moved < room):
            channel, protocol, user_data = queue.popleft()

            # register channel if necessary
            stream_id = channel.id
            if stream_id is None:
                stream_id = cast(int, self._data_channel_id)  # set by start(), before ESTABLISHED
                while stream_id in self._data_channels:
                    stream_id += 2
                self._data_channels[stream_id] = channel
                channel._setId(stream_id)

            if protocol == sctp.WEBRTC_DCEP:
                _enqueue(self, stream_id, protocol, user_data)
            else:
                if channel.maxPacketLifeTime:
                    expiry: float | None = time.time() + (channel.maxPacketLifeTime / 1000)
                else:
                    expiry = None
                _enqueue(self, stream_id, protocol, user_data, expiry=expiry,
                         max_retransmits=channel.maxRetransmits, ordered=channel.ordered)
                handed.append((channel, len(user_data)))
            moved += len(user_data)

        await self._transmit()
        for channel, size in handed:  # after the transmit, as stock aiortc does per message
            channel._addBufferedAmount(-size)

    # A stream reset may have been waiting for these messages.
    await self._transmit_reconfig()


def _data_channel_send(self: RTCSctpTransport, channel: RTCDataChannel, data: bytes | str) -> None:
    """Patched ``_data_channel_send``: aiortc's, but one flush task per batch of sends, not one per send.

    The tunnel writes a call's frames back to back; aiortc would start a flush task for each, and
    all but the first would find nothing left to do.
    """
    if data == "":
        pp_id, user_data = sctp.WEBRTC_STRING_EMPTY, b"\x00"
    elif isinstance(data, str):
        pp_id, user_data = sctp.WEBRTC_STRING, data.encode("utf8")
    elif data == b"":
        pp_id, user_data = sctp.WEBRTC_BINARY_EMPTY, b"\x00"
    else:
        pp_id, user_data = sctp.WEBRTC_BINARY, data

    # A maximum message size of 0 means the remote party can handle
    # messages of any size.
    if self._remote_max_message_size and (len(user_data) > self._remote_max_message_size):
        raise ValueError(
            f"Cannot send message of {len(user_data)} bytes, the remote party "
            f"only supports messages up to {self._remote_max_message_size} bytes"
        )

    channel._addBufferedAmount(len(user_data))
    self._data_channel_queue.append((channel, pp_id, user_data))
    state = _state(self)
    if state.flush_task is None:
        state.flush_task = asyncio.ensure_future(_scheduled_flush(self))


async def _scheduled_flush(self: RTCSctpTransport) -> None:
    _state(self).flush_task = None  # a send from here on needs a flush of its own
    await self._data_channel_flush()


def _fill(self: RTCSctpTransport, out: list[Chunk]) -> None:
    """Stock ``_transmit`` up to the point of sending: the chunks to send go to ``out``.

    Every state change is aiortc's, in aiortc's order; only the sends are deferred to one batch
    (aiortc's sends never suspend, so nothing can run in between either way).
    """
    state = _state(self)

    # send FORWARD TSN
    if self._forward_tsn_chunk is not None:
        out.append(self._forward_tsn_chunk)
        self._forward_tsn_chunk = None

        # ensure T3 is running
        if not self._t3_handle:
            self._t3_start()

    # limit burst size
    if self._fast_recovery_exit is not None:
        burst_size = 2 * sctp.USERDATA_MAX_LENGTH
    else:
        burst_size = 4 * sctp.USERDATA_MAX_LENGTH
    cwnd = min(self._flight_size + burst_size, self._cwnd)

    # retransmit (skipped when no chunk can be marked: see the module doc)
    if state.retransmit_marked:
        retransmit_earliest = True
        for chunk in self._sent_queue:
            if chunk._retransmit:
                if self._fast_recovery_transmit:
                    self._fast_recovery_transmit = False
                elif self._flight_size >= cwnd:
                    return  # chunks stay marked: the flag stays set
                self._flight_size_increase(chunk)

                chunk._misses = 0
                chunk._retransmit = False
                chunk._sent_count += 1
                out.append(chunk)
                if retransmit_earliest:
                    # restart the T3 timer as the earliest outstanding TSN
                    # is being retransmitted
                    self._t3_restart()
            retransmit_earliest = False
        state.retransmit_marked = False

    while self._outbound_queue and self._flight_size < cwnd:
        chunk = self._outbound_queue.popleft()
        self._sent_queue.append(chunk)
        self._flight_size_increase(chunk)

        # update counters
        chunk._sent_count += 1
        chunk._sent_time = time.time()

        out.append(chunk)
        if not self._t3_handle:
            self._t3_start()


async def _transmit(self: RTCSctpTransport) -> None:
    """Patched ``_transmit``: aiortc's decisions (:func:`_fill`), sent bundled, a pending SACK first."""
    chunks: list[Chunk] = []
    _fill(self, chunks)
    if not chunks:
        return
    if self._sack_needed:
        chunks.insert(0, _take_sack(self))
        _state(self).stats.sacks_bundled += 1
    await _send_bundled(self, chunks)


async def _send_bundled(self: RTCSctpTransport, chunks: list[Chunk]) -> None:
    """Send ``chunks`` in order, as few packets of at most ``SCTP_MAX_PACKET_LENGTH`` as they fit in."""
    stats = _state(self).stats
    log = _log_debug(self)
    header = pack("!HHL", self._local_port, self._remote_port, self._remote_verification_tag)
    packets: list[bytes] = []
    parts: list[bytes] = []
    size = 0
    for chunk in chunks:
        log("> %s", chunk)
        data = bytes(chunk)
        if parts and size + len(data) > _MAX_CHUNK_BYTES:
            packets.append(b"".join(parts))
            parts = []
            size = 0
        parts.append(data)
        size += len(data)
    packets.append(b"".join(parts))
    stats.chunks_sent += len(chunks)
    for body in packets:
        checksum = crc32c(header + b"\x00\x00\x00\x00" + body)
        stats.packets_sent += 1
        await self.transport._send_data(header + pack("<L", checksum) + body)


# -- receiving: delayed SACK -----------------------------------------------------------------------
async def _handle_data(self: RTCSctpTransport, data: bytes) -> None:
    """Patched ``_handle_data``: aiortc's, except that the SACK may wait (see the module doc)."""
    try:
        _, _, verification_tag, chunks = sctp.parse_packet(data)
    except ValueError:
        return

    # is this an init?
    init_chunk = len([x for x in chunks if isinstance(x, InitChunk)])
    if init_chunk:
        assert len(chunks) == 1
        expected_tag = 0
    else:
        expected_tag = self._local_verification_tag

    # verify tag
    if verification_tag != expected_tag:
        _log_debug(self)("Bad verification tag %d vs %d", verification_tag, expected_tag)
        return

    gap_before = bool(self._sack_misordered)
    _state(self).duplicate = False

    # handle chunks
    for chunk in chunks:
        await self._receive_chunk(chunk)

    # send SACK if needed, now or later
    if self._sack_needed:
        await _acknowledge(self, chunks, gap_before)


def _mark_received(self: RTCSctpTransport, tsn: int) -> bool:
    """Patched ``_mark_received``: the in-order case without aiortc's sort and filters.

    When nothing is out of order or duplicated and ``tsn`` is the next one, aiortc's version ends
    in exactly this state (the TSN goes into the misordered set, is consolidated into
    ``_last_received_tsn``, and the filters leave both collections empty).
    """
    if (
        not self._sack_misordered
        and not self._sack_duplicates
        and self._last_received_tsn is not None
        and tsn == sctp.tsn_plus_one(self._last_received_tsn)
    ):
        self._last_received_tsn = tsn
        return False
    duplicate: bool = _STOCK["_mark_received"](self, tsn)
    if duplicate:  # noted here: aiortc may filter it out of _sack_duplicates before the SACK
        _state(self).duplicate = True
    return duplicate


async def _receive_data_chunk(self: RTCSctpTransport, chunk: DataChunk) -> None:
    """Patched ``_receive_data_chunk``: a whole, in-order message skips the reassembly queue.

    The fast path applies to an ordered, unfragmented chunk that is the stream's next message,
    arriving in TSN order with nothing waiting for reassembly on its stream: exactly the case
    where aiortc's version appends it, pops it straight back out as a message (net change to
    the receive window: none), advances the stream sequence number and delivers it. Everything
    else takes aiortc's path.
    """
    self._sack_needed = True

    # mark as received
    if self._mark_received(chunk.tsn):
        return

    inbound_stream = self._inbound_streams.get(chunk.stream_id)
    if (
        inbound_stream is not None
        and not inbound_stream.reassembly
        and chunk.flags & _WHOLE_ORDERED_MASK == _WHOLE_ORDERED
        and chunk.stream_seq == inbound_stream.sequence_number
    ):
        inbound_stream.sequence_number = uint16_add(inbound_stream.sequence_number, 1)
        await self._receive(chunk.stream_id, chunk.protocol, chunk.user_data)
    else:
        # find stream
        inbound_stream = self._get_inbound_stream(chunk.stream_id)

        # defragment data
        inbound_stream.add_chunk(chunk)
        self._advertised_rwnd -= len(chunk.user_data)
        for message in inbound_stream.pop_messages():
            self._advertised_rwnd += len(message[2])
            await self._receive(*message)

    if self._reconfig_deferred is not None:
        await self._reset_deferred_streams()


async def _acknowledge(self: RTCSctpTransport, chunks: list[Chunk], gap_before: bool) -> None:
    state = _state(self)
    carries_data = False
    urgent = False
    for chunk in chunks:
        if isinstance(chunk, DataChunk):
            carries_data = True
            if chunk.flags & _DATA_SACK_IMMEDIATELY:
                urgent = True
        elif isinstance(chunk, ForwardTsnChunk):
            urgent = True
    if carries_data:
        state.unacked_packets += 1
    duplicate = state.duplicate
    state.duplicate = False
    if (
        urgent
        or duplicate
        or state.unacked_packets >= 2
        or gap_before
        or self._sack_misordered
        or self._sack_duplicates
        or self._association_state != self.State.ESTABLISHED
    ):
        state.stats.sacks_immediate += 1
        await self._send_sack()
    elif state.sack_deadline is None:
        loop = asyncio.get_running_loop()
        state.sack_deadline = loop.time() + SACK_DELAY_S
        if state.sack_timer is None:
            state.sack_timer = loop.call_at(state.sack_deadline, _sack_timer_expired, self)


def _take_sack(self: RTCSctpTransport) -> SackChunk:
    """Build the SACK (as aiortc's ``_send_sack`` does) and mark everything received as acknowledged."""
    last_received_tsn = cast(int, self._last_received_tsn)  # a SACK is needed only after DATA
    gaps: list[list[int]] = []
    gap_next = None
    for tsn in sorted(self._sack_misordered):
        pos = (tsn - last_received_tsn) % sctp.SCTP_TSN_MODULO
        if tsn == gap_next:
            gaps[-1][1] = pos
        else:
            gaps.append([pos, pos])
        gap_next = sctp.tsn_plus_one(tsn)

    sack = SackChunk()
    sack.cumulative_tsn = last_received_tsn
    sack.advertised_rwnd = max(0, self._advertised_rwnd)
    sack.duplicates = self._sack_duplicates[:]
    sack.gaps = [(first, last) for first, last in gaps]

    self._sack_duplicates.clear()
    self._sack_needed = False
    state = _state(self)
    state.unacked_packets = 0
    state.sack_deadline = None
    return sack


async def _send_sack(self: RTCSctpTransport) -> None:
    """Patched ``_send_sack``: a SACK on its own, now."""
    await self._send_chunk(_take_sack(self))


def _sack_timer_expired(self: RTCSctpTransport) -> None:
    state = _state(self)
    state.sack_timer = None
    deadline = state.sack_deadline
    if deadline is None or self._association_state == self.State.CLOSED:
        return
    loop = asyncio.get_running_loop()
    if loop.time() < deadline - _TIMER_SLACK_S:  # armed for an earlier SACK, sent meanwhile
        state.sack_timer = loop.call_at(deadline, _sack_timer_expired, self)
    elif self._sack_needed:
        state.sack_task = loop.create_task(_send_delayed_sack(self))


async def _send_delayed_sack(self: RTCSctpTransport) -> None:
    state = _state(self)
    try:
        if self._sack_needed and self._association_state != self.State.CLOSED:
            state.stats.sacks_delayed += 1
            await self._send_sack()
    except ConnectionError:  # DTLS is gone: nothing left to acknowledge to
        pass
    finally:
        state.sack_task = None


# -- retransmit marks --------------------------------------------------------------------------------
async def _receive_sack_chunk(self: RTCSctpTransport, chunk: SackChunk) -> None:
    """Patched: gap blocks are the only SACKs that can mark chunks for fast retransmit."""
    if chunk.gaps:
        _state(self).retransmit_marked = True
    await _STOCK["_receive_sack_chunk"](self, chunk)


def _t3_expired(self: RTCSctpTransport) -> None:
    """Patched: a T3 expiry marks every outstanding chunk for retransmission."""
    _state(self).retransmit_marked = True
    _STOCK["_t3_expired"](self)


# -- installation ------------------------------------------------------------------------------------
_PATCHES: Final[dict[str, Any]] = {
    "_data_channel_flush": _data_channel_flush,
    "_data_channel_send": _data_channel_send,
    "_handle_data": _handle_data,
    "_mark_received": _mark_received,
    "_receive_data_chunk": _receive_data_chunk,
    "_receive_sack_chunk": _receive_sack_chunk,
    "_send": _send,
    "_send_sack": _send_sack,
    "_t3_expired": _t3_expired,
    "_transmit": _transmit,
}
#: aiortc's own methods, taken at import: a timer armed while patched may fire after :func:`uninstall`.
_STOCK: Final[dict[str, Any]] = {name: RTCSctpTransport.__dict__.get(name) for name in _PATCHES}
_installed = False
_refusal: str | None = None


def installed() -> bool:
    """The patch is in place."""
    return _installed


def install() -> bool:
    """Patch ``RTCSctpTransport`` (idempotent; cheap to call per connection). ``True`` if in place.

    Refuses, logging one warning, unless aiortc is :data:`AIORTC_VERSION` and has every internal
    used here; refuses quietly (one info line) when :data:`DISABLE_ENV` says so. Affects every
    association of the process, including those already running.
    """
    global _installed, _refusal
    if _installed:
        return True
    if _refusal is not None:
        return False
    if os.environ.get(DISABLE_ENV, "").strip().lower() in ("0", "off", "false", "no"):
        _refusal = f"{DISABLE_ENV} is off"
        logger.info("SCTP tuning not installed: %s (stock aiortc SCTP)", _refusal)
        return False
    version = getattr(aiortc, "__version__", "unknown")
    missing = [name for name in _REQUIRED if not hasattr(RTCSctpTransport, name)]
    missing += [name for name, function in _STOCK.items() if function is None]
    if version != AIORTC_VERSION or missing:
        _refusal = f"aiortc {version} is not {AIORTC_VERSION}" if version != AIORTC_VERSION else (
            f"aiortc {version} lacks {', '.join(missing)}")
        logger.warning("SCTP tuning not installed: %s; keeping stock aiortc SCTP (one packet per chunk, "
                       "one SACK per packet)", _refusal)
        return False
    for name, function in _PATCHES.items():
        setattr(RTCSctpTransport, name, function)
    _installed = True
    logger.debug("SCTP tuning installed on aiortc %s", version)
    return True


def uninstall() -> None:
    """Restore aiortc's methods (tests); live associations keep working, on stock behaviour.

    A delayed SACK still pending is sent when its timer runs out. :func:`install` may be called again.
    """
    global _installed, _refusal
    if _installed:
        for name, function in _STOCK.items():
            setattr(RTCSctpTransport, name, function)
    _installed = False
    _refusal = None
