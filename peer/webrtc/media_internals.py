"""The only reads and writes of aiortc's private media attributes (docs/video.md §4, §5).

aiortc 1.16 has no public way to set a sender's msid stream id (``addTrack`` takes no streams), to
ask its encoder for a keyframe, to hear a receiver's PLI/FIR or REMB, or to know the codec it sends. These
are long-standing private attributes of ``RTCRtpSender`` / ``RTCRtpTransceiver``;
keep every use of them here so an aiortc upgrade has one place to check (pin aiortc). The byte
count of a sender goes through its public ``getStats()``, but it is read here too: which report
entry carries it is aiortc's choice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from aiortc import RTCDtlsTransport, RTCRtpSender, RTCRtpTransceiver
from aiortc.rtp import RTCP_PSFB_APP, AnyRtcpPacket, RtcpPsfbPacket, unpack_remb_fci

logger = logging.getLogger(__name__)


def set_stream_id(sender: RTCRtpSender, stream_id: str) -> None:
    """Make the next offer say ``a=msid:<stream_id> <track id>`` for this sender (before ``createOffer``)."""
    sender._stream_id = stream_id


def request_keyframe(sender: RTCRtpSender) -> None:
    """Ask the sender's encoder to make its next frame a keyframe (after an answer is applied)."""
    try:
        sender._send_keyframe()
    except Exception:  # an aiortc change must cost a slower first frame, not the call
        logger.warning("could not request a keyframe from aiortc", exc_info=True)


def on_keyframe_request(sender: RTCRtpSender, callback: Callable[[], None]) -> None:
    """Call ``callback()`` whenever ``sender`` is asked for a keyframe (a receiver's PLI or FIR,
    or :func:`request_keyframe`), after aiortc's own handling.

    A sender fed pre-encoded packets (peer.media.encoder) cannot make one itself: the shared
    encoder must. aiortc routes both RTCP requests through the sender's ``_send_keyframe``, so it
    is wrapped on this one instance.
    """
    original = sender._send_keyframe

    def send_keyframe() -> None:
        original()
        try:
            callback()
        except Exception:
            logger.warning("keyframe request callback failed", exc_info=True)

    sender._send_keyframe = send_keyframe  # type: ignore[method-assign]


def on_receiver_estimate(sender: RTCRtpSender, callback: Callable[[int], None]) -> None:
    """Call ``callback(bps)`` for each receiver estimated maximum bitrate (REMB) that names ``sender``.

    aiortc hands a REMB only to the sender's own encoder (``_handle_rtcp_packet`` sets its
    ``target_bitrate``); a sender fed pre-encoded packets has none, so the shared encoder must hear
    it. The DTLS transport calls each sender's ``_handle_rtcp_packet``, which is wrapped on this one
    instance; aiortc's handling runs first, unchanged.
    """
    original = sender._handle_rtcp_packet

    async def handle_rtcp_packet(packet: AnyRtcpPacket) -> None:
        await original(packet)
        if not (isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_APP):
            return
        try:
            bitrate, ssrcs = unpack_remb_fci(packet.fci)
        except ValueError:  # another application-layer feedback, not a REMB
            return
        if sender._ssrc in ssrcs:
            try:
                callback(bitrate)
            except Exception:
                logger.warning("receiver estimate callback failed", exc_info=True)

    sender._handle_rtcp_packet = handle_rtcp_packet  # type: ignore[method-assign]


def sending_codec(transceiver: RTCRtpTransceiver) -> str | None:
    """MIME type (lower case) of the codec the transceiver's sender sends, once negotiated.

    aiortc's sender uses the first of the transceiver's negotiated codecs, fixed when it starts.
    """
    codecs = transceiver._codecs
    return codecs[0].mimeType.lower() if codecs else None


async def payload_bytes_sent(sender: RTCRtpSender) -> int:
    """RTP payload bytes ``sender`` has handed to its transport so far (its outbound-rtp ``bytesSent``).

    0 when aiortc cannot say (no transport yet): the caller counts deltas, so a 0 only delays them.
    """
    try:
        report = await sender.getStats()
    except Exception:
        logger.debug("no stats from the RTP sender", exc_info=True)
        return 0
    for stats in report.values():
        if getattr(stats, "type", None) == "outbound-rtp":
            return int(getattr(stats, "bytesSent", 0) or 0)
    return 0


def tap_sent_rtp(transport: RTCDtlsTransport, on_sent: Callable[[bytes], None]) -> None:
    """Call ``on_sent(packet)`` each time an RTP packet has been handed to ``transport`` and sent.

    For measurements (scripts/bench_video.py: capture → wire latency): aiortc's senders call the
    transport's private ``_send_rtp`` once per packet (SRTP protect + UDP send), so wrapping it on
    this one instance sees every packet as it leaves, with no change to how it is sent.
    """
    send = transport._send_rtp

    async def send_and_tell(data: bytes) -> None:
        await send(data)
        on_sent(data)

    transport._send_rtp = send_and_tell  # type: ignore[method-assign]
