"""ICE servers and the optional WebRTC config, as plain values (wire-protocol.md §2.2).

The signaling server hands these to callers (OptionalWebRTCConfig) and answerers (the init
stage's ``optional_config``); the answerer passes them to whatever builds the peer connection.
Plain frozen dataclasses keep aiortc and protobuf types out of the peer-facing API.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from .gen.proto.rpc.webrtc.v1 import signaling_pb2


@dataclass(frozen=True, slots=True)
class IceServer:
    """One STUN/TURN server (``RTCIceServer``)."""

    urls: tuple[str, ...]
    username: str = ""
    credential: str = ""

    def to_proto(self) -> signaling_pb2.ICEServer:
        return signaling_pb2.ICEServer(urls=list(self.urls), username=self.username, credential=self.credential)

    @classmethod
    def from_proto(cls, proto: signaling_pb2.ICEServer) -> IceServer:
        return cls(tuple(proto.urls), proto.username, proto.credential)


@dataclass(frozen=True, slots=True)
class WebRTCConfig:
    """``WebRTCConfig``: extra ICE servers, and whether trickle ICE is off ("both sides must respect")."""

    ice_servers: tuple[IceServer, ...] = field(default_factory=tuple)
    disable_trickle: bool = False

    def to_proto(self) -> signaling_pb2.WebRTCConfig:
        return signaling_pb2.WebRTCConfig(
            additional_ice_servers=[server.to_proto() for server in self.ice_servers],
            disable_trickle=self.disable_trickle,
        )

    @classmethod
    def from_proto(cls, proto: signaling_pb2.WebRTCConfig) -> WebRTCConfig:
        return cls(tuple(IceServer.from_proto(s) for s in proto.additional_ice_servers), proto.disable_trickle)

    @classmethod
    def of(cls, ice_servers: Iterable[IceServer] = (), *, disable_trickle: bool = False) -> WebRTCConfig:
        return cls(tuple(ice_servers), disable_trickle)
