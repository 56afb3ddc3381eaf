"""Inside a private network namespace: the real viam-sdk with an API key scoped to one of two robots
registered at one ``peerbot signal``.

Run by ``tests/test_viam_sdk_rendezvous_scope.py`` as
``netns.sh .venv/bin/python tests/clients/netns_rendezvous_scope.py``. viam-sdk signals at the
address it dials and sends that authority as ``rpc-host``, so the two robots are told apart by the
address: the rendezvous listens on 0.0.0.0, robot A registers ``127.0.0.1:PORT``, robot B
``127.0.0.2:PORT`` (both loopback inside the namespace). Keys: ``lab`` scoped to A, ``ops`` ``@*``.
viam-sdk's Rust dialer authenticates without ``rpc-host``, so this is the case where the scope,
not the host asked for, decides the token's audience.

Drives of ``viam_auth_drive.py --webrtc``: lab→A, lab→B, ops→B. Prints ONE JSON object:
``{"registered", "drives", "running", "stats": {process: /stats}, "logs": {process: lines}}``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.clients.netns_rendezvous_auth import stats  # noqa: E402 - needs the repo on sys.path
from tests.clients.netns_viam_webrtc import last_json_line  # noqa: E402
from tests.serverproc import ServerProcess  # noqa: E402

VIAM_PYTHON = REPO / ".venv-viam" / "bin" / "python"
DRIVER = REPO / "tests" / "clients" / "viam_auth_drive.py"
PORT = 8094
ROBOTS = {"a": f"127.0.0.1:{PORT}", "b": f"127.0.0.2:{PORT}"}
KEYS = {"lab": ("lab-pass", f"@{ROBOTS['a']}"), "ops": ("ops-pass", "@*")}
ROBOT_SECRETS = {"a": "robot-a-pass", "b": "robot-b-pass"}
READY_TIMEOUT_S = 30.0
REGISTER_TIMEOUT_S = 30.0
DRIVE_TIMEOUT_S = 120.0


def main() -> int:
    processes: dict[str, ServerProcess] = {}
    try:
        key_flags = [flag for key_id, (secret, scope) in KEYS.items()
                     for flag in ("--api-key", f"{key_id}:{secret}{scope}")]
        robot_flags = [flag for name, address in ROBOTS.items()
                       for flag in ("--robot-secret", f"{address}={ROBOT_SECRETS[name]}")]
        processes["signal"] = ServerProcess([
            sys.executable, "-m", "web", "signal", "--host", "0.0.0.0", "--port", str(PORT), *key_flags, *robot_flags,
        ]).start()
        processes["signal"].wait_ready(1, READY_TIMEOUT_S)
        for name, address in ROBOTS.items():
            processes[f"robot_{name}"] = ServerProcess.peerbot([
                "--host", "0.0.0.0", "--port", "0", "--signaling-insecure", "--signaling-address", ROBOTS["a"],
                "--fqdn", address, "--robot-secret", ROBOT_SECRETS[name],
            ]).start()
        registered = {name: processes[f"robot_{name}"].wait_for_line(f"'{address}',): registered with signaling",
                                     REGISTER_TIMEOUT_S) for name, address in ROBOTS.items()}
        drives: dict[str, object] = {}
        for drive, (key_id, robot) in {"lab_a": ("lab", "a"), "lab_b": ("lab", "b"), "ops_b": ("ops", "b")}.items():
            done = subprocess.run(
                [str(VIAM_PYTHON), str(DRIVER), ROBOTS[robot], key_id, KEYS[key_id][0], "--webrtc"],
                cwd=REPO, capture_output=True, text=True, timeout=DRIVE_TIMEOUT_S, check=False,
            )
            drives[drive] = {**last_json_line(done.stdout), "_stderr": done.stderr[-1500:]}
        report = {
            "registered": registered,
            "drives": drives,
            "running": {name: process.poll() is None for name, process in processes.items()},
            "stats": {name: stats(process.addresses[0]) for name, process in processes.items() if process.addresses},
            "logs": {name: process.lines[-80:] for name, process in processes.items()},
        }
        print(json.dumps(report))
    finally:
        for process in processes.values():
            process.terminate(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
