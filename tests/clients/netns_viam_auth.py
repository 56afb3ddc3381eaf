"""Inside a private network namespace: one robot requiring an API key, on one port serving TLS and
cleartext, driven by viam-sdk with API-key credentials over every combination that matters.

Run by ``tests/test_viam_sdk_auth.py`` as ``netns.sh .venv/bin/python tests/clients/netns_viam_auth.py``.
The server is ``netns_viam_tls.tls_server`` (a throwaway CA's certificate, debug log for the
handed-over connections) plus ``--api-key``; each drive is ``netns_viam_tls.drive_once`` of
``viam_auth_drive.py``, so every run carries its own /stats difference.

* ``tls_*``: ``--secure`` (TLS only, no downgrade), unmodified viam-sdk, dialed at the namespace address
  198.18.0.1 with ``SSL_CERT_FILE`` = the CA (viam-sdk does not verify 127.x or localhost).
* ``cleartext_*``: ``insecure=True`` at 127.0.0.1: WebRTC signaling over h2c, and direct h2c with the
  driver's one-argument shim (viam-sdk 0.85.1 cannot authenticate over cleartext direct gRPC).

Prints ONE JSON object: ``{"runs": {name: <drive_once report>}, "server_log": [...]}``.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.clients.netns_viam_tls import (  # noqa: E402 - needs the repo on sys.path
    NETNS_ADDRESS,
    READY_TIMEOUT_S,
    drive_once,
    server_log,
    tls_server,
)
from tests.pki import make_pki  # noqa: E402

DRIVER = REPO / "tests" / "clients" / "viam_auth_drive.py"
KEY_ID = "key-7f3a"
SECRET = "s3cret-for-tests"
WRONG_SECRET = "not-the-secret"

#: name -> (driver flags, secret, over TLS at the namespace address trusting the CA)
DRIVES: dict[str, tuple[list[str], str, bool]] = {
    "tls_direct_ok": (["--secure"], SECRET, True),
    "tls_direct_wrong_secret": (["--secure"], WRONG_SECRET, True),
    "tls_webrtc_ok": (["--secure", "--webrtc"], SECRET, True),
    "cleartext_webrtc_ok": (["--webrtc"], SECRET, False),
    "cleartext_webrtc_wrong_secret": (["--webrtc"], WRONG_SECRET, False),
    "cleartext_direct_ok": (["--shim-cleartext-auth"], SECRET, False),
}


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        pki = make_pki(Path(tmp))
        with tls_server(pki, "--api-key", f"{KEY_ID}:{SECRET}") as server:
            port = int(server.wait_ready(1, READY_TIMEOUT_S)[0].rsplit(":", 1)[1])
            runs = {}
            for name, (flags, secret, tls) in DRIVES.items():
                host = NETNS_ADDRESS if tls else "127.0.0.1"
                argv = [str(DRIVER), f"{host}:{port}", KEY_ID, secret, *flags]
                runs[name] = drive_once(server, port, argv, pki.ca if tls else None)
            print(json.dumps({"runs": runs, "server_log": server_log(server)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
