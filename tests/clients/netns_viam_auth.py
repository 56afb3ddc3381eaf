"""Inside a private network namespace: serve a robot that requires an API key, drive it with viam-sdk.

Run by ``tests/test_viam_sdk_auth.py`` as ``netns.sh .venv/bin/python tests/clients/netns_viam_auth.py``.
Four drives of ``viam_auth_drive.py``: WebRTC with the right key, WebRTC with a wrong secret,
direct (cleartext h2c, with the driver's shim for viam-sdk's cleartext-auth bug) right and wrong.
Prints ONE JSON object: ``{"drives": {name: report}, "stats": <GET /stats>, "server_log": [...]}``.
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
KEY_ID = "key-7f3a"
SECRET = "s3cret-for-tests"
READY_TIMEOUT_S = 30.0
DRIVE_TIMEOUT_S = 120.0

DRIVES = {
    "webrtc_ok": ["--webrtc", KEY_ID, SECRET],
    "webrtc_wrong_secret": ["--webrtc", KEY_ID, "not-the-secret"],
    "direct_ok": ["--shim-cleartext-auth", KEY_ID, SECRET],
    "direct_wrong_secret": ["--shim-cleartext-auth", KEY_ID, "not-the-secret"],
}


def main() -> int:
    args = ["--host", "0.0.0.0", "--port", "0", "--api-key", f"{KEY_ID}:{SECRET}"]
    with ServerProcess.peerbot(args) as server:
        address = server.wait_ready(1, READY_TIMEOUT_S)[0]
        port = int(address.rsplit(":", 1)[1])
        drives: dict[str, object] = {}
        stats: dict[str, object] = {}
        for name, extra in DRIVES.items():
            flags = [a for a in extra if a.startswith("--")]
            positional = [a for a in extra if not a.startswith("--")]
            done = subprocess.run(
                [str(VIAM_PYTHON), str(DRIVER), f"127.0.0.1:{port}", *positional, *flags],
                cwd=REPO, capture_output=True, text=True, timeout=DRIVE_TIMEOUT_S, check=False,
            )
            drives[name] = {**last_json_line(done.stdout), "_stderr": done.stderr[-1500:]}
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats", timeout=10) as response:
                stats[name] = json.loads(response.read())  # cumulative, after each drive
        print(json.dumps({"drives": drives, "stats": stats, "server_log": server.lines[-80:]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
