"""The real viam-sdk, over TLS with an API key, through a ``peerbot signal --tls-cert`` that a robot
registered with over TLS (its robot secret inside), at a non-loopback address in a private network
namespace.

``tests/clients/netns_rendezvous_tls.py`` runs everything and reports one JSON object; see its
docstring. The rendezvous's one port also serves cleartext, so "over TLS" is read from its own
routing log (every connection ``h2 over TLS``), and "through WebRTC" from the robot's /stats
(viam-sdk would silently fall back to direct gRPC at the rendezvous, which serves no robot API).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.netnsrun import viam_report

RUN_TIMEOUT_S = 600
AUTHENTICATE = "/proto.rpc.v1.AuthService/Authenticate"
ANSWER = "/proto.rpc.webrtc.v1.SignalingService/Answer"
CALL = "/proto.rpc.webrtc.v1.SignalingService/Call"
GET_READINGS = "/viam.component.sensor.v1.SensorService/GetReadings"


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    result: dict[str, Any] = viam_report("netns_rendezvous_tls.py", timeout=RUN_TIMEOUT_S)
    return result


def calls(report: dict[str, Any], process: str, method: str, transport: str = "grpc") -> int:
    return int(report["stats"][process]["methods"].get(method, {}).get(transport, 0))


def test_the_robot_registers_over_tls_with_its_secret(report: dict[str, Any]) -> None:
    assert report["registered"], report["logs"]["robot"]
    assert calls(report, "signal", AUTHENTICATE) >= 1 and calls(report, "signal", ANSWER) >= 1
    # everything the rendezvous served before the drive (the robots' connections) came over TLS
    before = report["handed_over"]["before"]
    assert before and set(before) == {"h2 over TLS"}, before


def test_viam_sdk_reads_the_sensor_through_the_tls_rendezvous(report: dict[str, Any]) -> None:
    drive = report["drive"]
    for step in ("connect", "resource_names", "readings"):
        assert drive.get(step, {}).get("ok"), json.dumps(drive)[:3000]
    assert {"temperature_c", "humidity_pct"} <= set(drive["readings"]["value"])
    assert calls(report, "robot", GET_READINGS, "webrtc") == 1 and calls(report, "robot", GET_READINGS) == 0
    assert calls(report, "signal", CALL) == 1
    during = report["handed_over"]["drive"]
    assert during and set(during) == {"h2 over TLS"}, during


def test_a_robot_without_the_ca_is_refused_and_keeps_running(report: dict[str, Any]) -> None:
    assert report["untrusted_refused"], report["logs"]["robot_untrusted"]
    assert all(report["running"].values()), report["running"]
    log = report["logs"]["robot_untrusted"]
    assert not any("'robot.test'): registered with signaling" in line for line in log)
    assert sum("does not trust" in line for line in log) == 1, log  # once per streak, both workers
    assert any("unable to get local issuer certificate" in line and "--signaling-ca" in line for line in log)
