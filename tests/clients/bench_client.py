"""Sequential unary latency of GetReadings / ResourceNames against several servers, one process.

Run with the viam-sdk venv (plain grpclib + viam's generated stubs, no RobotClient)::

    .venv-viam/bin/python tests/clients/bench_client.py --rounds 7 --calls 500 --warmup 200 \
        ours=127.0.0.1:P1 theirs=127.0.0.1:P2

Rounds are round-robin over servers and methods; the order flips every round so neither server
profits systematically from running first or second. Prints one JSON object on stdout:
``{"latencies_us": {server: {method: [...]}}, "wall_s": ..., "versions": {...}}``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import sys
import time
from collections.abc import Awaitable, Callable
from importlib.metadata import version
from typing import Any

from grpclib.client import Channel
from viam.gen.common.v1.common_pb2 import GetReadingsRequest
from viam.gen.component.sensor.v1.sensor_grpc import SensorServiceStub
from viam.gen.robot.v1.robot_grpc import RobotServiceStub
from viam.gen.robot.v1.robot_pb2 import ResourceNamesRequest

CALL_TIMEOUT_S = 5.0
METHODS = ("GetReadings", "ResourceNames")


def make_calls(channel: Channel) -> dict[str, Callable[[], Awaitable[Any]]]:
    sensor, robot = SensorServiceStub(channel), RobotServiceStub(channel)
    readings_req, names_req = GetReadingsRequest(name="sensor1"), ResourceNamesRequest()

    async def get_readings() -> Any:
        reply = await sensor.GetReadings(readings_req, timeout=CALL_TIMEOUT_S)
        assert reply.readings, "empty readings"
        return reply

    async def resource_names() -> Any:
        reply = await robot.ResourceNames(names_req, timeout=CALL_TIMEOUT_S)
        assert reply.resources, "no resources"
        return reply

    return {"GetReadings": get_readings, "ResourceNames": resource_names}


async def run(targets: dict[str, str], rounds: int, calls: int, warmup: int, budget_s: float) -> dict[str, Any]:
    channels: dict[str, Channel] = {}
    for name, address in targets.items():
        host, _, port = address.rpartition(":")
        channels[name] = Channel(host, int(port))
    try:
        fns = {name: make_calls(ch) for name, ch in channels.items()}
        for name in targets:
            for method in METHODS:
                for _ in range(warmup):
                    await fns[name][method]()
        latencies: dict[str, dict[str, list[float]]] = {n: {m: [] for m in METHODS} for n in targets}
        started = time.monotonic()
        completed_rounds = 0
        for rnd in range(rounds):
            servers = list(targets) if rnd % 2 == 0 else list(reversed(list(targets)))
            methods = METHODS if rnd % 2 == 0 else tuple(reversed(METHODS))
            for name in servers:
                for method in methods:
                    fn = fns[name][method]
                    bucket = latencies[name][method]
                    for _ in range(calls):
                        t0 = time.perf_counter_ns()
                        await fn()
                        bucket.append((time.perf_counter_ns() - t0) / 1000.0)
            completed_rounds += 1
            if time.monotonic() - started > budget_s:
                break
        return {
            "latencies_us": latencies,
            "rounds_completed": completed_rounds,
            "wall_s": time.monotonic() - started,
            "versions": {
                "python": platform.python_version(),
                "grpclib": version("grpclib"),
                "protobuf": version("protobuf"),
                "viam-sdk": version("viam-sdk"),
            },
        }
    finally:
        for ch in channels.values():
            ch.close()


def main() -> int:
    parser = argparse.ArgumentParser(description="sequential unary gRPC latency, round-robin over servers")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--calls", type=int, default=500, help="calls per server, method and round")
    parser.add_argument("--warmup", type=int, default=200, help="unmeasured calls per server and method first")
    parser.add_argument("--budget", type=float, default=80.0, help="stop after the round that exceeds this (s)")
    parser.add_argument("targets", nargs="+", metavar="NAME=HOST:PORT")
    args = parser.parse_args()
    targets = dict(t.split("=", 1) for t in args.targets)
    result = asyncio.run(run(targets, args.rounds, args.calls, args.warmup, args.budget))
    json.dump(result, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
