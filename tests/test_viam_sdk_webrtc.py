"""The real viam-sdk client (Rust dialer) over WebRTC, inside a private network namespace.

The Rust dialer silently falls back to direct gRPC when WebRTC fails, so "the client worked" proves
nothing: every assertion about transport reads the server's own /stats.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.netnsrun import viam_report

RUN_TIMEOUT_S = 300


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    result: dict[str, Any] = viam_report("netns_viam_webrtc.py", timeout=RUN_TIMEOUT_S)
    return result


def webrtc_calls(report: dict[str, Any], method: str) -> int:
    return int(report["stats"]["methods"].get(method, {}).get("webrtc", 0))


def step(report: dict[str, Any], name: str) -> Any:
    entry = report["drive"].get(name)
    assert entry is not None, f"step {name} missing: {json.dumps(report)[:3000]}"
    assert entry["ok"], f"{name}: {entry.get('error')}\n{report.get('drive_stderr', '')[-2000:]}"
    return entry["value"]


def test_signaling_went_through_our_signaling_service(report: dict[str, Any]) -> None:
    methods = report["stats"]["methods"]
    assert methods.get("/proto.rpc.webrtc.v1.SignalingService/Call", {}).get("grpc", 0) >= 1, methods


def test_resource_names_over_webrtc(report: dict[str, Any]) -> None:
    names = step(report, "resource_names")
    assert "rdk:component:sensor/sensor1" in names and "rdk:component:camera/bigcam" in names
    assert webrtc_calls(report, "/viam.robot.v1.RobotService/ResourceNames") >= 1


def test_sensor_readings_over_webrtc(report: dict[str, Any]) -> None:
    readings = step(report, "sensor_get_readings")
    assert {"temperature_c", "humidity_pct"} <= set(readings)
    assert webrtc_calls(report, "/viam.component.sensor.v1.SensorService/GetReadings") >= 1


def test_camera_images_over_webrtc_including_a_multi_megabyte_one(report: dict[str, Any]) -> None:
    (small,) = step(report, "camera_get_images")
    assert (small["sdk_width"], small["sdk_height"]) == (640, 480)
    (big,) = step(report, "big_camera_get_images")
    assert big["mime_type"] == "image/png" and big["bytes_len"] >= 3_000_000
    assert (big["sdk_width"], big["sdk_height"]) == (2048, 1536)
    assert webrtc_calls(report, "/viam.component.camera.v1.CameraService/GetImages") >= 2


def test_motor_calls_over_webrtc(report: dict[str, Any]) -> None:
    motor = step(report, "motor")
    assert motor["after_set_power"] == [True, 0.5], motor
    assert webrtc_calls(report, "/viam.component.motor.v1.MotorService/SetPower") >= 1
    assert webrtc_calls(report, "/viam.component.motor.v1.MotorService/IsPowered") >= 1


def test_everything_the_client_sent_was_served_over_webrtc(report: dict[str, Any]) -> None:
    """Only signaling (and the sessions heartbeat channel) may use direct gRPC."""
    direct = {m: c["grpc"] for m, c in report["stats"]["methods"].items()
              if c.get("grpc") and not m.startswith("/proto.rpc.webrtc.v1.SignalingService/")
              and m not in ("/viam.robot.v1.RobotService/StartSession",
                            "/viam.robot.v1.RobotService/SendSessionHeartbeat")}
    assert direct == {}, direct
