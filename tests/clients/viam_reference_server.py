"""viam-sdk's own server (``viam.rpc.server.Server``) with one fixed sensor, as a reference.

Run with the viam-sdk venv::

    .venv-viam/bin/python tests/clients/viam_reference_server.py [--host 127.0.0.1] [--port 0]

Serves ``sensor1`` (a ``viam.components.sensor.Sensor`` subclass returning a small fixed readings
map). Logs ``serving gRPC on HOST:PORT`` to stderr once bound (port 0 picks a free port, which
``Server.serve`` itself does not report); SIGTERM/SIGINT stop it (grpclib's graceful_exit).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Mapping
from typing import Any

from viam.components.sensor import Sensor
from viam.rpc.server import Server

READINGS: dict[str, Any] = {"temperature_c": 21.5, "humidity_pct": 40.0, "samples": 1, "ok": True}
READY_TIMEOUT_S = 15.0


class FixedSensor(Sensor):
    async def get_readings(
        self, *, extra: Mapping[str, Any] | None = None, timeout: float | None = None, **kwargs: Any
    ) -> Mapping[str, Any]:
        return READINGS


async def main(host: str, port: int) -> None:
    server = Server([FixedSensor("sensor1")])
    serving = asyncio.create_task(server.serve(host, port, log_level=logging.WARNING))
    deadline = asyncio.get_running_loop().time() + READY_TIMEOUT_S
    # Server.serve -> grpclib Server.start binds; wait for its listening socket to exist.
    while getattr(server._server, "_server", None) is None:
        if serving.done():
            await serving  # re-raise the bind error
            return
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("reference server did not bind")
        await asyncio.sleep(0.01)
    for sock in server._server._server.sockets:
        name = sock.getsockname()
        print(f"serving gRPC on {name[0]}:{name[1]}", file=sys.stderr, flush=True)
    await serving


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    asyncio.run(main(args.host, args.port))
