"""The real viam-sdk with an API key, through an authenticating ``peerbot signal``, to robots that
registered there with their robot secret (real processes, inside a private network namespace).

``tests/clients/netns_rendezvous_auth.py`` runs everything and reports one JSON object; see its
docstring for the setup. Transport claims are read from the robots' own /stats: viam-sdk would
silently fall back to direct gRPC at the rendezvous, which serves no robot API.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.netnsrun import viam_report

RUN_TIMEOUT_S = 600
AUTHENTICATE = "/proto.rpc.v1.AuthService/Authenticate"
CALL = "/proto.rpc.webrtc.v1.SignalingService/Call"
GET_READINGS = "/viam.component.sensor.v1.SensorService/GetReadings"


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    result: dict[str, Any] = viam_report("netns_rendezvous_auth.py", timeout=RUN_TIMEOUT_S)
    return result


def calls(report: dict[str, Any], process: str, method: str, transport: str = "grpc") -> int:
    return int(report["stats"][process]["methods"].get(method, {}).get(transport, 0))


def ok(report: dict[str, Any], drive: str, step: str) -> Any:
    entry = report["drives"][drive].get(step)
    assert entry is not None and entry["ok"], f"{drive}.{step}: {json.dumps(report['drives'][drive])[:3000]}"
    return entry["value"]


@pytest.mark.parametrize("robot", ["open", "guarded"])
def test_viam_sdk_with_an_api_key_reads_the_sensor_through_the_rendezvous(report: dict[str, Any], robot: str) -> None:
    """``guarded`` also has its own --api-key: calls that came through the rendezvous run as the
    caller it vouched for (viam-sdk sends no token on the data channel)."""
    assert report["registered"][robot]
    ok(report, f"{robot}_ok", "connect")
    assert {"temperature_c", "humidity_pct"} <= set(ok(report, f"{robot}_ok", "readings"))
    assert calls(report, f"robot_{robot}", GET_READINGS, "webrtc") == 1
    assert calls(report, f"robot_{robot}", GET_READINGS, "grpc") == 0
    assert calls(report, f"signal_{robot}", AUTHENTICATE) >= 1 and calls(report, f"signal_{robot}", CALL) == 1


def test_viam_sdk_with_a_wrong_secret_never_calls(report: dict[str, Any]) -> None:
    assert not report["drives"]["open_wrong_secret"]["connect"]["ok"]
    assert calls(report, "signal_open", CALL) == 1  # only the good drive's
    assert any("failed to authenticate: invalid API key id or secret" in line for line in report["logs"]["signal_open"])


def test_a_robot_with_a_wrong_secret_is_refused_and_keeps_running(report: dict[str, Any]) -> None:
    assert report["wrong_secret_refused"]
    assert all(report["running"].values()), report["running"]
    log = report["logs"]["robot_wrong"]
    assert not any("'robot.test',): registered with signaling" in line for line in log)
    assert any("refused us: PERMISSION_DENIED failed to authenticate: invalid robot secret" in line for line in log)
