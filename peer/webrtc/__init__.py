"""The WebRTC peer: aiortc sessions serving the handler table, and a pure-Python dialer.

Every use of aiortc and aioice in the project is confined to this package. The robot side is
:class:`OfferAnswerer` (the :class:`signaling.OfferHandler` for :func:`signaling.internal_answerer`
or :class:`signaling.Answerer`), which creates one :class:`PeerSession` per caller and lists it in
a :class:`PeerSessions` registry; the client side is :func:`dial`, which returns a
:class:`DialedChannel` that generated grpclib stubs accept.
"""

from __future__ import annotations

from .answer import OfferAnswerer
from .connection import ConnectionFailedError, SetupTimes, WebRTCConnection
from .datachannel import DataChannelAdapter
from .dial import DialedChannel, DialTimings, dial
from .negotiation import Negotiator, RenegotiationError
from .rtc import set_udp_receive_buffer
from .session import PeerSession, PeerSessions, RemotePeer
from .video import PeerVideo, SlotTrack, StreamActiveError

__all__ = [
    "ConnectionFailedError",
    "DataChannelAdapter",
    "DialTimings",
    "DialedChannel",
    "Negotiator",
    "OfferAnswerer",
    "PeerSession",
    "PeerSessions",
    "PeerVideo",
    "RemotePeer",
    "RenegotiationError",
    "SetupTimes",
    "SlotTrack",
    "StreamActiveError",
    "WebRTCConnection",
    "dial",
    "set_udp_receive_buffer",
]
