"""The control panel (``/`` of ``peerbot serve``) in Debian's Chromium, inside a private namespace.

``run_in_netns.py panel`` loads the page from the robot's own origin and drives it the way a
person would (playwright clicks and slider moves); this file only reads its JSON report. The motor
checks are made twice: on the page, and by a gRPC-web ``MotorService/IsPowered`` the harness sends
from Python, so the server's own state is what passes. The full-page screenshot is left at
``artifacts/panel.png`` (git-ignored). Takes about 7 s.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from .run_in_netns import NETNS_ADDRESS, PANEL_BUNDLE, SCREENSHOT
from .test_browser_sdk import SCENARIO_TIMEOUT_S, _browser_is_clean, _calls, _evidence, _step, report

#: web/fake_robot.json: every built-in resource, as (card name, API group).
EXPECTED = {
    "cam1": "rdk:component:camera", "sensor1": "rdk:component:sensor", "motor1": "rdk:component:motor",
    "base1": "rdk:component:base", "servo1": "rdk:component:servo", "board1": "rdk:component:board",
    "imu1": "rdk:component:movement_sensor", "gripper1": "rdk:component:gripper",
    "arm1": "rdk:component:arm", "generic1": "rdk:component:generic", "echo1": "rdk:service:generic",
}


def _rows(text: str) -> dict[str, str]:
    return dict(line.split("\t", 1) for line in text.splitlines() if "\t" in line)


@pytest.fixture(scope="module")
def rep() -> dict[str, Any]:
    if not PANEL_BUNDLE.is_file():
        pytest.fail(f"{PANEL_BUNDLE} is missing: run scripts/setup.sh (npm run build in web/client)")
    SCREENSHOT.unlink(missing_ok=True)
    return report("panel")


@pytest.mark.timeout(SCENARIO_TIMEOUT_S + 30)
def test_panel_connects_over_webrtc_and_lists_every_resource(rep: dict[str, Any]) -> None:
    assert rep["netns"] is True
    assert rep["pageOrigin"] == f"http://{NETNS_ADDRESS}:{rep['robotPort']}", "the page must come from the robot"
    connect = _step(rep, "connect")
    assert connect["transport"] == "WebRTC" and connect["transportShown"] == "WebRTC", connect
    cards = {c["name"]: c["group"] for c in _step(rep, "cards")}
    assert cards == EXPECTED, f"cards {cards}"
    assert _calls(rep, "/viam.robot.v1.RobotService/ResourceNames", "webrtc") >= 1, _evidence(rep)
    assert _calls(rep, "/proto.rpc.webrtc.v1.SignalingService/Call", "grpc-web") == 1, _evidence(rep)
    _browser_is_clean(rep)


def test_panel_readings_are_live(rep: dict[str, Any]) -> None:
    for name in ("sensor1", "imu1"):
        seen = _step(rep, f"{'sensor' if name == 'sensor1' else 'movementSensor'}Readings")
        assert seen["first"] != seen["second"], f"{name}: readings did not change: {seen}"
    sensor = _step(rep, "sensorReadings")
    assert int(_rows(sensor["second"])["samples"]) > int(_rows(sensor["first"])["samples"]), sensor
    assert "temperature_c" in _rows(sensor["first"]), sensor
    for method in ("/viam.component.sensor.v1.SensorService/GetReadings",
                   "/viam.component.movementsensor.v1.MovementSensorService/GetReadings"):
        assert _calls(rep, method, "webrtc") >= 2, _evidence(rep)
        assert _calls(rep, method, "grpc-web") == 0, _evidence(rep)


def test_panel_motor_power_and_stop_all_reach_the_server(rep: dict[str, Any]) -> None:
    power = _step(rep, "setPower")
    assert power["page"] == "powered · 50%", power
    assert power["server"] == {"isOn": True, "powerPct": 0.5}, power
    stop = _step(rep, "stopAll")
    assert stop["server"] == {"isOn": False, "powerPct": 0.0}, stop
    assert stop["page"] == "not powered", stop
    for method in ("/viam.component.motor.v1.MotorService/SetPower", "/viam.robot.v1.RobotService/StopAll"):
        assert _calls(rep, method, "webrtc") == 1, f"{method}\n{_evidence(rep)}"
    assert _calls(rep, "/viam.component.motor.v1.MotorService/IsPowered", "webrtc") >= 1, _evidence(rep)


def test_panel_camera_generic_and_rtt(rep: dict[str, Any]) -> None:
    assert _step(rep, "snapshot") == {"width": 640, "height": 480}
    assert _step(rep, "doCommand") == {"command": "echo", "hello": "peerbot"}
    live = _step(rep, "live")
    # the robot serves StreamService: frames of the camera's size are playing
    assert live["video"], live
    assert (live["width"], live["height"]) == (640, 480), live
    shown = re.fullmatch(r"1 viewer · capturing (\d+\.\d) fps · 1 encoder · sending (\d+\.\d) fps · (\d+) kbit/s",
                         live["stats"] or "")  # from /stats: what the robot captured, its one encoder, what it sent
    assert shown and float(shown[1]) >= 20 and float(shown[2]) > 0 and int(shown[3]) > 0, live
    assert _calls(rep, "/proto.stream.v1.StreamService/AddStream", "webrtc") >= 1, _evidence(rep)
    shot = _step(rep, "screenshot")
    assert shot["rtt"].endswith(" ms"), shot
    assert SCREENSHOT.is_file() and SCREENSHOT.stat().st_size > 20_000, shot
    for method in ("/viam.component.camera.v1.CameraService/GetImages",
                   "/viam.component.generic.v1.GenericService/DoCommand",
                   "/viam.robot.v1.RobotService/GetOperations"):
        assert _calls(rep, method, "webrtc") >= 1, f"{method}\n{_evidence(rep)}"
    unexpected = rep["result"]["errors"]
    assert unexpected == [], json.dumps(unexpected)
