"""The shared encoder's bitrate follows its viewers' receiver estimates (peer.media.bitrate)."""

from __future__ import annotations

import asyncio

import pytest

from peer.components.camera import FakeCamera
from peer.media import CameraCapture, EncodedCameraTrack
from peer.media.bitrate import (
    CHANGE_RATIO,
    DECREASE_INTERVAL,
    FLOOR,
    INCREASE_INTERVAL,
    SLIDESHOW_INTERVAL,
    RateGovernor,
    shared_rate,
)
from peer.media.encoder import EncodedFrame, PacketSubscription, target_bitrate
from tests.webrtc.conftest import eventually, loopback_only, no_leaked_tasks  # noqa: F401 - autouse fixtures

from .test_capture import FPS

pytestmark = pytest.mark.timeout(60)

CAP = 737_280  # target_bitrate(640, 480, 30)
WAIT = 10.0


def test_shared_rate_is_the_upper_median_within_floor_and_cap() -> None:
    assert target_bitrate(640, 480, FPS) == CAP
    assert shared_rate([], CAP) == CAP
    assert shared_rate([400_000], CAP) == 400_000  # one viewer: its own link
    assert shared_rate([200_000, 600_000], CAP) == 600_000  # two: the better one, not the slowest
    assert shared_rate([200_000, 600_000, 500_000], CAP) == 500_000  # what most can take
    assert shared_rate([200_000, 300_000, 600_000, 500_000], CAP) == 500_000
    assert shared_rate([200_000, None, None], CAP) == CAP  # no report: not a reason to slow down
    assert shared_rate([300_000, 350_000, None], CAP) == 350_000
    assert shared_rate([50_000], CAP) == FLOOR  # never below the floor ...
    assert shared_rate([5_000_000, 9_000_000], CAP) == CAP  # ... nor above the size's cap
    assert shared_rate([50_000], 100_000) == 100_000  # a cap under the floor wins


def test_governor_backs_off_fast_probes_up_slowly_and_ignores_small_changes() -> None:
    gov = RateGovernor(CAP)
    assert gov.target == CAP
    assert not gov.update([int(CAP * (1 - CHANGE_RATIO / 2))], 0.0)  # within the hysteresis
    assert gov.update([400_000], 1.0) and gov.target == 400_000 and gov.changes == 1
    assert not gov.update([200_000], 1.0 + DECREASE_INTERVAL / 2)  # too soon after a change
    assert gov.update([200_000], 1.0 + DECREASE_INTERVAL) and gov.target == 200_000
    t = 1.0 + DECREASE_INTERVAL
    assert not gov.update([600_000], t + DECREASE_INTERVAL)  # increases wait longer
    assert gov.update([600_000], t + INCREASE_INTERVAL) and gov.target == 600_000
    t += INCREASE_INTERVAL
    assert not gov.update([640_000], t + 10)  # +6.7 %: not worth a reopen (a keyframe)
    assert gov.update([None], t + 10) and gov.target == CAP  # the viewer stopped reporting
    gov.set_cap(250_000)  # a smaller picture: never above its cap
    assert gov.target == 250_000
    assert gov.changes == 4


async def pump(sub: PacketSubscription, into: list[EncodedFrame]) -> None:
    while True:
        into.append(await sub.get(WAIT))


async def pli_storm(sub: PacketSubscription) -> None:
    while True:
        sub.request_keyframe()
        await asyncio.sleep(0.05)


async def remb(links: dict[PacketSubscription, int]) -> None:
    """Each viewer's receiver reporting its current estimate twice a second (as REMB does, ~1/s)."""
    while True:
        for sub, bps in links.items():
            sub.report_estimate(bps)
        await asyncio.sleep(0.5)


async def test_encoder_follows_the_viewers_and_a_far_slower_one_gets_keyframes_only() -> None:
    capture = CameraCapture(FakeCamera("cam", width=640, height=480, fps=FPS))
    tracks = [EncodedCameraTrack(capture) for _ in range(4)]
    subs = [t.subscription for t in tracks]
    assert all(s is not None for s in subs)
    a, b, c, slow = (s for s in subs if s is not None)
    encoder = a.encoder
    got: list[list[EncodedFrame]] = [[] for _ in subs]
    pumps = [asyncio.ensure_future(pump(s, g)) for s, g in zip((a, b, c, slow), got, strict=True)]
    links: dict[PacketSubscription, int] = {}
    try:
        await eventually(lambda: len(got[0]) >= 45, WAIT, what="frames at the cap")  # 1.5 s: the rate settled
        assert encoder.target_bitrate == CAP
        start = len(got[0])
        await eventually(lambda: len(got[0]) >= start + 60, WAIT, what="2 s at the cap")
        at_cap = got[0][start:start + 60]

        links.update({a: 300_000, b: 260_000, c: 2_000_000, slow: 280_000})
        pumps.append(asyncio.ensure_future(remb(links)))
        # four viewers: what half of them can take (the second best), 300 kbps; nobody is far below
        await eventually(lambda: encoder.target_bitrate == 300_000, WAIT, what="the rate follows the viewers")
        governor = encoder.governor
        assert governor is not None and governor.changes == 1
        seen = len(got[0])  # frames of the new rate come at or after this (the pump may lag)
        assert not any(s.slideshow for s in (a, b, c, slow))
        # the reopen at the new rate starts with a keyframe; the viewer goes on from it
        await eventually(lambda: any(f.keyframe for f in got[0][seen:]), WAIT, what="the reopen's keyframe")
        keyed = next(i for i in range(seen, len(got[0])) if got[0][i].keyframe)
        await eventually(lambda: len(got[0]) >= keyed + 60, WAIT, what="2 s at the lower rate")
        lowered = got[0][keyed:keyed + 60]
        bytes_cap = sum(len(f.data) for f in at_cap if not f.keyframe)
        bytes_low = sum(len(f.data) for f in lowered if not f.keyframe)
        assert bytes_low < 0.7 * bytes_cap, (bytes_low, bytes_cap)

        # the slow viewer's link collapses: it alone drops to keyframes, the rate stays
        links[slow] = 60_000
        await eventually(lambda: slow.slideshow, WAIT, what="the slow viewer on keyframes only")
        mark = [len(g) for g in got]
        forced = encoder.forced_keyframes
        stalls = sum(s.stalls for s in (a, b, c))  # a busy machine can stall a pump: each asks for one
        later = mark[0] + round(2.5 * SLIDESHOW_INTERVAL * FPS)
        pli = asyncio.ensure_future(pli_storm(slow))  # it loses keyframes in its bottleneck and asks again
        try:
            await eventually(lambda: len(got[0]) >= later, WAIT, what="a few slides")
        finally:
            pli.cancel()
        slides = got[3][mark[3]:]
        assert slides and all(f.keyframe for f in slides)  # decodable: nothing but keyframes
        assert len(slides) <= 2 + 2.5  # at most one every SLIDESHOW_INTERVAL
        # its PLIs force nothing on the others: only its paced slides (the storm alone would be ~10)
        stalled = sum(s.stalls for s in (a, b, c)) - stalls
        assert encoder.forced_keyframes - forced <= len(slides) + stalled, (encoder.forced_keyframes - forced, slides)
        # the others still get the full stream (delta frames), not slides
        assert sum(not f.keyframe for f in got[1][mark[1]:]) >= SLIDESHOW_INTERVAL * FPS
        assert encoder.target_bitrate == 300_000  # the slow viewer no longer votes
        links.update({a: 2_000_000, b: 2_000_000, c: 2_000_000})
        # the others' links recover: back up to the cap (after the slower increase pacing)
        await eventually(lambda: encoder.target_bitrate == CAP, WAIT, what="back to the cap")
    finally:
        for task in pumps:
            task.cancel()
        await asyncio.gather(*pumps, return_exceptions=True)
        for track in tracks:
            await track.aclose()
    assert not capture.running and not capture.encoders
