"""Outgoing video on one peer connection: long-lived sender slots that camera tracks are swapped into.

aiortc's sender loop dies for good if its track ends or its pts go backwards, and a track whose
``recv()`` blocks after ``stop()`` wedges it (docs/video.md §4.4 and §4.5). So each video transceiver
gets one :class:`SlotTrack` for its whole life; sources (per-viewer camera tracks) are attached
and detached behind it, and the slot stamps its own monotonic pts. A detached slot's transceiver
goes ``inactive`` and is reused by the next attach, as pion's RemoveTrack does (§4.6).

:class:`PeerVideo` does every transceiver change inside the connection's
:class:`~peer.webrtc.negotiation.Negotiator` round (lock → mutate → offer → answer), sets the msid
stream id to the stream's SDP name (how the browser maps a track to its camera, §1), prefers VP8,
and asks for a keyframe after every completed exchange (§4.7).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import av
from aiortc import RTCRtpSender, RTCRtpTransceiver
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from .media_internals import (
    on_keyframe_request,
    on_receiver_estimate,
    payload_bytes_sent,
    request_keyframe,
    sending_codec,
    set_stream_id,
)
from .negotiation import RenegotiationError

if TYPE_CHECKING:
    from .connection import WebRTCConnection

logger = logging.getLogger(__name__)

#: RTP video clock.
_CLOCK_RATE = 90000
_TIME_BASE = Fraction(1, _CLOCK_RATE)
#: Codec tried first in every video m-line we offer.
PREFERRED_CODEC = "video/VP8"
#: The codec of the packets a :class:`PacketSource` makes (peer.media.encoder's shared encoders).
PACKET_CODEC = "video/vp8"


class StreamActiveError(Exception):
    """The stream is already attached to this connection."""


@runtime_checkable
class SentCounter(Protocol):
    """A source that wants to know what the sender made of its frames (``CameraTrack`` does)."""

    def count_sent(self, frames: int, nbytes: int) -> None: ...


@runtime_checkable
class PacketSource(Protocol):
    """A source that can give pre-encoded VP8 packets (``EncodedCameraTrack``): the sender then only
    packetizes. Keyframes and the bitrate come from the source's encoder, so keyframe requests and the
    receiver's bandwidth estimates (REMB) are passed on to it."""

    @property
    def shared(self) -> bool: ...

    async def recv_packet(self) -> av.Packet[Any]: ...

    def request_keyframe(self, *, resync: bool = False, urgent: bool = False) -> None: ...

    def report_estimate(self, bps: int) -> None: ...

    def set_size(self, size: tuple[int, int] | None) -> None: ...


class SlotTrack(MediaStreamTrack):
    """The never-ending track of one video sender; frames come from the current source, if any.

    Without a source ``recv()`` waits. A source that ends (``MediaStreamError``) is dropped and the
    slot waits for the next. ``size`` (width, height), when set, rescales every frame.

    Once :attr:`sender` is set, each ``recv()`` first reads the sender's payload byte count: aiortc's
    sender loop is sequential (recv → encode → send every packet → recv), so the bytes added since
    the previous ``recv()`` are exactly the previous frame's, already handed to the transport. A
    frame with bytes counts as one encoded frame of the source that gave it (``count_sent``); a frame
    the sender dropped (disabled before the answer) adds no bytes and is not counted.

    A :class:`PacketSource` on a sender that sends VP8 gives ``av.Packet`` s (encoded once for all
    viewers), which the slot stamps like frames; the sender's keyframe requests (PLI/FIR) go to it.
    """

    kind = "video"

    def __init__(self) -> None:
        super().__init__()
        self._source: MediaStreamTrack | None = None
        self._changed = asyncio.Event()
        self._t0: float | None = None
        self._last_pts = -1
        self.size: tuple[int, int] | None = None
        #: The sender this slot feeds (set right after ``addTransceiver``); enables the counting.
        self.sender: RTCRtpSender | None = None
        #: Its transceiver (which codec the sender sends: packets only for VP8).
        self.transceiver: RTCRtpTransceiver | None = None
        self._bytes_seen = 0
        self._previous: MediaStreamTrack | None = None  # source of the last frame returned

    @property
    def source(self) -> MediaStreamTrack | None:
        return self._source

    def set_source(self, source: MediaStreamTrack | None) -> MediaStreamTrack | None:
        """Swap the source; returns the previous one (not stopped: the caller owns it)."""
        previous, self._source = self._source, source
        self._changed.set()
        return previous

    async def _count_previous(self) -> None:
        sender, previous = self.sender, self._previous
        self._previous = None
        if sender is None:
            return
        sent = await payload_bytes_sent(sender)
        delta, self._bytes_seen = sent - self._bytes_seen, sent
        if delta > 0 and previous is not None and isinstance(previous, SentCounter):
            previous.count_sent(1, delta)

    def bind(self, transceiver: RTCRtpTransceiver) -> None:
        """Feed ``transceiver``'s sender: count what it sends, pass its keyframe requests and its
        receiver's estimates on."""
        self.transceiver = transceiver
        self.sender = transceiver.sender
        on_keyframe_request(transceiver.sender, self._keyframe_requested)
        on_receiver_estimate(transceiver.sender, self._estimate_received)

    def _estimate_received(self, bps: int) -> None:
        source = self._source
        if isinstance(source, PacketSource):
            source.report_estimate(bps)

    def _keyframe_requested(self) -> None:
        source = self._source
        if isinstance(source, PacketSource):
            source.request_keyframe()

    def _sends_packets(self, source: MediaStreamTrack) -> bool:
        return (
            isinstance(source, PacketSource)
            and source.shared
            and self.transceiver is not None
            and sending_codec(self.transceiver) == PACKET_CODEC
        )

    async def recv(self) -> av.VideoFrame | av.Packet[Any]:
        await self._count_previous()
        while True:
            if self.readyState != "live":
                raise MediaStreamError
            source = self._source
            if source is None:
                self._changed.clear()
                await self._changed.wait()
                continue
            try:
                if self._sends_packets(source):
                    data = await source.recv_packet()  # type: ignore[attr-defined]  # PacketSource
                else:
                    data = await source.recv()
            except MediaStreamError:
                if self._source is source:
                    self._source = None
                continue
            if self._source is not source:
                continue  # swapped while we waited: that frame belongs to the old stream
            if isinstance(data, av.Packet):
                self._previous = source
                return self._stamp_packet(data)
            if not isinstance(data, av.VideoFrame):
                continue
            self._previous = source
            return self._stamp(data)

    def _next_pts(self) -> int:
        now = time.monotonic()
        if self._t0 is None:
            self._t0 = now
        pts = max(self._last_pts + 1, round((now - self._t0) * _CLOCK_RATE))
        self._last_pts = pts
        return pts

    def _stamp_packet(self, packet: av.Packet[Any]) -> av.Packet[Any]:
        packet.pts = self._next_pts()
        packet.time_base = _TIME_BASE
        return packet

    def _stamp(self, frame: av.VideoFrame) -> av.VideoFrame:
        size = self.size
        if size is not None and (frame.width, frame.height) != size:
            frame = frame.reformat(width=size[0], height=size[1], format="yuv420p")
        frame.pts = self._next_pts()
        frame.time_base = _TIME_BASE
        return frame

    def stop(self) -> None:
        source, self._source = self._source, None
        if source is not None:
            source.stop()
        super().stop()
        self._changed.set()


@dataclass(eq=False)
class _Slot:
    transceiver: RTCRtpTransceiver
    track: SlotTrack
    name: str | None = None


class PeerVideo:
    """The video streams one connection sends, by name (at most one sender per name)."""

    def __init__(self, connection: WebRTCConnection) -> None:
        self._conn = connection
        self._slots: list[_Slot] = []
        self._active: dict[str, _Slot | None] = {}  # None: reserved, the attach round is under way
        self._closed = False
        connection.negotiator.listeners.append(self._after_exchange)

    @property
    def names(self) -> list[str]:
        """Streams attached (or being attached) to this connection."""
        return list(self._active)

    def is_active(self, name: str) -> bool:
        return name in self._active

    async def attach(self, name: str, source: MediaStreamTrack, *, stream_id: str | None = None) -> None:
        """Send ``source`` as stream ``name`` (msid stream id ``stream_id``, default ``name``).

        The source belongs to this object from now on (stopped on detach, failure or close).
        Raises :class:`StreamActiveError` if ``name`` is already attached, and
        :class:`~peer.webrtc.negotiation.RenegotiationError` if the offer/answer fails.
        """
        if self._closed or self._conn.closing:
            source.stop()
            raise RenegotiationError("the connection is closing")
        if name in self._active:
            source.stop()
            raise StreamActiveError(f"stream {name!r} is already active")
        self._active[name] = None

        def mutate() -> None:
            slot = next((s for s in self._slots if s.name is None), None)
            if slot is None:
                track = SlotTrack()
                transceiver = self._conn.pc.addTransceiver(track, direction="sendonly")
                track.bind(transceiver)
                _prefer_codec(transceiver)
                slot = _Slot(transceiver, track)
                self._slots.append(slot)
            slot.name = name
            slot.track.size = None
            slot.track.set_source(source)
            slot.transceiver.direction = "sendonly"
            set_stream_id(slot.transceiver.sender, stream_id or name)
            self._active[name] = slot

        def undo() -> None:
            slot = self._active.pop(name, None)
            if slot is not None:
                self._release(slot)
            else:
                source.stop()

        await self._conn.negotiator.renegotiate(mutate, undo=undo, why=f"add {name}")

    async def detach(self, name: str) -> bool:
        """Stop sending ``name`` (its transceiver goes ``inactive``); ``False`` if it was not attached."""
        slot = self._active.get(name)
        if slot is None:
            return False
        del self._active[name]

        def mutate() -> None:
            self._release(slot)
            slot.transceiver.direction = "inactive"

        await self._conn.negotiator.renegotiate(mutate, why=f"remove {name}")
        return True

    def sender(self, name: str) -> RTCRtpSender | None:
        """The RTP sender of stream ``name`` (``None`` if not attached, or still being attached)."""
        slot = self._active.get(name)
        return None if slot is None else slot.transceiver.sender

    def source(self, name: str) -> MediaStreamTrack | None:
        """The track feeding stream ``name`` now (the viewer's camera track), if any."""
        slot = self._active.get(name)
        return None if slot is None else slot.track.source

    def set_size(self, name: str, size: tuple[int, int] | None) -> bool:
        """Rescale stream ``name`` to ``size`` (``None``: native); ``False`` if it is not attached.

        The encoder follows a size change by itself: no renegotiation (video.md §3).
        """
        slot = self._active.get(name)
        if slot is None:
            return False
        slot.track.size = size  # rescales raw frames
        source = slot.track.source
        if isinstance(source, PacketSource):
            source.set_size(size)  # moves to the shared encoder of that size
        return True

    def _release(self, slot: _Slot) -> None:
        slot.name = None
        previous = slot.track.set_source(None)
        if previous is not None:
            previous.stop()

    def _after_exchange(self) -> None:
        for slot in self._slots:
            if slot.name is not None:
                source = slot.track.source
                if isinstance(source, PacketSource):
                    # A reused (inactive) sender dropped what it read before the answer: restart
                    # on a keyframe, now, whatever the PLI rate limit says.
                    source.request_keyframe(resync=True, urgent=True)
                request_keyframe(slot.transceiver.sender)

    def close(self) -> None:
        """Stop every source and slot (the connection is going away). Idempotent."""
        self._closed = True
        self._active.clear()
        for slot in self._slots:
            slot.name = None
            slot.track.stop()


def _prefer_codec(transceiver: RTCRtpTransceiver) -> None:
    codecs = RTCRtpSender.getCapabilities("video").codecs
    ordered = sorted(codecs, key=lambda c: c.mimeType.lower() != PREFERRED_CODEC.lower())
    try:
        transceiver.setCodecPreferences(ordered)
    except Exception:
        logger.warning("could not set the video codec preferences", exc_info=True)
