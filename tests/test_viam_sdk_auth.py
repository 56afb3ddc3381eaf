"""The real viam-sdk (its own venv) with API-key credentials against a robot that requires them.

Everything runs inside a private network namespace (the Rust dialer sends mDNS and STUN). Transport
claims are read from the server's own /stats: the Rust dialer silently falls back to direct gRPC.
viam-sdk 0.85.1 cannot authenticate over *cleartext* direct gRPC at all (see
``viam_auth_drive.shim_cleartext_auth``); the direct drives use that one-argument shim.
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
RESOURCE_NAMES = "/viam.robot.v1.RobotService/ResourceNames"


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    assert NETNS.exists(), f"{NETNS} is missing: the tests need ../shared/tools/netns.sh beside the repo"
    assert VIAM_PYTHON.exists(), "the viam-sdk venv is missing: run scripts/setup.sh"
    done = subprocess.run(
        [str(NETNS), sys.executable, str(REPO / "tests" / "clients" / "netns_viam_auth.py")],
        cwd=REPO, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def calls(report: dict[str, Any], after: str, method: str, transport: str) -> int:
    return int(report["stats"][after]["methods"].get(method, {}).get(transport, 0))


def ok(report: dict[str, Any], drive: str, step: str) -> Any:
    entry = report["drives"][drive].get(step)
    assert entry is not None and entry["ok"], f"{drive}.{step}: {json.dumps(report['drives'][drive])[:3000]}"
    return entry["value"]


def test_webrtc_with_api_key(report: dict[str, Any]) -> None:
    ok(report, "webrtc_ok", "connect")
    assert "rdk:component:sensor/sensor1" in ok(report, "webrtc_ok", "resource_names")
    assert {"temperature_c", "humidity_pct"} <= set(ok(report, "webrtc_ok", "readings"))
    # authenticated at the signaling server, then the data channel carried the calls (no token there)
    assert calls(report, "webrtc_ok", AUTHENTICATE, "grpc") >= 1
    assert calls(report, "webrtc_ok", CALL, "grpc") == 1
    assert calls(report, "webrtc_ok", RESOURCE_NAMES, "webrtc") >= 1
    assert calls(report, "webrtc_ok", RESOURCE_NAMES, "grpc") == 0


def test_webrtc_with_a_wrong_secret_fails(report: dict[str, Any]) -> None:
    connect = report["drives"]["webrtc_wrong_secret"]["connect"]
    assert not connect["ok"]
    # no new Call: the dialer stopped at Authenticate (the Rust dialer reports only "Unable to establish")
    assert calls(report, "webrtc_wrong_secret", CALL, "grpc") == calls(report, "webrtc_ok", CALL, "grpc")
    assert any("failed to authenticate" in line for line in report["server_log"]), report["server_log"][-20:]


def test_direct_with_api_key(report: dict[str, Any]) -> None:
    assert "rdk:component:sensor/sensor1" in ok(report, "direct_ok", "resource_names")
    assert {"temperature_c", "humidity_pct"} <= set(ok(report, "direct_ok", "readings"))
    assert calls(report, "direct_ok", RESOURCE_NAMES, "grpc") >= 1


def test_direct_with_a_wrong_secret_fails_clearly(report: dict[str, Any]) -> None:
    connect = report["drives"]["direct_wrong_secret"]["connect"]
    assert not connect["ok"]
    assert connect["error"] == "GRPCError PERMISSION_DENIED: failed to authenticate: invalid API key id or secret"
