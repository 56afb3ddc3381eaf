"""The real viam-sdk client (its own venv) against ``peerbot serve``, over TCP and a Unix socket.

One server subprocess serves the built-in fake robot on both transports; ``viam_drive.py`` runs
once per transport under ``.venv-viam`` and reports every step as JSON; each test checks one step.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .serverproc import REPO, ServerProcess, tcp_and_unix

VIAM_PYTHON = REPO / ".venv-viam" / "bin" / "python"
DRIVER = REPO / "tests" / "clients" / "viam_drive.py"
DRIVE_TIMEOUT_S = 120
READY_TIMEOUT_S = 30
EXIT_TIMEOUT_S = 10

NESTED = {"a": {"b": [1, 2, {"c": "d"}]}, "n": 3.5}
TARGET_POSE = {"x": 100.0, "y": 200.0, "z": 300.0, "o_x": 0.0, "o_y": 0.0, "o_z": 1.0, "theta": 45.0}


def builtin_resource_names() -> list[str]:
    """``namespace:type:subtype/name`` of every resource in web/fake_robot.json."""
    raw = json.loads((REPO / "web" / "fake_robot.json").read_text())
    return sorted(f"{e['api']}/{e['name']}" for section in ("components", "services") for e in raw[section])


EXPECTED_NAMES = [
    "rdk:component:arm/arm1", "rdk:component:base/base1", "rdk:component:board/board1",
    "rdk:component:camera/cam1", "rdk:component:generic/generic1", "rdk:component:gripper/gripper1",
    "rdk:component:motor/motor1", "rdk:component:movement_sensor/imu1", "rdk:component:sensor/sensor1",
    "rdk:component:servo/servo1", "rdk:service:generic/echo1",
]


@pytest.fixture(scope="module")
def server() -> Iterator[dict[str, str]]:
    if not VIAM_PYTHON.exists():
        pytest.fail(f"{VIAM_PYTHON} is missing: run scripts/setup.sh")
    workdir = tempfile.mkdtemp(prefix="pb-sdk-")  # short path: AF_UNIX paths are limited to 108 bytes
    sock = str(Path(workdir) / "robot.sock")
    proc = ServerProcess.peerbot(["--host", "127.0.0.1", "--port", "0", "--unix", sock])
    try:
        proc.start()
        tcp, unix = tcp_and_unix(proc.wait_ready(2, READY_TIMEOUT_S))
        assert unix == sock
        yield {"tcp": tcp, "unix": unix}
        code = proc.terminate(EXIT_TIMEOUT_S)
        assert code == 0, f"server exit code {code} after SIGTERM (None = still running after "\
                          f"{EXIT_TIMEOUT_S}s); stderr:\n{proc.log()}"
        assert not Path(sock).exists(), "the Unix socket file was left behind"
    finally:
        proc.kill()
        shutil.rmtree(workdir, ignore_errors=True)


def drive(address: str) -> dict[str, Any]:
    try:
        done = subprocess.run(
            [str(VIAM_PYTHON), str(DRIVER), address], cwd=REPO, capture_output=True, text=True,
            timeout=DRIVE_TIMEOUT_S, check=False,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"viam_drive.py {address} took longer than {DRIVE_TIMEOUT_S}s; stderr:\n{exc.stderr!r}")
    if done.returncode != 0:
        pytest.fail(f"viam_drive.py exited {done.returncode}; stderr:\n{done.stderr[-4000:]}")
    try:
        report: dict[str, Any] = json.loads(done.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"viam_drive.py printed no JSON: {done.stdout[-2000:]!r}\nstderr:\n{done.stderr[-4000:]}")
    return report


@pytest.fixture(scope="module", params=["tcp", "unix"])
def report(request: pytest.FixtureRequest, server: dict[str, str]) -> dict[str, Any]:
    result = drive(server[request.param])
    assert result["connect"]["ok"], result["connect"]["error"]
    return result


def ok(report: dict[str, Any], step: str) -> Any:
    """The step's value; fails with the client's error (and traceback) when the step failed."""
    assert step in report, f"step {step} missing from the report (keys: {sorted(report)})"
    entry = report[step]
    assert entry["ok"], f"{step}: {entry['error']}\n{entry.get('traceback', '')}"
    return entry["value"]


def test_builtin_names_match_the_fake_robot_config() -> None:
    assert builtin_resource_names() == EXPECTED_NAMES


def test_connect_uses_the_requested_transport(report: dict[str, Any], server: dict[str, str]) -> None:
    value = ok(report, "connect")
    address = report["_meta"]["address"]
    if address == server["unix"]:
        assert value["channel_path"] == server["unix"]
    else:
        assert value["channel_path"] is None
        assert f"{value['channel_host']}:{value['channel_port']}" == server["tcp"]


def test_resource_names(report: dict[str, Any]) -> None:
    names = ok(report, "resource_names")
    assert sorted(names) == EXPECTED_NAMES
    assert len(names) == len(set(names)), f"duplicates: {names}"


def test_sensor_get_readings(report: dict[str, Any]) -> None:
    readings = ok(report, "sensor_get_readings")
    assert set(readings) == {"temperature_c", "humidity_pct", "samples", "ok"}
    assert 19.0 <= readings["temperature_c"] <= 24.0
    assert 0.0 <= readings["humidity_pct"] <= 100.0
    assert readings["samples"] >= 1
    assert readings["ok"] is True


def test_camera_get_images_decode_to_the_advertised_size(report: dict[str, Any]) -> None:
    images = ok(report, "camera_get_images")
    assert len(images) >= 1
    for image in images:
        assert image["mime_type"] in ("image/jpeg", "image/png"), image
        assert image["bytes_len"] > 100, image
        assert image["header_size"] == [640, 480], f"header of the image bytes: {image}"
        assert (image["sdk_width"], image["sdk_height"]) == (640, 480), f"viam-sdk NamedImage: {image}"
        assert (image["viamimage_width"], image["viamimage_height"]) == (640, 480), image
        assert image["source_name"] in ("cam1", ""), image
        assert image["captured_at_set"] is True, image


def test_camera_get_properties_advertise_640x480(report: dict[str, Any]) -> None:
    props = ok(report, "camera_get_properties")
    assert (props["_width"], props["_height"]) == (640, 480), props


def test_motor_set_power_is_powered_stop(report: dict[str, Any]) -> None:
    value = ok(report, "motor")
    assert value["after_set_power"][0] is True
    assert value["after_set_power"][1] == pytest.approx(0.5)
    assert value["after_stop"][0] is False
    assert value["after_stop"][1] == pytest.approx(0.0)


def test_base_move_straight_then_stop(report: dict[str, Any]) -> None:
    value = ok(report, "base")
    assert value["is_moving_after_stop"] is False
    assert value["move_straight_s"] < 10


def test_servo_move_then_get_position(report: dict[str, Any]) -> None:
    assert ok(report, "servo") == {"position": 90}


def test_board_gpio_set_then_get(report: dict[str, Any]) -> None:
    assert ok(report, "board_gpio") == {"after_set_true": True, "after_set_false": False}


def test_movement_sensor_get_position(report: dict[str, Any]) -> None:
    value = ok(report, "movement_sensor_get_position")
    assert -90.0 <= value["lat"] <= 90.0
    assert -180.0 <= value["lng"] <= 180.0
    assert isinstance(value["alt"], float) and math.isfinite(value["alt"])
    assert (value["lat"], value["lng"]) != (0.0, 0.0), "the fake IMU reports no position"


def test_gripper_open_and_grab(report: dict[str, Any]) -> None:
    value = ok(report, "gripper")
    assert value["open_returned"] is None
    assert value["grab_type"] == "bool"
    assert isinstance(value["grab"], bool)


def test_arm_moves_to_the_requested_pose(report: dict[str, Any]) -> None:
    value = ok(report, "arm")
    after = value["after"]
    for key, want in TARGET_POSE.items():
        assert after[key] == pytest.approx(want, abs=1e-6), f"{key}: before={value['before']} after={after}"


def test_generic_component_do_command_round_trips_nested_map(report: dict[str, Any]) -> None:
    assert ok(report, "generic_component_do_command") == NESTED


def test_generic_service_do_command_round_trips_nested_map(report: dict[str, Any]) -> None:
    assert ok(report, "generic_service_do_command") == NESTED


def test_get_operations(report: dict[str, Any]) -> None:
    operations = ok(report, "get_operations")
    assert isinstance(operations, list)
    for operation in operations:
        assert operation["method"] != "", operation


def test_stop_all(report: dict[str, Any]) -> None:
    value = ok(report, "stop_all")
    assert value["motor_is_powered_after"][0] is False


def test_unknown_resource_is_not_found(report: dict[str, Any]) -> None:
    value = ok(report, "unknown_resource")
    assert value["status"] == "NOT_FOUND", value
    assert "nope" in (value["message"] or ""), value


def test_method_not_served_is_unimplemented(report: dict[str, Any]) -> None:
    """robot.get_pose(): served -> OK; not served -> the client must see UNIMPLEMENTED (not UNKNOWN)."""
    value = ok(report, "method_not_served")
    assert value["status"] in ("OK", "UNIMPLEMENTED"), value


def test_sessions_are_consistent(report: dict[str, Any]) -> None:
    """Sessions are optional for the client; whichever way it went, it must be coherent."""
    value = ok(report, "sessions")
    starts = value["start_session_calls"]
    assert len(starts) <= 1, f"StartSession more than once: {starts}"
    if value["supported"] == "TRUE":
        assert starts and starts[0]["status"] == "OK", value
        assert value["session_id_set"], value
        assert value["heartbeat_interval_s"] and value["heartbeat_interval_s"] > 0, value
        assert "/viam.component.motor.v1.MotorService/SetPower" in value["calls_with_session_id"], value
    else:
        assert value["supported"] in ("FALSE", "UNKNOWN"), value
        assert value["calls_with_session_id"] == [], value


def test_session_heartbeats_keep_a_moving_motor_powered(report: dict[str, Any]) -> None:
    """Sessions are optional; when the server offers them, heartbeats must keep the session alive."""
    value = ok(report, "session_keepalive")
    if report["sessions"]["value"]["supported"] == "TRUE":
        assert value["waited_s"] > value["heartbeat_window_s"], value
        assert value["same_session"], value
    assert value["is_powered_after_wait"][0] is True, f"motor stopped although heartbeats ran: {value}"
    assert value["is_powered_after_wait"][1] == pytest.approx(0.3), value


def test_client_traffic_is_only_what_the_steps_asked_for(report: dict[str, Any]) -> None:
    """With refresh/check/reconnect intervals 0 the client sends no background ResourceNames."""
    methods = [call["method"].rsplit("/", 1)[1] for call in report["_meta"]["rpcs"]]
    assert "ResourceNames" not in methods, methods
    assert methods.count("StartSession") <= 1, methods


def test_no_unexpected_error_statuses(report: dict[str, Any]) -> None:
    """Every RPC the client sent returned OK, except the deliberate calls ("nope", GetPose)."""
    bad = [(call["method"], call["status"]) for call in report["_meta"]["rpcs"]
           if call["status"] != "OK" and not call["method"].endswith("/GetPose")]  # GetPose: own test
    assert bad == [("/viam.component.sensor.v1.SensorService/GetReadings", "NOT_FOUND")]


def test_client_closes_cleanly(report: dict[str, Any]) -> None:
    ok(report, "close")
