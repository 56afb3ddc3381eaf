"""The real viam-sdk client over TLS on the one port, inside a private network namespace.

``tests/clients/netns_viam_tls.py`` serves a robot with a throwaway CA's certificate and drives it
four times with ``viam_drive.py --secure`` (TLS required, no cleartext downgrade): direct gRPC and
WebRTC (signaling over TLS), each once trusting the CA through ``SSL_CERT_FILE`` (OpenSSL for the
direct dialer, rustls-native-certs for the Rust dialer) and once not. The robot is dialed at
198.18.0.1 because viam-sdk does not verify certificates for 127.x and localhost.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.clients.netns_viam_tls import served
from tests.netnsrun import viam_report

RUN_TIMEOUT_S = 600
SIGNALING = "/proto.rpc.webrtc.v1.SignalingService/"
GET_READINGS = "/viam.component.sensor.v1.SensorService/GetReadings"
GET_IMAGES = "/viam.component.camera.v1.CameraService/GetImages"


@pytest.fixture(scope="module")
def runs() -> dict[str, Any]:
    result: dict[str, Any] = viam_report("netns_viam_tls.py", timeout=RUN_TIMEOUT_S)["runs"]
    return result


def step(run: dict[str, Any], name: str) -> Any:
    entry = run["drive"].get(name)
    assert entry is not None, f"step {name} missing: {json.dumps(run['drive'])[:2000]}\n{run['stderr'][-2000:]}"
    assert entry["ok"], f"{name}: {entry.get('error')}\n{entry.get('traceback', '')}\n{run['stderr'][-2000:]}"
    return entry["value"]


def test_direct_dial_over_verified_tls_drives_sensor_and_camera(runs: dict[str, Any]) -> None:
    run = runs["direct"]
    assert step(run, "connect")["channel_host"] == "198.18.0.1"
    assert {"temperature_c", "humidity_pct"} <= set(step(run, "sensor_get_readings"))
    (image,) = step(run, "camera_get_images")
    assert (image["sdk_width"], image["sdk_height"]) == (640, 480)
    grpc = served(run, "grpc")
    assert grpc[GET_READINGS] >= 1 and grpc[GET_IMAGES] == 1, grpc
    assert served(run, "webrtc") == {}
    # every connection the SDK made came over TLS, and native gRPC was chosen by ALPN h2
    assert run["handed_over"] and set(run["handed_over"]) == {"h2 over TLS"}, run["handed_over"]


def test_direct_dial_rejects_a_certificate_it_cannot_verify(runs: dict[str, Any]) -> None:
    run = runs["direct_untrusted"]
    connect = run["drive"]["connect"]
    assert not connect["ok"] and "CERTIFICATE_VERIFY_FAILED" in connect["error"], connect
    assert served(run, "grpc") == {} and run["handed_over"] == []


def test_webrtc_with_signaling_over_verified_tls(runs: dict[str, Any]) -> None:
    run = runs["webrtc"]
    assert {"temperature_c", "humidity_pct"} <= set(step(run, "sensor_get_readings"))
    (image,) = step(run, "camera_get_images")
    assert (image["sdk_width"], image["sdk_height"]) == (640, 480)
    webrtc = served(run, "webrtc")
    assert webrtc[GET_READINGS] >= 1 and webrtc[GET_IMAGES] == 1, webrtc
    grpc = served(run, "grpc")
    assert grpc.get(SIGNALING + "Call", 0) == 1, grpc
    assert {m for m in grpc if not m.startswith(SIGNALING)} <= {
        "/viam.robot.v1.RobotService/StartSession", "/viam.robot.v1.RobotService/SendSessionHeartbeat"}, grpc
    assert run["handed_over"] and set(run["handed_over"]) == {"h2 over TLS"}, run["handed_over"]


def test_webrtc_signaling_rejects_a_certificate_it_cannot_verify(runs: dict[str, Any]) -> None:
    run = runs["webrtc_untrusted"]
    connect = run["drive"]["connect"]
    assert not connect["ok"], connect
    assert served(run, "grpc") == {} and served(run, "webrtc") == {}
    assert run["handed_over"] == [], "rustls gave up during the handshake: nothing was served"
