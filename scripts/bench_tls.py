"""What TLS on the one port costs: connection setup and unary calls, cleartext vs TLS.

    .venv/bin/python scripts/bench_tls.py [--rounds 5] [--connects 100] [--calls 1000]

Starts two ``peerbot serve`` processes (built-in fake robot, default event loop): one without a
certificate (``loop.create_server``, today's path) and one with a throwaway certificate (own
accept loop + ``MSG_PEEK``, then cleartext or the loop's TLS). One client (this process, grpclib)
measures, round-robin with the order rotated every round:

* **connect**: a new connection and one ResourceNames on it, closed again;
* **call**: sequential ResourceNames on one open connection.

for h2c on the plain server, h2c on the TLS server (the peek path) and TLS h2 on the TLS server.
Prints a markdown table with p50/p99 and the ratio of each p50 to plain h2c. Everything is
bounded: startup 30 s, each measured call 5 s; the servers are killed on any failure.
"""

from __future__ import annotations

import argparse
import asyncio
import ssl
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from grpclib.client import Channel  # noqa: E402

from peer.gen.viam.robot.v1 import robot_pb2  # noqa: E402
from peer.gen.viam.robot.v1.robot_grpc import RobotServiceStub  # noqa: E402
from tests.pki import make_pki  # noqa: E402 - needs the repo on sys.path
from tests.serverproc import ServerProcess  # noqa: E402

READY_TIMEOUT_S = 30.0
CALL_TIMEOUT_S = 5.0
STOP_TIMEOUT_S = 10.0

Variant = tuple[str, int, ssl.SSLContext | None]  # label, port, client TLS context
Samples = dict[tuple[str, str], list[float]]  # (variant label, what) -> seconds


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    index = max(0, min(len(sorted_values) - 1, round(q / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[index]


async def resource_names(channel: Channel) -> None:
    await asyncio.wait_for(RobotServiceStub(channel).ResourceNames(robot_pb2.ResourceNamesRequest()), CALL_TIMEOUT_S)


async def connect_once(port: int, tls: ssl.SSLContext | None) -> float:
    started = time.perf_counter()
    channel = Channel("127.0.0.1", port, ssl=tls)
    try:
        await resource_names(channel)
    finally:
        channel.close()
    return time.perf_counter() - started


async def calls_on_one_connection(port: int, tls: ssl.SSLContext | None, count: int) -> list[float]:
    channel = Channel("127.0.0.1", port, ssl=tls)
    try:
        await resource_names(channel)  # connect (and handshake) outside the measurement
        samples = []
        for _ in range(count):
            started = time.perf_counter()
            await resource_names(channel)
            samples.append(time.perf_counter() - started)
        return samples
    finally:
        channel.close()


async def measure(variants: list[Variant], rounds: int, connects: int, calls: int) -> Samples:
    samples: Samples = {}
    for variant in variants:  # warm-up: first-call costs (imports, caches) stay out of the figures
        await calls_on_one_connection(variant[1], variant[2], 50)
    for round_no in range(rounds):
        order = variants[round_no % len(variants):] + variants[:round_no % len(variants)]
        for label, port, tls in order:
            connect = samples.setdefault((label, "connect + 1 call"), [])
            for _ in range(connects):
                connect.append(await connect_once(port, tls))
            samples.setdefault((label, "call"), []).extend(await calls_on_one_connection(port, tls, calls))
    return samples


def table(samples: Samples, baseline: str) -> str:
    rows = ["| what | path | n | p50 µs | p99 µs | mean µs | p50 / plain h2c |", "|---|---|---:|---:|---:|---:|---:|"]
    for what in ("connect + 1 call", "call"):
        base = statistics.median(samples[(baseline, what)])
        for (label, kind), values in samples.items():
            if kind != what:
                continue
            ordered = sorted(values)
            p50 = statistics.median(ordered)
            rows.append(f"| {what} | {label} | {len(ordered)} | {p50 * 1e6:.0f} | {percentile(ordered, 99) * 1e6:.0f} "
                        f"| {statistics.fmean(ordered) * 1e6:.0f} | {p50 / base:.2f} |")
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--connects", type=int, default=100, help="new connections per variant and round")
    parser.add_argument("--calls", type=int, default=1000, help="calls on one connection per variant and round")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        pki = make_pki(Path(tmp))
        plain = ServerProcess.peerbot(["--host", "127.0.0.1", "--port", "0"])
        secure = ServerProcess.peerbot(["--host", "127.0.0.1", "--port", "0",
                                        "--tls-cert", str(pki.cert), "--tls-key", str(pki.key)])
        with plain, secure:
            plain_port = int(plain.wait_ready(1, READY_TIMEOUT_S)[0].rsplit(":", 1)[1])
            secure_port = int(secure.wait_ready(1, READY_TIMEOUT_S)[0].rsplit(":", 1)[1])
            variants: list[Variant] = [
                ("plain server, h2c", plain_port, None),
                ("TLS server, h2c (peek path)", secure_port, None),
                ("TLS server, TLS h2", secure_port, pki.client_context("h2")),
            ]
            samples = asyncio.run(measure(variants, args.rounds, args.connects, args.calls))
            for proc in (plain, secure):
                if proc.terminate(STOP_TIMEOUT_S) != 0:
                    print(f"server did not exit cleanly:\n{proc.log()}", file=sys.stderr)
    print(f"rounds {args.rounds}, {args.connects} connects and {args.calls} calls per variant and round; "
          f"servers on their default loop, client on asyncio (grpclib), TLS 1.3 / ECDSA P-256")
    print(table(samples, "plain server, h2c"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
