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
"stats_after": ..., "handed_over": [connection descriptions], "log": [...], "stderr": ...}},
"server_log": [...]}``. ``tls_server``, ``drive_once`` and ``served`` are shared with
``netns_viam_auth.py`` (the same drives with API-key credentials).
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
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.clients.netns_viam_webrtc import last_json_line  # noqa: E402 - needs the repo on sys.path
from tests.pki import ThrowawayPKI, make_pki  # noqa: E402
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


def tls_server(pki: ThrowawayPKI, *serve_args: str) -> ServerProcess:
    """``peerbot serve`` on any port with the PKI's certificate, at debug level (for ``HANDED_OVER``)."""
    serve = ["--host", "0.0.0.0", "--port", "0", "--tls-cert", str(pki.cert), "--tls-key", str(pki.key)]
    return ServerProcess([sys.executable, "-m", "web", "-vv", "serve", *serve, *serve_args])


def drive_once(server: ServerProcess, port: int, argv: list[str], ca: Path | None) -> dict[str, object]:
    """Run one viam-sdk driver (``argv`` after the venv's python), trusting ``ca`` if given, and
    report it with the /stats before and after it, the connections the server handed over meanwhile
    and the server's non-debug log lines of that time."""
    stats_before = get_stats(port)
    seen = len(server.lines)
    env = {k: v for k, v in os.environ.items() if k not in ("SSL_CERT_FILE", "SSL_CERT_DIR")}
    if ca is not None:
        env["SSL_CERT_FILE"] = str(ca)
    try:
        drive = subprocess.run([str(VIAM_PYTHON), *argv], cwd=REPO, env=env, capture_output=True, text=True,
                               timeout=DRIVE_TIMEOUT_S, check=False)
        report, stderr = last_json_line(drive.stdout), drive.stderr[-4000:]
    except subprocess.TimeoutExpired as exc:
        report, stderr = {"_timeout": DRIVE_TIMEOUT_S}, str(exc.stderr)[-4000:]
    lines = server.lines[seen:]
    handed_over = [m.group(2) for m in map(HANDED_OVER.search, lines) if m and m.group(1) != STATS_SOURCE]
    return {"drive": report, "stats_before": stats_before, "stats_after": get_stats(port),
            "handed_over": handed_over, "log": [line for line in lines if " DEBUG " not in line][-40:],
            "stderr": stderr}


def served(run: dict[str, Any], transport: str) -> dict[str, int]:
    """Calls per method over ``transport`` during one ``drive_once`` run (the /stats difference)."""
    before, after = run["stats_before"]["methods"], run["stats_after"]["methods"]
    counts = {m: c.get(transport, 0) - before.get(m, {}).get(transport, 0) for m, c in after.items()}
    return {m: n for m, n in counts.items() if n}


def server_log(server: ServerProcess) -> list[str]:
    """The server's last non-debug log lines (the debug level is there only for ``HANDED_OVER``)."""
    return [line for line in server.lines if " DEBUG " not in line][-80:]


def main() -> int:
    names = sys.argv[1:] or list(RUNS)
    with tempfile.TemporaryDirectory() as tmp:
        pki = make_pki(Path(tmp))
        with tls_server(pki) as server:
            port = int(server.wait_ready(1, READY_TIMEOUT_S)[0].rsplit(":", 1)[1])
            runs = {}
            for name in names:
                args, trusted = RUNS[name]
                argv = [str(REPO / "tests" / "clients" / "viam_drive.py"), "--secure", *args, f"{NETNS_ADDRESS}:{port}"]
                runs[name] = drive_once(server, port, argv, pki.ca if trusted else None)
            print(json.dumps({"runs": runs, "server_log": server_log(server)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
