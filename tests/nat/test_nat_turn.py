"""Robots and a client behind their own symmetric NATs meet at ``peerbot signal`` and connect via TURN.

One topology (tests/nat/topology.py) per module: coturn (TURN REST auth) and two rendezvous in the
public ``wan`` namespace, three robots in the ``robot`` namespace, the client script in ``client``:

* rendezvous A hands out TURN with REST credentials; robot ``rest.nat.test`` answers there and has
  no ICE servers of its own, so its relay candidate exists only if it used what A sent with the offer;
* rendezvous B hands out nothing; robot ``plain.nat.test`` has no ICE servers (the negative control),
  robot ``static.nat.test`` has a TURN credential the test derived itself with :mod:`hmac` (so coturn
  accepting it checks our derivation independently).

The NATs forward only to the public address, so any connection that forms is a relayed one; the
client also reads the selected pair from aioice and the tests assert it is relay on its side.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.clients.netns_viam_webrtc import VIAM_PYTHON, last_json_line
from tests.nat.topology import REPO, ROBOT_IP, SIGNAL_PORT, TURN_PORT, WAN_IP, NatTopology

pytestmark = pytest.mark.timeout(240)

TURN_URL = f"turn:{WAN_IP}:{TURN_PORT}"
RENDEZVOUS_A = f"{WAN_IP}:{SIGNAL_PORT}"
RENDEZVOUS_B = f"{WAN_IP}:{SIGNAL_PORT + 1}"
#: Viam's offer deadline; a failed dial must be reported by then (plus process start and slack).
OFFER_DEADLINE_S = 10.0
FAIL_SLACK_S = 4.0
CLIENT_TIMEOUT_S = 60.0


def rest_credential(secret: str, username: str) -> str:
    """coturn's REST password for ``username``, computed here without peerbot's code."""
    return base64.b64encode(hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()).decode()


def ice_json(username: str, credential: str) -> str:
    return json.dumps([{"urls": [TURN_URL], "username": username, "credential": credential}])


@pytest.fixture(scope="module")
def topo() -> Iterator[NatTopology]:
    with NatTopology() as topology:
        topology.start_turn()
        peerbot = [sys.executable, "-m", "web"]
        a = topology.start("wan", [*peerbot, "signal", "--host", WAN_IP, "--port", str(SIGNAL_PORT),
                                   "--turn", TURN_URL, "--turn-secret-file", str(topology.secret_file)])
        b = topology.start("wan", [*peerbot, "signal", "--host", WAN_IP, "--port", str(SIGNAL_PORT + 1)])
        for rendezvous in (a, b):
            rendezvous.wait_ready(1, 30)
        valid_user = f"{int(time.time()) + 3600}:robot"
        robots = [
            # viam-sdk's Rust dialer asks for the authority it dialed (the rendezvous) as rpc-host
            # the rendezvous in this topology is cleartext (TLS towards a rendezvous: test_rendezvous_tls.py)
            ["--port", "8080", "--signaling-insecure", "--signaling-address", RENDEZVOUS_A,
             "--fqdn", "rest.nat.test", "--fqdn", RENDEZVOUS_A],
            ["--port", "8081", "--signaling-insecure", "--signaling-address", RENDEZVOUS_B, "--fqdn", "plain.nat.test"],
            ["--port", "8082", "--signaling-insecure", "--signaling-address", RENDEZVOUS_B,
             "--fqdn", "static.nat.test", "--turn", TURN_URL,
             "--turn-user", valid_user, "--turn-password", rest_credential(topology.turn_secret, valid_user)],
        ]
        started = [topology.start("robot", [*peerbot, "serve", "--host", ROBOT_IP, *args]) for args in robots]
        for robot, args in zip(started, robots, strict=True):
            robot.wait_ready(1, 60)
            fqdn = args[args.index("--fqdn") + 1]
            wait_for_line(robot, f"for ('{fqdn}'", "registered with signaling")
        yield topology


def wait_for_line(process: Any, *parts: str, timeout: float = 30.0) -> None:
    """Until ``process`` logged a line holding every one of ``parts`` (bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(all(part in line for part in parts) for line in list(process.lines)):
            return
        time.sleep(0.1)
    raise AssertionError(f"no line with {parts} logged within {timeout}s:\n{process.log()}")


def client(topo: NatTopology, rendezvous: str, host: str, *extra: str) -> dict[str, Any]:
    done = topo.run_python("client", ["tests/nat/nat_client.py", rendezvous, host, *extra], timeout=CLIENT_TIMEOUT_S)
    assert done.returncode == 0, f"client crashed:\n{done.stderr[-4000:]}"
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def assert_relayed_and_served(report: dict[str, Any]) -> None:
    assert report["ok"], report
    assert report["pair"]["local"] == "relay", report["pair"]
    assert report["pair"]["remote"] in ("relay", "prflx"), report["pair"]
    assert "rdk:component:sensor/sensor1" in report["resource_names"]
    assert {"temperature_c", "humidity_pct"} <= set(report["readings"])


def test_connects_via_turn_with_rest_credentials_from_the_rendezvous(topo: NatTopology) -> None:
    report = client(topo, RENDEZVOUS_A, "rest.nat.test")
    assert_relayed_and_served(report)
    # what OptionalWebRTCConfig handed out: a REST credential coturn's secret derives, valid ≤ 300 s
    (server,) = report["handed_out"]
    assert server["urls"] == [TURN_URL]
    match = re.fullmatch(r"(\d+):peerbot", server["username"])
    assert match is not None, server
    assert 0 < int(match[1]) - time.time() <= 300
    assert server["credential"] == rest_credential(topo.turn_secret, server["username"])


def test_unknown_host_is_not_found_at_the_rendezvous(topo: NatTopology) -> None:
    report = client(topo, RENDEZVOUS_A, "nobody.nat.test")
    assert not report["ok"]
    assert report["status"] == "NOT_FOUND" and "host appears to be offline" in report["message"], report


def test_without_turn_the_dial_fails_cleanly_within_the_offer_deadline(topo: NatTopology) -> None:
    report = client(topo, RENDEZVOUS_B, "plain.nat.test", "--timeout", "30")
    assert not report["ok"], report
    assert report["handed_out"] == []
    assert report["seconds"] <= OFFER_DEADLINE_S + FAIL_SLACK_S, report
    assert report["status"] in ("DEADLINE_EXCEEDED", "UNAVAILABLE"), report
    assert report["message"], report


def test_static_credential_derived_independently_is_accepted_by_coturn(topo: NatTopology) -> None:
    username = f"{int(time.time()) + 300}:client"
    report = client(topo, RENDEZVOUS_B, "static.nat.test", "--ice-servers",
                    ice_json(username, rest_credential(topo.turn_secret, username)))
    assert_relayed_and_served(report)


def test_expired_rest_credential_fails_cleanly(topo: NatTopology) -> None:
    username = f"{int(time.time()) - 60}:client"  # HMAC right, expiry passed: coturn answers 401
    report = client(topo, RENDEZVOUS_B, "static.nat.test", "--ice-servers",
                    ice_json(username, rest_credential(topo.turn_secret, username)), "--timeout", "30")
    assert not report["ok"], report
    assert report["seconds"] <= OFFER_DEADLINE_S + FAIL_SLACK_S, report
    assert report["status"] in ("DEADLINE_EXCEEDED", "UNAVAILABLE"), report


def test_viam_sdk_reaches_the_robot_through_the_rendezvous_and_relay(topo: NatTopology) -> None:
    """The real viam-sdk (Rust dialer) in the client namespace, dialing the rendezvous over WebRTC.

    If WebRTC failed it would fall back to direct gRPC at the rendezvous, which serves no robot
    methods: so the readings prove the data channel. The robot's NAT forwards only to the TURN
    host's address and the client has no public address of its own, so the channel runs through a
    TURN relay whatever pair the Rust dialer nominated.
    """
    assert VIAM_PYTHON.exists(), "the viam-sdk venv is missing: run scripts/setup.sh"
    robot = next(p for p in topo.processes if "rest.nat.test" in p.argv)
    seen = len(robot.lines)
    done = subprocess.run(
        topo.exec_argv("client", [str(VIAM_PYTHON), "tests/clients/viam_drive.py", "--webrtc", RENDEZVOUS_A]),
        cwd=REPO, capture_output=True, text=True, timeout=CLIENT_TIMEOUT_S * 3, check=False,
    )
    drive = last_json_line(done.stdout)
    for step in ("resource_names", "sensor_get_readings"):
        assert drive.get(step, {}).get("ok"), f"{step}: {drive.get(step)}\n{done.stderr[-3000:]}"
    assert {"temperature_c", "humidity_pct"} <= set(drive["sensor_get_readings"]["value"])
    stats = topo.run_python("robot", ["-c", "import urllib.request as u; print(u.urlopen("
                                      f"'http://{ROBOT_IP}:8080/stats', timeout=10).read().decode())"], timeout=30)
    assert stats.returncode == 0, stats.stderr
    methods = json.loads(stats.stdout)["methods"]
    readings = methods["/viam.component.sensor.v1.SensorService/GetReadings"]
    assert readings["webrtc"] >= 1 and readings["grpc"] == 0, readings
    opened = [line for line in robot.lines[seen:] if "session open in" in line]
    assert len(opened) == 1, "\n".join(robot.lines[seen:])
    # the client's NAT address (prflx, behind our relay) or the client's relay
    assert re.search(r"remote \('198\.51\.100\.(20|1)'", opened[0]), opened[0]


def test_every_process_survived(topo: NatTopology) -> None:
    """Failed dials and unknown hosts never take a rendezvous, a robot or coturn down."""
    for process in topo.processes:
        assert process.poll() is None, f"{process.argv} exited:\n{process.log()}"
    assert_relayed_and_served(client(topo, RENDEZVOUS_A, "rest.nat.test"))


def test_coturn_checks_rest_expiry_only_when_allocating(topo: NatTopology) -> None:
    """Why a 300 s TTL does not end longer sessions (docs/architecture.md "NAT traversal")."""
    done = topo.run_python("client", ["tests/nat/turn_probe.py", WAN_IP, topo.turn_secret], timeout=CLIENT_TIMEOUT_S)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout) == {"expired": True, "refresh": "ok", "permission": "ok"}
