"""The call queue: how a caller's offer meets exactly one answerer for a host (wire-protocol.md §6).

Modelled on goutils ``WebRTCCallQueue`` so that an in-memory queue (one process) and a Redis
queue (many signaling processes) are interchangeable behind :class:`~signaling.service.SignalingService`.
What every implementation must provide (§6.3, "what any distributed queue must provide"):

1. **Presence**: :meth:`CallQueue.answerer_presence` registers an Answer stream for its hosts for
   as long as it is open (a Redis implementation keeps a TTL key alive). A caller to a host with no
   answerer waits up to the offline delay for one, then gets NOT_FOUND "host appears to be offline".
2. **Exclusive claim**: :meth:`CallQueue.recv_offer` hands each offer to exactly one answerer, and
   never one that has less than :data:`~signaling.const.OFFER_CLOSE_TO_EXPIRED_FACTOR` of its life left.
3. **Ordered exchange**: per call and per direction, events arrive in the order they were sent;
   terminal events (caller done/error, answerer done/error) are sticky.
4. **Deadlines**: ``deadline`` is wall-clock (``time.time()``) seconds so that it means the same
   on every node; nothing about a call outlives it.
5. **uuid → host and caller binding**: CallUpdate carries a uuid, a host and the caller's auth
   entity (``""`` without auth); a uuid under another host or created by another caller is unknown
   (NOT_FOUND), so nobody can feed or abort someone else's call.

Deadlines are enforced by the *users* of the exchanges (the service wraps every wait in a
timeout); the queue only forgets a call once its deadline has passed. Every method that takes a
``host`` and ``uuid`` raises :class:`~signaling.errors.InactiveOfferError` (NOT_FOUND) when they
name no live call.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass

from .errors import ErrorStatus
from .sdp import IceCandidate

# --- what the answerer sends towards the caller ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class AnswerInit:
    """The answer, still encoded (base64 JSON), exactly as it goes out in ``CallResponse.init``."""

    sdp: str


@dataclass(frozen=True, slots=True)
class AnswerCandidate:
    candidate: IceCandidate


@dataclass(frozen=True, slots=True)
class AnswerFailed:
    """The answerer gave up; the caller's Call ends with this status."""

    error: ErrorStatus


AnswererEvent = AnswerInit | AnswerCandidate | AnswerFailed

# --- what the caller sends towards the answerer -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CallerCandidate:
    candidate: IceCandidate


@dataclass(frozen=True, slots=True)
class CallerDone:
    """The caller sent ``CallUpdate{done}``: no more candidates."""


@dataclass(frozen=True, slots=True)
class CallerFailed:
    """The caller sent ``CallUpdate{error}``, or went away; the answerer should stop."""

    error: ErrorStatus


CallerEvent = CallerCandidate | CallerDone | CallerFailed


class CallerExchange(abc.ABC):
    """The caller's end of one call, owned by the Call RPC that created it."""

    uuid: str
    host: str
    #: the auth entity that made the call (``""`` without auth).
    caller: str
    #: wall-clock seconds (``time.time()``) after which the call is forgotten.
    deadline: float

    @abc.abstractmethod
    def answers(self) -> AsyncIterator[AnswererEvent]:
        """The answerer's events in order; ends when the answerer is done.

        Raises :class:`~signaling.errors.RemoteError` if the caller side aborted the call through
        ``CallUpdate{error}`` while this iterator was waiting. Never ends by itself on the
        deadline: bound the iteration with a timeout.
        """

    @abc.abstractmethod
    async def close(self, error: ErrorStatus | None) -> None:
        """The Call RPC is over. ``error`` set means it failed or the caller went away: the answerer
        (if any) gets :class:`CallerFailed` and an unclaimed offer is withdrawn. ``None`` means it
        ended normally; the call stays reachable by uuid for late CallUpdates until the answerer
        side closes or the deadline passes. Idempotent; must not wait long (it runs during cleanup).
        """


class AnswererExchange(abc.ABC):
    """The answerer's end of one claimed call, owned by the Answer RPC that claimed it."""

    uuid: str
    host: str
    #: the auth entity that made the call (``""`` without auth); the answerer runs the session as it.
    caller: str
    #: the caller's offer, still encoded (base64 JSON).
    sdp: str
    disable_trickle: bool
    deadline: float

    @abc.abstractmethod
    def caller_events(self) -> AsyncIterator[CallerEvent]:
        """Caller candidates in order, then exactly one :class:`CallerDone` or :class:`CallerFailed`, then the end."""

    @abc.abstractmethod
    async def respond(self, event: AnswererEvent) -> None:
        """Forward an answerer event to the caller; InactiveOfferError if the caller is gone."""

    @abc.abstractmethod
    async def done(self) -> None:
        """The answerer has nothing more to send: the caller's :meth:`CallerExchange.answers` ends. Idempotent."""

    @abc.abstractmethod
    async def close(self) -> None:
        """The Answer RPC is over. If it never reported done or failure, the caller gets
        :class:`AnswerFailed` (UNAVAILABLE). The call is then forgotten. Idempotent and quick."""


class CallQueue(abc.ABC):
    """Exchanges offers between callers and answerers, per host (goutils ``WebRTCCallQueue``)."""

    # --- caller side ----------------------------------------------------------------------------------

    @abc.abstractmethod
    async def send_offer_init(
        self, host: str, sdp: str, disable_trickle: bool, *, deadline: float, caller: str = ""
    ) -> CallerExchange:
        """Queue an offer for ``host`` from ``caller``; it will be dispatched to exactly one answerer.

        Raises TooManyCallersError (UNAVAILABLE) over the per-host cap, and HostOfflineError
        (NOT_FOUND) when no answerer has been present for the offline delay.
        """

    @abc.abstractmethod
    async def send_offer_update(self, host: str, uuid: str, candidate: IceCandidate, *, caller: str = "") -> None:
        """Append a caller candidate. TooManyCandidatesError (RESOURCE_EXHAUSTED) over the cap."""

    @abc.abstractmethod
    async def send_offer_done(self, host: str, uuid: str, *, caller: str = "") -> None:
        """The caller has no more candidates. A no-op once the caller is done or failed."""

    @abc.abstractmethod
    async def send_offer_error(self, host: str, uuid: str, error: ErrorStatus, *, caller: str = "") -> None:
        """The caller failed; the answerer is told and the call is forgotten. A no-op once the caller is done."""

    # --- answerer side --------------------------------------------------------------------------------

    @abc.abstractmethod
    def answerer_presence(self, hosts: Sequence[str]) -> AbstractAsyncContextManager[None]:
        """Count one answerer stream as present for ``hosts`` while the context is open.

        Raises TooManyAnswerersError (UNAVAILABLE) on entry over the per-host cap.
        """

    @abc.abstractmethod
    async def recv_offer(self, hosts: Sequence[str]) -> AnswererExchange:
        """Wait (without bound: bound it by the stream's life) for an offer to any of ``hosts`` and claim it.

        Cancellation-safe: an offer handed over at the moment the wait is cancelled goes to another answerer.
        """

    # --- lifecycle --------------------------------------------------------------------------------------

    @abc.abstractmethod
    async def close(self) -> None:
        """Stop accepting calls; waiting answerers get QueueClosedError."""
