"""Signaling through the call queue: in-memory vs Redis (one instance) vs Redis (two instances).

    .venv/bin/python scripts/bench_signaling.py [--latency-calls 500] [--calls 2000] [--concurrency 50] [--loop uvloop]

Starts its own ``redis-server`` on a free loopback port (no persistence) and stops it at the end.
Three setups, measured in one run:

* **memory**: one :class:`MemoryCallQueue`; callers and answerers in this process;
* **redis, 1 instance**: one :class:`RedisCallQueue`; callers and answerers in this process;
* **redis, 2 instances**: callers on an instance in this process, answerers on a second instance
  in a child process (its own event loop and Redis connections): every offer crosses Redis.

Two measurements per setup:

* **hand-off**: sequential calls to one host with answerers waiting; from just before
  ``send_offer_init`` until the answerer's ``recv_offer`` returns (the answerer stamps
  ``time.time()`` into its answer, so the child process's clock is the same wall clock);
  also the round trip until the caller has the answer;
* **throughput**: ``--calls`` calls over 10 hosts, ``--concurrency`` in flight, each to
  completion (offer, claimed, answer, done, both sides closed) with a trivial answerer.

The table gives p50/p99 and each setup's ratio to the in-memory queue. Target (issue 5): hand-off
p99 ≤ 5 ms on loopback across instances.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import sys
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from signaling.memory_queue import MemoryCallQueue  # noqa: E402
from signaling.queue import AnswerInit, CallQueue  # noqa: E402
from signaling.redis_queue import RedisCallQueue  # noqa: E402
from tests.redisserver import RedisServer  # noqa: E402

LATENCY_HOST = "bench-latency.test"
THROUGHPUT_HOSTS = [f"bench{n}.test" for n in range(10)]
WORKERS_PER_HOST = 4  # the per-host answerer cap
OFFER = "b2ZmZXI="  # the queue never decodes the offer
CALL_TIMEOUT_S = 10.0
READY_TIMEOUT_S = 20.0


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))]


async def answer_forever(queue: CallQueue, host: str) -> None:
    """A trivial answerer: stamp the claim time into the answer, say done, close."""
    async with queue.answerer_presence([host]):
        while True:
            exchange = await queue.recv_offer([host])
            claimed = time.time()
            try:
                await exchange.respond(AnswerInit(repr(claimed)))
                await exchange.done()
            finally:
                await exchange.close()


@contextlib.asynccontextmanager
async def answerers(queue: CallQueue) -> AsyncIterator[None]:
    hosts = [LATENCY_HOST, *THROUGHPUT_HOSTS]
    tasks = [asyncio.create_task(answer_forever(queue, host)) for host in hosts for _ in range(WORKERS_PER_HOST)]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def one_call(queue: CallQueue, host: str) -> tuple[float, float]:
    """(hand-off, round trip) in seconds for one call run to completion."""
    sent = time.time()
    caller = await queue.send_offer_init(host, OFFER, False, deadline=sent + CALL_TIMEOUT_S)
    try:
        async with asyncio.timeout(CALL_TIMEOUT_S):
            answers = caller.answers()
            first = await anext(answers)
            answered = time.time()
            assert isinstance(first, AnswerInit), first
            async for _ in answers:
                pass
    finally:
        await caller.close(None)
    return float(first.sdp) - sent, answered - sent


@dataclass
class Result:
    name: str
    handoff: list[float]
    round_trip: list[float]
    calls_per_s: float


async def measure(name: str, queue: CallQueue, latency_calls: int, calls: int, concurrency: int) -> Result:
    for _ in range(50):  # warm-up: connections, scripts, code paths
        await one_call(queue, LATENCY_HOST)
    samples = [await one_call(queue, LATENCY_HOST) for _ in range(latency_calls)]
    gate = asyncio.Semaphore(concurrency)

    async def gated(n: int) -> None:
        async with gate:
            await one_call(queue, THROUGHPUT_HOSTS[n % len(THROUGHPUT_HOSTS)])

    started = time.perf_counter()
    await asyncio.gather(*(gated(n) for n in range(calls)))
    elapsed = time.perf_counter() - started
    return Result(name, [h for h, _ in samples], [r for _, r in samples], calls / elapsed)


async def wait_present(queue: RedisCallQueue, hosts: Sequence[str]) -> None:
    async with asyncio.timeout(READY_TIMEOUT_S):
        while True:
            present = (await queue.stats()).present
            if all(present.get(host) == WORKERS_PER_HOST for host in hosts):
                return
            await asyncio.sleep(0.05)


async def bench(latency_calls: int, calls: int, concurrency: int, loop: str) -> list[Result]:
    results = []
    memory = MemoryCallQueue()
    async with answerers(memory):
        results.append(await measure("memory", memory, latency_calls, calls, concurrency))
    await memory.close()

    with RedisServer() as server:
        one = await RedisCallQueue.connect(server.url)
        try:
            async with answerers(one):
                await wait_present(one, [LATENCY_HOST, *THROUGHPUT_HOSTS])
                results.append(await measure("redis, 1 instance", one, latency_calls, calls, concurrency))
        finally:
            await one.close()
        server.flushdb()

        caller_side = await RedisCallQueue.connect(server.url)
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            __file__,
            "--answerer",
            server.url,
            "--loop",
            loop,
            cwd=REPO,
            stdin=asyncio.subprocess.DEVNULL,
        )
        try:
            await wait_present(caller_side, [LATENCY_HOST, *THROUGHPUT_HOSTS])
            results.append(await measure("redis, 2 instances", caller_side, latency_calls, calls, concurrency))
        finally:
            child.terminate()
            try:
                await asyncio.wait_for(child.wait(), 5)
            except TimeoutError:
                child.kill()
                await asyncio.wait_for(child.wait(), 5)
            await caller_side.close()
    return results


async def run_answerer_instance(url: str) -> None:
    """The second instance (child process): answerers only, until terminated."""
    queue = await RedisCallQueue.connect(url)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(15, stop.set)  # SIGTERM
    try:
        async with answerers(queue):
            await stop.wait()
    finally:
        await queue.close()


def report(results: list[Result], latency_calls: int, calls: int, concurrency: int, loop: str) -> None:
    base = results[0]
    ms = 1000.0
    print(f"## Offer hand-off, {latency_calls} sequential calls (ms; Call sent → answerer has the offer)\n")
    print("| setup | hand-off p50 | p90 | p99 | max | answer round trip p50 | p99 | hand-off p50 / memory |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(
            f"| {r.name} | {statistics.median(r.handoff) * ms:.2f} | {percentile(r.handoff, 90) * ms:.2f} | "
            f"{percentile(r.handoff, 99) * ms:.2f} | "
            f"{max(r.handoff) * ms:.2f} | {statistics.median(r.round_trip) * ms:.2f} | "
            f"{percentile(r.round_trip, 99) * ms:.2f} | "
            f"{statistics.median(r.handoff) / statistics.median(base.handoff):.0f}x |"
        )
    print(f"\n## Throughput, {calls} calls to completion over {len(THROUGHPUT_HOSTS)} hosts, {concurrency} in flight\n")
    print("| setup | calls/s | / memory |")
    print("|---|---:|---:|")
    for r in results:
        print(f"| {r.name} | {r.calls_per_s:.0f} | {r.calls_per_s / base.calls_per_s:.2f}x |")
    load = os.getloadavg()[0]
    print(
        f"\nmachine: nproc={os.cpu_count()}, load average {load:.1f}, Python {sys.version.split()[0]}, "
        f"event loop {loop}; redis-server on loopback; target hand-off p99 ≤ 5 ms across instances"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--latency-calls", type=int, default=500)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio", help="event loop of both instances")
    parser.add_argument("--answerer", metavar="URL", help=argparse.SUPPRESS)  # the child process
    args = parser.parse_args()
    if args.loop == "uvloop":
        import uvloop

        uvloop.install()
    if args.answerer:
        asyncio.run(run_answerer_instance(args.answerer))
        return
    results = asyncio.run(bench(args.latency_calls, args.calls, args.concurrency, args.loop))
    report(results, args.latency_calls, args.calls, args.concurrency, args.loop)


if __name__ == "__main__":
    main()
