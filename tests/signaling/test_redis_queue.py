"""What only the Redis queue has: presence timings, many instances racing for offers, an instance
killed mid-exchange, Redis stalled or gone, and every key's TTL (the conformance suite in
test_queue.py and test_service.py already runs on Redis too)."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections import defaultdict
from collections.abc import AsyncIterator

import pytest
from grpclib import GRPCError, Status
from grpclib.testing import ChannelFor

from signaling.errors import HostOfflineError, StoreUnavailableError
from signaling.gen.proto.rpc.webrtc.v1 import signaling_pb2 as pb
from signaling.gen.proto.rpc.webrtc.v1.signaling_grpc import SignalingServiceStub
from signaling.queue import AnswerCandidate, AnswererExchange, AnswerInit, CallerDone
from signaling.redis_queue import MAX_CONCURRENT_OPS, PRESENCE_TTL, REFRESH_INTERVAL, RedisCallQueue
from signaling.service import SignalingService
from tests.redisserver import RedisServer, command, flushed
from tests.serverproc import REPO

from .conftest import REDIS_FAST
from .fakes import HOST, OFFER_B64, cand, md

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
async def redis(redis_server: RedisServer) -> RedisServer:
    return flushed(redis_server)


@pytest.fixture
async def queues(redis: RedisServer) -> AsyncIterator[list[RedisCallQueue]]:
    """Two instances sharing one Redis (short presence timings).

    One event loop runs both instances and every caller and answerer of a test, on a shared
    2-core machine: under 1,000 concurrent calls it can stall for over a second, past the 1 s
    default op timeout (meant to detect a dead Redis, not a busy test process) and past a short
    presence TTL (the presence refresh would be late and the answerers would expire). So these
    get 5 s op timeouts and 10 s presence, still refreshed every 0.2 s.
    """
    options = {**REDIS_FAST, "offline_delay": 0.3, "op_timeout": 5.0, "presence_ttl": 10.0}
    made = [await RedisCallQueue.connect(redis.url, **options) for _ in range(2)]
    yield made
    for queue in made:
        await queue.close()


async def eventually(check: object, timeout: float, what: str) -> None:
    """Poll an async predicate, bounded."""
    assert callable(check)
    give_up = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > give_up:
            raise AssertionError(f"{what} not reached within {timeout:g} s")
        await asyncio.sleep(0.05)


async def test_default_presence_timings_are_goutils_operator_timings(redis: RedisServer) -> None:
    """An instance refreshes every 1 s and is stale 15 s after its last refresh (goutils operators)."""
    assert (REFRESH_INTERVAL, PRESENCE_TTL) == (1.0, 15.0)
    queue = await RedisCallQueue.connect(redis.url)
    try:
        assert (queue.refresh_interval, queue.presence_ttl) == (1.0, 15.0)
        async with queue.answerer_presence([HOST]):
            pttl = int(command(redis.port, "PTTL", f"sig:inst:{{{queue.instance_id}}}")[1:])
            score = int(command(redis.port, "ZSCORE", f"sig:answerers:{{{HOST}}}", f"{queue.instance_id}:0"))
            now_ms = time.time() * 1000
            assert 13_000 < pttl <= 15_000  # the instance, and its answerer, are 15 s from stale
            assert 13_000 < score - now_ms <= 15_000
    finally:
        await queue.close()
    assert redis.dbsize() == 0  # a closed instance removes its own keys


async def test_thousand_calls_over_hundred_hosts_each_answered_exactly_once(
    redis: RedisServer, queues: list[RedisCallQueue]
) -> None:
    """Answerers for every host on both instances race for 1,000 offers sent to both instances."""
    baseline = redis.dbsize()
    hosts = [f"robot{n}.test" for n in range(100)]
    answered: defaultdict[str, list[str]] = defaultdict(list)

    async def answer_forever(queue: RedisCallQueue, name: str, host: str) -> None:
        async with queue.answerer_presence([host]):
            while True:
                exchange = await queue.recv_offer([host])
                answered[exchange.uuid].append(name)
                await exchange.respond(AnswerInit(f"{name}:{host}:{exchange.uuid}"))
                await exchange.done()
                await exchange.close()

    async def call(n: int) -> tuple[str, str]:
        queue, host = queues[n % 2], hosts[n % len(hosts)]
        caller = await queue.send_offer_init(host, OFFER_B64, False, deadline=time.time() + 30)
        events = [event async for event in caller.answers()]
        await caller.close(None)
        assert len(events) == 1 and isinstance(events[0], AnswerInit), events
        name, to_host, uuid = events[0].sdp.split(":")
        assert (to_host, uuid) == (host, caller.uuid)
        return caller.uuid, name

    loops = [
        asyncio.create_task(answer_forever(queue, name, host))
        for host in hosts
        for queue, name in zip(queues, "AB", strict=True)
    ]
    try:
        await eventually(
            lambda: _all_present(queues[0], hosts, 2), timeout=10, what="both instances' answerers present"
        )
        async with asyncio.timeout(60):
            results = await asyncio.gather(*(call(n) for n in range(1000)))
    finally:
        for task in loops:
            task.cancel()
        await asyncio.gather(*loops, return_exceptions=True)
    uuids = [uuid for uuid, _ in results]
    assert len(set(uuids)) == 1000
    assert sorted(answered) == sorted(uuids)  # no offer lost...
    assert all(len(names) == 1 for names in answered.values())  # ...or answered twice
    by_instance = {name: sum(1 for _, n in results if n == name) for name in "AB"}
    assert by_instance["A"] > 0 and by_instance["B"] > 0, by_instance

    async def back_to_baseline() -> bool:
        return redis.dbsize() == baseline

    await eventually(back_to_baseline, timeout=5, what=f"Redis key count back to {baseline}")
    stats = await queues[0].stats()
    assert (stats.calls, stats.pending, stats.present, stats.callers) == (0, 0, {}, {})


async def _all_present(queue: RedisCallQueue, hosts: list[str], count: int) -> bool:
    present = (await queue.stats()).present
    return all(present.get(host) == count for host in hosts)


async def test_instance_killed_mid_exchange(redis: RedisServer) -> None:
    """SIGKILL of the answering instance: the caller fails by the deadline; the dead answerer stops
    counting once its presence expires, and the host then reads as offline."""
    queue = await RedisCallQueue.connect(redis.url, **REDIS_FAST, offline_delay=0.3)
    service = SignalingService(queue, offer_deadline=2.0)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.signaling.redis_instance",
        redis.url,
        HOST,
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    try:
        assert await asyncio.wait_for(proc.stdout.readline(), 20) == b"ready\n"
        assert (await queue.stats()).present == {HOST: 1}
        async with ChannelFor([service]) as channel:
            stub = SignalingServiceStub(channel)
            with pytest.raises(GRPCError) as err:
                async with stub.Call.open(metadata=md()) as call:
                    await call.send_message(pb.CallRequest(sdp=OFFER_B64), end=True)
                    first = await call.recv_message()
                    assert first is not None and first.init.sdp == "answer-from-doomed-instance"
                    second = await call.recv_message()
                    assert second is not None and second.WhichOneof("stage") == "update"
                    line = await asyncio.wait_for(proc.stdout.readline(), 5)
                    assert line == f"answered {first.uuid}\n".encode()
                    proc.kill()
                    await proc.wait()
                    await call.recv_message()
        assert err.value.status is Status.DEADLINE_EXCEEDED
        assert err.value.message == "signaling did not finish within 2s"

        async def answerer_gone() -> bool:
            return (await queue.stats()).present == {}

        # presence_ttl is 1 s here (15 s by default): the dead instance's refreshes have stopped.
        await eventually(answerer_gone, timeout=3, what="the killed instance's answerer expiring")
        with pytest.raises(HostOfflineError):
            await queue.send_offer_init(HOST, OFFER_B64, False, deadline=time.time() + 2)
        assert (await queue.stats()).calls == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await queue.close()


async def test_exchange_from_before_a_stall_survives_only_in_the_answer_already_given(
    private_redis: RedisServer,
) -> None:
    """Redis stalled (SIGSTOP), then gone (SIGKILL): every new operation fails with UNAVAILABLE
    within the op timeout instead of hanging; what a caller already received stays received."""
    queue = await RedisCallQueue.connect(private_redis.url, **REDIS_FAST, op_timeout=0.3, offline_delay=0.3)
    try:
        async with queue.answerer_presence([HOST]):
            caller = await queue.send_offer_init(HOST, OFFER_B64, False, deadline=time.time() + 10)
            exchange = await queue.recv_offer([HOST])
            await exchange.respond(AnswerInit("answer"))
            await exchange.respond(AnswerCandidate(cand(1)))
            answers = caller.answers()
            assert await anext(answers) == AnswerInit("answer")
            assert await anext(answers) == AnswerCandidate(cand(1))

            private_redis.pause()
            try:
                with pytest.raises(StoreUnavailableError) as stalled:
                    await queue.send_offer_init(HOST, OFFER_B64, False, deadline=time.time() + 10)
                assert stalled.value.status is Status.UNAVAILABLE
                assert stalled.value.message == "signaling store unavailable: no reply within 0.3s"
                with pytest.raises(StoreUnavailableError):
                    await exchange.done()
            finally:
                private_redis.resume()
            await exchange.done()  # served again once Redis is back
            assert [event async for event in answers] == []

            private_redis.kill()
            with pytest.raises(StoreUnavailableError) as gone:
                await queue.send_offer_init(HOST, OFFER_B64, False, deadline=time.time() + 10)
            assert gone.value.status is Status.UNAVAILABLE
            assert gone.value.message.startswith("signaling store unavailable: ")
            await caller.close(None)  # cleanup paths never raise, even with Redis gone
            await exchange.close()
    finally:
        await queue.close()


async def test_connect_to_a_dead_redis_is_unavailable(private_redis: RedisServer) -> None:
    url = private_redis.url
    private_redis.kill()
    with pytest.raises(StoreUnavailableError) as err:
        await RedisCallQueue.connect(url, op_timeout=0.3)
    assert err.value.status is Status.UNAVAILABLE


async def test_popped_offers_go_back_claimable_and_with_a_ttl(redis: RedisServer, queues: list[RedisCallQueue]) -> None:
    """The two hand-backs of the dispatcher: an offer popped after its host's last waiter left,
    and a claimed offer whose waiter was cancelled in the moment it was handed over."""
    a, b = queues
    offers = f"sig:offers:{{{HOST}}}"
    async with a.answerer_presence([HOST]), b.answerer_presence([HOST]):
        caller = await a.send_offer_init(HOST, OFFER_B64, False, deadline=time.time() + 5)
        assert command(redis.port, "LPOP", offers) == caller.uuid.encode()  # popped; no waiter to take it
        assert command(redis.port, "EXISTS", offers) == b":0"
        await b._hand_over(HOST, offers, caller.uuid)
        assert command(redis.port, "LINDEX", offers, "0") == caller.uuid.encode()
        assert 0 < int(command(redis.port, "PTTL", offers)[1:]) <= 5000  # not a list without a TTL

        exchange = await asyncio.wait_for(b.recv_offer([HOST]), 2)
        assert exchange.uuid == caller.uuid
        b._redispatch(exchange)  # no other waiter on b: back to Redis, unclaimed
        again = await asyncio.wait_for(a.recv_offer([HOST]), 2)
        assert again.uuid == caller.uuid
        await again.respond(AnswerInit("answer"))
        await again.done()
        assert [event async for event in caller.answers()] == [AnswerInit("answer")]
        await again.close()
        await caller.close(None)
    assert (await a.stats()).calls == 0


async def test_instances_recover_when_redis_comes_back_empty(private_redis: RedisServer) -> None:
    """Redis killed and restarted without its data: presence is rebuilt by the next refresh, stale
    pooled connections are replaced, and calls flow again with no restart of the instances."""
    a = await RedisCallQueue.connect(private_redis.url, **REDIS_FAST, op_timeout=0.5, offline_delay=0.5)
    b = await RedisCallQueue.connect(private_redis.url, **REDIS_FAST, op_timeout=0.5, offline_delay=0.5)
    try:
        async with b.answerer_presence([HOST]):
            waiting = asyncio.create_task(b.recv_offer([HOST]))
            private_redis.kill()
            with pytest.raises(StoreUnavailableError):
                await a.send_offer_init(HOST, OFFER_B64, False, deadline=time.time() + 5)
            private_redis.restart()
            assert private_redis.dbsize() == 0

            async def present_again() -> bool:
                return (await a.stats()).present == {HOST: 1}

            await eventually(present_again, timeout=3, what="the answerer re-registered by its refresh")
            caller = await a.send_offer_init(HOST, OFFER_B64, False, deadline=time.time() + 5)
            exchange = await asyncio.wait_for(waiting, 5)  # the dispatcher resumed its pop
            assert exchange.uuid == caller.uuid
            await exchange.respond(AnswerInit("answer"))
            await exchange.done()
            assert [event async for event in caller.answers()] == [AnswerInit("answer")]
            await exchange.close()
            await caller.close(None)
    finally:
        await a.close()
        await b.close()


async def test_a_closed_instance_leaves_no_file_descriptors(redis: RedisServer) -> None:
    """Connections of both pools, including readers cancelled mid-XREAD, are all closed."""
    before = len(os.listdir("/proc/self/fd"))
    queue = await RedisCallQueue.connect(redis.url, **REDIS_FAST, offline_delay=0.3)
    async with queue.answerer_presence([HOST]):
        callers = [await queue.send_offer_init(HOST, OFFER_B64, False, deadline=time.time() + 5) for _ in range(20)]
        readers = [asyncio.create_task(anext(caller.answers())) for caller in callers]  # all block in XREAD
        exchange = await queue.recv_offer([HOST])
        await exchange.respond(AnswerInit("answer"))
        await asyncio.sleep(0.1)
        for task in readers:
            task.cancel()
        outcomes = await asyncio.gather(*readers, return_exceptions=True)
        assert AnswerInit("answer") in outcomes  # one reader got its answer before the cancel
        await exchange.close()
        for caller in callers:
            await caller.close(None)
    assert len(os.listdir("/proc/self/fd")) > before  # pooled connections stay open while it runs
    await queue.close()
    assert len(os.listdir("/proc/self/fd")) == before


def _connected_clients(port: int) -> int:
    info = command(port, "INFO", "clients").decode()
    return int(info.split("connected_clients:")[1].split()[0])


async def test_connections_stay_bounded_with_hundreds_of_calls_in_flight(
    redis: RedisServer, queues: list[RedisCallQueue]
) -> None:
    """300 calls held open at once (every caller waiting for more answers on instance A, every
    answerer waiting for the caller's candidates on B): each instance keeps a few Redis
    connections, not one per waiting reader, and every reader leaves the shared read at the end."""
    a, b = queues
    baseline = redis.dbsize()
    hosts = [f"robot{n}.test" for n in range(10)]
    calls = 300
    # The ordinary client's slots, plus the dispatcher's pop and the stream reads; plus our probe.
    bound = len(queues) * (MAX_CONCURRENT_OPS + 2) + 1
    peak = 0
    held = asyncio.Event()
    answered = asyncio.Event()
    claimed: list[str] = []
    handlers: list[asyncio.Task[None]] = []

    async def handle(exchange: AnswererExchange) -> None:
        try:
            await exchange.respond(AnswerInit(exchange.uuid))
            events = [event async for event in exchange.caller_events()]  # waits for the caller
            assert events == [CallerDone()], events
            await exchange.done()
        finally:
            await exchange.close()

    async def answer_forever(host: str) -> None:
        async with b.answerer_presence([host]):
            while True:
                exchange = await b.recv_offer([host])
                claimed.append(exchange.uuid)
                handlers.append(asyncio.create_task(handle(exchange)))

    async def call(n: int) -> None:
        caller = await a.send_offer_init(hosts[n % len(hosts)], OFFER_B64, False, deadline=time.time() + 60)
        answers = caller.answers()
        assert await anext(answers) == AnswerInit(caller.uuid)
        if len(claimed) == calls:
            answered.set()
        await held.wait()
        await a.send_offer_done(caller.host, caller.uuid)
        assert [event async for event in answers] == []  # the answerer's done ends the answers
        await caller.close(None)

    async def sample() -> None:
        nonlocal peak
        while True:
            peak = max(peak, _connected_clients(redis.port))
            await asyncio.sleep(0.02)

    sampler = asyncio.create_task(sample())
    loops = [asyncio.create_task(answer_forever(host)) for host in hosts]
    try:
        await eventually(lambda: _all_present(a, hosts, 1), timeout=10, what="the answerers present")
        async with asyncio.timeout(60):
            callers = [asyncio.create_task(call(n)) for n in range(calls)]
            await answered.wait()
            await asyncio.sleep(0.2)  # everyone is waiting in its read now
            in_flight = _connected_clients(redis.port)
            readers = (len(a._mux), len(b._mux))
            held.set()
            await asyncio.gather(*callers)
            await asyncio.gather(*handlers)
    finally:
        for task in [sampler, *loops]:
            task.cancel()
        await asyncio.gather(sampler, *loops, return_exceptions=True)
    assert readers == (calls, calls)  # a caller's answers on A, an answerer's caller events on B
    assert in_flight <= bound, f"{in_flight} connections with {calls} calls in flight"
    assert peak <= bound, f"{peak} connections at the peak"
    assert (len(a._mux), len(b._mux)) == (0, 0)  # finished readers left the shared read

    async def back_to_baseline() -> bool:
        return redis.dbsize() == baseline

    await eventually(back_to_baseline, timeout=5, what=f"Redis key count back to {baseline}")


async def test_shared_read_loses_nothing_to_a_cancel_and_forgets_abandoned_readers(
    redis: RedisServer, queues: list[RedisCallQueue]
) -> None:
    """A reader cancelled while it waits in the instance's shared read gets what arrived meanwhile,
    in order, on its next read; a reader abandoned unfinished leaves the shared read with its call."""
    a, b = queues
    async with b.answerer_presence([HOST]):
        caller = await a.send_offer_init(HOST, OFFER_B64, False, deadline=time.time() + 10)
        other = await a.send_offer_init(HOST, OFFER_B64, False, deadline=time.time() + 10)
        exchanges = [await b.recv_offer([HOST]) for _ in range(2)]
        exchange = next(e for e in exchanges if e.uuid == caller.uuid)
        answers = caller.answers()
        waiting = asyncio.create_task(anext(answers))
        abandoned = asyncio.create_task(anext(other.answers()))
        await eventually(lambda: _readers(a, 2), timeout=5, what="both readers in the shared read")
        waiting.cancel()
        await asyncio.gather(waiting, return_exceptions=True)
        await exchange.respond(AnswerInit("answer"))
        await exchange.respond(AnswerCandidate(cand(1)))
        await exchange.done()
        assert [event async for event in answers] == [AnswerInit("answer"), AnswerCandidate(cand(1))]
        assert len(a._mux) == 1  # the finished reader left; the abandoned one is still read...
        abandoned.cancel()
        await asyncio.gather(abandoned, return_exceptions=True)
        for e in exchanges:
            await e.close()
        await caller.close(None)
        await other.close(None)
        assert len(a._mux) == 0  # ...until its exchange closed


async def _readers(queue: RedisCallQueue, count: int) -> bool:
    return len(queue._mux) == count


async def test_a_stalled_redis_fails_every_waiting_reader_with_unavailable(private_redis: RedisServer) -> None:
    """Readers sharing one blocked XREAD all get UNAVAILABLE once Redis stops answering, and read
    again once it is back (bounded waits: block_timeout + op_timeout, here 0.6 s)."""
    queue = await RedisCallQueue.connect(
        private_redis.url, **REDIS_FAST, op_timeout=0.3, block_timeout=0.3, offline_delay=0.3
    )
    try:
        async with queue.answerer_presence([HOST]):
            callers = [await queue.send_offer_init(HOST, OFFER_B64, False, deadline=time.time() + 10) for _ in range(3)]
            iterators = [caller.answers() for caller in callers]
            readers = [asyncio.create_task(anext(answers)) for answers in iterators]
            await eventually(lambda: _readers(queue, 3), timeout=5, what="the readers in the shared read")
            private_redis.pause()
            try:
                async with asyncio.timeout(5):
                    outcomes = await asyncio.gather(*readers, return_exceptions=True)
            finally:
                private_redis.resume()
            assert all(isinstance(o, StoreUnavailableError) for o in outcomes), outcomes
            assert all(o.status is Status.UNAVAILABLE for o in outcomes if isinstance(o, StoreUnavailableError))
            exchange = await queue.recv_offer([HOST])
            await exchange.respond(AnswerInit("after the stall"))
            answers = iterators[[c.uuid for c in callers].index(exchange.uuid)]
            assert await anext(answers) == AnswerInit("after the stall")  # the same reader reads on
            await exchange.close()
            for caller in callers:
                await caller.close(None)
    finally:
        await queue.close()


async def test_a_stream_joins_the_shared_read_in_flight(redis: RedisServer) -> None:
    """A reader that arrives while the shared read blocks for another stream is served without
    waiting for that read to time out (30 s here: the waits below give up after 5 s); the wake
    stream that interrupted it has a short TTL."""
    baseline = redis.dbsize()
    queue = await RedisCallQueue.connect(redis.url, **REDIS_FAST, block_timeout=30.0, offline_delay=0.3)
    try:
        async with queue.answerer_presence([HOST]):
            first = await queue.send_offer_init(HOST, OFFER_B64, False, deadline=time.time() + 20)
            parked = asyncio.create_task(anext(first.answers()))  # keeps a round in flight
            await eventually(lambda: _readers(queue, 1), timeout=5, what="the first reader in the shared read")
            await asyncio.sleep(0.05)  # let its round reach Redis
            second = await queue.send_offer_init(HOST, OFFER_B64, False, deadline=time.time() + 20)
            exchanges = [await queue.recv_offer([HOST]) for _ in range(2)]
            exchange = next(e for e in exchanges if e.uuid == second.uuid)
            await exchange.respond(AnswerInit("joined"))
            async with asyncio.timeout(5):
                assert await anext(second.answers()) == AnswerInit("joined")
            wake_ttl = int(command(redis.port, "PTTL", f"sig:rwake:{{{queue.instance_id}}}")[1:])
            assert 0 < wake_ttl <= 1000  # the wake stream goes by itself, even if close() cannot delete it
            parked.cancel()
            await asyncio.gather(parked, return_exceptions=True)
            for e in exchanges:
                await e.close()
            await first.close(None)
            await second.close(None)
    finally:
        await queue.close()

    async def back_to_baseline() -> bool:
        return redis.dbsize() == baseline

    await eventually(back_to_baseline, timeout=5, what=f"Redis key count back to {baseline}")
