"""What authentication costs per call: direct (h2c) unary latency with and without ``--api-key``.

    .venv/bin/python scripts/bench_auth.py [--rounds 5] [--calls 500] [--warmup 100]

Starts two ``peerbot serve`` subprocesses (built-in fake robot, port 0), one of them with an API
key, then measures sequential ``RobotService/ResourceNames`` from this process (grpclib), the
authenticated server with ``authorization: Bearer`` on every call, round-robin with the order
flipped every round. Also times the token check alone (first sight vs. cached). Prints a markdown
table. Startup is bounded by 30 s; children are killed on any failure.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import timeit
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from grpclib.client import Channel  # noqa: E402

from peer.gen.viam.robot.v1 import robot_pb2  # noqa: E402
from peer.gen.viam.robot.v1.robot_grpc import RobotServiceStub  # noqa: E402
from signaling.auth import CREDS_API_KEY, ApiKey, Authenticator, RequestAuthorizer  # noqa: E402
from signaling.gen.proto.rpc.v1 import auth_pb2  # noqa: E402
from signaling.gen.proto.rpc.v1.auth_grpc import AuthServiceStub  # noqa: E402
from tests.serverproc import ServerProcess  # noqa: E402

KEY = ApiKey("bench", "bench-secret")
READY_TIMEOUT_S = 30.0
CALL_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 10.0
METHOD = "/viam.robot.v1.RobotService/ResourceNames"


def percentile(sorted_values: list[float], q: float) -> float:
    index = max(0, min(len(sorted_values) - 1, round(q / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[index]


async def measure(addresses: dict[str, str], rounds: int, calls: int, warmup: int) -> dict[str, list[float]]:
    channels = {name: Channel(*_split(address)) for name, address in addresses.items()}
    try:
        reply = await AuthServiceStub(channels["auth"]).Authenticate(auth_pb2.AuthenticateRequest(
            entity=KEY.id, credentials=auth_pb2.Credentials(type=CREDS_API_KEY, payload=KEY.secret)),
            timeout=CALL_TIMEOUT_S)
        metadata = {"no auth": None, "auth": {"authorization": f"Bearer {reply.access_token}"}}
        samples: dict[str, list[float]] = {name: [] for name in addresses}
        order = list(addresses)
        for round_index in range(rounds):
            for name in order if round_index % 2 == 0 else reversed(order):
                stub = RobotServiceStub(channels[name])
                request = robot_pb2.ResourceNamesRequest()
                for i in range(warmup + calls):
                    started = time.perf_counter()
                    await stub.ResourceNames(request, metadata=metadata[name], timeout=CALL_TIMEOUT_S)
                    if i >= warmup:
                        samples[name].append((time.perf_counter() - started) * 1e6)
        return samples
    finally:
        for channel in channels.values():
            channel.close()


def _split(address: str) -> tuple[str, int]:
    host, port = address.rsplit(":", 1)
    return host, int(port)


def token_check_us() -> tuple[float, float]:
    """The handler table's per-call check: a token seen for the first time, and a cached one."""
    auth = Authenticator([KEY], hosts=["robot"])
    authorizer = RequestAuthorizer(auth, host="robot")
    n = 2000
    tokens = [{"authorization": f"Bearer {auth.issue(KEY.id, CREDS_API_KEY, 'robot')}"} for _ in range(n)]
    it = iter(tokens)
    first = timeit.timeit(lambda: authorizer.authorize(METHOD, next(it)), number=n) / n * 1e6
    cached = timeit.timeit(lambda: authorizer.authorize(METHOD, tokens[0]), number=n) / n * 1e6
    return first, cached


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--warmup", type=int, default=100)
    args = parser.parse_args()
    base = ["--host", "127.0.0.1", "--port", "0", "--loop", "asyncio"]
    with_key = [*base, "--api-key", f"{KEY.id}:{KEY.secret}"]
    with ServerProcess.peerbot(base) as plain, ServerProcess.peerbot(with_key) as authed:
        addresses = {"no auth": plain.wait_ready(1, READY_TIMEOUT_S)[0],
                     "auth": authed.wait_ready(1, READY_TIMEOUT_S)[0]}
        samples = asyncio.run(measure(addresses, args.rounds, args.calls, args.warmup))
        codes = [plain.terminate(STOP_TIMEOUT_S), authed.terminate(STOP_TIMEOUT_S)]
    baseline = statistics.median(samples["no auth"])
    print(f"## Direct h2c ResourceNames, {args.rounds} rounds x {args.calls} calls (after {args.warmup} warm-up)\n")
    print("| server | p50 µs | p90 µs | p99 µs | p50 ratio |")
    print("|---|---:|---:|---:|---:|")
    for name, values in samples.items():
        values.sort()
        print(f"| {name} | {percentile(values, 50):.0f} | {percentile(values, 90):.0f} | "
              f"{percentile(values, 99):.0f} | {statistics.median(values) / baseline:.2f} |")
    first, cached = token_check_us()
    print(f"\ntoken check alone: first sight {first:.1f} µs, cached {cached:.1f} µs "
          f"(ratio {first / cached:.0f}x); server exit codes after SIGTERM: {codes}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
