"""The real viam-sdk (WebRTC, Rust dialer) with API keys scoped to robots at one ``peerbot signal``
serving two robots (real processes, inside a private network namespace).

``tests/clients/netns_rendezvous_scope.py`` runs everything and reports one JSON object; see its
docstring for the setup. The Rust dialer authenticates without ``rpc-host``: a key scoped to A
then gets a token for A only, and its Call for B is refused before robot B sees an offer.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
NETNS = REPO.parent / "shared" / "tools" / "netns.sh"
VIAM_PYTHON = REPO / ".venv-viam" / "bin" / "python"
RUN_TIMEOUT_S = 600
AUTHENTICATE = "/proto.rpc.v1.AuthService/Authenticate"
CALL = "/proto.rpc.webrtc.v1.SignalingService/Call"
GET_READINGS = "/viam.component.sensor.v1.SensorService/GetReadings"
ROBOT_B = "127.0.0.2:8094"


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    assert NETNS.exists(), f"{NETNS} is missing: the tests need ../shared/tools/netns.sh beside the repo"
    assert VIAM_PYTHON.exists(), "the viam-sdk venv is missing: run scripts/setup.sh"
    done = subprocess.run(
        [str(NETNS), sys.executable, str(REPO / "tests" / "clients" / "netns_rendezvous_scope.py")],
        cwd=REPO, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def method_counts(report: dict[str, Any], process: str, method: str) -> dict[str, int]:
    counts: dict[str, int] = report["stats"][process]["methods"].get(method, {})
    return counts


def drive(report: dict[str, Any], name: str, step: str) -> dict[str, Any]:
    entry: dict[str, Any] = report["drives"][name][step]
    return entry


def test_both_robots_registered_and_everything_kept_running(report: dict[str, Any]) -> None:
    assert report["registered"] == {"a": True, "b": True}
    assert all(report["running"].values()), report["running"]


def test_a_key_scoped_to_a_reads_a_over_webrtc(report: dict[str, Any]) -> None:
    readings = drive(report, "lab_a", "readings")
    assert readings["ok"], json.dumps(report["drives"]["lab_a"])[:3000]
    assert {"temperature_c", "humidity_pct"} <= set(readings["value"])
    assert method_counts(report, "robot_a", GET_READINGS).get("webrtc", 0) == 1


def test_the_same_key_never_reaches_b_while_an_all_robots_key_does(report: dict[str, Any]) -> None:
    assert not drive(report, "lab_b", "connect")["ok"]
    readings = drive(report, "ops_b", "readings")
    assert readings["ok"], json.dumps(report["drives"]["ops_b"])[:3000]
    # robot B answered exactly one caller over WebRTC: ops; lab's Calls were refused at the rendezvous
    assert method_counts(report, "robot_b", GET_READINGS).get("webrtc", 0) == 1
    # its token (asked without rpc-host) names A only: refused at its first signaling call for B
    log = report["logs"]["signal"]
    assert any(f"(PERMISSION_DENIED): 'lab' is not allowed on host '{ROBOT_B}'" in line for line in log), \
        "\n".join(log[-30:])
    assert sum(f"offer for host '{ROBOT_B}'" in line for line in log) == 1  # the ops drive's only
    assert any("API key 'lab' -> 127.0.0.1:8094" in line for line in log)
