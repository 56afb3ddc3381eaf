"""Live video and the panel under trouble, in Debian's Chromium inside a private namespace.

* ``run_in_netns.py throttled``: two pages play cam1 through the SDK's ``StreamClient``; the second
  page's video is squeezed through a 150 kbit/s UDP bottleneck (tc htb on the namespace's ``lo``,
  packets of 512 bytes or more sent to that page's ICE port), so it decodes almost nothing while
  its data channel and ICE checks stay healthy. After 6 s of settling, for 20 s the robot's RSS is
  sampled from /proc while the first page's presented frame rate is measured. The slow viewer must
  cost the others nothing: full rate for the first page, flat server memory, and the slow viewer
  is kept (it still talks to the robot, so the liveness check must not take it for dead).
  About 35 s.
* ``run_in_netns.py restart``: the panel is loaded from robot A, A is SIGKILLed and robot B started
  on the same port; the page (never reloaded) must show connected again with live readings that B
  serves. About 15 s.
"""

from __future__ import annotations

import statistics
from typing import Any

import pytest

from .run_in_netns import RECONNECT_TIMEOUT_S, RSS_WATCH_S
from .test_browser_sdk import SCENARIO_TIMEOUT_S, _evidence, report
from .test_video import MIN_FPS

THROTTLED_TIMEOUT_S = SCENARIO_TIMEOUT_S + RSS_WATCH_S
RESTART_TIMEOUT_S = SCENARIO_TIMEOUT_S + RECONNECT_TIMEOUT_S
#: Allowed RSS growth of the robot over the watched seconds while one viewer is starved.
MAX_RSS_GROWTH_MIB = 5.0
#: Samples skipped before the baseline (the second stream's encoder and buffers settle).
RSS_WARMUP_S = 3.0


def _result(rep: dict[str, Any], key: str) -> Any:
    assert "error" not in rep, f"harness error: {rep['error']}\n{_evidence(rep)}"
    assert key in rep["result"], f"{key!r} missing: the scenario stopped early\n{_evidence(rep)}"
    return rep["result"][key]


@pytest.fixture(scope="module")
def throttled() -> dict[str, Any]:
    return report("throttled", timeout=THROTTLED_TIMEOUT_S)


@pytest.fixture(scope="module")
def restart() -> dict[str, Any]:
    return report("restart", timeout=RESTART_TIMEOUT_S)


def _decoded_fps(sample: dict[str, Any]) -> float:
    start, end = sample["start"], sample["end"]
    return float(end["framesDecoded"] - start["framesDecoded"]) / ((end["t"] - start["t"]) / 1000)


@pytest.mark.timeout(THROTTLED_TIMEOUT_S + 30)
def test_a_starved_viewer_does_not_slow_the_other(throttled: dict[str, Any]) -> None:
    assert throttled["netns"] is True
    fast, slow = (_decoded_fps(d) for d in _result(throttled, "decoded"))
    # the bottleneck really starves the second page...
    assert slow < 0.5 * fast, f"the throttled page decoded {slow:.1f} fps vs {fast:.1f}\n{_evidence(throttled)}"
    # ...while the first one presents the full rate over the last seconds of the window
    m = _result(throttled, "measure1")
    presented = (m["presented1"] - m["presented0"]) / m["seconds"]
    assert presented >= MIN_FPS, f"unthrottled page: {presented:.1f} presented frames/s\n{m}"
    assert m["changed"] >= 0.9 * (m["frames"] - 1), m
    stats = _result(throttled, "statsWatched")
    cam = stats["cameras"]["cam1"]
    assert cam["viewers"] == 2 and cam["capture_loops_started"] == 1, cam
    assert stats["peers"] == 2, stats  # the starved viewer is still connected
    assert throttled["browser"]["pageErrors"] == [] and throttled["browser2"]["pageErrors"] == [], _evidence(throttled)
    assert throttled["server"]["exit"] == 0, _evidence(throttled)


def test_server_memory_stays_flat_with_a_starved_viewer(throttled: dict[str, Any]) -> None:
    samples = _result(throttled, "rssKiB")
    assert samples[-1][0] >= RSS_WATCH_S - 2 and all(kib is not None for _, kib in samples), samples
    baseline = [kib for t, kib in samples if RSS_WARMUP_S <= t < RSS_WARMUP_S + 5]
    final = [kib for _, kib in samples[-5:]]
    growth_mib = (statistics.median(final) - statistics.median(baseline)) / 1024
    assert len(baseline) >= 4 and growth_mib <= MAX_RSS_GROWTH_MIB, f"RSS grew {growth_mib:.1f} MiB: {samples}"


@pytest.mark.timeout(RESTART_TIMEOUT_S + 30)
def test_panel_reconnects_after_the_robot_restarts(restart: dict[str, Any]) -> None:
    assert restart["netns"] is True
    before, after = _result(restart, "before"), _result(restart, "after")
    assert before["first"] != before["second"], before
    assert after["first"] != after["second"], f"readings not live after the restart: {after}"
    assert _result(restart, "firstExit") == -9  # killed, no goodbye
    assert _result(restart, "statusWhileDown") in ("reconnecting", "disconnected", "connecting")
    assert _result(restart, "panel")["status"] == "connected", _result(restart, "panel")
    # the readings now come from robot B, over WebRTC
    served = _result(restart, "statsAfter")["methods"].get("/viam.component.sensor.v1.SensorService/GetReadings", {})
    assert served.get("webrtc", 0) >= 2 and served.get("grpc-web", 0) == 0, served
    assert restart["browser"]["pageErrors"] == [], _evidence(restart)
    assert restart["server"]["exit"] == 0, _evidence(restart)
