"""Encode once per camera and size (peer.media.encoder) end to end, aiortc viewers on loopback.

Every decoded frame is checked against the fake camera's own rendering of the frame its code
strip names (PSNR of the luma plane): a viewer fed a delta frame whose reference it never got
decodes garbage, which fails this check even when the code strip happens to survive.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import threading
from collections.abc import Awaitable, Callable

import av
import numpy as np
import pytest
from aiortc import MediaStreamTrack
from grpclib import GRPCError, Status

from peer.components.camera import FakeCamera
from peer.components.camera.pattern import read_frame_code
from peer.gen.proto.stream.v1 import stream_pb2 as pb
from peer.media import CameraCapture, EncodedCameraTrack
from peer.media.encoder import ENCODE_ONCE_ENV, KEYFRAME_MIN_INTERVAL, QUEUE_FRAMES, SharedEncoder
from peer.webrtc import DialedChannel, dial
from peer.webrtc.session import PeerSession

from .conftest import CAM1, VideoRobot, eventually
from .test_stream import add_and_watch, stub

pytestmark = pytest.mark.timeout(60)

WAIT = 10.0
#: Least luma PSNR of a decoded frame against the camera's own picture of that frame index. VP8 at
#: these sizes and bitrates gives 30+ dB on the pattern; a frame decoded on a missing reference is
#: far below (and a misread code strip compares against the wrong picture).
MIN_PSNR_DB = 24.0
#: The same check at the bitrate floor (150-260 kbps at 640x480, where adaptive bitrate may take a
#: viewer): honest frames measure 20+ dB there, while a frame decoded on a missing reference measured ~9 dB.
LOW_RATE_MIN_PSNR_DB = 16.0
#: How long a viewer's sender is held in the stall test: many times the viewer's queue.
STALL_S = 0.8


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)


def checked(camera: FakeCamera, frame: av.VideoFrame, min_psnr: float = MIN_PSNR_DB) -> int:
    """The frame's index, after checking the picture is the camera's frame of that index."""
    i420 = np.asarray(frame.to_ndarray(format="yuv420p"), dtype=np.uint8)
    y = i420[: frame.height]
    code = read_frame_code(y)
    reference = camera.frame_at(code / camera.fps + 1e-6).to_video_frame()
    if (reference.width, reference.height) != (frame.width, frame.height):
        reference = reference.reformat(width=frame.width, height=frame.height, format="yuv420p")
    ref_y = np.asarray(reference.to_ndarray(format="yuv420p"), dtype=np.uint8)[: frame.height]
    quality = psnr(y, ref_y)
    assert quality >= min_psnr, f"frame {code} decoded at {quality:.1f} dB (corrupt?)"
    return code


async def decoded(
    camera: FakeCamera, track: MediaStreamTrack, count: int, timeout: float = WAIT, min_psnr: float = MIN_PSNR_DB
) -> list[int]:
    """The codes of the next ``count`` decoded frames, each checked against the camera's picture."""
    codes: list[int] = []
    async with asyncio.timeout(timeout):
        while len(codes) < count:
            frame = await track.recv()
            assert isinstance(frame, av.VideoFrame)
            codes.append(checked(camera, frame, min_psnr))
    assert all(b > a for a, b in itertools.pairwise(codes)), codes
    return codes


def cam1(robot: VideoRobot) -> FakeCamera:
    camera = robot.server.manager.resources[next(rn for rn in robot.server.manager.resources if rn.name == "cam1")]
    assert isinstance(camera, FakeCamera)
    return camera


def viewer_track(session: PeerSession, name: str = "cam1") -> EncodedCameraTrack:
    source = session.video.source(name)
    assert isinstance(source, EncodedCameraTrack)
    return source


def only_encoder(capture: CameraCapture) -> SharedEncoder:
    (encoder,) = capture.encoders.values()
    return encoder


def encoder_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("vp8-")]


async def test_two_viewers_one_encoder_late_joiner_and_release(video_robot: VideoRobot) -> None:
    camera, streams = cam1(video_robot), video_robot.streams
    async with await dial(video_robot.address, timeout=WAIT) as one:
        first = await add_and_watch(one, "cam1")
        await decoded(camera, first, 45)  # 1.5 s in: the next natural keyframe is 10 s away
        capture = streams.captures["cam1"]
        encoder = only_encoder(capture)
        forced_before = encoder.forced_keyframes

        async with await dial(video_robot.address, timeout=WAIT) as two:
            second = await add_and_watch(two, "cam1")
            # the late joiner starts on a keyframe made for it, and decodes cleanly from its first frame
            late = await decoded(camera, second, 20, timeout=WAIT)
            assert encoder.forced_keyframes > forced_before
            both = await asyncio.gather(decoded(camera, first, 15), decoded(camera, second, 15))
            assert all(codes[-1] > late[-1] - 30 for codes in both)  # both live, not replaying
            assert only_encoder(capture) is encoder and encoder.viewers == 2
            assert capture.subscribers == 1 and capture.viewers == 2  # one encode per captured frame
            stats = streams.stats()["cam1"]
            assert stats["viewers"] == 2 and stats["encoders"] == 1, stats
            assert len(encoder_threads()) == 1
            assert encoder.frames_encoded <= capture.frames_captured
        await eventually(lambda: capture.viewers == 1 and encoder.viewers == 1, timeout=WAIT,
                         what="second viewer released")
        assert only_encoder(capture) is encoder and encoder.running
        await decoded(camera, first, 10)
    await eventually(lambda: not capture.encoders and not encoder.running and not capture.running,
                     timeout=WAIT, what="encoder and capture stopped with the last viewer")
    await eventually(lambda: not encoder_threads(), timeout=WAIT, what="encoder thread gone")
    assert streams.stats()["cam1"]["encoders"] == 0


async def hold_sender(session: PeerSession) -> tuple[asyncio.Event, Callable[[], Awaitable[None]]]:
    """Make the robot's RTP sender of ``cam1`` on ``session`` block until the returned event is set,
    as a sender stuck on a congested path would: it stops reading its track meanwhile."""
    sender = session.video.sender("cam1")
    assert sender is not None
    transport = sender.transport
    release = asyncio.Event()
    release.set()
    send = transport._send_rtp

    async def gated(data: bytes) -> None:
        await release.wait()
        await send(data)

    transport._send_rtp = gated  # type: ignore[method-assign]

    async def restore() -> None:
        release.set()
        transport._send_rtp = send  # type: ignore[method-assign]

    return release, restore


async def test_stalled_viewer_resumes_on_a_keyframe_without_corruption(video_robot: VideoRobot) -> None:
    camera = cam1(video_robot)
    async with await dial(video_robot.address, timeout=WAIT) as one, \
            await dial(video_robot.address, timeout=WAIT) as two:
        steady = await add_and_watch(one, "cam1")
        (steady_session,) = [s for s in video_robot.sessions if s.video.names == ["cam1"]]
        stalled = await add_and_watch(two, "cam1")
        (stalled_session,) = [s for s in video_robot.sessions if s is not steady_session]
        await asyncio.gather(decoded(camera, steady, 20), decoded(camera, stalled, 20))
        await asyncio.sleep(KEYFRAME_MIN_INTERVAL)  # the join's keyframe is not what lets it resume
        slow = viewer_track(stalled_session).subscription
        fast = viewer_track(steady_session).subscription
        assert slow is not None and fast is not None
        encoder = slow.encoder
        keyframes_before = encoder.keyframes

        release, restore = await hold_sender(stalled_session)
        try:
            release.clear()
            during = await decoded(camera, steady, 10, timeout=STALL_S * 4)  # the other viewer goes on
            await asyncio.sleep(STALL_S)
            assert slow.stalls >= 1 and slow.dropped > QUEUE_FRAMES
        finally:
            await restore()
        # the stalled viewer decodes again, every frame clean: it skipped to a keyframe
        after = await decoded(camera, stalled, 20)
        assert after[-1] > during[0]
        assert encoder.keyframes > keyframes_before
        assert fast.stalls == 0
        await decoded(camera, steady, 10)


async def test_stream_options_get_their_own_encoder(video_robot: VideoRobot) -> None:
    camera = cam1(video_robot)
    async with await dial(video_robot.address, timeout=WAIT) as one, \
            await dial(video_robot.address, timeout=WAIT) as two:
        native, small = await add_and_watch(one, "cam1"), await add_and_watch(two, "cam1")
        await stub(two).SetStreamOptions(
            pb.SetStreamOptionsRequest(name="cam1", resolution=pb.Resolution(width=160, height=120)), timeout=WAIT
        )
        capture = video_robot.streams.captures["cam1"]
        assert set(capture.encoders) == {None, (160, 120)}
        async with asyncio.timeout(WAIT):
            while (await small.recv()).width != 160:  # type: ignore[attr-defined]
                pass
        sizes = set()
        for _ in range(10):
            frame = await asyncio.wait_for(small.recv(), WAIT)
            assert isinstance(frame, av.VideoFrame)
            sizes.add((frame.width, frame.height))
            checked(camera, frame)
        assert sizes == {(160, 120)}
        await decoded(camera, native, 10)
        frame = await asyncio.wait_for(native.recv(), WAIT)
        assert isinstance(frame, av.VideoFrame) and (frame.width, frame.height) == CAM1
        assert video_robot.streams.stats()["cam1"]["encoders"] == 2

        with pytest.raises(GRPCError) as err:  # refused, not allocated; the stream goes on
            await stub(two).SetStreamOptions(
                pb.SetStreamOptionsRequest(name="cam1", resolution=pb.Resolution(width=16000, height=16000)),
                timeout=WAIT,
            )
        assert err.value.status is Status.INVALID_ARGUMENT and "too large" in (err.value.message or "")
        assert set(capture.encoders) == {None, (160, 120)}
        await stub(two).SetStreamOptions(pb.SetStreamOptionsRequest(name="cam1"), timeout=WAIT)  # back to native
        await eventually(lambda: set(capture.encoders) == {None}, timeout=WAIT, what="small encoder released")
        async with asyncio.timeout(WAIT):
            while (await small.recv()).width != CAM1[0]:  # type: ignore[attr-defined]
                pass
        await decoded(camera, small, 10)


async def test_per_viewer_encoders_when_turned_off(video_robot: VideoRobot, monkeypatch: pytest.MonkeyPatch) -> None:
    """``PEERBOT_ENCODE_ONCE=0``: each viewer's sender encodes (the baseline): two encoders."""
    monkeypatch.setenv(ENCODE_ONCE_ENV, "0")
    camera = cam1(video_robot)
    one: DialedChannel
    async with await dial(video_robot.address, timeout=WAIT) as one, \
            await dial(video_robot.address, timeout=WAIT) as two:
        tracks = [await add_and_watch(one, "cam1"), await add_and_watch(two, "cam1")]
        await asyncio.gather(*(decoded(camera, t, 10) for t in tracks))
        capture = video_robot.streams.captures["cam1"]
        assert not capture.encoders and not encoder_threads()
        stats = video_robot.streams.stats()["cam1"]
        assert stats["viewers"] == 2 and stats["encoders"] == 2, stats
