"""The real viam-sdk (its own venv) with API-key credentials against a robot that requires them,
on one port serving TLS and cleartext at once (``tests/clients/netns_viam_auth.py``, one server).

Everything runs inside a private network namespace (the Rust dialer sends mDNS and STUN). Transport
claims are read from the server's own /stats, per drive: the Rust dialer silently falls back to
direct gRPC. Over TLS the SDK is unmodified, dials 198.18.0.1 (it does not verify 127.x) and trusts
the test CA through ``SSL_CERT_FILE``; with ``insecure=False`` it never downgrades, and the server's
log of handed-over connections shows each one came over TLS (that the dialers refuse an untrusted
certificate is tests/test_viam_sdk_tls.py's part). viam-sdk 0.85.1 cannot authenticate
over *cleartext* direct gRPC at all (see ``viam_auth_drive.shim_cleartext_auth``): that one drive
uses the one-argument shim; cleartext WebRTC needs none.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.clients.netns_viam_tls import served
from tests.netnsrun import viam_report

RUN_TIMEOUT_S = 600
AUTHENTICATE = "/proto.rpc.v1.AuthService/Authenticate"
SIGNALING = "/proto.rpc.webrtc.v1.SignalingService/"
CALL = SIGNALING + "Call"
RESOURCE_NAMES = "/viam.robot.v1.RobotService/ResourceNames"
GET_READINGS = "/viam.component.sensor.v1.SensorService/GetReadings"
GET_IMAGES = "/viam.component.camera.v1.CameraService/GetImages"
#: RobotService calls viam-sdk makes on the signaling channel even when its calls go over WebRTC
SESSION_CALLS = {"/viam.robot.v1.RobotService/StartSession", "/viam.robot.v1.RobotService/SendSessionHeartbeat"}
DENIED = "GRPCError PERMISSION_DENIED: failed to authenticate: invalid API key id or secret"


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    result: dict[str, Any] = viam_report("netns_viam_auth.py", timeout=RUN_TIMEOUT_S)
    return result


def ok(report: dict[str, Any], run: str, step: str) -> Any:
    drive = report["runs"][run]
    entry = drive["drive"].get(step)
    assert entry is not None and entry["ok"], f"{run}.{step}: {json.dumps(drive)[:3000]}"
    return entry["value"]


def assert_sensor_and_camera(report: dict[str, Any], run: str) -> None:
    assert "rdk:component:sensor/sensor1" in ok(report, run, "resource_names")
    assert {"temperature_c", "humidity_pct"} <= set(ok(report, run, "readings"))
    (image,) = ok(report, run, "images")
    assert (image["sdk_width"], image["sdk_height"]) == (640, 480), image


def assert_over_webrtc(report: dict[str, Any], run: str) -> None:
    """Authenticated at the signaling server, one Call, then the data channel carried the calls."""
    drive = report["runs"][run]
    grpc, webrtc = served(drive, "grpc"), served(drive, "webrtc")
    assert grpc.get(AUTHENTICATE, 0) >= 1 and grpc.get(CALL, 0) == 1, grpc
    assert {m for m in grpc if not m.startswith(SIGNALING)} <= {AUTHENTICATE, *SESSION_CALLS}, grpc
    assert webrtc.get(RESOURCE_NAMES, 0) >= 1 and webrtc.get(GET_READINGS, 0) >= 1, webrtc
    assert webrtc.get(GET_IMAGES, 0) == 1, webrtc


def failed_to_authenticate_logged(run: dict[str, Any]) -> bool:
    """The server's log during this drive says why (the Rust dialer's own error does not)."""
    return any("failed to authenticate" in line for line in run["log"])


def test_direct_over_verified_tls_unmodified(report: dict[str, Any]) -> None:
    run = report["runs"]["tls_direct_ok"]
    assert ok(report, "tls_direct_ok", "connect")["channel_host"] == "198.18.0.1"
    assert_sensor_and_camera(report, "tls_direct_ok")
    grpc = served(run, "grpc")
    assert grpc.get(AUTHENTICATE, 0) == 1, grpc
    assert grpc.get(RESOURCE_NAMES, 0) >= 1 and grpc.get(GET_READINGS, 0) >= 1 and grpc.get(GET_IMAGES, 0) == 1, grpc
    assert served(run, "webrtc") == {}
    assert run["handed_over"] and set(run["handed_over"]) == {"h2 over TLS"}, run["handed_over"]


def test_direct_over_tls_with_a_wrong_secret_is_denied_clearly(report: dict[str, Any]) -> None:
    run = report["runs"]["tls_direct_wrong_secret"]
    connect = run["drive"]["connect"]
    assert not connect["ok"] and connect["error"] == DENIED, connect
    assert set(served(run, "grpc")) == {AUTHENTICATE}, "nothing but Authenticate (RobotClient retries it)"
    assert set(run["handed_over"]) == {"h2 over TLS"}, run["handed_over"]
    assert failed_to_authenticate_logged(run), run["log"]


def test_webrtc_with_signaling_over_verified_tls(report: dict[str, Any]) -> None:
    run = report["runs"]["tls_webrtc_ok"]
    assert_sensor_and_camera(report, "tls_webrtc_ok")
    assert_over_webrtc(report, "tls_webrtc_ok")
    assert run["handed_over"] and set(run["handed_over"]) == {"h2 over TLS"}, run["handed_over"]


def test_webrtc_over_the_cleartext_port_of_the_same_server(report: dict[str, Any]) -> None:
    run = report["runs"]["cleartext_webrtc_ok"]
    assert_sensor_and_camera(report, "cleartext_webrtc_ok")
    assert_over_webrtc(report, "cleartext_webrtc_ok")
    assert run["handed_over"] and set(run["handed_over"]) == {"h2c"}, run["handed_over"]


def test_webrtc_with_a_wrong_secret_fails(report: dict[str, Any]) -> None:
    run = report["runs"]["cleartext_webrtc_wrong_secret"]
    assert not run["drive"]["connect"]["ok"], run["drive"]
    # no Call: the dialer stopped at Authenticate (the Rust dialer reports only "Unable to establish")
    grpc = served(run, "grpc")
    assert grpc.get(AUTHENTICATE, 0) >= 1 and CALL not in grpc, grpc
    assert served(run, "webrtc") == {}
    assert failed_to_authenticate_logged(run), run["log"]


def test_direct_over_cleartext_with_the_shim(report: dict[str, Any]) -> None:
    run = report["runs"]["cleartext_direct_ok"]
    assert_sensor_and_camera(report, "cleartext_direct_ok")
    grpc = served(run, "grpc")
    assert grpc.get(AUTHENTICATE, 0) == 1 and grpc.get(GET_READINGS, 0) >= 1 and grpc.get(GET_IMAGES, 0) == 1, grpc
    assert set(run["handed_over"]) == {"h2c"}, run["handed_over"]
