"""The browser SDK with API-key credentials against a robot that requires them (``webrtc-auth``).

The SDK authenticates at the signaling server over gRPC-web, signals with the Bearer token, and
then calls over the data channel without one (the session runs as the Call's principal). A wrong
secret must fail: the SDK reports "Failed to connect via all methods" and logs the server's
PERMISSION_DENIED "failed to authenticate" to the console.
"""

from __future__ import annotations

from typing import Any

import pytest

from .test_browser_sdk import _browser_is_clean, _calls, _evidence, _names, _step, report

AUTHENTICATE = "/proto.rpc.v1.AuthService/Authenticate"


@pytest.fixture(scope="module")
def auth_report() -> dict[str, Any]:
    return report("webrtc-auth")


def test_webrtc_with_credentials(auth_report: dict[str, Any]) -> None:
    rep = auth_report
    assert _step(rep, "connect")["iceConnectionState"] == "connected"
    assert "rdk:component:sensor/sensor1" in _names(_step(rep, "resourceNames"))
    assert {"temperature_c", "humidity_pct"} <= set(_step(rep, "getReadings"))
    assert _calls(rep, AUTHENTICATE, "grpc-web") >= 1, _evidence(rep)
    assert _calls(rep, "/proto.rpc.webrtc.v1.SignalingService/Call", "grpc-web") == 1, _evidence(rep)
    assert _calls(rep, "/viam.robot.v1.RobotService/ResourceNames", "webrtc") >= 1, _evidence(rep)
    assert _calls(rep, "/viam.robot.v1.RobotService/ResourceNames", "grpc-web") == 0, _evidence(rep)
    _browser_is_clean(rep)


def test_wrong_secret_fails(auth_report: dict[str, Any]) -> None:
    rep = auth_report
    wrong = rep["result"]["steps"]["wrongSecret"]
    assert not wrong["ok"], _evidence(rep)
    console = "\n".join(rep["browser"]["console"])
    assert "permission_denied] failed to authenticate" in console, _evidence(rep)
