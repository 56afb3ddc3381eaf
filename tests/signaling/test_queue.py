"""CallQueue conformance on every setup (memory, Redis, two Redis instances): exclusive claim, caps,
presence, expiry, cancellation safety. Callers use ``setup.caller``, answerers ``setup.answerer``."""

from __future__ import annotations

import asyncio
import time

import pytest
from grpclib import Status

from signaling.errors import (
    ErrorStatus,
    HostOfflineError,
    InactiveOfferError,
    QueueClosedError,
    RemoteError,
    TooManyAnswerersError,
    TooManyCallersError,
    TooManyCandidatesError,
)
from signaling.queue import AnswerFailed, AnswerInit, CallerCandidate, CallerDone, CallerFailed

from .conftest import IDLE, MakeSetup, QueueSetup
from .fakes import HOST, OFFER_B64, cand

pytestmark = pytest.mark.timeout(10)


def deadline(seconds: float = 5.0) -> float:
    return time.time() + seconds


async def test_offer_is_claimed_by_exactly_one_waiting_answerer(setup: QueueSetup) -> None:
    a, b = setup.caller, setup.answerer
    async with b.answerer_presence([HOST]), b.answerer_presence([HOST, "other"]):
        waiters = [
            asyncio.create_task(b.recv_offer([HOST])),
            asyncio.create_task(b.recv_offer(["other", HOST])),
        ]
        await asyncio.sleep(0)
        caller = await a.send_offer_init(HOST, OFFER_B64, False, deadline=deadline())
        done, pending = await asyncio.wait(waiters, timeout=0.2, return_when=asyncio.FIRST_COMPLETED)
        assert len(done) == 1
        await asyncio.sleep(0.05)
        assert all(not t.done() for t in pending)
        exchange = done.pop().result()
        assert exchange.uuid == caller.uuid and exchange.sdp == OFFER_B64
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        await exchange.close()
        await caller.close(None)
    await setup.eventually_idle()


async def test_cancelled_waiter_hands_the_offer_on(setup: QueueSetup) -> None:
    a, b = setup.caller, setup.answerer
    async with b.answerer_presence([HOST]):
        first = asyncio.create_task(b.recv_offer([HOST]))
        second = asyncio.create_task(b.recv_offer([HOST]))
        await asyncio.sleep(0)
        caller = await a.send_offer_init(HOST, OFFER_B64, False, deadline=deadline())
        first.cancel()  # cancelled in the same loop iteration that handed it the offer
        with pytest.raises(asyncio.CancelledError):
            await first
        exchange = await asyncio.wait_for(second, 0.5)
        assert exchange.uuid == caller.uuid
        await exchange.close()
        await caller.close(None)


async def test_ordered_exchange_both_ways(setup: QueueSetup) -> None:
    a, b = setup.caller, setup.answerer
    async with b.answerer_presence([HOST]):
        caller = await a.send_offer_init(HOST, OFFER_B64, True, deadline=deadline())
        for n in range(3):
            await a.send_offer_update(HOST, caller.uuid, cand(n))
        await a.send_offer_done(HOST, caller.uuid)
        await a.send_offer_done(HOST, caller.uuid)  # sticky: a second done is a no-op
        exchange = await b.recv_offer([HOST])
        assert exchange.disable_trickle
        events = [e async for e in exchange.caller_events()]
        assert events == [CallerCandidate(cand(0)), CallerCandidate(cand(1)), CallerCandidate(cand(2)), CallerDone()]
        await exchange.respond(AnswerInit("answer"))
        await exchange.done()
        assert [e async for e in caller.answers()] == [AnswerInit("answer")]
        with pytest.raises(InactiveOfferError):
            await a.send_offer_update(HOST, caller.uuid, cand(9))  # the caller already said done
        with pytest.raises(InactiveOfferError):
            await a.send_offer_done("other-host", caller.uuid)  # uuid bound to its host
        await caller.close(None)
        await exchange.close()
    with pytest.raises(InactiveOfferError):
        await a.send_offer_done(HOST, caller.uuid)


async def test_uuid_is_bound_to_its_caller(setup: QueueSetup) -> None:
    """Only the principal that made a call may feed, finish or abort it (signaling.auth)."""
    a, b = setup.caller, setup.answerer
    async with b.answerer_presence([HOST]):
        caller = await a.send_offer_init(HOST, OFFER_B64, False, deadline=deadline(), caller="alice")
        assert caller.caller == "alice"
        for intruder in ("mallory", ""):
            with pytest.raises(InactiveOfferError):
                await a.send_offer_update(HOST, caller.uuid, cand(0), caller=intruder)
            with pytest.raises(InactiveOfferError):
                await b.send_offer_done(HOST, caller.uuid, caller=intruder)  # from any instance
            with pytest.raises(InactiveOfferError):
                await a.send_offer_error(HOST, caller.uuid, ErrorStatus(Status.UNKNOWN, "x"), caller=intruder)
        await a.send_offer_update(HOST, caller.uuid, cand(1), caller="alice")
        await b.send_offer_done(HOST, caller.uuid, caller="alice")
        exchange = await b.recv_offer([HOST])
        assert exchange.caller == "alice"
        assert [e async for e in exchange.caller_events()] == [CallerCandidate(cand(1)), CallerDone()]
        await caller.close(None)
        await exchange.close()


async def test_caller_error_reaches_answerer_and_aborts_caller(setup: QueueSetup) -> None:
    a, b = setup.caller, setup.answerer
    async with b.answerer_presence([HOST]):
        caller = await a.send_offer_init(HOST, OFFER_B64, False, deadline=deadline())
        exchange = await b.recv_offer([HOST])
        error = ErrorStatus(Status.UNKNOWN, "boom")
        await a.send_offer_error(HOST, caller.uuid, error)
        assert [e async for e in exchange.caller_events()] == [CallerFailed(error)]
        with pytest.raises(RemoteError, match="call aborted by caller: boom"):
            async for _ in caller.answers():
                pass
        with pytest.raises(InactiveOfferError):
            await exchange.respond(AnswerInit("late"))
        await caller.close(error)
        await exchange.close()
    assert (await setup.stats()).calls == 0


async def test_answerer_leaving_without_done_fails_the_caller(setup: QueueSetup) -> None:
    a, b = setup.caller, setup.answerer
    async with b.answerer_presence([HOST]):
        caller = await a.send_offer_init(HOST, OFFER_B64, False, deadline=deadline())
        exchange = await b.recv_offer([HOST])
        await exchange.respond(AnswerInit("answer"))
        await exchange.close()
        events = [e async for e in caller.answers()]
        assert events[0] == AnswerInit("answer")
        assert isinstance(events[1], AnswerFailed) and events[1].error.code is Status.UNAVAILABLE
        await caller.close(events[1].error)


async def test_withdrawn_offer_is_never_claimed(setup: QueueSetup) -> None:
    a, b = setup.caller, setup.answerer
    async with b.answerer_presence([HOST]):
        caller = await a.send_offer_init(HOST, OFFER_B64, False, deadline=deadline())
        await caller.close(ErrorStatus(Status.CANCELLED, "gone"))
        assert (await setup.stats()).pending == 0
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(b.recv_offer([HOST]), 0.05)


async def test_nearly_expired_offer_is_not_claimed_and_expires(setup: QueueSetup) -> None:
    a, b = setup.caller, setup.answerer
    async with b.answerer_presence([HOST]):
        caller = await a.send_offer_init(HOST, OFFER_B64, False, deadline=deadline(0.2))
        await asyncio.sleep(0.17)  # less than 20% of its life left
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(b.recv_offer([HOST]), 0.1)
        assert (await setup.stats()).calls == 0  # forgotten at its deadline
        with pytest.raises(InactiveOfferError):
            await a.send_offer_done(HOST, caller.uuid)
        await caller.close(ErrorStatus(Status.DEADLINE_EXCEEDED, "late"))
    assert await setup.stats() == IDLE


async def test_caps(make_setup: MakeSetup) -> None:
    setup = await make_setup(max_callers_per_host=2, max_answerers_per_host=1, max_candidates_per_call=2)
    a, b = setup.caller, setup.answerer
    async with b.answerer_presence([HOST]):
        with pytest.raises(TooManyAnswerersError) as answerers:  # counted across instances
            async with a.answerer_presence([HOST]):
                pass
        assert answerers.value.status is Status.UNAVAILABLE
        callers = [await a.send_offer_init(HOST, OFFER_B64, False, deadline=deadline()) for _ in range(2)]
        with pytest.raises(TooManyCallersError) as too_many:
            await b.send_offer_init(HOST, OFFER_B64, False, deadline=deadline())
        assert too_many.value.status is Status.UNAVAILABLE
        assert too_many.value.message == "too many connection attempts; please wait a bit and try again"
        for n in range(2):
            await a.send_offer_update(HOST, callers[0].uuid, cand(n))
        with pytest.raises(TooManyCandidatesError) as exhausted:
            await a.send_offer_update(HOST, callers[0].uuid, cand(3))
        assert exhausted.value.status is Status.RESOURCE_EXHAUSTED
        for caller in callers:
            await caller.close(ErrorStatus(Status.CANCELLED, "done testing"))
    assert (await setup.stats()).callers == {}


async def test_offline_host_waits_for_presence_then_not_found(make_setup: MakeSetup) -> None:
    setup = await make_setup(offline_delay=0.1)
    a, b = setup.caller, setup.answerer
    with pytest.raises(HostOfflineError) as offline:
        await a.send_offer_init(HOST, OFFER_B64, False, deadline=deadline())
    assert offline.value.status is Status.NOT_FOUND
    assert (await setup.stats()).callers == {}

    pending = asyncio.create_task(a.send_offer_init(HOST, OFFER_B64, False, deadline=deadline()))
    await asyncio.sleep(0.02)
    async with b.answerer_presence([HOST]):
        caller = await asyncio.wait_for(pending, 0.5)
        await caller.close(ErrorStatus(Status.CANCELLED, "done testing"))


async def test_close_wakes_everyone(setup: QueueSetup) -> None:
    a, b = setup.caller, setup.answerer
    async with b.answerer_presence([HOST]):
        caller = await a.send_offer_init(HOST, OFFER_B64, False, deadline=deadline())
        exchange = await b.recv_offer([HOST])
        waiter = asyncio.create_task(b.recv_offer([HOST]))
        await asyncio.sleep(0)
        await b.close()  # the answerers' instance: its waiters and exchanges end, its callers are told
        with pytest.raises(QueueClosedError):
            await waiter
        events = [e async for e in exchange.caller_events()]
        assert isinstance(events[-1], CallerFailed) and events[-1].error.code is Status.UNAVAILABLE
        answers = [e async for e in caller.answers()]
        assert isinstance(answers[-1], AnswerFailed)
    with pytest.raises(QueueClosedError):
        await b.send_offer_init(HOST, OFFER_B64, False, deadline=deadline())


async def test_closing_the_callers_queue_fails_its_calls_for_the_answerer(setup: QueueSetup) -> None:
    a, b = setup.caller, setup.answerer
    async with b.answerer_presence([HOST]):
        caller = await a.send_offer_init(HOST, OFFER_B64, False, deadline=deadline())
        exchange = await b.recv_offer([HOST])
        await a.close()  # the callers' instance
        events = [e async for e in exchange.caller_events()]
        assert len(events) == 1 and isinstance(events[0], CallerFailed)
        assert events[0].error.code is Status.UNAVAILABLE
        await exchange.close()
        await caller.close(None)
