"""CameraCapture fan-out and CameraTrack, with the fake camera (real time, small frames, short windows)."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Mapping, Sequence
from fractions import Fraction
from typing import Any

import av
import numpy as np
import pytest
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from peer.components.camera import Camera, FakeCamera
from peer.components.camera.pattern import PatternFrame, read_frame_code
from peer.errors import NotSupportedError
from peer.media import CameraCapture, CameraTrack, CaptureError, RateWindow, Subscription, SubscriptionClosed
from tests.webrtc.conftest import loopback_only, no_leaked_tasks  # noqa: F401 - autouse fixtures

FPS = 30.0
W, H = 160, 120
WAIT = 5.0


class CountingCamera(FakeCamera):
    """The fake camera, counting the frames rendered (i.e. taken from the camera)."""

    def __init__(self, name: str = "cam", **kwargs: Any) -> None:
        super().__init__(name, width=W, height=H, fps=FPS, **kwargs)
        self.rendered = 0

    def frame_at(self, t: float) -> PatternFrame:
        self.rendered += 1
        return super().frame_at(t)


class PolledCamera(Camera):
    """A camera known only through ``get_frame()`` (no time axis), optionally unable to stream."""

    def __init__(self, supported: bool = True) -> None:
        super().__init__("polled")
        self.inner = FakeCamera("inner", width=W, height=H, fps=FPS)
        self.supported = supported
        self.calls = 0

    async def get_frame(self) -> av.VideoFrame:
        self.calls += 1
        if not self.supported:
            raise NotSupportedError("no raw frames here")
        return await self.inner.get_frame()

    async def get_images(self, **kwargs: Any) -> tuple[Sequence[Any], Any]:
        raise NotImplementedError

    async def get_point_cloud(self, *, extra: Mapping[str, Any] | None = None, **kwargs: Any) -> tuple[bytes, str]:
        raise NotImplementedError

    async def get_properties(self, **kwargs: Any) -> Any:
        raise NotImplementedError


def capture_tasks() -> list[asyncio.Task[Any]]:
    return [t for t in asyncio.all_tasks() if t.get_name().startswith("camera-capture:") and not t.done()]


def code_of(frame: av.VideoFrame) -> int:
    i420 = np.asarray(frame.to_ndarray(format="yuv420p"), dtype=np.uint8)
    return read_frame_code(i420[: frame.height])


async def drain(sub: Subscription, seconds: float) -> list[int]:
    """Read ``sub`` as fast as frames come for ``seconds``; the pattern indexes read from the pixels."""
    codes: list[int] = []
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while (left := end - loop.time()) > 0:
        try:
            item = await sub.get(timeout=left)
        except TimeoutError:
            break
        codes.append(code_of(item.frame))
    return codes


async def test_two_viewers_share_one_capture_loop() -> None:
    camera = CountingCamera()
    capture = CameraCapture(camera)
    a, b = capture.subscribe(), capture.subscribe()
    window = 0.6
    try:
        codes_a, codes_b = await asyncio.gather(drain(a, window), drain(b, window))
        assert len(capture_tasks()) == 1 and capture.loops_started == 1
    finally:
        await capture.aclose()
    produced = capture.frames_captured
    # one loop: the camera rendered each frame once, not once per viewer
    assert camera.rendered <= produced + 2
    assert 0.5 * FPS * window <= produced <= FPS * window + 3
    for codes in (codes_a, codes_b):
        assert produced - 2 <= len(codes) <= produced
        assert codes == sorted(set(codes)), "pattern indexes must strictly increase"
    assert a.dropped <= 1 and b.dropped <= 1


async def test_stalled_viewer_holds_one_frame_and_slows_no_one() -> None:
    camera = CountingCamera()
    capture = CameraCapture(camera)
    stalled, reader = capture.subscribe(), capture.subscribe()
    window = 1.0
    max_pending = 0

    async def watch() -> None:
        nonlocal max_pending
        while True:
            max_pending = max(max_pending, stalled.pending)
            await asyncio.sleep(0.005)

    watcher = asyncio.create_task(watch())
    try:
        codes = await drain(reader, window)
    finally:
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
    assert max_pending == 1 and stalled.pending == 1 and stalled.delivered == 0
    assert stalled.dropped == capture.frames_captured - 1
    assert len(codes) >= 0.5 * FPS * window
    assert codes == sorted(set(codes))
    # the stalled viewer still gets the newest frame when it finally reads
    newest = await stalled.get(timeout=WAIT)
    assert newest.seq == capture.frames_captured - 1
    await capture.aclose()
    assert not capture.running


async def test_loop_stops_with_the_last_viewer_and_restarts() -> None:
    capture = CameraCapture(CountingCamera())
    assert not capture.running and not capture_tasks()
    a, b = capture.subscribe(), capture.subscribe()
    await a.get(timeout=WAIT)
    await a.aclose()
    assert capture.running, "one viewer is left"
    await b.get(timeout=WAIT)
    await b.aclose()
    assert not capture.running and not capture_tasks() and capture.subscribers == 0
    with pytest.raises(SubscriptionClosed):
        await b.get(timeout=WAIT)

    c = capture.subscribe()  # a new busy period: a new loop
    await c.get(timeout=WAIT)
    assert capture.loops_started == 2 and len(capture_tasks()) == 1
    waiter = asyncio.create_task(c.get())  # close wakes a waiting reader
    await asyncio.sleep(0)
    c.close()
    with pytest.raises(SubscriptionClosed):
        await asyncio.wait_for(waiter, WAIT)
    await capture.wait_stopped()
    assert not capture_tasks()


async def test_polled_camera_paced_at_the_requested_rate() -> None:
    camera = PolledCamera()
    capture = CameraCapture(camera, fps=20)
    sub = capture.subscribe()
    window = 0.5
    codes = await drain(sub, window)
    await sub.aclose()
    assert not capture_tasks()
    assert 0.5 * 20 * window <= len(codes) <= 20 * window + 2
    assert codes == sorted(set(codes))


async def test_camera_without_frames_fails_its_viewers() -> None:
    capture = CameraCapture(PolledCamera(supported=False), fps=20)
    track = CameraTrack.from_capture(capture)
    with pytest.raises(CaptureError):
        await capture.subscribe().get(timeout=WAIT)
    with pytest.raises(MediaStreamError):
        await asyncio.wait_for(track.recv(), WAIT)
    assert track.readyState == "ended"
    await capture.aclose()
    assert not capture_tasks()


async def test_track_pts_monotonic_on_90khz_clock_and_own_frames() -> None:
    camera = CountingCamera()
    capture = CameraCapture(camera)
    t1, t2 = CameraTrack.from_capture(capture), CameraTrack.from_capture(capture)
    assert t1.kind == "video" and isinstance(t1, MediaStreamTrack)
    frames1: list[av.VideoFrame] = []
    frames2: list[av.VideoFrame] = []
    for _ in range(12):
        f1, f2 = await asyncio.wait_for(asyncio.gather(t1.recv(), t2.recv()), WAIT)
        frames1.append(f1)
        frames2.append(f2)
    for frames in (frames1, frames2):
        pts = [f.pts for f in frames if f.pts is not None]
        assert len(pts) == len(frames)
        assert all(b > a for a, b in itertools.pairwise(pts)), pts
        assert all(f.time_base == Fraction(1, 90000) for f in frames)
        assert all((f.width, f.height, f.format.name) == (camera.width, camera.height, "yuv420p") for f in frames)
        # about one frame interval (3000 ticks at 30 fps) apart on average
        assert 1500 <= (pts[-1] - pts[0]) / (len(pts) - 1) <= 9000
    # each viewer gets its own frame object (pts differ per sender), same picture
    assert all(f1 is not f2 for f1, f2 in zip(frames1, frames2, strict=True))
    assert [code_of(f) for f in frames1[-3:]] == [code_of(f) for f in frames2[-3:]]

    pending = asyncio.create_task(t1.recv())
    await asyncio.sleep(0)
    t1.stop()  # a recv() waiting when the track stops ends instead of hanging
    with pytest.raises(MediaStreamError):
        await asyncio.wait_for(pending, WAIT)
    assert capture.running
    await t2.aclose()
    assert not capture.running and not capture_tasks()


async def test_frames_encode_and_decode_at_camera_size() -> None:
    camera = CountingCamera()
    capture = CameraCapture(camera)
    track = CameraTrack.from_capture(capture)
    enc = av.CodecContext.create("libvpx", "w")
    enc.width, enc.height, enc.pix_fmt = camera.width, camera.height, "yuv420p"
    enc.time_base = Fraction(1, 90000)
    enc.bit_rate = 1_000_000
    dec = av.CodecContext.create("vp8", "r")
    decoded: list[av.VideoFrame] = []
    sent: list[int] = []
    try:
        for _ in range(8):
            frame = await asyncio.wait_for(track.recv(), WAIT)
            sent.append(code_of(frame))
            for packet in enc.encode(frame):
                decoded.extend(dec.decode(packet))
        for packet in enc.encode(None):
            decoded.extend(dec.decode(packet))
    finally:
        await track.aclose()
    assert len(decoded) == len(sent)
    assert all((f.width, f.height) == (camera.width, camera.height) for f in decoded)
    assert [code_of(f) for f in decoded] == sent


async def test_track_over_loopback_peer_connections() -> None:
    """A CameraTrack sent by one aiortc RTCPeerConnection arrives (VP8) at another, at camera size."""
    camera = FakeCamera("cam", width=320, height=240, fps=FPS)
    capture = CameraCapture(camera)
    track = CameraTrack.from_capture(capture)
    sender, receiver = RTCPeerConnection(), RTCPeerConnection()
    got: asyncio.Future[MediaStreamTrack] = asyncio.get_running_loop().create_future()

    @receiver.on("track")
    def on_track(remote: MediaStreamTrack) -> None:
        if not got.done():
            got.set_result(remote)

    try:
        sender.addTrack(track)
        await sender.setLocalDescription(await sender.createOffer())
        await receiver.setRemoteDescription(sender.localDescription)
        await receiver.setLocalDescription(await receiver.createAnswer())
        answer = receiver.localDescription
        assert "VP8" in answer.sdp
        await sender.setRemoteDescription(RTCSessionDescription(answer.sdp, answer.type))
        remote = await asyncio.wait_for(got, WAIT)
        codes: list[int] = []
        async with asyncio.timeout(WAIT):
            while len(codes) < 10:
                frame = await remote.recv()
                assert isinstance(frame, av.VideoFrame)
                assert (frame.width, frame.height) == (camera.width, camera.height)
                codes.append(code_of(frame))
        assert codes == sorted(codes) and len(set(codes)) >= 8
        assert sender.getSenders()[0].track is track
    finally:
        await sender.close()
        await receiver.close()
        await track.aclose()
    assert track.readyState == "ended" and not capture.running


def test_rate_window_counts_over_its_window_and_falls_to_zero() -> None:
    window = RateWindow(window=2.0)
    assert window.rate(10.0) == 0.0
    for i in range(60):  # 30 events a second for 2 s, 100 units each
        window.add(10.0 + i / 30, 100)
    assert window.rate(12.0) == pytest.approx(3000, rel=0.05)
    assert window.total == 6000
    # one second in: measured over the busy period's age, not ramping up over the whole window
    young = RateWindow(window=2.0)
    for i in range(30):
        young.add(50.0 + i / 30)
    assert young.rate(51.0) == pytest.approx(30, rel=0.05)
    # idle for longer than the window: 0, and the next burst starts a new busy period
    assert window.rate(14.1) == 0.0
    window.add(20.0, 10)
    assert window.rate(20.0) == pytest.approx(20.0)  # 10 over the minimum span of half a second
