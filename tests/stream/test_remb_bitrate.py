"""A viewer's real REMB (from aiortc's receive-side estimator) sets the shared encoder's bitrate."""

from __future__ import annotations

import asyncio

import pytest

from peer.gen.proto.stream.v1 import stream_pb2 as pb
from peer.media.bitrate import CHANGE_RATIO, FLOOR, shared_rate
from peer.media.encoder import SharedEncoder, target_bitrate
from peer.webrtc import dial

from .conftest import VideoRobot, eventually
from .test_encode_once import LOW_RATE_MIN_PSNR_DB, WAIT, cam1, decoded, viewer_track
from .test_stream import add_and_watch, stub

pytestmark = pytest.mark.timeout(60)

#: The size the viewer moves to: its encoder's cap (737 kbps) is well above what the receiver
#: estimated for the native 320x240 stream (about 1.5 x the 250 kbps it carries, at first).
SIZE = (640, 480)


async def test_a_viewers_remb_sets_the_shared_encoder_rate(video_robot: VideoRobot) -> None:
    camera = cam1(video_robot)
    cap = target_bitrate(*SIZE, camera.fps)
    async with await dial(video_robot.address, timeout=WAIT) as one:
        track = await add_and_watch(one, "cam1")
        (session,) = video_robot.sessions
        viewer = viewer_track(session)
        reports: list[int] = []
        report = viewer.report_estimate

        def heard(bps: int) -> None:
            reports.append(bps)
            report(bps)

        viewer.report_estimate = heard  # type: ignore[method-assign]
        capture = video_robot.streams.captures["cam1"]
        draining = asyncio.ensure_future(decoded(camera, track, 10**6, timeout=4 * WAIT, min_psnr=LOW_RATE_MIN_PSNR_DB))
        try:
            await eventually(lambda: bool(reports), timeout=WAIT, what="a REMB from the viewer's receiver")
            assert reports[-1] < (1 - CHANGE_RATIO) * cap, reports  # what makes this test meaningful
            await stub(one).SetStreamOptions(
                pb.SetStreamOptionsRequest(name="cam1", resolution=pb.Resolution(width=SIZE[0], height=SIZE[1])),
                timeout=WAIT,
            )

            def encoder() -> SharedEncoder | None:
                return capture.encoders.get(SIZE)  # type: ignore[return-value]

            def following() -> bool:
                enc = encoder()
                return enc is not None and enc.target_bitrate is not None and enc.target_bitrate != cap

            # the viewer's link did not change with the size: its estimate carries over to the new encoder
            await eventually(following, timeout=WAIT, what="the rate following the REMB")
            enc = encoder()
            assert enc is not None and enc.viewers == 1
            target = enc.target_bitrate
            assert target is not None and FLOOR <= target < cap
            # one viewer: its own estimate, exactly (within the floor)
            assert target in {shared_rate([r], cap) for r in reports}, (target, reports)
            assert enc.governor is not None and enc.governor.changes >= 1
            assert viewer.subscription is not None and viewer.subscription.encoder is enc
        finally:
            draining.cancel()
            await asyncio.gather(draining, return_exceptions=True)
        # the reopen at the new rate started on a keyframe: the viewer decodes on, uncorrupted, at the new size
        await decoded(camera, track, 20, min_psnr=LOW_RATE_MIN_PSNR_DB)
