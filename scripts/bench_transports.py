"""Unary latency over the three transports of one robot, and WebRTC connection setup time.

    .venv/bin/python scripts/bench_transports.py [--rounds 5] [--calls 300] [--dials 30]

Runs inside a private network namespace (``../shared/tools/netns.sh``, re-executed
automatically): aiortc gathers candidates on every interface, and WebRTC traffic must never
reach an address outside this machine. ``peerbot serve`` (the built-in fake robot) runs as a
subprocess; this process is the client for all three transports:

* **h2c**: grpclib ``Channel`` to the one port;
* **gRPC-web**: aiohttp POSTs (keep-alive) with 5-byte-framed bodies, as a browser sends;
* **WebRTC**: :func:`peer.webrtc.dial` (signaling over h2c, then the ``data`` channel tunnel).

Each round measures ``--calls`` sequential ``SensorService/GetReadings`` calls per transport, the
order rotating every round, and the table reports p50/p90/p99 and the ratio of each p50 to h2c's.
Setup: ``--dials`` fresh dials, timing Call sent → answer → ICE connected → data channel open.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import struct
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NETNS = REPO.parent / "shared" / "tools" / "netns.sh"
sys.path.insert(0, str(REPO))

READY_TIMEOUT_S = 30.0
CALL_TIMEOUT_S = 10.0
GET_READINGS = "/viam.component.sensor.v1.SensorService/GetReadings"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))]


async def measure(call: Callable[[], Awaitable[object]], n: int) -> list[float]:
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        await asyncio.wait_for(call(), CALL_TIMEOUT_S)
        samples.append((time.perf_counter() - start) * 1e6)
    return samples


async def run(port: int, rounds: int, calls: int, dials: int) -> None:
    """Measure from this process (the client) against the server on ``port``."""
    import aiohttp
    from grpclib.client import Channel

    from peer.gen.viam.common.v1 import common_pb2
    from peer.gen.viam.component.sensor.v1.sensor_grpc import SensorServiceStub
    from peer.webrtc import dial

    request = common_pb2.GetReadingsRequest(name="sensor1")
    body = request.SerializeToString()
    framed = struct.pack(">BI", 0, len(body)) + body
    address = f"127.0.0.1:{port}"

    h2c = Channel("127.0.0.1", port)
    h2c_stub = SensorServiceStub(h2c)
    http = aiohttp.ClientSession()
    webrtc = await dial(address, timeout=20)
    webrtc_stub = SensorServiceStub(webrtc.as_channel())

    async def via_grpc_web() -> None:
        async with http.post(f"http://{address}{GET_READINGS}", data=framed, headers={
            "content-type": "application/grpc-web+proto", "x-grpc-web": "1"}) as response:
            payload = await response.read()
            if response.status != 200 or b"grpc-status: 0\r\n" not in payload:
                raise RuntimeError(f"gRPC-web call failed: {response.status} {payload[-80:]!r}")

    transports: dict[str, Callable[[], Awaitable[object]]] = {
        "h2c (native gRPC)": lambda: h2c_stub.GetReadings(request),
        "gRPC-web": via_grpc_web,
        "WebRTC data channel": lambda: webrtc_stub.GetReadings(request),
    }
    samples: dict[str, list[float]] = {name: [] for name in transports}
    try:
        for call in transports.values():  # warm-up
            await measure(call, 100)
        names = list(transports)
        for r in range(rounds):
            order = names[r % len(names):] + names[: r % len(names)]
            for name in order:
                samples[name] += await measure(transports[name], calls)
    finally:
        await webrtc.close()
        await http.close()
        h2c.close()

    setups: list[dict[str, float | None]] = []
    for _ in range(dials):
        channel = await dial(address, timeout=20)
        setups.append(channel.timings.as_dict())
        await channel.close()

    base = statistics.median(samples["h2c (native gRPC)"])
    print(f"## Unary GetReadings latency, {rounds} rounds x {calls} calls per transport (one client, sequential)\n")
    print("| transport | calls | p50 µs | p90 µs | p99 µs | p50 / h2c |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, values in samples.items():
        print(f"| {name} | {len(values)} | {percentile(values, 50):.0f} | {percentile(values, 90):.0f} | "
              f"{percentile(values, 99):.0f} | {statistics.median(values) / base:.2f} |")
    print(f"\n## WebRTC connection setup, {dials} dials (ms; Call sent = 0)\n")
    print("| step | p50 | min | max |")
    print("|---|---:|---:|---:|")
    for key, label in (("answer_s", "answer received"), ("ice_connected_s", "ICE connected"),
                       ("connected_s", "DTLS connected"), ("data_open_s", "data channel open"),
                       ("total_s", "whole dial (config + offer + above)")):
        values = [s[key] * 1000 for s in setups if s[key] is not None]
        print(f"| {label} | {statistics.median(values):.1f} | {min(values):.1f} | {max(values):.1f} |")
    loop = type(asyncio.get_running_loop()).__module__.split(".")[0]
    print(f"\nmachine: nproc={os.cpu_count()}, Python {sys.version.split()[0]}, event loop {loop}; "
          "server and client in separate processes, inside a private network namespace")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--dials", type=int, default=30)
    parser.add_argument("--loop", choices=("auto", "asyncio", "uvloop"), default="auto",
                        help="event loop of the server and of this client (auto: uvloop when installed)")
    args = parser.parse_args()
    if not os.environ.get("PEERBOT_NETNS"):
        os.execv(str(NETNS), [str(NETNS), sys.executable, *sys.argv])
    from tests.serverproc import ServerProcess
    from web.main import run_loop

    with ServerProcess.peerbot(["--host", "0.0.0.0", "--port", "0", "--loop", args.loop]) as server:
        port = int(server.wait_ready(1, READY_TIMEOUT_S)[0].rsplit(":", 1)[1])
        # the client runs on the same kind of loop as the server (uvloop when installed)
        run_loop(run(port, args.rounds, args.calls, args.dials), args.loop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
