"""Shared VP8 encoders (peer.media.encoder) without a network: viewer queues, keyframe policy, release."""

from __future__ import annotations

import asyncio
import itertools
import threading

import av
import numpy as np
import pytest
from aiortc import RTCPeerConnection, RTCRtpCodecParameters
from aiortc.mediastreams import MediaStreamError

from peer.components.camera import FakeCamera
from peer.components.camera.pattern import read_frame_code
from peer.media import VIDEO_TIME_BASE, CameraCapture, EncodedCameraTrack
from peer.media.encoder import (
    KEYFRAME_MIN_INTERVAL,
    QUEUE_FRAMES,
    EncodedFrame,
    PacketSubscription,
    SharedEncoder,
    Vp8Encoder,
    target_bitrate,
)
from peer.webrtc.video import SlotTrack
from tests.webrtc.conftest import loopback_only, no_leaked_tasks  # noqa: F401 - autouse fixtures

from .test_capture import FPS, WAIT, PolledCamera

W, H = 160, 120


def frame(keyframe: bool, n: int = 0) -> EncodedFrame:
    return EncodedFrame(bytes([n]), keyframe, float(n), W, H)


def queued(sub: PacketSubscription) -> list[int]:
    return [item.data[0] for item in sub._queue]


def encoder_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("vp8-")]


def test_viewer_queue_only_holds_decodable_runs() -> None:
    capture = CameraCapture(FakeCamera("cam", width=W, height=H, fps=FPS))
    sub = PacketSubscription(SharedEncoder(capture, None))
    sub._offer(frame(False, 1))  # joined mid-GOP: nothing to decode yet
    assert queued(sub) == [] and sub.need_key and sub.dropped == 1
    sub._offer(frame(True, 2))
    for n in range(3, 2 + QUEUE_FRAMES):
        sub._offer(frame(False, n))
    assert queued(sub) == list(range(2, 2 + QUEUE_FRAMES)) and not sub.need_key
    sub.key_wanted = False
    sub._offer(frame(False, 9))  # the backlog is full: the viewer stalled, drop it all
    assert queued(sub) == [] and sub.need_key and sub.key_wanted and sub.stalls == 1
    sub._offer(frame(False, 10))  # a delta without its references is never queued
    assert queued(sub) == []
    sub._offer(frame(True, 11))
    sub._offer(frame(False, 12))
    sub._offer(frame(True, 13))  # a keyframe replaces a backlog (latest wins, at keyframe granularity)
    assert queued(sub) == [13]
    sub.key_wanted = False
    sub.request_keyframe()  # not started and holding a keyframe: nothing to ask for
    assert not sub.key_wanted
    sub.started = True
    sub._offer(frame(False, 14))
    sub.request_keyframe()  # a receiver's PLI: keep sending what we have, want a keyframe
    assert queued(sub) == [13, 14] and sub.key_wanted and not sub.need_key
    sub.last_forced = 1.0
    sub.request_keyframe(resync=True, urgent=True)  # after a renegotiation: restart on a keyframe now
    assert queued(sub) == [] and sub.need_key and sub.last_forced is None


def test_target_bitrate_scales_within_bounds() -> None:
    assert target_bitrate(160, 120, 30) == 250_000
    assert 600_000 < target_bitrate(640, 480, 30) < 900_000
    assert target_bitrate(1280, 720, 30) == 1_500_000


def vp8_codes(packets: list[av.Packet], decoder: av.CodecContext) -> list[int]:
    codes = []
    for packet in packets:
        for picture in decoder.decode(packet):
            assert isinstance(picture, av.VideoFrame)
            codes.append(read_frame_code(np.asarray(picture.to_ndarray(format="yuv420p"))[:H]))
    return codes


async def test_pli_storm_is_rate_limited_and_other_viewers_decode() -> None:
    capture = CameraCapture(FakeCamera("cam", width=W, height=H, fps=FPS))
    noisy, calm = EncodedCameraTrack(capture), EncodedCameraTrack(capture)
    encoder = noisy.encoder
    assert encoder is not None and calm.encoder is encoder and capture.subscribers == 0  # starts on the loop
    decoder = av.CodecContext.create("vp8", "r")
    packets: list[av.Packet] = []
    loop = asyncio.get_running_loop()
    try:
        await asyncio.wait_for(noisy.recv_packet(), WAIT)
        t0 = loop.time()
        while len(packets) < 45:  # 1.5 s of video, a PLI from the noisy viewer before every frame
            noisy.request_keyframe()
            packet = await asyncio.wait_for(calm.recv_packet(), WAIT)
            assert packet.time_base == VIDEO_TIME_BASE and packet.pts is not None
            packets.append(packet)
        elapsed = loop.time() - t0
        assert capture.subscribers == 1 and len(capture.encoders) == 1 and len(encoder_threads()) == 1
    finally:
        await noisy.aclose()
        await calm.aclose()
    # without the limit every frame would be a keyframe; with it, one per interval (and the join's)
    assert encoder.forced_keyframes <= 2 + elapsed / KEYFRAME_MIN_INTERVAL, (encoder.forced_keyframes, elapsed)
    assert encoder.forced_keyframes >= 2  # the storm was heard
    pts = [p.pts for p in packets]
    assert all(b > a for a, b in itertools.pairwise(pts))  # type: ignore[operator]
    codes = vp8_codes(packets, decoder)
    assert len(codes) == len(packets) and all(b > a for a, b in itertools.pairwise(codes)), codes
    assert not encoder.running and not capture.running and not capture.encoders
    for _ in range(200):  # the worker thread exits once its executor is shut down (bounded)
        if not encoder_threads():
            break
        await asyncio.sleep(0.01)
    assert not encoder_threads()


async def test_failing_camera_ends_the_viewers_and_raw_frame_fallback() -> None:
    capture = CameraCapture(PolledCamera(supported=False), fps=20)
    track = EncodedCameraTrack(capture)
    with pytest.raises(MediaStreamError):
        await asyncio.wait_for(track.recv_packet(), WAIT)
    assert track.readyState == "ended" and capture.viewers == 0
    await track.aclose()
    assert not capture.encoders and not capture.running

    camera = FakeCamera("cam", width=W, height=H, fps=FPS)
    capture = CameraCapture(camera)
    track = EncodedCameraTrack(capture)
    try:
        picture = await asyncio.wait_for(track.recv(), WAIT)  # a sender that does not send VP8
        assert isinstance(picture, av.VideoFrame) and (picture.width, picture.height) == (W, H)
        assert not track.shared and track.subscription is None and capture.viewers == 1
        await asyncio.sleep(0.1)
        assert not capture.encoders and capture.subscribers == 1  # left the shared encoder
    finally:
        await track.aclose()
    assert not capture.running and capture.viewers == 0


async def test_an_encoder_failure_ends_its_viewers(monkeypatch: pytest.MonkeyPatch) -> None:
    """libvpx refusing a frame must end the viewers (their senders stop), not leave them waiting."""

    def refuse(*_args: object) -> tuple[bytes, bool, int, int]:
        raise ValueError("libvpx said no")

    monkeypatch.setattr(Vp8Encoder, "encode", refuse)
    capture = CameraCapture(FakeCamera("cam", width=W, height=H, fps=FPS))
    track = EncodedCameraTrack(capture)
    encoder = track.encoder
    with pytest.raises(MediaStreamError):
        await asyncio.wait_for(track.recv_packet(), WAIT)
    assert track.readyState == "ended" and encoder is not None and not encoder.running
    await track.aclose()
    assert not capture.encoders and not capture.running


async def test_closing_the_capture_stops_its_encoders_and_ends_the_viewers() -> None:
    capture = CameraCapture(FakeCamera("cam", width=W, height=H, fps=FPS))
    track = EncodedCameraTrack(capture)
    await asyncio.wait_for(track.recv_packet(), WAIT)
    encoder = track.encoder
    assert encoder is not None and encoder.running
    waiting = asyncio.ensure_future(track.recv_packet())
    await capture.aclose()
    assert not encoder.running and not capture.encoders and not capture.running
    with pytest.raises(MediaStreamError):
        await asyncio.wait_for(waiting, WAIT)
    await track.aclose()


async def test_slot_takes_packets_only_from_a_vp8_sender() -> None:
    """``SlotTrack`` hands its sender pre-encoded packets only when the negotiated codec is VP8;
    with any other codec the viewer's track falls back to raw frames (that sender encodes)."""
    pc = RTCPeerConnection()
    capture = CameraCapture(FakeCamera("cam", width=W, height=H, fps=FPS))
    slot = SlotTrack()
    track = EncodedCameraTrack(capture)
    try:
        transceiver = pc.addTransceiver(slot, direction="sendonly")
        slot.bind(transceiver)
        slot.set_source(track)
        # what negotiation leaves in the transceiver (the sender uses the first codec)
        transceiver._codecs = [RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96)]
        first = await asyncio.wait_for(slot.recv(), WAIT)
        assert isinstance(first, av.Packet) and first.time_base == VIDEO_TIME_BASE and track.shared
        transceiver._codecs = [RTCRtpCodecParameters(mimeType="video/H264", clockRate=90000, payloadType=102)]
        second = await asyncio.wait_for(slot.recv(), WAIT)
        assert isinstance(second, av.VideoFrame) and not track.shared
        assert second.pts is not None and first.pts is not None and second.pts > first.pts
    finally:
        slot.stop()
        await pc.close()
        await track.aclose()
    assert not capture.running and not capture.encoders
