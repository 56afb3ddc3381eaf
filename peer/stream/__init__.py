"""Live camera video to WebRTC callers: ``proto.stream.v1.StreamService``."""

from .service import StreamService, sdp_name

__all__ = ["StreamService", "sdp_name"]
