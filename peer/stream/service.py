"""``proto.stream.v1.StreamService`` over the robot's cameras (RDK ``robot/web/stream`` semantics).

``AddStream`` adds the camera's video to *the caller's* peer connection and renegotiates from the
robot's side over the ``negotiation`` channel; the caller is found through the call's
``stream.peer``, which over WebRTC is a :class:`~peer.webrtc.session.RemotePeer` carrying its
:class:`~peer.webrtc.session.PeerSession`. Over h2c or gRPC-web there is no peer connection, so
``AddStream`` fails with FAILED_PRECONDITION.

Each camera has one :class:`~peer.media.CameraCapture` shared by every viewer (its loop runs only
while someone watches) and one VP8 encoder per picture size in use (:mod:`peer.media.encoder`);
each viewer gets its own :class:`~peer.media.EncodedCameraTrack` (or, with
``PEERBOT_ENCODE_ONCE=0``, a :class:`~peer.media.CameraTrack` that its sender encodes), owned by the
session's :class:`~peer.webrtc.video.PeerVideo`, which stops it on RemoveStream or when the
connection closes. Stream names are resource names with ``:`` written ``+`` (``a:b`` is not a
legal msid token); both forms are accepted.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from grpclib import GRPCError, Status
from grpclib.server import Stream

from ..components.camera.api import Camera
from ..gen.proto.stream.v1 import stream_pb2 as pb
from ..gen.proto.stream.v1.stream_grpc import StreamServiceBase
from ..media import CameraCapture, CameraTrack, EncodedCameraTrack, encode_once_enabled
from ..resource.manager import ResourceManager
from ..resource.rpc import recv_request
from ..webrtc.negotiation import RenegotiationError
from ..webrtc.session import PeerSession, RemotePeer
from ..webrtc.video import StreamActiveError

logger = logging.getLogger(__name__)

#: Resolutions offered by GetStreamOptions: the native size and this many halvings (RDK).
HALVINGS = 4
#: Largest width or height SetStreamOptions accepts (each size in use runs an encoder over frames
#: rescaled to it: an absurd size must be refused, not allocated).
MAX_STREAM_SIDE = 4096
NEEDS_WEBRTC = "AddStream needs a WebRTC connection (the stream is sent on the caller's peer connection)"


def _targets_kbps(capture: CameraCapture) -> list[float]:
    """The current bitrate of each running shared encoder of ``capture`` (kbps, sorted)."""
    targets = (e.target_bitrate for e in capture.encoders.values())
    return sorted(round(t / 1000, 1) for t in targets if t is not None)


def sdp_name(name: str) -> str:
    """The msid stream id / stream name of a resource name (``remote:cam`` → ``remote+cam``)."""
    return name.replace(":", "+")


class StreamService(StreamServiceBase):
    """Live video of every camera in ``manager``.

    :param fps: capture rate for cameras that do not say (default: the capture's, 20 fps).
    """

    def __init__(self, manager: ResourceManager, *, fps: float | None = None) -> None:
        self._manager = manager
        self._fps = fps
        self._captures: dict[str, CameraCapture] = {}

    # -- helpers ---------------------------------------------------------------------------------
    def cameras(self) -> dict[str, Camera]:
        """Stream name → camera, for every camera the robot has now."""
        return {
            sdp_name(rn.name): resource
            for rn, resource in self._manager.resources.items()
            if isinstance(resource, Camera)
        }

    def _camera(self, requested: str) -> tuple[str, Camera]:
        cameras = self.cameras()
        name = sdp_name(requested)
        camera = cameras.get(name)
        if camera is None:
            available = ", ".join(sorted(cameras)) or "none"
            raise GRPCError(Status.NOT_FOUND, f"no stream for {requested!r}, available streams: {available}")
        return name, camera

    def capture(self, name: str, camera: Camera) -> CameraCapture:
        """The one capture of this camera, shared by every viewer (a new one if the camera was replaced)."""
        capture = self._captures.get(name)
        if capture is None or capture.camera is not camera:
            capture = CameraCapture(camera, fps=self._fps)
            self._captures[name] = capture
        return capture

    @property
    def captures(self) -> dict[str, CameraCapture]:
        return dict(self._captures)

    def stats(self) -> dict[str, dict[str, Any]]:
        """Per stream name: live viewers, capture and encode rates over the last seconds (for ``/stats``).

        A camera appears once it has been streamed; ``viewers`` counts its live viewer tracks (one
        per peer connection showing it); there is one capture per camera, and
        ``capture_loops_started`` counts its busy periods (first viewer in → last viewer out).
        ``encoders`` counts the VP8 encoders running on it: one per picture size in use when
        encoding once (the default), one per viewer with ``PEERBOT_ENCODE_ONCE=0``.
        ``fps`` is the capture rate; ``encoded_fps`` and ``bitrate_kbps`` are what the senders sent
        of it, **summed over every viewer** (two viewers at 30 fps show 60, however many encoders),
        with ``bitrate_kbps`` counting RTP payload. Both fall to 0 within two seconds of the last
        viewer leaving.
        ``target_kbps``: the bitrate each shared encoder runs at now (it follows its viewers' REMB,
        peer.media.bitrate), ``keyframes_only``: viewers whose link is too slow for it (they get keyframes only).
        """
        now = asyncio.get_running_loop().time()
        return {
            name: {
                "viewers": capture.viewers,
                "encoders": capture.subscribers,  # each subscriber is a shared or a per-viewer encoder
                "fps": round(capture.recent_fps(now), 1),
                "encoded_fps": round(capture.encoded.rate(now), 1),
                "bitrate_kbps": round(capture.sent_bytes.rate(now) * 8 / 1000, 1),
                "target_kbps": _targets_kbps(capture),
                "keyframes_only": sum(e.slideshow_viewers for e in capture.encoders.values()),
                "frames_captured": capture.frames_captured,
                "capture_loops_started": capture.loops_started,
                "running": capture.running,
            }
            for name, capture in sorted(self._captures.items())
        }

    @staticmethod
    def _session(stream: Stream[Any, Any], what: str = NEEDS_WEBRTC) -> PeerSession:
        peer = getattr(stream, "peer", None)
        if not isinstance(peer, RemotePeer):
            raise GRPCError(Status.FAILED_PRECONDITION, what)
        return peer.session

    @staticmethod
    async def _native_size(camera: Camera) -> tuple[int, int] | None:
        width, height = getattr(camera, "width", None), getattr(camera, "height", None)
        if isinstance(width, int) and isinstance(height, int):
            return width, height
        try:
            props = await camera.get_properties()
        except Exception as exc:
            logger.info("camera %r has no properties: %r", camera.name, exc)
            return None
        intrinsics = props.intrinsic_parameters
        if intrinsics.width_px > 0 and intrinsics.height_px > 0:
            return intrinsics.width_px, intrinsics.height_px
        return None

    # -- RPCs ------------------------------------------------------------------------------------
    async def ListStreams(self, stream: Stream[Any, Any]) -> None:
        await recv_request(stream)
        await stream.send_message(pb.ListStreamsResponse(names=sorted(self.cameras())))

    async def AddStream(self, stream: Stream[Any, Any]) -> None:
        request = await recv_request(stream)
        session = self._session(stream)
        name, camera = self._camera(request.name)
        if type(camera).get_frame is Camera.get_frame:
            raise GRPCError(Status.FAILED_PRECONDITION, f"camera {camera.name!r} does not provide live video")
        if session.video.is_active(name):
            raise GRPCError(Status.ALREADY_EXISTS, f"stream {name!r} is already active")
        capture = self.capture(name, camera)
        track = EncodedCameraTrack(capture) if encode_once_enabled() else CameraTrack.from_capture(capture)
        try:
            await session.video.attach(name, track, stream_id=name)
        except StreamActiveError as exc:
            raise GRPCError(Status.ALREADY_EXISTS, str(exc)) from None
        except RenegotiationError as exc:
            raise GRPCError(Status.UNAVAILABLE, f"cannot add stream {name!r}: {exc}") from None
        logger.info("webrtc[%s] streaming %s", session.tag, name)
        await stream.send_message(pb.AddStreamResponse())

    async def RemoveStream(self, stream: Stream[Any, Any]) -> None:
        request = await recv_request(stream)
        session = self._session(stream, NEEDS_WEBRTC.replace("AddStream", "RemoveStream"))
        name = sdp_name(request.name)
        try:
            removed = await session.video.detach(name)  # unknown or inactive names: OK, as in RDK
        except RenegotiationError as exc:
            raise GRPCError(Status.UNAVAILABLE, f"cannot remove stream {name!r}: {exc}") from None
        if removed:
            logger.info("webrtc[%s] stopped streaming %s", session.tag, name)
        await stream.send_message(pb.RemoveStreamResponse())

    async def GetStreamOptions(self, stream: Stream[Any, Any]) -> None:
        request = await recv_request(stream)
        _, camera = self._camera(request.name)
        size = await self._native_size(camera)
        if size is None:
            raise GRPCError(Status.UNAVAILABLE, f"the frame size of camera {camera.name!r} is unknown")
        width, height = size
        resolutions = []
        for i in range(HALVINGS + 1):
            w, h = (width >> i) & ~1, (height >> i) & ~1
            if w <= 0 or h <= 0:
                break
            resolutions.append(pb.Resolution(width=w, height=h))
        await stream.send_message(pb.GetStreamOptionsResponse(resolutions=resolutions))

    async def SetStreamOptions(self, stream: Stream[Any, Any]) -> None:
        """Rescale the caller's stream of this camera (no resolution: back to native). Per caller."""
        request = await recv_request(stream)
        name, _ = self._camera(request.name)
        size: tuple[int, int] | None = None
        if request.HasField("resolution"):
            w, h = request.resolution.width, request.resolution.height
            if w <= 0 or h <= 0 or w % 2 or h % 2:
                raise GRPCError(Status.INVALID_ARGUMENT, f"resolution must be positive and even, not {w}x{h}")
            if w > MAX_STREAM_SIDE or h > MAX_STREAM_SIDE:
                raise GRPCError(Status.INVALID_ARGUMENT,
                                f"resolution {w}x{h} is too large (at most {MAX_STREAM_SIDE} pixels a side)")
            size = (w, h)
        session = self._session(stream, "SetStreamOptions needs a WebRTC connection with the stream added")
        if not session.video.set_size(name, size):
            raise GRPCError(Status.FAILED_PRECONDITION, f"stream {name!r} is not active on this connection")
        await stream.send_message(pb.SetStreamOptionsResponse())

    async def close(self) -> None:
        """Stop every capture loop (bounded)."""
        for capture in self._captures.values():
            await capture.aclose()
