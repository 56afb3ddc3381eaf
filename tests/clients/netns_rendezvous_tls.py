"""Inside a private network namespace: a robot registers with a TLS-only-trusting ``peerbot signal``
(``--tls-cert``) at the non-loopback address 198.18.0.1, and viam-sdk reaches it through there over
TLS with an API key.

Run by ``tests/test_viam_sdk_rendezvous_tls.py`` as
``netns.sh .venv/bin/python tests/clients/netns_rendezvous_tls.py``. Processes:

* ``signal``: ``peerbot -vv signal --tls-cert … --api-key … --robot-secret`` on 0.0.0.0:8092 (its
  debug log names every connection's route, e.g. ``h2 over TLS``);
* ``robot``: ``peerbot serve --signaling-address 198.18.0.1:8092 --signaling-ca ca.pem`` with its
  robot secret, registering ``198.18.0.1:8092`` (what viam-sdk asks for) and ``robot.test``;
* ``robot_untrusted``: the same without ``--signaling-ca``: the system trust store does not know
  the test CA, so it is refused before anything is sent, and keeps running.

Then ``viam_auth_drive.py --webrtc --secure`` (TLS only, no downgrade) with ``SSL_CERT_FILE`` set to
the test CA. Prints ONE JSON object: ``{"registered", "untrusted_refused", "drive", "running",
"stats", "handed_over", "logs"}``.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.clients.netns_viam_webrtc import last_json_line  # noqa: E402 - needs the repo on sys.path
from tests.pki import make_pki  # noqa: E402
from tests.serverproc import ServerProcess  # noqa: E402

VIAM_PYTHON = REPO / ".venv-viam" / "bin" / "python"
DRIVER = REPO / "tests" / "clients" / "viam_auth_drive.py"
RENDEZVOUS = "198.18.0.1:8092"
KEY_ID = "key-tls"
SECRET = "caller-pass"
ROBOT_SECRET = "robot-pass"
READY_TIMEOUT_S = 30.0
REGISTER_TIMEOUT_S = 30.0
DRIVE_TIMEOUT_S = 120.0
#: web.oneport's debug line for a routed connection, e.g. "<connection ('198.18.0.1', 4242) h2 over TLS>"
HANDED_OVER = re.compile(r"web\.oneport: <connection \('([^']+)', \d+\) (.+)>: handed over")
#: Where this script reads /stats from, so its own connections are told apart.
STATS_SOURCE = "127.0.0.2"


def stats(port: int) -> object:
    """/stats over cleartext HTTP on loopback (the TLS port keeps serving cleartext)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10, source_address=(STATS_SOURCE, 0))
    try:
        connection.request("GET", "/stats")
        return json.loads(connection.getresponse().read())
    finally:
        connection.close()


def main() -> int:
    processes: dict[str, ServerProcess] = {}
    with tempfile.TemporaryDirectory() as tmp:
        pki = make_pki(Path(tmp))
        try:
            port = RENDEZVOUS.rsplit(":", 1)[1]
            processes["signal"] = ServerProcess([
                sys.executable, "-m", "web", "-vv", "signal", "--host", "0.0.0.0", "--port", port,
                "--tls-cert", str(pki.cert), "--tls-key", str(pki.key),
                "--api-key", f"{KEY_ID}:{SECRET}", "--robot-secret", f"{RENDEZVOUS},robot.test={ROBOT_SECRET}",
            ]).start()
            processes["signal"].wait_ready(1, READY_TIMEOUT_S)
            robot = ["--host", "127.0.0.1", "--port", "0", "--signaling-address", RENDEZVOUS,
                     "--fqdn", RENDEZVOUS, "--fqdn", "robot.test", "--robot-secret", ROBOT_SECRET]
            env = {k: v for k, v in os.environ.items() if k not in ("SSL_CERT_FILE", "SSL_CERT_DIR")}
            processes["robot"] = ServerProcess.peerbot([*robot, "--signaling-ca", str(pki.ca)]).start()
            processes["robot_untrusted"] = ServerProcess.peerbot(robot).start()
            for name in ("robot", "robot_untrusted"):
                processes[name].wait_ready(1, READY_TIMEOUT_S)
            registered = processes["robot"].wait_for_line("'robot.test'): registered with signaling",
                                                          REGISTER_TIMEOUT_S)
            refused = processes["robot_untrusted"].wait_for_line("presented a certificate this robot does not trust",
                               REGISTER_TIMEOUT_S)
            seen = len(processes["signal"].lines)
            try:
                done = subprocess.run(
                    [str(VIAM_PYTHON), str(DRIVER), RENDEZVOUS, KEY_ID, SECRET, "--webrtc", "--secure"],
                    cwd=REPO, env={**env, "SSL_CERT_FILE": str(pki.ca)}, capture_output=True, text=True,
                    timeout=DRIVE_TIMEOUT_S, check=False,
                )
                drive = {**last_json_line(done.stdout), "_stderr": done.stderr[-1500:]}
            except subprocess.TimeoutExpired as exc:
                drive = {"_timeout": DRIVE_TIMEOUT_S, "_stderr": str(exc.stderr)[-1500:]}
            signal_lines = processes["signal"].lines
            report = {
                "registered": registered,
                "untrusted_refused": refused,
                "drive": drive,
                "running": {name: process.poll() is None for name, process in processes.items()},
                "stats": {name: stats(int(process.addresses[0].rsplit(":", 1)[1]))
                          for name, process in processes.items()},
                # every connection the signal server routed, before and during the drive
                "handed_over": {"before": routes(signal_lines[:seen]), "drive": routes(signal_lines[seen:])},
                "logs": {name: [line for line in process.lines if " DEBUG " not in line][-40:]
                         for name, process in processes.items()},
            }
            print(json.dumps(report))
        finally:
            for process in processes.values():
                process.terminate(10)
    return 0


def routes(lines: list[str]) -> list[str]:
    return [m.group(2) for m in map(HANDED_OVER.search, lines) if m and m.group(1) != STATS_SOURCE]


if __name__ == "__main__":
    sys.exit(main())
