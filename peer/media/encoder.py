"""Encode once per camera and picture size; every viewer's sender only packetizes (issue 4).

aiortc's ``RTCRtpSender`` runs one encoder per sender, so N viewers of one camera cost N VP8
encodes of the same picture. A sender also accepts pre-encoded ``av.Packet`` s from its track
(it then only packetizes them), so :class:`SharedEncoder` encodes each captured frame once, in its
own worker thread, and hands the bytes to every viewer's :class:`EncodedCameraTrack`.

Decoding rules this module keeps for each viewer (:class:`PacketSubscription`):

* A viewer starts on a keyframe: joining asks the encoder for one at its next frame.
* VP8 delta frames depend on every frame since the keyframe, so a viewer never skips one: when a
  slow viewer's queue (:data:`QUEUE_FRAMES`) is full it drops *everything* and waits for the next
  keyframe (asking for one), and a keyframe arriving for a viewer with a backlog replaces the
  backlog (latest wins, at keyframe granularity). So a slow viewer freezes, never shows garbage.
* Keyframes asked for by a receiver (PLI/FIR) or by a dropping viewer are forced at most once per
  :data:`KEYFRAME_MIN_INTERVAL` per viewer (one viewer's PLI storm cannot flood the others with
  keyframes); joins and renegotiations are served at the next frame. All requests pending at a
  keyframe are answered by it.

Bitrate: each encoder's cap comes from the picture size and frame rate (:func:`target_bitrate`,
within aiortc's own 250 kbps to 1.5 Mbps range); below it the rate follows the viewers' receiver
estimates (REMB, passed on by :meth:`PacketSubscription.report_estimate`) by the policy of
:mod:`peer.media.bitrate`: the upper median of the viewers, never the slowest; a viewer far below
the shared rate gets keyframes only.

``PEERBOT_ENCODE_ONCE=0`` turns this off (the StreamService then gives each viewer a frame track
and aiortc encodes per sender, as before): the baseline of ``scripts/bench_video.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from .bitrate import ESTIMATE_TTL, SLIDESHOW_BELOW, SLIDESHOW_INTERVAL, SLIDESHOW_RETRY, RateGovernor
from .capture import STOP_TIMEOUT, CameraCapture, CaptureError, SubscriptionClosed
from .track import VIDEO_TIME_BASE, CameraTrack, copy_frame

logger = logging.getLogger(__name__)

#: Environment switch: ``0`` (or ``false``/``no``/``off``) gives each viewer its own aiortc encoder.
ENCODE_ONCE_ENV = "PEERBOT_ENCODE_ONCE"
#: Least time between two keyframes forced on behalf of one viewer's PLI/FIR or drops (seconds).
KEYFRAME_MIN_INTERVAL = 0.5
#: Longest time between keyframes even if nobody asks (a safety net for lost requests).
KEYFRAME_MAX_INTERVAL = 10.0
#: Encoded frames a viewer may have waiting before it is considered stalled (drops to a keyframe).
QUEUE_FRAMES = 3
#: Bitrate bounds (aiortc's VP8 encoder's) and bits per pixel per frame for the fixed target.
MIN_BITRATE = 250_000
MAX_BITRATE = 1_500_000
BITS_PER_PIXEL = 0.08

Size = tuple[int, int]


def encode_once_enabled() -> bool:
    """Whether viewers share one encoder per camera and size (default) or get one each."""
    return os.environ.get(ENCODE_ONCE_ENV, "1").strip().lower() not in ("0", "false", "no", "off")


def target_bitrate(width: int, height: int, fps: float) -> int:
    """Fixed bitrate of a shared encoder: 0.08 bit per pixel per frame, within 250 kbps to 1.5 Mbps.

    About 740 kbps at 640x480@30 and the 1.5 Mbps cap at 1280x720@30 (aiortc starts at 500 kbps
    and a browser's REMB takes it to its 1.5 Mbps cap on a good link).
    """
    return int(max(MIN_BITRATE, min(MAX_BITRATE, width * height * fps * BITS_PER_PIXEL)))


def _threads(width: int, height: int) -> int:
    """libvpx threads per encode: more only for large pictures and when there are cores to spare."""
    cpus = os.cpu_count() or 1
    pixels = width * height
    if pixels > 1280 * 960 and cpus >= 6:
        return 3
    if pixels > 640 * 480 and cpus >= 3:
        return 2
    return 1


@dataclass(frozen=True)
class EncodedFrame:
    """One VP8 frame of a shared encoder, as the bytes of its packet (shared: do not mutate)."""

    data: bytes
    keyframe: bool
    #: Event-loop time at which the picture was captured.
    captured_at: float
    width: int
    height: int


class Vp8Encoder:
    """A libvpx context with aiortc's realtime settings; used from one worker thread only.

    The settings are aiortc 1.16's (``aiortc/codecs/vpx.py``): realtime deadline, cpu-used -6,
    no lag, CBR at the target bitrate, quantizer 2 to 56; the keyframe interval is
    :data:`KEYFRAME_MAX_INTERVAL` instead of 3000 frames. A change of picture size opens a new
    context (which starts with a keyframe).
    """

    def __init__(self, fps: float) -> None:
        self.fps = fps
        self._codec: av.VideoCodecContext | None = None

    def encode(
        self, frame: av.VideoFrame, size: Size | None, pts: int, keyframe: bool, bitrate: int | None = None
    ) -> tuple[bytes, bool, int, int]:
        """Encode a private copy of ``frame`` (rescaled to ``size``): (data, is keyframe, width, height).

        ``bitrate`` (default: :func:`target_bitrate` of the size): a change reopens the context
        (libvpx reads the rate only when it opens), so the frame is a keyframe.
        """
        width, height = size if size is not None else (frame.width, frame.height)
        if (frame.width, frame.height) != (width, height) or frame.format.name != "yuv420p":
            picture = frame.reformat(width=width, height=height, format="yuv420p")
        else:
            picture = copy_frame(frame)  # captured frames are shared: never stamp them
        codec = self._codec
        if bitrate is None:
            bitrate = target_bitrate(width, height, self.fps)
        if codec is None or (codec.width, codec.height) != (width, height) or codec.bit_rate != bitrate:
            codec = self._codec = self._open(width, height, bitrate)
        picture.pts = pts
        picture.time_base = VIDEO_TIME_BASE
        if keyframe:
            picture.pict_type = av.video.frame.PictureType.I
        packets = codec.encode(picture)
        data = b"".join(bytes(p) for p in packets)
        return data, any(p.is_keyframe for p in packets), width, height

    def _open(self, width: int, height: int, bitrate: int) -> av.VideoCodecContext:
        codec = av.CodecContext.create("libvpx", "w")
        assert isinstance(codec, av.VideoCodecContext)
        codec.width, codec.height, codec.pix_fmt = width, height, "yuv420p"
        codec.time_base = VIDEO_TIME_BASE
        codec.bit_rate = bitrate
        codec.gop_size = max(1, round(self.fps * KEYFRAME_MAX_INTERVAL))
        codec.qmin, codec.qmax = 2, 56
        codec.options = {
            "bufsize": str(bitrate),  # rc_buf_sz = bufsize * 1000 / bit_rate = 1000 ms
            "cpu-used": "-6",
            "deadline": "realtime",
            "lag-in-frames": "0",
            "minrate": str(bitrate),  # minrate = maxrate = bit_rate: CBR
            "maxrate": str(bitrate),
            "noise-sensitivity": "4",
            "overshoot-pct": "15",
            "partitions": "0",
            "static-thresh": "1",
            "undershoot-pct": "100",
        }
        codec.thread_count = _threads(width, height)
        logger.debug("VP8 encoder %dx%d at %d bps", width, height, bitrate)
        return codec

    def close(self) -> None:
        self._codec = None


class PacketSubscription:
    """One viewer of a :class:`SharedEncoder`: a short queue that only ever holds a decodable run."""

    def __init__(self, encoder: SharedEncoder) -> None:
        self.encoder = encoder
        self._queue: deque[EncodedFrame] = deque()
        self._ready = asyncio.Event()
        self._closed = False
        self._error: BaseException | None = None
        self.need_key = True  # skip frames until a keyframe (joined, dropped, or resync)
        self.key_wanted = True  # a keyframe is wanted on this viewer's behalf
        self.last_forced: float | None = None  # when a keyframe was last forced for this viewer
        self.started = False  # a frame has been handed out
        #: Frames handed out by :meth:`get`.
        self.delivered = 0
        #: Encoded frames this viewer never got (backlog dropped, or skipped waiting for a keyframe).
        self.dropped = 0
        #: Times this viewer's backlog overflowed.
        self.stalls = 0
        #: The receiver's last bandwidth estimate (bps, REMB) and when it came (event-loop time).
        self.estimate: int | None = None
        self.estimate_at = 0.0
        #: Since when this viewer gets keyframes only (its link is far below the shared rate), if it does.
        self.slideshow_since: float | None = None
        self._last_key_at: float | None = None  # capture time of the last keyframe offered to it

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def slideshow(self) -> bool:
        """Whether this viewer gets keyframes only."""
        return self.slideshow_since is not None

    def report_estimate(self, bps: int) -> None:
        """The viewer's receiver estimates it can take ``bps`` (a REMB): the shared rate follows."""
        if not self._closed and bps > 0:
            self.estimate = bps
            self.estimate_at = asyncio.get_running_loop().time()

    def fresh_estimate(self, now: float) -> int | None:
        """The estimate if it is recent enough to count (:data:`ESTIMATE_TTL`), else ``None``."""
        if self.estimate is not None and now - self.estimate_at <= ESTIMATE_TTL:
            return self.estimate
        return None

    def _follow_rate(self, rate: int, now: float) -> None:
        """Keyframes only while the estimate is far below the shared ``rate`` (retried after a while)."""
        estimate = self.fresh_estimate(now)
        if self.slideshow_since is None:
            if estimate is not None and estimate < SLIDESHOW_BELOW * rate:
                logger.info("camera %r: a viewer at %d bps, far below %d bps, gets keyframes only",
                            self.encoder.capture.name, estimate, rate)
                self.slideshow_since = now
        elif estimate is None or estimate >= SLIDESHOW_BELOW * rate or now - self.slideshow_since >= SLIDESHOW_RETRY:
            self.slideshow_since = None
            self.estimate = None  # measured anew on the full stream
            self.key_wanted = self.need_key = True

    def _slide_due(self, now: float) -> bool:
        """A keyframe is due for this viewer on keyframes only: at most one per
        :data:`SLIDESHOW_INTERVAL`, and no more than half its estimated link (a keyframe of the
        shared rate takes seconds through a slow link; each one costs every other viewer too)."""
        if self.slideshow_since is None:
            return False
        if self._last_key_at is None:
            return True
        interval = SLIDESHOW_INTERVAL
        key_bits = self.encoder.last_keyframe_bytes * 8
        if self.estimate and key_bits:
            interval = max(interval, min(KEYFRAME_MAX_INTERVAL, 2 * key_bits / self.estimate))
        return now - self._last_key_at >= interval

    def _offer(self, item: EncodedFrame) -> None:
        if self._closed:
            return
        queue = self._queue
        if item.keyframe:
            self.dropped += len(queue)
            queue.clear()
            self.need_key = False
            self._last_key_at = item.captured_at
        elif self.need_key or self.slideshow_since is not None:
            self.dropped += 1
            return
        elif len(queue) >= QUEUE_FRAMES:
            self.dropped += len(queue) + 1
            self.stalls += 1
            queue.clear()
            self.need_key = True
            self.key_wanted = True
            return
        queue.append(item)
        self._ready.set()

    def request_keyframe(self, *, resync: bool = False, urgent: bool = False) -> None:
        """Ask for a keyframe for this viewer.

        ``resync``: the frames sent so far may not have arrived (the sender dropped them), so skip
        to the keyframe. ``urgent``: not subject to :data:`KEYFRAME_MIN_INTERVAL` (renegotiation, not
        a receiver's request). A viewer that has not started and holds a keyframe needs nothing.
        """
        if self._closed or (not self.started and self._queue and self._queue[0].keyframe):
            return
        if resync:
            self.dropped += len(self._queue)
            self._queue.clear()
            self.need_key = True
        self.key_wanted = True
        if urgent:
            self.last_forced = None

    def _end(self, error: BaseException | None = None) -> None:
        self._closed = True
        self._queue.clear()
        if error is not None and self._error is None:
            self._error = error
        self._ready.set()

    async def get(self, timeout: float | None = None) -> EncodedFrame:
        """The next frame of a decodable run, waiting for one if needed.

        Raises :class:`SubscriptionClosed` once closed, :class:`CaptureError` if the camera
        cannot provide frames, :class:`TimeoutError` after ``timeout`` seconds.
        """
        async with asyncio.timeout(timeout):
            while not self._queue:
                if self._closed:
                    if self._error is not None:
                        raise CaptureError(str(self._error)) from self._error
                    raise SubscriptionClosed(f"encoder of camera {self.encoder.capture.name!r} is closed")
                self._ready.clear()
                await self._ready.wait()
        self.started = True
        self.delivered += 1
        return self._queue.popleft()

    def close(self) -> None:
        """Leave the encoder (idempotent); the last viewer to leave stops it."""
        if not self._closed:
            self._end()
            self.encoder._leave(self)


class SharedEncoder:
    """The one VP8 encoder of one camera at one picture size (``None``: the camera's own)."""

    def __init__(self, capture: CameraCapture, size: Size | None) -> None:
        self.capture = capture
        self.size = size
        self._viewers: list[PacketSubscription] = []
        self._task: asyncio.Task[None] | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._t0: float | None = None
        self._last_pts = -1
        #: Frames encoded, keyframes among them, and keyframes forced by requests.
        self.frames_encoded = 0
        self.keyframes = 0
        self.forced_keyframes = 0
        #: The shared rate (set at the first frame, when the picture size is known).
        self.governor: RateGovernor | None = None
        #: Size of the last keyframe (bytes): paces the keyframes of viewers on keyframes only.
        self.last_keyframe_bytes = 0

    @property
    def slideshow_viewers(self) -> int:
        """Viewers getting keyframes only (their link is far below the shared rate)."""
        return sum(v.slideshow for v in self._viewers)

    @property
    def target_bitrate(self) -> int | None:
        """The bitrate the encoder runs at now (bps); ``None`` before the first frame."""
        return None if self.governor is None else self.governor.target

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    @property
    def viewers(self) -> int:
        return len(self._viewers)

    def join(self) -> PacketSubscription:
        """A new viewer (asks for a keyframe at the next frame); the first starts the encoder."""
        sub = PacketSubscription(self)
        self._viewers.append(sub)
        if self._task is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"vp8-{self.capture.name}")
            loop = asyncio.get_running_loop()
            self._task = loop.create_task(self._run(self._executor), name=f"camera-encoder:{self.capture.name}")
            self._task.add_done_callback(self._done)
        return sub

    def _leave(self, sub: PacketSubscription) -> None:
        with contextlib.suppress(ValueError):
            self._viewers.remove(sub)
        if not self._viewers:
            self._stop()

    def _stop(self) -> None:
        if self.capture.encoders.get(self.size) is self:
            del self.capture.encoders[self.size]
        if self._task is not None:
            self._task.cancel()

    def _done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and (exc := task.exception()) is not None:
            logger.error("encoder of camera %r failed", self.capture.name, exc_info=exc)

    async def wait_stopped(self, timeout: float = STOP_TIMEOUT) -> None:
        """Wait (bounded) until a stopped encoder's task has finished (its worker thread then exits
        after the encode in flight, if any)."""
        task = self._task
        if task is not None and not task.done() and not self._viewers:
            _, pending = await asyncio.wait([task], timeout=timeout)
            if pending:
                logger.warning("encoder of camera %r did not stop within %g s", self.capture.name, timeout)

    async def aclose(self, timeout: float = STOP_TIMEOUT) -> None:
        """End every viewer and stop (bounded wait): the capture is closing."""
        viewers, self._viewers = self._viewers, []
        for viewer in viewers:
            viewer._end()
        self._stop()
        await self.wait_stopped(timeout)

    def _keyframe_due(self, now: float) -> bool:
        # a viewer on keyframes only gets them on its own schedule: its PLIs (it lost one in its
        # bottleneck) would otherwise force a keyframe on everyone every KEYFRAME_MIN_INTERVAL
        return any(
            v._slide_due(now)
            if v.slideshow
            else v.key_wanted and (v.last_forced is None or now - v.last_forced >= KEYFRAME_MIN_INTERVAL)
            for v in self._viewers
        )

    def _bitrate(self, frame: av.VideoFrame, now: float) -> int:
        """The rate for this frame: the viewers' policy (peer.media.bitrate) under the size's cap."""
        width, height = self.size if self.size is not None else (frame.width, frame.height)
        cap = target_bitrate(width, height, self.capture.fps)
        governor = self.governor
        if governor is None:
            governor = self.governor = RateGovernor(cap)
        governor.set_cap(cap)
        viewers = self._viewers
        # viewers on keyframes only have fallen back: they do not vote (unless nobody else is left)
        voters = [v for v in viewers if not v.slideshow] or viewers
        governor.update([v.fresh_estimate(now) for v in voters], now)
        for viewer in viewers:
            viewer._follow_rate(governor.target, now)
        return governor.target

    async def _run(self, executor: ThreadPoolExecutor) -> None:
        loop = asyncio.get_running_loop()
        source = self.capture.subscribe()
        vp8 = Vp8Encoder(self.capture.fps)
        try:
            while True:
                item = await source.get()
                if self._t0 is None:
                    self._t0 = item.captured_at
                pts = max(self._last_pts + 1, round((item.captured_at - self._t0) * VIDEO_TIME_BASE.denominator))
                self._last_pts = pts
                now = loop.time()
                bitrate = self._bitrate(item.frame, now)
                force = self._keyframe_due(now)
                job = loop.run_in_executor(executor, vp8.encode, item.frame, self.size, pts, force, bitrate)
                try:
                    data, keyframe, width, height = await asyncio.shield(job)
                except asyncio.CancelledError:
                    with contextlib.suppress(Exception):  # let the thread finish before it is released
                        await asyncio.wait_for(job, STOP_TIMEOUT)
                    raise
                if not data:
                    continue
                self.frames_encoded += 1
                if keyframe:
                    self.keyframes += 1
                    self.last_keyframe_bytes = len(data)
                    self.forced_keyframes += force
                    for viewer in self._viewers:
                        if viewer.key_wanted:
                            viewer.key_wanted = False
                            if force:
                                viewer.last_forced = now
                frame = EncodedFrame(data, keyframe, item.captured_at, width, height)
                for viewer in list(self._viewers):
                    viewer._offer(frame)
        except SubscriptionClosed:  # the capture was closed: so are its viewers
            for viewer in list(self._viewers):
                viewer._end()
        except CaptureError as exc:  # the camera cannot stream: tell every viewer why
            for viewer in list(self._viewers):
                viewer._end(exc.__cause__ or exc)
        except Exception as exc:  # libvpx refused a frame: end these viewers, never leave them waiting
            logger.exception("VP8 encoder of camera %r failed", self.capture.name)
            for viewer in list(self._viewers):
                viewer._end(exc)
        finally:
            source.close()
            executor.shutdown(wait=False, cancel_futures=True)
            vp8.close()
            if self.capture.encoders.get(self.size) is self:
                del self.capture.encoders[self.size]


def shared_encoder(capture: CameraCapture, size: Size | None) -> SharedEncoder:
    """The running encoder of ``capture`` at ``size`` (``None``: native), created if there is none."""
    encoder = capture.encoders.get(size)
    if encoder is None or not isinstance(encoder, SharedEncoder):
        encoder = SharedEncoder(capture, size)
        capture.encoders[size] = encoder
    return encoder


class EncodedCameraTrack(MediaStreamTrack):
    """Video track of one viewer that hands its sender pre-encoded VP8 (:meth:`recv_packet`).

    :class:`~peer.webrtc.video.SlotTrack` calls :meth:`recv_packet` when its sender sends VP8.
    If the sender negotiated another codec, it calls :meth:`recv` instead: the track then leaves
    the shared encoder for good and returns raw frames, which that sender encodes itself.
    """

    kind = "video"

    def __init__(self, capture: CameraCapture) -> None:
        super().__init__()
        self.capture = capture
        self.size: Size | None = None
        self._sub: PacketSubscription | None = shared_encoder(capture, None).join()
        self._frames: CameraTrack | None = None
        self._t0: float | None = None
        self._last_pts = -1
        #: Capture time of the frame handed out last (as ``CameraTrack.last_captured_at``).
        self.last_captured_at: float | None = None
        capture.add_viewer(self)

    @property
    def subscription(self) -> PacketSubscription | None:
        """This viewer's place at its shared encoder (``None`` once on raw frames or stopped)."""
        return self._sub

    @property
    def encoder(self) -> SharedEncoder | None:
        return None if self._sub is None else self._sub.encoder

    @property
    def shared(self) -> bool:
        """Whether this track still sends pre-encoded packets."""
        return self._frames is None

    def set_size(self, size: Size | None) -> None:
        """Move to the shared encoder of ``size`` (starting again on a keyframe)."""
        if size == self.size:
            return
        self.size = size
        if self._sub is not None and self.readyState == "live":
            old, self._sub = self._sub, shared_encoder(self.capture, size).join()
            self._sub.estimate, self._sub.estimate_at = old.estimate, old.estimate_at  # same link
            old.close()

    def report_estimate(self, bps: int) -> None:
        """The viewer's receiver estimate (REMB, bps): the shared encoder's rate follows its viewers."""
        if self._sub is not None:
            self._sub.report_estimate(bps)

    def request_keyframe(self, *, resync: bool = False, urgent: bool = False) -> None:
        if self._sub is not None:
            self._sub.request_keyframe(resync=resync, urgent=urgent)

    async def recv_packet(self) -> av.Packet[Any]:
        if self.readyState != "live" or self._sub is None:
            raise MediaStreamError
        sub = self._sub
        try:
            item = await sub.get()
        except SubscriptionClosed:
            if self._sub is not sub:  # moved to another size while waiting
                return await self.recv_packet()
            self.stop()
            raise MediaStreamError from None
        except CaptureError:
            self.stop()
            raise MediaStreamError from None
        if self._t0 is None:
            self._t0 = item.captured_at
        pts = max(self._last_pts + 1, round((item.captured_at - self._t0) * VIDEO_TIME_BASE.denominator))
        self._last_pts = pts
        self.last_captured_at = item.captured_at
        packet = av.Packet(item.data)
        packet.pts = pts
        packet.time_base = VIDEO_TIME_BASE
        return packet

    async def recv(self) -> av.VideoFrame:
        """Raw frames, for a sender that does not send VP8 (leaves the shared encoder)."""
        if self.readyState != "live":
            raise MediaStreamError
        if self._frames is None:
            logger.info("camera %r: a viewer's sender does not send VP8; it encodes on its own", self.capture.name)
            if self._sub is not None:
                self._sub.close()
                self._sub = None
            self._frames = CameraTrack(self.capture.subscribe(), viewer=False)
        frame = await self._frames.recv()
        self.last_captured_at = self._frames.last_captured_at
        return frame

    def count_sent(self, frames: int, nbytes: int) -> None:
        """What the sender sent of this track (``/stats``, as :meth:`CameraTrack.count_sent`)."""
        now = asyncio.get_running_loop().time()
        self.capture.encoded.add(now, frames)
        self.capture.sent_bytes.add(now, nbytes)

    def stop(self) -> None:
        if self._sub is not None:
            self._sub.close()
        if self._frames is not None:
            self._frames.stop()
        self.capture.remove_viewer(self)
        super().stop()

    async def aclose(self) -> None:
        """:meth:`stop`, then wait (bounded) for an encoder and capture loop this stopped."""
        encoder = self.encoder
        self.stop()
        if encoder is not None:
            await encoder.wait_stopped()
        await self.capture.wait_stopped()


__all__ = [
    "ENCODE_ONCE_ENV",
    "EncodedCameraTrack",
    "EncodedFrame",
    "PacketSubscription",
    "SharedEncoder",
    "Vp8Encoder",
    "encode_once_enabled",
    "shared_encoder",
    "target_bitrate",
]
