"""gRPC over a WebRTC data channel (Viam's ``proto.rpc.webrtc.v1`` frames), both ends.

:class:`TunnelServer` runs the shared handler table for the calls arriving on one channel;
:class:`TunnelChannel` is a grpclib-compatible client channel for generated stubs. Both speak to
a :class:`MessageChannel`, not to aiortc, so they are tested with in-memory fakes; an adapter
attaches them to an ``RTCDataChannel``.
"""

from __future__ import annotations

from .channel import ChannelClosedError, FrameSender, MessageChannel, SendStalledError
from .client import TunnelChannel, TunnelClientStream
from .server import Servable, TunnelServer
from .stream import TunnelStream

__all__ = [
    "ChannelClosedError",
    "FrameSender",
    "MessageChannel",
    "SendStalledError",
    "Servable",
    "TunnelChannel",
    "TunnelClientStream",
    "TunnelServer",
    "TunnelStream",
]
