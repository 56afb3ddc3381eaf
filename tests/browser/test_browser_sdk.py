"""The unmodified browser SDK (@viamrobotics/sdk 0.61.1, real-clients.md §4) in Debian's Chromium.

Each scenario runs once, in its own private network namespace: ``netns.sh python -m
tests.browser.run_in_netns SCENARIO`` starts ``peerbot serve``, a page server on another port
(a second origin), and Chromium via playwright, then prints a JSON report that includes the
robot's ``/stats``. The tests here (outside the namespace) only read that report; every failure
message carries what the browser saw (console, failed requests, statuses) and the server log.

Set up by ``scripts/setup.sh`` (Debian chromium, ``npm ci`` + esbuild bundle, playwright).
The driver is Python playwright (PyPI, ``tests/browser/requirements.txt``; its wheel carries its
own Node driver, and no browser is downloaded: Chromium is started by ``executable_path``) rather
than Node's playwright-core, so that the harness, its server process handling
(``tests/serverproc.py``), the ``/stats`` read and these assertions are one language and one
runner. Takes about 15 s for the three scenarios.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ..netnsrun import NETNS, netns_report
from .run_in_netns import BUNDLE, CHROMIUM, NETNS_ADDRESS

SCENARIO_TIMEOUT_S = 60


def _require_tools() -> None:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing (Debian package chromium): run scripts/setup.sh")
    if not NETNS.exists():
        pytest.fail(f"{NETNS} is missing: browser tests run only inside its private network namespace")
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.fail("netns.sh needs root and unshare to create the private network namespace")
    if not BUNDLE.is_file():
        pytest.fail(f"{BUNDLE} is missing: run scripts/setup.sh (npm ci + npm run build in web/client)")


def report(scenario: str, timeout: float = SCENARIO_TIMEOUT_S) -> dict[str, Any]:
    """Run one scenario in its own namespace (killed after ``timeout`` seconds); its JSON report."""
    _require_tools()
    return netns_report([sys.executable, "-m", "tests.browser.run_in_netns", scenario], timeout=timeout, what=scenario)


def _evidence(rep: dict[str, Any]) -> str:
    """What the browser and the server saw, for failure messages (most telling first)."""
    seen = rep.get("browser") or {}
    notable = [r for r in seen.get("responses", [])
               if r["status"] >= 400 or r.get("grpcStatus") not in (None, "0")]
    keep = {
        "error": rep.get("error"), "steps": (rep.get("result") or {}).get("steps"),
        "pageErrors": seen.get("pageErrors"), "requestFailures": seen.get("requestFailures"),
        "notableResponses": notable, "console": seen.get("console"), "stats": rep.get("stats"),
        "pageOrigin": rep.get("pageOrigin"), "args": rep.get("args"), "server": rep.get("server"),
    }
    return json.dumps(keep, indent=1, default=str)[:12000]


def _step(rep: dict[str, Any], name: str) -> Any:
    """The value of a step that must have succeeded."""
    assert "error" not in rep, f"harness error: {rep['error']}\n{_evidence(rep)}"
    steps = rep["result"]["steps"]
    assert name in steps, f"step {name!r} did not run (an earlier step failed)\n{_evidence(rep)}"
    assert steps[name]["ok"], f"step {name!r} failed: {steps[name]['error']}\n{_evidence(rep)}"
    return steps[name]["value"]


def _calls(rep: dict[str, Any], method: str, transport: str) -> int:
    stats = rep.get("stats") or {}
    per_method = stats.get("methods", {}).get(method, {})
    return int(per_method.get(transport, 0))


def _names(value: list[dict[str, str]]) -> set[str]:
    return {f"{n['namespace']}:{n['type']}:{n['subtype']}/{n['name']}" for n in value}


def _browser_is_clean(rep: dict[str, Any]) -> None:
    seen = rep["browser"]
    assert seen["pageErrors"] == [], _evidence(rep)
    assert rep["server"]["exit"] == 0, f"server exit code after SIGTERM: {rep['server']['exit']}\n{_evidence(rep)}"


# -- scenarios --------------------------------------------------------------------------------------

def check_page(rep: dict[str, Any]) -> None:
    """Chromium runs in the namespace, the page comes from a second origin, the SDK bundle loads,
    and the launch flags give plain-IP ICE host candidates on the namespace's address."""
    assert rep["netns"] is True
    assert rep["pageOrigin"] != f"http://{NETNS_ADDRESS}:{rep['robotPort']}"
    assert rep["result"]["sdkVersion"] == "0.61.1", _evidence(rep)
    assert {"createRobotClient", "RobotClient", "SensorClient", "CameraClient"} <= set(rep["result"]["exports"])
    candidates = _step(rep, "iceCandidates")
    assert any(f" {NETNS_ADDRESS} " in c and "typ host" in c for c in candidates), candidates
    assert not any(".local " in c for c in candidates), f"mDNS candidates: the flag did not apply: {candidates}"
    assert rep["browser"]["console"] == [], _evidence(rep)
    _browser_is_clean(rep)


def check_webrtc(rep: dict[str, Any]) -> None:
    """createRobotClient → signaling over gRPC-web, then every call over the data channel."""
    connect = _step(rep, "connect")
    assert connect["iceConnectionState"] in ("connected", "completed"), _evidence(rep)
    names = _names(_step(rep, "resourceNames"))
    assert {"rdk:component:sensor/sensor1", "rdk:component:camera/cam1"} <= names
    readings = _step(rep, "getReadings")
    assert isinstance(readings, dict) and readings, readings
    images = _step(rep, "getImages")
    assert images, "GetImages returned no image"
    for image in images:
        assert image["bytes"] > 0, image
        assert image["mimeType"] in ("image/jpeg", "image/png"), image
        magic = {"image/jpeg": [0xFF, 0xD8], "image/png": [0x89, 0x50]}[image["mimeType"]]
        assert image["head"][:2] == magic, f"bytes do not match the mime type: {image}"

    # An error status over the data channel: the TS client keeps the message, loses the code
    # (UnaryClientStream rejects with the bare status message => ConnectError code 2 Unknown).
    missing = rep["result"]["steps"]["missingSensor"]
    assert not missing["ok"], f"GetReadings on 'nope' succeeded: {missing}"
    assert missing["error"]["code"] == 2, missing
    assert '"nope" not found' in (missing["error"]["rawMessage"] or ""), missing

    pair = _step(rep, "selectedPair")
    assert pair is not None and pair["local"]["address"] == NETNS_ADDRESS, pair

    for method in ("/proto.rpc.webrtc.v1.SignalingService/Call",
                   "/proto.rpc.webrtc.v1.SignalingService/CallUpdate"):
        assert _calls(rep, method, "grpc-web") >= 1, f"{method} not counted under grpc-web\n{_evidence(rep)}"
    for method in ("/viam.robot.v1.RobotService/ResourceNames",
                   "/viam.component.sensor.v1.SensorService/GetReadings",
                   "/viam.component.camera.v1.CameraService/GetImages"):
        assert _calls(rep, method, "webrtc") >= 1, f"{method} not counted under webrtc\n{_evidence(rep)}"
        assert _calls(rep, method, "grpc-web") == 0, f"{method} went over gRPC-web\n{_evidence(rep)}"
    _browser_is_clean(rep)


def check_direct(rep: dict[str, Any]) -> None:
    """new RobotClient().dial({host: 'http://localhost:P'}): gRPC-web only, GetOperations heartbeat."""
    assert _step(rep, "connect") is True
    names = _names(_step(rep, "resourceNames"))
    assert {"rdk:component:sensor/sensor1", "rdk:component:camera/cam1"} <= names
    assert _step(rep, "getReadings"), _evidence(rep)
    # Over gRPC-web the status code survives (5 NOT_FOUND), unlike over the data channel.
    missing = rep["result"]["steps"]["missingSensor"]
    assert not missing["ok"], f"GetReadings on 'nope' succeeded: {missing}"
    assert missing["error"]["code"] == 5 and "nope" in missing["error"]["message"], missing
    assert _calls(rep, "/viam.robot.v1.RobotService/GetOperations", "grpc-web") >= 1, _evidence(rep)
    assert _calls(rep, "/viam.robot.v1.RobotService/ResourceNames", "grpc-web") >= 1, _evidence(rep)
    assert (rep["stats"]["rpcs"].get("webrtc", 0)) == 0, _evidence(rep)
    _browser_is_clean(rep)


CHECKS: dict[str, Callable[[dict[str, Any]], None]] = {
    "page": check_page, "webrtc": check_webrtc, "direct": check_direct,
}


@pytest.mark.timeout(SCENARIO_TIMEOUT_S + 30)
@pytest.mark.parametrize("scenario", list(CHECKS))
def test_browser_sdk(scenario: str) -> None:
    CHECKS[scenario](report(scenario))
