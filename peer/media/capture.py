"""One capture loop per camera, fanned out to any number of viewers, latest frame wins.

:class:`CameraCapture` pulls frames from one camera at the camera's rate while at least one
:class:`Subscription` exists. Every captured frame is offered to every subscription; a subscription
keeps at most one pending frame and a newer frame replaces an unconsumed one. So a slow (or stalled)
viewer costs one frame reference of memory and never delays the capture loop or the other viewers.

The loop task starts with the first subscription and is cancelled when the last one closes;
:meth:`Subscription.aclose` and :meth:`CameraCapture.aclose` also wait (bounded) for it to finish.

Captured frames are shared between viewers and must be treated as read-only: a consumer that needs
to change a frame (for example its ``pts``, as :class:`~peer.media.track.CameraTrack` does) copies it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import av

from ..components.camera.api import Camera
from ..errors import NotSupportedError

if TYPE_CHECKING:
    from .encoder import SharedEncoder

logger = logging.getLogger(__name__)

#: Frame rate used when neither the caller nor the camera says (RDK's default for live video).
DEFAULT_FPS = 20.0
#: How long :meth:`CameraCapture.aclose` waits for a cancelled loop to finish.
STOP_TIMEOUT = 2.0
#: Seconds of capture times kept for :meth:`CameraCapture.recent_fps`.
FPS_WINDOW = 2.0
#: Cap on the pause after a failed capture, so a broken camera does not spin the loop.
_MAX_RETRY_DELAY = 1.0


class CaptureError(Exception):
    """The camera cannot provide video frames (raised to viewers by :meth:`Subscription.get`)."""


class SubscriptionClosed(Exception):
    """The subscription was closed (by its owner or because the capture was closed)."""


class RateWindow:
    """Events (a time and an amount) over the last :data:`FPS_WINDOW` seconds, as a rate per second.

    Used for what leaves the robot per camera (frames encoded and payload bytes sent, counted by
    the senders through :meth:`CameraTrack.count_sent <peer.media.track.CameraTrack.count_sent>`):
    a window rather than counters, so a viewer that leaves takes its share out within the window.
    """

    def __init__(self, window: float = FPS_WINDOW) -> None:
        self.window = window
        self._events: deque[tuple[float, int]] = deque()
        self._first: float | None = None  # first event of the current busy period
        #: Sum of every amount ever added.
        self.total = 0

    def add(self, now: float, amount: int = 1) -> None:
        events = self._events
        if not events or events[-1][0] < now - self.window:
            self._first = now  # idle for a whole window: a new busy period
        events.append((now, amount))
        self.total += amount
        while events and events[0][0] < now - self.window:
            events.popleft()

    def rate(self, now: float) -> float:
        """Amount per second over the window ending at ``now`` (0 once idle for a whole window).

        A busy period younger than the window is measured over its age (at least half a second),
        so the rate is right from the first second instead of ramping up.
        """
        recent = sum(amount for t, amount in self._events if t > now - self.window)
        if not recent or self._first is None:
            return 0.0
        return recent / max(0.5, min(self.window, now - self._first))


@runtime_checkable
class TimedFrameSource(Protocol):
    """A camera whose picture is a function of time, like ``FakeCamera``: the loop can render the
    frame of the current instant and sleep exactly until the next frame index."""

    @property
    def fps(self) -> float: ...

    def elapsed(self) -> float: ...

    def frame_at(self, t: float) -> Any: ...  # PatternFrame: ``.index`` and ``.to_video_frame()``


@dataclass(frozen=True)
class CapturedFrame:
    """One picture from the capture loop, shared by every viewer (do not mutate ``frame``)."""

    frame: av.VideoFrame
    #: Capture sequence number within this :class:`CameraCapture`, from 0, strictly increasing.
    seq: int
    #: Event-loop time (``loop.time()``, monotonic seconds) at which the frame was captured.
    captured_at: float


class Subscription:
    """One viewer's mailbox: at most one pending frame, newest wins."""

    def __init__(self, capture: CameraCapture) -> None:
        self.capture = capture
        self._pending: CapturedFrame | None = None
        self._ready = asyncio.Event()
        self._closed = False
        self._error: BaseException | None = None
        #: Frames handed to this viewer by :meth:`get`.
        self.delivered = 0
        #: Frames replaced before this viewer read them (the cost of being slow).
        self.dropped = 0

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def pending(self) -> int:
        """Frames waiting to be read: 0 or 1."""
        return 0 if self._pending is None else 1

    def _offer(self, item: CapturedFrame) -> None:
        if self._closed:
            return
        if self._pending is not None:
            self.dropped += 1
        self._pending = item
        self._ready.set()

    def _end(self, error: BaseException | None = None) -> None:
        self._closed = True
        self._pending = None
        if error is not None and self._error is None:
            self._error = error
        self._ready.set()  # wake a waiting get()

    async def get(self, timeout: float | None = None) -> CapturedFrame:
        """The newest frame not yet read, waiting for one if needed.

        Raises :class:`SubscriptionClosed` once closed (also when a ``get`` is already waiting),
        :class:`CaptureError` if the camera cannot provide frames, :class:`TimeoutError` after
        ``timeout`` seconds without a frame.
        """
        async with asyncio.timeout(timeout):
            while self._pending is None:
                if self._closed:
                    if self._error is not None:
                        raise CaptureError(str(self._error)) from self._error
                    raise SubscriptionClosed(f"subscription to camera {self.capture.name!r} is closed")
                self._ready.clear()
                await self._ready.wait()
        item, self._pending = self._pending, None
        self.delivered += 1
        return item

    def close(self) -> None:
        """Leave the capture now (idempotent); the last viewer to leave cancels the loop task.

        Synchronous so it can back ``MediaStreamTrack.stop()``; :meth:`aclose` also awaits the loop.
        """
        if not self._closed:
            self._end()
            self.capture._unsubscribe(self)

    async def aclose(self) -> None:
        """:meth:`close`, then wait (bounded) until a loop this cancelled has finished."""
        self.close()
        await self.capture.wait_stopped()


class CameraCapture:
    """The single capture loop of one camera, shared by all its viewers."""

    def __init__(self, camera: Camera, fps: float | None = None) -> None:
        if fps is None:
            fps = getattr(camera, "fps", None) or DEFAULT_FPS
        if not fps > 0:
            raise ValueError(f"fps must be positive, not {fps!r}")
        self.camera = camera
        self.fps = float(fps)
        self._subscribers: list[Subscription] = []
        self._task: asyncio.Task[None] | None = None
        self._stopping: set[asyncio.Task[None]] = set()
        self._seq = 0
        #: Frames taken from the camera since this object was created.
        self.frames_captured = 0
        #: Capture attempts that raised.
        self.errors = 0
        #: Loop tasks started so far (one per busy period: first subscribe → last unsubscribe).
        self.loops_started = 0
        self._recent: deque[float] = deque()  # capture times (loop.time()) within FPS_WINDOW
        #: Frames encoded and sent to viewers (all viewers together), counted by their senders.
        self.encoded = RateWindow()
        #: RTP payload bytes sent to viewers (all viewers together), counted by their senders.
        self.sent_bytes = RateWindow()
        self._loop_started_at = float("-inf")
        #: Running shared VP8 encoders of this camera by picture size (``None``: native), kept by
        #: :mod:`peer.media.encoder`; each is one subscriber of this capture, however many viewers.
        self.encoders: dict[tuple[int, int] | None, SharedEncoder] = {}
        self._viewers: set[object] = set()

    @property
    def name(self) -> str:
        return self.camera.name

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    @property
    def viewers(self) -> int:
        """Live viewer tracks of this camera (a subscriber may be a shared encoder serving many)."""
        return len(self._viewers)

    def add_viewer(self, track: object) -> None:
        self._viewers.add(track)

    def remove_viewer(self, track: object) -> None:
        self._viewers.discard(track)

    def subscribe(self) -> Subscription:
        """A new viewer; starts the capture loop if it is the first. Needs a running event loop."""
        sub = Subscription(self)
        self._subscribers.append(sub)
        if self._task is None:
            self.loops_started += 1
            self._loop_started_at = asyncio.get_running_loop().time()
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"camera-capture:{self.name}")
            self._task.add_done_callback(self._loop_done)
        return sub

    def _unsubscribe(self, sub: Subscription) -> None:
        with contextlib.suppress(ValueError):
            self._subscribers.remove(sub)
        if not self._subscribers and self._task is not None:
            task, self._task = self._task, None
            task.cancel()
            if not task.done():
                self._stopping.add(task)

    def _loop_done(self, task: asyncio.Task[None]) -> None:
        self._stopping.discard(task)
        if self._task is task:
            self._task = None
        if not task.cancelled() and (exc := task.exception()) is not None:  # retrieved: never unreported
            logger.error("capture loop of camera %r failed", self.name, exc_info=exc)

    def recent_fps(self, now: float | None = None) -> float:
        """Frames captured per second over the last :data:`FPS_WINDOW` seconds (0 when idle).

        ``now`` is event-loop time (default: the running loop's, else the newest capture's). A
        loop younger than the window is measured over its age (at least half a second), so the
        rate is right from its first second instead of ramping up.
        """
        if now is None:
            try:
                now = asyncio.get_running_loop().time()
            except RuntimeError:
                now = self._recent[-1] if self._recent else 0.0
        count = sum(1 for t in self._recent if t > now - FPS_WINDOW)
        span = max(0.5, min(FPS_WINDOW, now - self._loop_started_at))
        return count / span

    async def wait_stopped(self, timeout: float = STOP_TIMEOUT) -> None:
        """Wait until loops cancelled by the last viewer leaving have finished (bounded)."""
        pending = [t for t in self._stopping if not t.done()]
        if pending:
            _, not_done = await asyncio.wait(pending, timeout=timeout)
            if not_done:
                logger.warning("capture loop of camera %r did not stop within %g s", self.name, timeout)

    async def aclose(self, timeout: float = STOP_TIMEOUT) -> None:
        """Stop the shared encoders, close every subscription and stop the loop (bounded waits)."""
        for encoder in list(self.encoders.values()):
            await encoder.aclose(timeout)
        for sub in list(self._subscribers):
            sub.close()
        await self.wait_stopped(timeout)

    # -- the loop -----------------------------------------------------------------------------

    def _publish(self, frame: av.VideoFrame, captured_at: float) -> None:
        item = CapturedFrame(frame, self._seq, captured_at)
        self._seq += 1
        self.frames_captured += 1
        self._recent.append(captured_at)
        while self._recent and self._recent[0] < captured_at - FPS_WINDOW:
            self._recent.popleft()
        for sub in self._subscribers:
            sub._offer(item)

    def _fail_all(self, error: BaseException) -> None:
        subs, self._subscribers = self._subscribers, []
        for sub in subs:
            sub._end(error)

    async def _run(self) -> None:
        try:
            if isinstance(self.camera, TimedFrameSource):
                await self._run_timed(self.camera)
            else:
                await self._run_polled()
        except NotSupportedError as exc:
            logger.warning("camera %r cannot stream video: %s", self.name, exc)
            self._fail_all(exc)
        except Exception as exc:
            logger.exception("capture loop of camera %r failed", self.name)
            self._fail_all(exc)
        else:
            return
        if self._task is asyncio.current_task():
            self._task = None  # a later subscribe starts a fresh loop

    async def _run_timed(self, camera: TimedFrameSource) -> None:
        """Render each frame index once, waking just after it starts on the camera's time axis."""
        loop = asyncio.get_running_loop()
        cam_fps = camera.fps
        last_index = -1
        while True:
            t = camera.elapsed()
            pattern = camera.frame_at(t)
            if pattern.index != last_index:
                last_index = pattern.index
                self._publish(pattern.to_video_frame(), loop.time())
            # Sleep to the start of the next frame at our rate (a lower fps skips camera frames).
            step = max(1, round(cam_fps / self.fps))
            next_t = (last_index + step) / cam_fps
            await asyncio.sleep(max(0.0, next_t - camera.elapsed()) + 1e-4)

    async def _run_polled(self) -> None:
        """``await camera.get_frame()`` at ``fps``, on fixed deadlines, dropping ticks when behind."""
        loop = asyncio.get_running_loop()
        period = 1.0 / self.fps
        deadline = loop.time()
        failures = 0
        while True:
            try:
                frame = await self.camera.get_frame()
            except (NotSupportedError, asyncio.CancelledError):
                raise
            except Exception:
                self.errors += 1
                failures += 1
                if failures == 1:
                    logger.exception("camera %r failed to capture a frame; retrying", self.name)
                await asyncio.sleep(min(_MAX_RETRY_DELAY, period * failures))
                deadline = loop.time()
                continue
            if failures:
                logger.info("camera %r captures again after %d failures", self.name, failures)
                failures = 0
            self._publish(frame, loop.time())
            deadline += period
            now = loop.time()
            if deadline < now - period:  # more than a frame behind: skip ticks, never burst
                deadline = now
            await asyncio.sleep(max(0.0, deadline - now))
