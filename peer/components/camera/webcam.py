"""A camera that reads a V4L2 device, a video file or any FFmpeg-readable URL through PyAV.

One reader thread per camera demuxes and decodes, converts each picture to yuv420p and keeps only
the latest one (latest frame wins); the event loop never blocks on the source. The thread starts on
first use and stops on :meth:`WebcamCamera.close`. Files play at their own frame rate and, with
``loop`` (the default), restart at the end, so they behave like a live camera. A source that fails
later is reopened with a backoff while callers get ``UNAVAILABLE``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import av
import numpy as np
from grpclib import GRPCError, Status

from ...errors import NotSupportedError, ValidationError
from ...gen.viam.common.v1 import common_pb2
from ...gen.viam.component.camera.v1 import camera_pb2
from ...protoutil import timestamp_from_epoch
from ...resource import ResourceBase, ResourceConfig, ResourceName
from .api import Camera, CameraProperties, NamedImage, requested_mime_type
from .encoding import IMAGE_MIME_TYPES, MIME_JPEG, encode_image

logger = logging.getLogger(__name__)

#: How long :meth:`WebcamCamera.get_frame` waits for the first picture.
FIRST_FRAME_TIMEOUT = 5.0
#: FFmpeg open and read timeouts in seconds: a stalled source cannot hold the reader forever.
OPEN_TIMEOUT, READ_TIMEOUT = 10.0, 5.0
#: Backoff between reopen attempts after a failure: doubles from the first to the last.
RETRY_DELAY, MAX_RETRY_DELAY = 0.25, 5.0
#: How long close() waits for the reader thread.
STOP_TIMEOUT = 5.0

_MAX_SIZE, _MAX_FPS = 8192, 240.0
#: Container formats of capture devices: the size/rate requests are demuxer options for these.
_DEVICE_FORMATS = frozenset({"v4l2", "video4linux2", "avfoundation", "dshow", "gdigrab", "x11grab", "kmsgrab"})


@dataclass(frozen=True)
class _Frame:
    frame: av.VideoFrame
    seq: int
    wall_time: float


def _attr_error(config: ResourceConfig, key: str, message: str) -> ValidationError:
    return ValidationError(message, f"{config.path}.attributes.{key}")


def _positive_int(config: ResourceConfig, key: str) -> int | None:
    value = config.attributes.get(key)
    if value is None:
        return None
    if (
        not isinstance(value, int | float)
        or isinstance(value, bool)
        or value != int(value)
        or not 0 < value <= _MAX_SIZE
    ):
        raise _attr_error(config, key, f"must be a whole number of pixels from 1 to {_MAX_SIZE}, not {value!r}")
    return int(value)


def _open_options(source: _Source) -> dict[str, str]:
    options: dict[str, str] = {}
    if source.is_device:
        if source.width and source.height:
            options["video_size"] = f"{source.width}x{source.height}"
        if source.fps:
            options["framerate"] = f"{source.fps:g}"
    return options


@dataclass(frozen=True)
class _Source:
    path: str
    format: str | None = None
    width: int | None = None
    height: int | None = None
    fps: float | None = None

    @property
    def is_device(self) -> bool:
        return (self.format or "") in _DEVICE_FORMATS or self.path.startswith("/dev/")

    def open(self) -> tuple[av.container.InputContainer, av.video.stream.VideoStream]:
        """Open the source and pick its first video stream (blocking: call from a worker thread)."""
        container = av.open(
            self.path, mode="r", format=self.format, options=_open_options(self), timeout=(OPEN_TIMEOUT, READ_TIMEOUT)
        )
        try:
            if not container.streams.video:
                raise ValueError("it has no video stream")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            return container, stream
        except BaseException:
            container.close()
            raise


def _stream_fps(stream: av.video.stream.VideoStream, default: float) -> float:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate and 0 < float(rate) <= 1000:
            return float(rate)
    return default


def _to_yuv420p(frame: av.VideoFrame) -> av.VideoFrame:
    """The frame as yuv420p with even dimensions (what the encoders and video tracks expect)."""
    width, height = frame.width - frame.width % 2, frame.height - frame.height % 2
    if frame.format.name == "yuv420p" and (width, height) == (frame.width, frame.height):
        return frame
    return frame.reformat(width=width, height=height, format="yuv420p")


def _encode(frame: av.VideoFrame, mime_type: str) -> bytes:
    i420 = np.asarray(frame.to_ndarray(), dtype=np.uint8)  # yuv420p: (height * 3 / 2, width) bytes
    return encode_image(i420, mime_type)


class WebcamCamera(Camera):
    """Serves the latest picture of a PyAV source; see the module docstring."""

    def __init__(
        self,
        name: str,
        *,
        video_path: str,
        format: str | None = None,
        width: int | None = None,
        height: int | None = None,
        fps: float | None = None,
        loop: bool = True,
        mime_type: str = MIME_JPEG,
        first_frame_timeout: float = FIRST_FRAME_TIMEOUT,
    ) -> None:
        super().__init__(name)
        if mime_type not in IMAGE_MIME_TYPES:
            raise ValueError(f"mime_type must be one of {IMAGE_MIME_TYPES}, not {mime_type!r}")
        self.source = _Source(video_path, format, width, height, fps)
        self.loop = loop
        self.mime_type = mime_type
        self.first_frame_timeout = first_frame_timeout
        # Size and rate as last reported by the source (the probe, then every decoded frame).
        self.width, self.height, self.fps = width or 0, height or 0, fps or 30.0
        self._lock = threading.Lock()
        self._latest: _Frame | None = None
        self._error: str | None = None
        self._seq = 0
        self._opened: tuple[av.container.InputContainer, av.video.stream.VideoStream] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._event_loop: asyncio.AbstractEventLoop | None = None
        self._changed: asyncio.Event | None = None
        self._closed = False

    # -- config -----------------------------------------------------------------------------------

    @staticmethod
    def validate(config: ResourceConfig) -> list[str]:
        """Check the attributes only: the source itself is opened by :meth:`new`."""
        attrs = config.attributes
        path = attrs.get("video_path")
        if not isinstance(path, str) or not path.strip():
            raise _attr_error(
                config, "video_path", f"required: a device path, file path or URL (a non-empty string), not {path!r}"
            )
        fmt = attrs.get("format")
        if fmt is not None and (not isinstance(fmt, str) or not fmt.strip()):
            raise _attr_error(config, "format", f"must be an FFmpeg input format name like \"v4l2\", not {fmt!r}")
        width, height = _positive_int(config, "width"), _positive_int(config, "height")
        if (width is None) != (height is None):
            missing = "height" if height is None else "width"
            raise _attr_error(config, missing, "width and height must be given together")
        fps = attrs.get("fps")
        if fps is not None and (not isinstance(fps, int | float) or isinstance(fps, bool) or not 0 < fps <= _MAX_FPS):
            raise _attr_error(
                config, "fps", f"must be a number of frames per second above 0 and at most {_MAX_FPS:g}, not {fps!r}"
            )
        loop = attrs.get("loop", True)
        if not isinstance(loop, bool):
            raise _attr_error(config, "loop", f"must be true or false, not {loop!r}")
        mime = attrs.get("mime_type", MIME_JPEG)
        if mime not in IMAGE_MIME_TYPES:
            raise _attr_error(config, "mime_type", f"must be one of {', '.join(IMAGE_MIME_TYPES)}, not {mime!r}")
        return []

    @classmethod
    async def new(cls, config: ResourceConfig, dependencies: Mapping[ResourceName, ResourceBase]) -> WebcamCamera:
        """Validate, then open the source once (in a worker thread) so a bad path fails here."""
        cls.validate(config)
        attrs = config.attributes
        fps = attrs.get("fps")
        camera = cls(
            config.name,
            video_path=str(attrs["video_path"]),
            format=attrs.get("format"),
            width=_positive_int(config, "width"),
            height=_positive_int(config, "height"),
            fps=float(fps) if fps is not None else None,
            loop=bool(attrs.get("loop", True)),
            mime_type=str(attrs.get("mime_type", MIME_JPEG)),
        )
        try:
            await camera.open()
        except Exception as exc:
            raise ValidationError(
                f"cannot open video source {camera.source.path!r}: {exc}", f"{config.path}.attributes.video_path"
            ) from exc
        return camera

    async def open(self) -> None:
        """Open the source now (the reader takes this container over); raises if it cannot be opened."""
        opened = await asyncio.to_thread(self.source.open)
        container, stream = opened
        with self._lock:
            if self._closed or self._opened is not None:
                container.close()
                return
            self._opened = opened
        self._note_stream(stream)

    def _note_stream(self, stream: av.video.stream.VideoStream) -> None:
        ctx = stream.codec_context
        if ctx.width and ctx.height:
            self.width, self.height = ctx.width - ctx.width % 2, ctx.height - ctx.height % 2
        self.fps = _stream_fps(stream, self.fps)

    # -- reader thread ----------------------------------------------------------------------------

    def _ensure_started(self) -> None:
        if self._closed:
            raise GRPCError(Status.UNAVAILABLE, f"camera {self.name!r} is closed")
        if self._thread is not None:
            return
        self._event_loop = asyncio.get_running_loop()
        self._changed = asyncio.Event()
        self._thread = threading.Thread(target=self._read_forever, name=f"webcam-{self.name}", daemon=True)
        self._thread.start()

    def _notify(self) -> None:
        loop, changed = self._event_loop, self._changed
        if loop is None or changed is None:
            return
        with contextlib.suppress(RuntimeError):  # the event loop is already closed
            loop.call_soon_threadsafe(changed.set)

    def _publish(self, frame: av.VideoFrame) -> None:
        with self._lock:
            self._seq += 1
            self._latest = _Frame(frame, self._seq, time.time())
            self._error = None
            self.width, self.height = frame.width, frame.height
        self._notify()

    def _fail(self, message: str) -> None:
        with self._lock:
            self._latest = None  # never serve a stale picture of a dead source
            self._error = message
        self._notify()

    def _read_forever(self) -> None:
        delay = RETRY_DELAY
        while not self._stop.is_set():
            with self._lock:
                opened, self._opened = self._opened, None
            seq_before = self._seq
            try:
                if opened is None:
                    opened = self.source.open()
                    self._note_stream(opened[1])
                count, seekable = self._play(*opened)
                if self._stop.is_set():
                    break
                if count and seekable and self.loop:
                    delay = RETRY_DELAY
                    continue  # a file at its end: start again, like a live camera
                raise EOFError("the video stream ended" if count else "the source produced no pictures")
            except Exception as exc:
                if self._stop.is_set():
                    break
                message = f"video source {self.source.path!r} failed: {exc}"
                logger.warning("camera %r: %s; retrying in %.2g s", self.name, message, delay)
                self._fail(message)
                if self._seq != seq_before:
                    delay = RETRY_DELAY  # it worked for a while: start the backoff over
            finally:
                if opened is not None:
                    with contextlib.suppress(Exception):
                        opened[0].close()
            if self._stop.wait(delay):
                break
            delay = min(delay * 2, MAX_RETRY_DELAY)
        with self._lock:
            opened, self._opened = self._opened, None
        if opened is not None:
            opened[0].close()

    def _play(self, container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> tuple[int, bool]:
        """Decode until the end or stop; pace files at their own rate. Returns (frames, seekable)."""
        seekable = container.duration is not None and not self.source.is_device
        base: float | None = None  # monotonic time of presentation time 0
        count = 0
        for frame in container.decode(stream):
            if self._stop.is_set():
                break
            if seekable and frame.time is not None:
                now = time.monotonic()
                if base is None or now - (base + frame.time) > 1.0:  # first picture, or far behind: resync
                    base = now - frame.time
                if self._stop.wait(max(0.0, base + frame.time - now)):
                    break
            self._publish(_to_yuv420p(frame))
            count += 1
        return count, seekable

    # -- frames -----------------------------------------------------------------------------------

    async def _latest_frame(self) -> _Frame:
        self._ensure_started()
        assert self._changed is not None
        async with asyncio.timeout(self.first_frame_timeout):
            while True:
                self._changed.clear()
                with self._lock:
                    latest, error = self._latest, self._error
                if latest is not None:
                    return latest
                if error is not None:
                    raise GRPCError(Status.UNAVAILABLE, f"camera {self.name!r}: {error}; retrying")
                if self._closed:
                    raise GRPCError(Status.UNAVAILABLE, f"camera {self.name!r} is closed")
                await self._changed.wait()

    async def get_frame(self) -> av.VideoFrame:
        """The latest decoded picture (yuv420p, shared: do not mutate), waiting for the first one."""
        try:
            return (await self._latest_frame()).frame
        except TimeoutError:
            raise GRPCError(
                Status.UNAVAILABLE,
                f"camera {self.name!r}: no picture from {self.source.path!r} within {self.first_frame_timeout:g} s",
            ) from None

    @property
    def frames_decoded(self) -> int:
        """Pictures the reader has produced so far."""
        return self._seq

    # -- API --------------------------------------------------------------------------------------

    async def get_images(
        self,
        *,
        filter_source_names: Sequence[str] | None = None,
        extra: Mapping[str, Any] | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> tuple[Sequence[NamedImage], common_pb2.ResponseMetadata]:
        """The one source is named after the camera; ``extra.mime_type`` picks JPEG or PNG."""
        mime = requested_mime_type(extra, self.mime_type, IMAGE_MIME_TYPES)
        if filter_source_names and self.name not in filter_source_names:
            return [], common_pb2.ResponseMetadata(captured_at=timestamp_from_epoch(time.time()))
        try:
            latest = await self._latest_frame()
        except TimeoutError:
            raise GRPCError(Status.UNAVAILABLE, f"camera {self.name!r}: no picture yet") from None
        data = await asyncio.to_thread(_encode, latest.frame, mime)
        metadata = common_pb2.ResponseMetadata(captured_at=timestamp_from_epoch(latest.wall_time))
        return [NamedImage(self.name, data, mime)], metadata

    async def get_point_cloud(
        self, *, extra: Mapping[str, Any] | None = None, timeout: float | None = None, **kwargs: Any
    ) -> tuple[bytes, str]:
        raise NotSupportedError(f"camera {self.name!r} (webcam) has no depth, so no point cloud")

    async def get_properties(self, *, timeout: float | None = None, **kwargs: Any) -> CameraProperties:
        return camera_pb2.GetPropertiesResponse(
            supports_pcd=False,
            intrinsic_parameters=camera_pb2.IntrinsicParameters(width_px=self.width, height_px=self.height),
            mime_types=list(IMAGE_MIME_TYPES),
            frame_rate=self.fps,
        )

    async def get_status(self, *, timeout: float | None = None, **kwargs: Any) -> Mapping[str, Any]:
        with self._lock:
            error = self._error
        return {
            "video_path": self.source.path,
            "width": self.width,
            "height": self.height,
            "fps": self.fps,
            "frames": self._seq,
            "error": error or "",
        }

    async def close(self) -> None:
        """Stop the reader thread and release the source; safe to call more than once."""
        self._closed = True
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            await asyncio.to_thread(thread.join, STOP_TIMEOUT)
            if thread.is_alive():
                logger.warning("camera %r: reader thread did not stop within %g s", self.name, STOP_TIMEOUT)
        with self._lock:
            opened, self._opened = self._opened, None
            self._latest = None
        if opened is not None:
            opened[0].close()
        self._notify()
