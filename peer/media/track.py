"""A per-viewer aiortc video track fed by a :class:`~peer.media.capture.CameraCapture` subscription."""

from __future__ import annotations

import asyncio
from fractions import Fraction

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from .capture import CameraCapture, CaptureError, Subscription, SubscriptionClosed

#: RTP video clock: every frame this module hands to aiortc has pts in 1/90000 s.
VIDEO_CLOCK_RATE = 90000
VIDEO_TIME_BASE = Fraction(1, VIDEO_CLOCK_RATE)


def copy_frame(src: av.VideoFrame) -> av.VideoFrame:
    """A private yuv420p copy (captured frames are shared; encoders run in threads and read pts)."""
    if src.format.name != "yuv420p":
        return src.reformat(format="yuv420p")  # a new frame already
    dst = av.VideoFrame(src.width, src.height, "yuv420p")
    if all(d.buffer_size == s.buffer_size for d, s in zip(dst.planes, src.planes, strict=True)):
        for d, s in zip(dst.planes, src.planes, strict=True):
            d.update(s)  # type: ignore[arg-type]  # any buffer works; the stub says bytes
        return dst
    return av.VideoFrame.from_ndarray(src.to_ndarray(), format="yuv420p")  # different line padding


class CameraTrack(MediaStreamTrack):
    """Video track of one viewer: ``recv()`` returns the newest captured frame.

    Each returned frame is this track's own copy, stamped with pts on the 90 kHz clock counted from
    the track's first frame using the capture time, and kept strictly increasing: an aiortc sender
    whose encoder sees pts go backwards dies for good (see docs/video.md §4). So keep one such
    track per sender for its whole life. ``stop()`` leaves the capture and wakes a waiting ``recv()``,
    which then raises :class:`MediaStreamError` (the aiortc end-of-track idiom).
    """

    kind = "video"

    def __init__(self, subscription: Subscription, *, viewer: bool = True) -> None:
        super().__init__()
        self.subscription = subscription
        #: Counted as a viewer of the camera (``False`` when wrapped by another viewer's track).
        self._viewer = viewer
        if viewer:
            subscription.capture.add_viewer(self)
        self._t0: float | None = None
        self._last_pts = -1
        #: Capture time (``loop.time()``) of the frame :meth:`recv` returned last; ``None`` before.
        self.last_captured_at: float | None = None

    @classmethod
    def from_capture(cls, capture: CameraCapture) -> CameraTrack:
        """Subscribe to ``capture`` and wrap the subscription (needs a running event loop)."""
        return cls(capture.subscribe())

    @property
    def frames_sent(self) -> int:
        return int(self.subscription.delivered)

    async def recv(self) -> av.VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        try:
            item = await self.subscription.get()
        except (SubscriptionClosed, CaptureError):
            self.stop()
            raise MediaStreamError from None
        if self._t0 is None:
            self._t0 = item.captured_at
        pts = max(self._last_pts + 1, round((item.captured_at - self._t0) * VIDEO_CLOCK_RATE))
        self._last_pts = pts
        self.last_captured_at = item.captured_at
        frame = copy_frame(item.frame)
        frame.pts = pts
        frame.time_base = VIDEO_TIME_BASE
        return frame

    def count_sent(self, frames: int, nbytes: int) -> None:
        """The sender encoded ``frames`` of this track's frames into ``nbytes`` of RTP payload.

        Counted into the camera's ``encoded`` and ``sent_bytes`` windows (``/stats``), so a camera's
        figures cover every viewer on every connection without the capture knowing any sender.
        """
        capture = self.subscription.capture
        now = asyncio.get_running_loop().time()
        capture.encoded.add(now, frames)
        capture.sent_bytes.add(now, nbytes)

    def stop(self) -> None:
        self.subscription.close()
        if self._viewer:
            self.subscription.capture.remove_viewer(self)
        super().stop()

    async def aclose(self) -> None:
        """:meth:`stop`, then wait (bounded) for a capture loop this stopped to finish."""
        self.stop()
        await self.subscription.capture.wait_stopped()


__all__ = ["VIDEO_CLOCK_RATE", "VIDEO_TIME_BASE", "CameraTrack", "copy_frame"]
