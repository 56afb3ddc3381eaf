"""Connect to peerbot with the real viam-sdk and API-key credentials; report what happened.

Run with the viam-sdk venv (never the project venv)::

    .venv-viam/bin/python tests/clients/viam_auth_drive.py 127.0.0.1:PORT KEY_ID SECRET [--webrtc] [--secure]

viam-sdk calls ``AuthService/Authenticate`` (entity = ``auth_entity``, credentials ``api-key``),
then sends ``authorization: Bearer …`` on its calls (direct) or on the signaling calls (WebRTC,
through the Rust dialer). ``--secure`` dials with TLS and never downgrades (``insecure=False``; the
CA comes from ``SSL_CERT_FILE``); without it the SDK dials cleartext (``insecure=True``). Prints ONE
JSON line: ``{"connect": {...}, "resource_names": {...}, "readings": {...}, "images": {...}}``,
each ``{"ok", "value", "error"}``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from grpclib import GRPCError
from viam.components.sensor import Sensor
from viam.robot.client import RobotClient
from viam.rpc.dial import AuthenticatedChannel, Credentials, DialOptions
from viam_drive import camera_images  # this script's directory is on sys.path

CONNECT_TIMEOUT_S = 40.0
STEP_TIMEOUT_S = 20.0


def shim_cleartext_auth() -> None:
    """viam-sdk 0.85.1 cannot authenticate over cleartext: ``AuthenticatedChannel`` always passes
    ``server_hostname`` to ``create_connection``, which asyncio refuses without TLS ("server_hostname
    is only meaningful with ssl"), before any byte is sent. This drops that one argument when there
    is no TLS; the SDK's Authenticate call and Bearer metadata are untouched."""
    original = AuthenticatedChannel.__init__

    def init(self: AuthenticatedChannel, host: Any = None, port: Any = None, *, ssl: Any = None,
             server_hostname: Any = None) -> None:
        original(self, host, port, ssl=ssl, server_hostname=server_hostname if ssl else None)

    AuthenticatedChannel.__init__ = init  # type: ignore[method-assign]


def describe(exc: BaseException) -> str:
    if isinstance(exc, GRPCError):
        return f"GRPCError {exc.status.name}: {exc.message}"
    return f"{type(exc).__name__}: {exc}"


async def run(address: str, key_id: str, secret: str, *, webrtc: bool, secure: bool = False) -> dict[str, Any]:
    report: dict[str, Any] = {}

    async def step(name: str, body: Callable[[], Awaitable[Any]]) -> Any:
        try:
            value = await asyncio.wait_for(body(), STEP_TIMEOUT_S)
        except Exception as exc:
            report[name] = {"ok": False, "value": None, "error": describe(exc)}
            return None
        report[name] = {"ok": True, "value": value, "error": None}
        return value

    options = RobotClient.Options(
        refresh_interval=0,
        check_connection_interval=0,
        attempt_reconnect_interval=0,
        dial_options=DialOptions(
            credentials=Credentials(type="api-key", payload=secret),
            auth_entity=key_id,
            disable_webrtc=not webrtc,
            insecure=not secure,
        ),
    )
    try:
        robot = await asyncio.wait_for(RobotClient.at_address(address, options), CONNECT_TIMEOUT_S)
    except Exception as exc:
        report["connect"] = {"ok": False, "value": None, "error": describe(exc)}
        return report
    report["connect"] = {"ok": True, "value": {"channel_host": getattr(robot._channel, "_host", None)}, "error": None}
    try:
        names = await step("resource_names", lambda: _names(robot))
        if names is not None:
            await step("readings", lambda: Sensor.from_robot(robot, "sensor1").get_readings())
            if report["readings"]["ok"]:
                report["readings"]["value"] = sorted(report["readings"]["value"])
            await step("images", lambda: camera_images(robot, "cam1"))
    finally:
        await robot.close()
    return report


async def _names(robot: RobotClient) -> list[str]:
    return sorted(f"{n.namespace}:{n.type}:{n.subtype}/{n.name}" for n in robot.resource_names)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("address")
    parser.add_argument("key_id")
    parser.add_argument("secret")
    parser.add_argument("--webrtc", action="store_true")
    parser.add_argument("--secure", action="store_true", help="TLS only (the SDK's default), never cleartext")
    parser.add_argument("--shim-cleartext-auth", action="store_true", help="work around viam-sdk's cleartext auth bug")
    args = parser.parse_args()
    if args.shim_cleartext_auth:
        shim_cleartext_auth()
    report = asyncio.run(run(args.address, args.key_id, args.secret, webrtc=args.webrtc, secure=args.secure))
    print(json.dumps(report, sort_keys=True, default=repr))
    return 0


if __name__ == "__main__":
    sys.exit(main())
