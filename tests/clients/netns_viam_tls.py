"""Inside a private network namespace: serve a robot with TLS, drive it with viam-sdk over TLS.

Run by ``tests/test_viam_sdk_tls.py`` as ``netns.sh .venv/bin/python tests/clients/netns_viam_tls.py``.
A throwaway CA signs the server certificate (``tests/pki.py``); only the client processes that
should trust it get ``SSL_CERT_FILE`` (OpenSSL in viam-sdk's direct dialer, and rustls-native-certs
in its Rust dialer, read it). The robot is dialed at the namespace address 198.18.0.1: viam-sdk
skips certificate verification for 127.x and localhost, so only a non-loopback name proves it.

Each run is a ``viam_drive.py --secure`` (TLS, never a cleartext downgrade) with or without the CA;
``/stats`` is read over cleartext HTTP on the same port before and after each run, and the server
(at debug level) reports every connection it handed over, so the test can count those that came
over TLS. Prints ONE JSON object: ``{"runs": {name: {"drive": <report>, "stats_before": ...,
"stats_after": ..., "handed_over": [connection descriptions], "stderr": ...}}, "server_log": [...]}``.
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
NETNS_ADDRESS = "198.18.0.1"
READY_TIMEOUT_S = 30.0
DRIVE_TIMEOUT_S = 150.0
#: web.oneport's debug line for a routed connection, e.g. "<connection ('198.18.0.1', 4242) h2 over TLS>"
HANDED_OVER = re.compile(r"web\.oneport: <connection \('([^']+)', \d+\) (.+)>: handed over")
#: Where this script reads /stats from, so its own connections are told apart from the SDK's.
STATS_SOURCE = "127.0.0.2"
#: name -> (viam_drive.py arguments before the address, trust the test CA)
RUNS: dict[str, tuple[list[str], bool]] = {
    "direct": ([], True),
    "direct_untrusted": ([], False),
    "webrtc": (["--webrtc"], True),
    "webrtc_untrusted": (["--webrtc"], False),
}


def get_stats(port: int) -> object:
    """/stats over cleartext HTTP: the TLS port keeps serving cleartext."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10, source_address=(STATS_SOURCE, 0))
    try:
        connection.request("GET", "/stats")
        response = connection.getresponse()
        assert response.status == 200, response.status
        return json.loads(response.read())
    finally:
        connection.close()


def main() -> int:
    names = sys.argv[1:] or list(RUNS)
    with tempfile.TemporaryDirectory() as tmp:
        pki = make_pki(Path(tmp))
        serve = ["--host", "0.0.0.0", "--port", "0", "--tls-cert", str(pki.cert), "--tls-key", str(pki.key)]
        with ServerProcess([sys.executable, "-m", "web", "-vv", "serve", *serve]) as server:
            port = int(server.wait_ready(1, READY_TIMEOUT_S)[0].rsplit(":", 1)[1])
            runs = {}
            for name in names:
                stats_before = get_stats(port)
                seen = len(server.lines)
                args, trusted = RUNS[name]
                env = {k: v for k, v in os.environ.items() if k not in ("SSL_CERT_FILE", "SSL_CERT_DIR")}
                if trusted:
                    env["SSL_CERT_FILE"] = str(pki.ca)
                try:
                    drive = subprocess.run(
                        [str(VIAM_PYTHON), str(REPO / "tests" / "clients" / "viam_drive.py"), "--secure", *args,
                         f"{NETNS_ADDRESS}:{port}"],
                        cwd=REPO, env=env, capture_output=True, text=True, timeout=DRIVE_TIMEOUT_S, check=False,
                    )
                    report, stderr = last_json_line(drive.stdout), drive.stderr[-4000:]
                except subprocess.TimeoutExpired as exc:
                    report, stderr = {"_timeout": DRIVE_TIMEOUT_S}, str(exc.stderr)[-4000:]
                handed_over = [m.group(2) for m in map(HANDED_OVER.search, server.lines[seen:])
                               if m and m.group(1) != STATS_SOURCE]
                runs[name] = {"drive": report, "stats_before": stats_before, "stats_after": get_stats(port),
                              "handed_over": handed_over, "stderr": stderr}
            log = [line for line in server.lines if " DEBUG " not in line]
            print(json.dumps({"runs": runs, "server_log": log[-60:]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
