"""Inside a private network namespace: serve a robot, drive it with viam-sdk over WebRTC, report.

Run by ``tests/test_viam_sdk_webrtc.py`` as ``netns.sh .venv/bin/python tests/clients/netns_viam_webrtc.py``.
The viam-sdk Rust dialer sends mDNS and STUN traffic, which must never leave this machine: inside
the namespace nothing is reachable but the namespace itself. Prints ONE JSON object:
``{"drive": <viam_drive.py output>, "stats": <GET /stats after the drive>, "server_log": [...]}``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.serverproc import ServerProcess  # noqa: E402 - needs the repo on sys.path

VIAM_PYTHON = REPO / ".venv-viam" / "bin" / "python"
READY_TIMEOUT_S = 30.0
DRIVE_TIMEOUT_S = 240.0
#: A camera whose PNG stills are > 3 MB (sensor noise defeats compression): proves chunked
#: multi-megabyte responses over the data channel.
BIG_CAMERA = {"name": "bigcam", "api": "rdk:component:camera", "model": "fake",
              "attributes": {"width": 2048, "height": 1536, "mime_type": "image/png", "noise": 16}}


def last_json_line(stdout: str) -> dict[str, object]:
    """The driver's JSON report: the Rust dialer inside viam-sdk also logs to stdout."""
    for line in reversed(stdout.splitlines()):
        if line.startswith("{"):
            try:
                parsed: dict[str, object] = json.loads(line)
            except json.JSONDecodeError:
                continue
            return parsed
    return {"_unparsable": stdout[-2000:]}


def main() -> int:
    config = json.loads((REPO / "web" / "fake_robot.json").read_text())
    config["components"].append(BIG_CAMERA)
    with tempfile.TemporaryDirectory() as tmp:
        config_path = Path(tmp) / "robot.json"
        config_path.write_text(json.dumps(config))
        with ServerProcess.peerbot(["--host", "0.0.0.0", "--port", "0", "--config", str(config_path)]) as server:
            address = server.wait_ready(1, READY_TIMEOUT_S)[0]
            port = int(address.rsplit(":", 1)[1])
            drive = subprocess.run(
                [str(VIAM_PYTHON), str(REPO / "tests" / "clients" / "viam_drive.py"), "--webrtc",
                 "--big-camera", BIG_CAMERA["name"], f"127.0.0.1:{port}"],
                cwd=REPO, capture_output=True, text=True, timeout=DRIVE_TIMEOUT_S, check=False,
            )
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats", timeout=10) as response:
                stats = json.loads(response.read())
            drive_result = last_json_line(drive.stdout)
            print(json.dumps({"drive": drive_result, "stats": stats, "drive_stderr": drive.stderr[-4000:],
                              "server_log": server.lines[-60:]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
