"""Inside a private network namespace: viam-sdk with an API key reaches robots through an authenticating
``peerbot signal``.

Run by ``tests/test_viam_sdk_rendezvous_auth.py`` as
``netns.sh .venv/bin/python tests/clients/netns_rendezvous_auth.py``. Two rendezvous, each requiring
auth; viam-sdk signals at the address it dials and sends that authority as ``rpc-host``, so each
robot registers the rendezvous's own ``HOST:PORT`` as one of its names:

* ``open``: rendezvous 1, robot 1 answers there with its robot secret and has no auth of its own;
* ``guarded``: rendezvous 2, robot 2 has the same robot secret setup and its own ``--api-key`` too
  (calls that arrive through the rendezvous run as the caller the rendezvous vouched for);
* robot 3 tries rendezvous 1 with a wrong secret (refused, keeps retrying, keeps running).

Drives of ``viam_auth_drive.py --webrtc``: the right key at each rendezvous, a wrong secret.
Prints ONE JSON object: ``{"drives", "stats": {process: /stats}, "logs": {process: lines}}``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.clients.netns_viam_webrtc import last_json_line  # noqa: E402 - needs the repo on sys.path
from tests.serverproc import ServerProcess  # noqa: E402

VIAM_PYTHON = REPO / ".venv-viam" / "bin" / "python"
DRIVER = REPO / "tests" / "clients" / "viam_auth_drive.py"
KEY_ID = "key-rv"
SECRET = "caller-pass"
ROBOT_SECRET = "robot-pass"
ROBOT_OWN_KEY = "robot-own-key:robot-own-pass"
RENDEZVOUS = {"open": "127.0.0.1:8090", "guarded": "127.0.0.1:8091"}
READY_TIMEOUT_S = 30.0
REGISTER_TIMEOUT_S = 30.0
DRIVE_TIMEOUT_S = 120.0


def stats(address: str) -> object:
    port = address.rsplit(":", 1)[1]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats", timeout=10) as response:
        return json.loads(response.read())


def main() -> int:
    processes: dict[str, ServerProcess] = {}
    try:
        for name, address in RENDEZVOUS.items():
            host, port = address.rsplit(":", 1)
            processes[f"signal_{name}"] = ServerProcess([
                sys.executable, "-m", "web", "signal", "--host", host, "--port", port,
                "--api-key", f"{KEY_ID}:{SECRET}", "--robot-secret", f"{address},robot.test={ROBOT_SECRET}",
            ]).start()
        for name in RENDEZVOUS:
            processes[f"signal_{name}"].wait_ready(1, READY_TIMEOUT_S)
        robots = {
            "open": ["--robot-secret", ROBOT_SECRET],
            "guarded": ["--robot-secret", ROBOT_SECRET, "--api-key", ROBOT_OWN_KEY],
        }
        for name, extra in robots.items():
            processes[f"robot_{name}"] = ServerProcess.peerbot([
                "--host", "0.0.0.0", "--port", "0", "--signaling-insecure", "--signaling-address", RENDEZVOUS[name],
                "--fqdn", RENDEZVOUS[name], "--fqdn", "robot.test", *extra,
            ]).start()
        processes["robot_wrong"] = ServerProcess.peerbot([
            "--host", "0.0.0.0", "--port", "0", "--signaling-insecure", "--signaling-address", RENDEZVOUS["open"],
            "--fqdn", "robot.test", "--robot-secret", "not-the-robot-secret",
        ]).start()
        registered = {name: processes[f"robot_{name}"].wait_for_line("'robot.test'): registered with signaling",
                                     REGISTER_TIMEOUT_S) for name in robots}
        refused = processes["robot_wrong"].wait_for_line("refused us", REGISTER_TIMEOUT_S)
        drives: dict[str, object] = {}
        for name, (address, secret) in {
            "open_ok": (RENDEZVOUS["open"], SECRET),
            "guarded_ok": (RENDEZVOUS["guarded"], SECRET),
            "open_wrong_secret": (RENDEZVOUS["open"], "not-the-secret"),
        }.items():
            done = subprocess.run(
                [str(VIAM_PYTHON), str(DRIVER), address, KEY_ID, secret, "--webrtc"],
                cwd=REPO, capture_output=True, text=True, timeout=DRIVE_TIMEOUT_S, check=False,
            )
            drives[name] = {**last_json_line(done.stdout), "_stderr": done.stderr[-1500:]}
        running = {name: process.poll() is None for name, process in processes.items()}
        report = {
            "registered": registered,
            "wrong_secret_refused": refused,
            "drives": drives,
            "running": running,
            "stats": {name: stats(process.addresses[0]) for name, process in processes.items()
                      if process.addresses},
            "logs": {name: process.lines[-60:] for name, process in processes.items()},
        }
        print(json.dumps(report))
    finally:
        for process in processes.values():
            process.terminate(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
