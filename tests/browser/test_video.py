"""Live video in Debian's Chromium through the SDK's own ``StreamClient`` (not the panel).

``run_in_netns.py video`` opens two harness pages, each with its own WebRTC connection and
``StreamClient.getStream('cam1')`` (the 640x480, 30 fps fake camera of web/fake_robot.json), counts
the frames each ``<video>`` presents with ``requestVideoFrameCallback`` for 5 s (drawing each to a
canvas to see that the picture changes), and reads the robot's ``/stats`` while both watch and
after each page is gone: the first one left (navigated away), the other one's renderer crashed
(``chrome://crash``: no goodbye of any kind). Takes about 25 s.
"""

from __future__ import annotations

from typing import Any

import pytest

from .run_in_netns import RELEASE_TIMEOUT_S, VIDEO_MEASURE_S
from .test_browser_sdk import SCENARIO_TIMEOUT_S, _calls, _evidence, report

#: Frames the <video> presented per second (rVFC's ``presentedFrames``): the decoded rate.
MIN_FPS = 25.0
#: rVFC callbacks per second, each doing a canvas pixel diff in the page: on a busy 2-CPU host the
#: page's main thread (two pages in one headless, software-rendered Chromium) misses a few.
MIN_CALLBACK_FPS = 20.0


@pytest.fixture(scope="module")
def rep() -> dict[str, Any]:
    return report("video")


def _result(rep: dict[str, Any], key: str) -> Any:
    assert "error" not in rep, f"harness error: {rep['error']}\n{_evidence(rep)}"
    assert key in rep["result"], f"{key!r} missing: the scenario stopped early\n{_evidence(rep)}"
    return rep["result"][key]


def _cam1(stats: dict[str, Any]) -> dict[str, Any]:
    cam: dict[str, Any] = stats["cameras"]["cam1"]
    return cam


@pytest.mark.timeout(SCENARIO_TIMEOUT_S + 30)
def test_stream_client_plays_cam1_at_full_rate_in_two_pages(rep: dict[str, Any]) -> None:
    assert rep["netns"] is True
    for i in (1, 2):
        got = _result(rep, f"page{i}")["steps"]["getStream"]
        assert got.get("value") == {"tracks": 1, "width": 640, "height": 480}, f"page {i}: {got}\n{_evidence(rep)}"
        m = _result(rep, f"measure{i}")
        assert m["seconds"] >= VIDEO_MEASURE_S, m
        assert m["sizes"] == {"640x480": m["frames"]}, m
        assert m["fps"] >= MIN_CALLBACK_FPS, f"page {i}: {m['fps']:.1f} frame callbacks/s\n{m}"
        presented = (m["presented1"] - m["presented0"]) / m["seconds"]
        assert presented >= MIN_FPS, f"page {i}: {presented:.1f} presented frames/s\n{m}"
        # every frame of the moving test pattern differs from the one before it
        assert m["changed"] >= 0.9 * (m["frames"] - 1), m
        assert m["mediaTimes"] == m["frames"], f"a frame was reported twice\n{m}"
    assert _calls(rep, "/proto.stream.v1.StreamService/AddStream", "webrtc") == 2, _evidence(rep)


def test_two_viewers_share_one_capture(rep: dict[str, Any]) -> None:
    for key in ("stats2", "statsMeasured"):
        cam = _cam1(_result(rep, key))
        assert cam["viewers"] == 2 and cam["capture_loops_started"] == 1 and cam["running"], cam
    measured = _cam1(_result(rep, "statsMeasured"))
    assert 27.0 <= measured["fps"] <= 33.0, measured  # the camera's 30 fps, captured once for both
    assert measured["encoders"] == 1, measured  # and encoded once for both (Chromium sends VP8)


def test_leaving_a_page_releases_its_viewer(rep: dict[str, Any]) -> None:
    one = _cam1(_result(rep, "stats1"))
    assert one["viewers"] == 1 and one["running"], f"{one}\n{_evidence(rep)}"
    assert _result(rep, "stats1")["peers"] == 1
    none = _cam1(_result(rep, "stats0"))
    assert none["viewers"] == 0 and not none["running"], f"{none}\n{_evidence(rep)}"
    # the second page was crashed, not left: only the ICE liveness check can notice that in time
    # (aioice's consent check alone needs ~30 s, more than the harness waits)
    assert _result(rep, "crashReleaseSeconds") < RELEASE_TIMEOUT_S, _evidence(rep)
    assert any("stopped answering ICE probes" in line for line in rep["server"]["log"]), _evidence(rep)
    assert none["capture_loops_started"] == 1, none
    assert rep["browser"]["pageErrors"] == [] and rep["browser2"]["pageErrors"] == [], _evidence(rep)
    assert rep["server"]["exit"] == 0, _evidence(rep)
