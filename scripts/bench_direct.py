"""Compare direct (h2c) unary latency: peerbot vs viam-sdk's own reference server.

    .venv/bin/python scripts/bench_direct.py [--rounds 7] [--calls 500] [--warmup 200]

Starts ``peerbot serve`` (built-in fake robot, port 0) and
``tests/clients/viam_reference_server.py`` (viam.rpc.server.Server with one fixed sensor) as
subprocesses, then ONE client process (``tests/clients/bench_client.py`` in .venv-viam: plain
grpclib + viam's generated stubs) measures sequential GetReadings(sensor1) and ResourceNames
against both, round-robin with the order flipped every round. Prints a markdown table.
Everything is bounded: startup 30 s, the client run 100 s; children are killed on any failure.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.serverproc import ServerProcess  # noqa: E402 - needs the repo on sys.path

VIAM_PYTHON = REPO / ".venv-viam" / "bin" / "python"
#: What the reference server serves (one sensor), so both answer the same ResourceNames.
SAME_ROBOT = {"components": [{"name": "sensor1", "api": "rdk:component:sensor", "model": "fake"}]}
READY_TIMEOUT_S = 30.0
CLIENT_TIMEOUT_S = 100.0
STOP_TIMEOUT_S = 10.0


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    index = max(0, min(len(sorted_values) - 1, round(q / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[index]


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def table(result: dict[str, Any], names: dict[str, str]) -> str:
    rows = ["| server | method | calls | p50 µs | p90 µs | p99 µs | mean µs | calls/s |",
            "|---|---|---:|---:|---:|---:|---:|---:|"]
    p50: dict[tuple[str, str], float] = {}
    for server, methods in result["latencies_us"].items():
        for method, values in methods.items():
            ordered = sorted(values)
            mean = statistics.fmean(ordered)
            p50[(server, method)] = percentile(ordered, 50)
            rows.append(
                f"| {names[server]} | {method} | {len(ordered)} | {percentile(ordered, 50):.0f} "
                f"| {percentile(ordered, 90):.0f} | {percentile(ordered, 99):.0f} | {mean:.0f} "
                f"| {1e6 / mean:,.0f} |"
            )
    rows += ["", "| method | p50 ours (uvloop) / theirs | p50 ours (asyncio) / theirs |", "|---|---:|---:|"]
    for method in sorted({m for _, m in p50}):
        theirs = p50[("theirs", method)]
        uv, plain = p50[("ours", method)] / theirs, p50[("ours-asyncio", method)] / theirs
        rows.append(f"| {method} | {uv:.2f} | {plain:.2f} |")
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--calls", type=int, default=500, help="calls per server, method and round")
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--config", help="robot config for peerbot (default: the built-in fake robot); "
                        "it must have sensor1")
    args = parser.parse_args()
    if not VIAM_PYTHON.exists():
        print(f"{VIAM_PYTHON} is missing: run scripts/setup.sh", file=sys.stderr)
        return 2

    with tempfile.TemporaryDirectory() as tmp:
        config_path = args.config
        if config_path is None:  # the same robot as the reference server: one sensor
            config_path = str(Path(tmp) / "sensor1.json")
            Path(config_path).write_text(json.dumps(SAME_ROBOT))
        servers = {
            # as shipped: uvloop when installed (``--loop auto``); and on plain asyncio, like theirs
            "ours": ServerProcess.peerbot(["--host", "127.0.0.1", "--port", "0", "--config", config_path]),
            "ours-asyncio": ServerProcess.peerbot(
                ["--host", "127.0.0.1", "--port", "0", "--config", config_path, "--loop", "asyncio"]),
            "theirs": ServerProcess([str(VIAM_PYTHON), str(REPO / "tests/clients/viam_reference_server.py"),
                                     "--host", "127.0.0.1", "--port", "0"]),
        }
        try:
            for server in servers.values():
                server.start()
            targets = [f"{name}={server.wait_ready(1, READY_TIMEOUT_S)[0]}" for name, server in servers.items()]
            client = subprocess.run(
                [str(VIAM_PYTHON), str(REPO / "tests/clients/bench_client.py"),
                 "--rounds", str(args.rounds), "--calls", str(args.calls), "--warmup", str(args.warmup),
                 "--budget", str(CLIENT_TIMEOUT_S * 0.7), *targets],
                cwd=REPO, capture_output=True, text=True, timeout=CLIENT_TIMEOUT_S, check=False,
            )
            if client.returncode != 0:
                print(f"bench client failed ({client.returncode}):\n{client.stderr[-4000:]}", file=sys.stderr)
                return 1
            result = json.loads(client.stdout)
            codes = {name: server.terminate(STOP_TIMEOUT_S) for name, server in servers.items()}
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            print(f"benchmark failed: {exc}", file=sys.stderr)
            return 1
        finally:
            for server in servers.values():
                server.kill()

    names = {"ours": "peerbot (ours, uvloop)", "ours-asyncio": "peerbot (ours, asyncio)",
             "theirs": "viam.rpc.server (theirs)"}
    versions = result["versions"]
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"## Direct h2c unary latency: {result['rounds_completed']} rounds x {args.calls} calls "
          f"per server and method (warm-up {args.warmup}), one sequential client\n")
    print(table(result, names))
    print(f"\nmachine: nproc={affinity} (cpu_count={os.cpu_count()}), {cpu_model()}, "
          f"{platform.system()} {platform.release()}")
    print(f"client (.venv-viam): Python {versions['python']}, grpclib {versions['grpclib']}, "
          f"protobuf {versions['protobuf']}, viam-sdk {versions['viam-sdk']}; "
          f"our server: Python {platform.python_version()}")
    print(f"measured wall time {result['wall_s']:.1f} s; server exit codes after SIGTERM: {codes}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
