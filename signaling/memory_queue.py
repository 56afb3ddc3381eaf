"""The in-memory :class:`~signaling.queue.CallQueue`: internal signaling in one process (wire-protocol.md §6.2).

Differences from goutils' memory queue, each on purpose:

* Exchanges are buffered (bounded by a per-call candidate cap) instead of unbuffered channels, so
  a CallUpdate returns at once instead of blocking until the answerer reads (§12.2: never block
  the RPC on ICE).
* Presence is tracked, so a call to a host without an answerer fails with NOT_FOUND after the
  offline delay (the MongoDB queue's behaviour) instead of silently waiting out the deadline.
* No background sweeper task: each call carries a timer handle that forgets it at its deadline.
* Nothing suspends except the two waits (presence, recv_offer), so cleanup paths never block.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid as uuid_mod
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

from grpclib import Status

from .const import (
    MAX_CANDIDATES_PER_CALL,
    MAX_HOST_ANSWERERS,
    MAX_HOST_CALLERS,
    OFFER_CLOSE_TO_EXPIRED_FACTOR,
    OFFLINE_HOST_RETRY_DELAY,
)
from .errors import (
    ErrorStatus,
    HostOfflineError,
    InactiveOfferError,
    QueueClosedError,
    RemoteError,
    TooManyAnswerersError,
    TooManyCallersError,
    TooManyCandidatesError,
)
from .queue import (
    AnswerCandidate,
    AnswererEvent,
    AnswererExchange,
    AnswerFailed,
    CallerCandidate,
    CallerDone,
    CallerEvent,
    CallerExchange,
    CallerFailed,
    CallQueue,
)
from .sdp import IceCandidate

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _AnswererDone:
    """End of the answerer's events: the caller's Call ends OK."""


@dataclass(frozen=True, slots=True)
class _CallerAborted:
    """The caller itself reported an error through CallUpdate: its Call ends with that status."""

    error: ErrorStatus


_ANSWERER_DONE = _AnswererDone()


class _Call:
    """State of one call, shared by both exchanges; only the queue mutates the flags."""

    def __init__(self, host: str, sdp: str, disable_trickle: bool, deadline: float, caller: str) -> None:
        self.uuid = str(uuid_mod.uuid4())
        self.host = host
        self.caller = caller
        self.sdp = sdp
        self.disable_trickle = disable_trickle
        self.created = time.time()
        self.deadline = deadline
        self.to_answerer: asyncio.Queue[CallerEvent] = asyncio.Queue()
        self.to_caller: asyncio.Queue[AnswererEvent | _AnswererDone | _CallerAborted] = asyncio.Queue()
        #: reachable by uuid (CallUpdate) and claimable.
        self.active = True
        self.claimed = False
        self.caller_terminal = False
        self.answerer_terminal = False
        self.caller_candidates = 0
        self.answerer_candidates = 0
        self.expiry: asyncio.TimerHandle | None = None


@dataclass(eq=False, slots=True)
class _Waiter:
    hosts: tuple[str, ...]
    future: asyncio.Future[_Call]


@dataclass(frozen=True, slots=True)
class MemoryQueueStats:
    """A snapshot for ``/stats`` and tests: everything here must drain to zero when idle."""

    calls: int
    pending: int
    waiting_answerers: int
    present: dict[str, int] = field(default_factory=dict)
    callers: dict[str, int] = field(default_factory=dict)


class _AnswerIterator:
    """``CallerExchange.answers()``: a class, not an async generator, so that abandoning it
    mid-way leaves no generator to be finalised by a task."""

    def __init__(self, call: _Call) -> None:
        self._call = call
        self._finished = False

    def __aiter__(self) -> _AnswerIterator:
        return self

    async def __anext__(self) -> AnswererEvent:
        if self._finished:
            raise StopAsyncIteration
        item = await self._call.to_caller.get()
        if isinstance(item, _AnswererDone):
            self._finished = True
            raise StopAsyncIteration
        if isinstance(item, _CallerAborted):
            self._finished = True
            raise RemoteError(f"call aborted by caller: {item.error.message}", status=item.error.code)
        if isinstance(item, AnswerFailed):
            self._finished = True
        return item


class _CallerEventIterator:
    def __init__(self, call: _Call) -> None:
        self._call = call
        self._finished = False

    def __aiter__(self) -> _CallerEventIterator:
        return self

    async def __anext__(self) -> CallerEvent:
        if self._finished:
            raise StopAsyncIteration
        item = await self._call.to_answerer.get()
        if isinstance(item, CallerDone | CallerFailed):
            self._finished = True
        return item


class _MemoryCallerExchange(CallerExchange):
    def __init__(self, queue: MemoryCallQueue, call: _Call) -> None:
        self.uuid = call.uuid
        self.host = call.host
        self.caller = call.caller
        self.deadline = call.deadline
        self._queue = queue
        self._call = call
        self._closed = False

    def answers(self) -> AsyncIterator[AnswererEvent]:
        return _AnswerIterator(self._call)

    async def close(self, error: ErrorStatus | None) -> None:
        if self._closed:
            return
        self._closed = True
        self._queue._caller_closed(self._call, error)


class _MemoryAnswererExchange(AnswererExchange):
    def __init__(self, queue: MemoryCallQueue, call: _Call) -> None:
        self.uuid = call.uuid
        self.host = call.host
        self.caller = call.caller
        self.sdp = call.sdp
        self.disable_trickle = call.disable_trickle
        self.deadline = call.deadline
        self._queue = queue
        self._call = call
        self._closed = False

    def caller_events(self) -> AsyncIterator[CallerEvent]:
        return _CallerEventIterator(self._call)

    async def respond(self, event: AnswererEvent) -> None:
        self._queue._answerer_respond(self._call, event)

    async def done(self) -> None:
        call = self._call
        if not call.answerer_terminal:
            call.answerer_terminal = True
            call.to_caller.put_nowait(_ANSWERER_DONE)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._queue._answerer_closed(self._call)


class MemoryCallQueue(CallQueue):
    """One process's call queue. Caps are per host; all waits are cancellation-safe."""

    def __init__(
        self,
        *,
        max_callers_per_host: int = MAX_HOST_CALLERS,
        max_answerers_per_host: int = MAX_HOST_ANSWERERS,
        max_candidates_per_call: int = MAX_CANDIDATES_PER_CALL,
        offline_delay: float = OFFLINE_HOST_RETRY_DELAY,
        close_to_expired_factor: float = OFFER_CLOSE_TO_EXPIRED_FACTOR,
    ) -> None:
        self._max_callers = max_callers_per_host
        self._max_answerers = max_answerers_per_host
        self._max_candidates = max_candidates_per_call
        self._offline_delay = offline_delay
        self._close_to_expired = close_to_expired_factor
        self._calls: dict[str, _Call] = {}
        # host -> uuid -> call, in arrival order: offers no answerer has claimed yet.
        self._pending: dict[str, dict[str, _Call]] = {}
        self._waiters: dict[str, list[_Waiter]] = {}
        self._presence: dict[str, int] = {}
        self._presence_waiters: dict[str, set[asyncio.Future[None]]] = {}
        self._callers: dict[str, int] = {}
        self._closed = False

    def stats(self) -> MemoryQueueStats:
        return MemoryQueueStats(
            calls=len(self._calls),
            pending=sum(len(calls) for calls in self._pending.values()),
            waiting_answerers=len({id(w) for waiters in self._waiters.values() for w in waiters}),
            present=dict(self._presence),
            callers=dict(self._callers),
        )

    # --- caller side ------------------------------------------------------------------------------------

    async def send_offer_init(
        self, host: str, sdp: str, disable_trickle: bool, *, deadline: float, caller: str = ""
    ) -> CallerExchange:
        self._check_open()
        if self._callers.get(host, 0) >= self._max_callers:
            raise TooManyCallersError(host)
        self._callers[host] = self._callers.get(host, 0) + 1
        try:
            if not self._presence.get(host):
                await self._wait_for_presence(host, min(self._offline_delay, deadline - time.time()))
                self._check_open()
            call = _Call(host, sdp, disable_trickle, deadline, caller)
        except BaseException:
            self._remove_caller(host)
            raise
        self._calls[call.uuid] = call
        loop = asyncio.get_running_loop()
        call.expiry = loop.call_later(max(0.0, deadline - time.time()), self._expire, call)
        self._dispatch(call)
        logger.debug("call(%s) queued for host %r", call.uuid, host)
        return _MemoryCallerExchange(self, call)

    async def send_offer_update(self, host: str, uuid: str, candidate: IceCandidate, *, caller: str = "") -> None:
        call = self._live(host, uuid, caller)
        if call.caller_terminal:
            raise InactiveOfferError(uuid)
        if call.caller_candidates >= self._max_candidates:
            raise TooManyCandidatesError(uuid, self._max_candidates)
        call.caller_candidates += 1
        call.to_answerer.put_nowait(CallerCandidate(candidate))

    async def send_offer_done(self, host: str, uuid: str, *, caller: str = "") -> None:
        call = self._live(host, uuid, caller)
        if call.caller_terminal:
            return
        call.caller_terminal = True
        call.to_answerer.put_nowait(CallerDone())

    async def send_offer_error(self, host: str, uuid: str, error: ErrorStatus, *, caller: str = "") -> None:
        call = self._live(host, uuid, caller)
        if call.caller_terminal:
            return
        call.caller_terminal = True
        if call.claimed:
            call.to_answerer.put_nowait(CallerFailed(error))
        if not call.answerer_terminal:
            call.to_caller.put_nowait(_CallerAborted(error))
        self._forget(call)

    # --- answerer side ----------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def answerer_presence(self, hosts: Sequence[str]) -> AsyncIterator[None]:
        self._check_open()
        for host in hosts:
            if self._presence.get(host, 0) >= self._max_answerers:
                raise TooManyAnswerersError(host)
        for host in hosts:
            self._presence[host] = self._presence.get(host, 0) + 1
            for future in self._presence_waiters.pop(host, set()):
                if not future.done():
                    future.set_result(None)
        try:
            yield
        finally:
            for host in hosts:
                left = self._presence.get(host, 0) - 1
                if left > 0:
                    self._presence[host] = left
                else:
                    self._presence.pop(host, None)

    async def recv_offer(self, hosts: Sequence[str]) -> AnswererExchange:
        if not hosts:
            raise ValueError("recv_offer needs at least one host")
        loop = asyncio.get_running_loop()
        while True:
            self._check_open()
            call = self._claim_pending(hosts)
            if call is None:
                waiter = _Waiter(tuple(hosts), loop.create_future())
                for host in waiter.hosts:
                    self._waiters.setdefault(host, []).append(waiter)
                try:
                    call = await waiter.future
                except asyncio.CancelledError:
                    future = waiter.future
                    if future.done() and not future.cancelled() and future.exception() is None:
                        # Handed an offer in the same loop iteration we were cancelled: pass it on.
                        self._redispatch(future.result())
                    raise
                finally:
                    self._unregister(waiter)
            if call.active:  # else withdrawn or expired while being handed over
                logger.debug("call(%s) claimed for host %r", call.uuid, call.host)
                return _MemoryAnswererExchange(self, call)

    # --- lifecycle --------------------------------------------------------------------------------------

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for waiters in list(self._waiters.values()):
            for waiter in waiters:
                if not waiter.future.done():
                    waiter.future.set_exception(QueueClosedError())
        for futures in list(self._presence_waiters.values()):
            for future in futures:
                if not future.done():
                    future.set_exception(QueueClosedError())
        closed = ErrorStatus(Status.UNAVAILABLE, QueueClosedError().message)
        for call in list(self._calls.values()):
            if not call.caller_terminal:
                call.caller_terminal = True
                call.to_answerer.put_nowait(CallerFailed(closed))
            if not call.answerer_terminal:
                call.answerer_terminal = True
                call.to_caller.put_nowait(AnswerFailed(closed))
            self._forget(call)

    # --- internals ----------------------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise QueueClosedError()

    def _live(self, host: str, uuid: str, caller: str) -> _Call:
        call = self._calls.get(uuid)
        if call is None or call.host != host or call.caller != caller or not call.active:
            raise InactiveOfferError(uuid)
        return call

    async def _wait_for_presence(self, host: str, timeout: float) -> None:
        if timeout <= 0:
            raise HostOfflineError(host)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._presence_waiters.setdefault(host, set()).add(future)
        try:
            async with asyncio.timeout(timeout):
                await future
        except TimeoutError:
            logger.info("no answerer for host %r within %.1fs: reporting it offline", host, timeout)
            raise HostOfflineError(host) from None
        finally:
            waiters = self._presence_waiters.get(host)
            if waiters is not None:
                waiters.discard(future)
                if not waiters:
                    del self._presence_waiters[host]

    def _dispatch(self, call: _Call) -> None:
        for waiter in self._waiters.get(call.host, ()):
            if not waiter.future.done():
                call.claimed = True
                waiter.future.set_result(call)
                return
        self._pending.setdefault(call.host, {})[call.uuid] = call

    def _redispatch(self, call: _Call) -> None:
        call.claimed = False
        if call.active:
            self._dispatch(call)

    def _claimable(self, call: _Call, now: float) -> bool:
        return call.deadline - now > self._close_to_expired * (call.deadline - call.created)

    def _claim_pending(self, hosts: Sequence[str]) -> _Call | None:
        now = time.time()
        best: _Call | None = None
        for host in hosts:
            for call in self._pending.get(host, {}).values():
                if self._claimable(call, now):
                    if best is None or call.created < best.created:
                        best = call
                    break
        if best is not None:
            self._unpend(best)
            best.claimed = True
        return best

    def _unpend(self, call: _Call) -> None:
        pending = self._pending.get(call.host)
        if pending is not None:
            pending.pop(call.uuid, None)
            if not pending:
                del self._pending[call.host]

    def _unregister(self, waiter: _Waiter) -> None:
        for host in waiter.hosts:
            waiters = self._waiters.get(host)
            if waiters is None:
                continue
            with contextlib.suppress(ValueError):
                waiters.remove(waiter)
            if not waiters:
                del self._waiters[host]

    def _remove_caller(self, host: str) -> None:
        left = self._callers.get(host, 0) - 1
        if left > 0:
            self._callers[host] = left
        else:
            self._callers.pop(host, None)

    def _forget(self, call: _Call) -> None:
        call.active = False
        self._calls.pop(call.uuid, None)
        self._unpend(call)
        if call.expiry is not None:
            call.expiry.cancel()
            call.expiry = None

    def _expire(self, call: _Call) -> None:
        call.expiry = None
        if call.active:
            logger.debug("call(%s) for host %r reached its deadline", call.uuid, call.host)
            self._forget(call)

    def _caller_closed(self, call: _Call, error: ErrorStatus | None) -> None:
        self._remove_caller(call.host)
        if error is None:
            return
        if not call.caller_terminal:
            call.caller_terminal = True
            if call.claimed:
                call.to_answerer.put_nowait(CallerFailed(error))
        self._forget(call)

    def _answerer_respond(self, call: _Call, event: AnswererEvent) -> None:
        if not call.active or call.answerer_terminal:
            raise InactiveOfferError(call.uuid)
        if isinstance(event, AnswerCandidate):
            if call.answerer_candidates >= self._max_candidates:
                raise TooManyCandidatesError(call.uuid, self._max_candidates)
            call.answerer_candidates += 1
        elif isinstance(event, AnswerFailed):
            call.answerer_terminal = True
        call.to_caller.put_nowait(event)

    def _answerer_closed(self, call: _Call) -> None:
        if not call.answerer_terminal:
            call.answerer_terminal = True
            call.to_caller.put_nowait(
                AnswerFailed(ErrorStatus(Status.UNAVAILABLE, "answerer went away before finishing the exchange"))
            )
        self._forget(call)
