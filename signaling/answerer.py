"""The answerer: the robot's side of ``Answer``, against a local or remote signaling server (wire-protocol.md §5.5).

:class:`Answerer` keeps ``workers`` Answer streams open (2, as goutils' ``defaultMaxAnswerers``),
each serving exactly one call and then replaced by a fresh stream; a stream that fails is retried
after ``reconnect_wait``. For each offer it runs the user's :class:`OfferHandler`, which owns the
peer connection (the aiortc side lives in ``peer/``; this module knows nothing of aiortc).

Handler contract, in the order things happen:

1. ``offer`` carries the decoded offer, the ICE servers/trickle setting, the uuid and the deadline.
2. Call ``await send_answer(answer)`` exactly once: it sends ``AnswerResponse{init}``.
3. Optionally trickle local candidates with ``await send_candidate(candidate)`` (buffered until the
   answer is out, dropped in non-trickle mode); ``await send_candidate(None)`` says gathering is
   complete, which sends ``done`` at once (goutils does the same), ending the caller's Call
   stream early. aiortc gathers everything inside ``setLocalDescription``, so its answer is
   complete and a handler may send ``None`` right after the answer.
4. Consume ``candidates_in`` (caller candidates; ``candidate == ""`` is end-of-candidates) and add
   them to the peer connection; the iterator ends when the caller is done.
5. **Return** when the connection is ready (the ``data`` channel is open): ``done`` is sent if it
   was not already. **Raise** to fail the call: the exception's status goes to the caller as
   ``error`` (a :class:`~signaling.errors.SignalingError` or ``GRPCError`` keeps its status, any
   other exception is UNKNOWN). Once ``done`` is out, a later failure is only logged.
6. The handler is **cancelled** at the deadline (the caller gets DEADLINE_EXCEEDED) or when the
   caller reports an error or goes away; it must then close its peer connection in ``finally``.
   A handler that already said ``done`` (step 3) outlives the Answer stream, which the server ends
   once both sides are done: it runs on, detached from its worker, until it returns or the offer
   deadline passes (then it is cancelled), so the worker can take the next offer meanwhile.

Keeping the whole call inside one coroutine is why the handler does not simply return the answer:
the same coroutine must live on until the channel opens, and its cancellation is the cleanup.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from grpclib import GRPCError, Status
from grpclib.client import Channel

from ._tasks import bounded, cancel_and_wait
from .config import WebRTCConfig
from .const import (
    ANSWERER_CONNECT_TIMEOUT,
    ANSWERER_MIN_DEADLINE,
    ANSWERER_RECONNECT_WAIT,
    CLEANUP_TIMEOUT,
    DEFAULT_MAX_ANSWERERS,
    HEARTBEAT_INTERVAL,
    HEARTBEATS_ALLOWED_KEY,
    MAX_HOSTS_IN_METADATA,
    OFFER_DEADLINE,
    RPC_HOST_KEY,
)
from .errors import ErrorStatus, ExchangeProtocolError, InvalidSdpError, SignalingError
from .gen.proto.rpc.webrtc.v1 import signaling_pb2 as pb
from .gen.proto.rpc.webrtc.v1.signaling_grpc import SignalingServiceStub
from .relay import LockedSender
from .sdp import IceCandidate, SessionDescription, candidate_from_proto, candidate_to_proto, decode_sdp, encode_sdp

if TYPE_CHECKING:
    from grpclib.client import Stream

    ClientStream = Stream[pb.AnswerResponse, pb.AnswerRequest]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Offer:
    """One caller's offer as the answerer sees it."""

    uuid: str
    sdp: SessionDescription
    config: WebRTCConfig
    #: wall-clock (``time.time()``) seconds; already clamped to at least now + 5 s.
    deadline: float
    #: the hosts this answerer registered for (the call was made to one of them).
    hosts: tuple[str, ...]
    #: the caller's auth entity as the signaling server vouches for it (``""``: no auth);
    #: the connection's calls run as this principal (``caller_auth_entity``).
    caller: str = ""

    def time_left(self) -> float:
        return max(0.0, self.deadline - time.time())


class SendAnswer(Protocol):
    async def __call__(self, answer: SessionDescription, /) -> None: ...


class SendCandidate(Protocol):
    async def __call__(self, candidate: IceCandidate | None, /) -> None: ...


class OfferHandler(Protocol):
    """Answers one offer; see the module docstring for the contract."""

    async def __call__(
        self,
        offer: Offer,
        candidates_in: AsyncIterator[IceCandidate],
        send_candidate: SendCandidate,
        send_answer: SendAnswer,
        /,
    ) -> None: ...


@dataclass(slots=True)
class AnswererStats:
    """Counters for ``/stats`` and tests."""

    streams: int = 0
    heartbeats: int = 0
    offers: int = 0
    answered: int = 0
    failed: int = 0


class _CandidateInbox:
    """``candidates_in``: a class rather than an async generator, so an abandoned iteration leaves
    nothing for the event loop to finalise."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[IceCandidate | None] = asyncio.Queue()
        self._closed = False
        self._finished = False

    def put(self, candidate: IceCandidate) -> None:
        if not self._closed:
            self._queue.put_nowait(candidate)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._queue.put_nowait(None)

    def __aiter__(self) -> _CandidateInbox:
        return self

    async def __anext__(self) -> IceCandidate:
        if self._finished:
            raise StopAsyncIteration
        candidate = await self._queue.get()
        if candidate is None:
            self._finished = True
            raise StopAsyncIteration
        return candidate


class _AnswerCall:
    """The answerer's half of one exchange: what the handler's callbacks do, and the done/error once."""

    def __init__(self, uuid: str, sender: LockedSender[pb.AnswerResponse], *, trickle: bool) -> None:
        self.uuid = uuid
        self.inbox = _CandidateInbox()
        self.answer_sent = False
        self.finished = False
        self.succeeded = False
        self.caller_error: ErrorStatus | None = None
        self._sender = sender
        self._trickle = trickle
        self._buffered: list[IceCandidate] = []
        self._gathering_complete = False
        self._lock = asyncio.Lock()

    async def send_answer(self, answer: SessionDescription) -> None:
        if answer.type != "answer":
            raise InvalidSdpError(f"expected an SDP of type 'answer', got {answer.type!r}")
        async with self._lock:
            if self.answer_sent:
                raise ExchangeProtocolError("the answer was already sent")
            if self.finished:
                raise ExchangeProtocolError("the call is already over")
            init = pb.AnswerResponseInitStage(sdp=encode_sdp(answer))
            await self._sender.send(pb.AnswerResponse(uuid=self.uuid, init=init))
            self.answer_sent = True
            buffered, self._buffered = self._buffered, []
            for candidate in buffered:
                await self._send_update(candidate)
            if self._gathering_complete:
                await self._finish(None)

    async def send_candidate(self, candidate: IceCandidate | None) -> None:
        async with self._lock:
            if self.finished:
                return
            if candidate is None:
                self._gathering_complete = True
                if self.answer_sent:
                    await self._finish(None)
            elif not self._trickle:
                logger.debug("call(%s): trickle is off; dropping local candidate", self.uuid)
            elif not self.answer_sent:
                self._buffered.append(candidate)
            else:
                await self._send_update(candidate)

    async def finish(self, error: ErrorStatus | None) -> None:
        async with self._lock:
            await self._finish(error)

    async def _finish(self, error: ErrorStatus | None) -> None:
        if self.finished:
            return
        self.finished = True
        if error is None:
            await self._sender.send(pb.AnswerResponse(uuid=self.uuid, done=pb.AnswerResponseDoneStage()))
            self.succeeded = True
        else:
            stage = pb.AnswerResponseErrorStage(status=error.to_proto())
            await self._sender.send(pb.AnswerResponse(uuid=self.uuid, error=stage))

    async def _send_update(self, candidate: IceCandidate) -> None:
        update = pb.AnswerResponseUpdateStage(candidate=candidate_to_proto(candidate))
        await self._sender.send(pb.AnswerResponse(uuid=self.uuid, update=update))


class _SilentStream(Exception):
    """Nothing (not even a heartbeat) arrived on an idle Answer stream within ``idle_timeout``."""


#: How long a new Answer stream waits for the server's first headers before counting as open. A
#: refusal (auth, bad metadata) comes back at once as a trailers-only response and peerbot's
#: server sends headers as soon as the stream is registered; a server that sends headers only
#: with its first message is taken as accepting after this wait.
ANSWER_ACCEPT_WAIT = 2.0
#: Statuses that mean "not with these credentials": the token is dropped before the next try.
_REFUSALS = (Status.UNAUTHENTICATED, Status.PERMISSION_DENIED)


def _exceptional(exc: BaseException) -> bool:
    """goutils ``checkExceptionalError``: a stream ending on deadline or cancellation is routine."""
    if isinstance(exc, GRPCError):
        return exc.status not in (Status.DEADLINE_EXCEEDED, Status.CANCELLED)
    return not isinstance(exc, TimeoutError)


class Answerer:
    """Answers calls for ``hosts`` through the SignalingService behind ``channel``.

    ``channel`` may be a network :class:`grpclib.client.Channel` (external signaling) or an
    in-process one (see :func:`signaling.internal.internal_answerer`). ``metadata`` is added to
    every Answer stream (e.g. ``authorization``); give a coroutine function instead to compute it
    for each stream (e.g. :class:`signaling.auth.RobotCredentials`, which renews its token); if
    it also has a ``forget()`` method, that is called whenever the server refuses a stream
    (UNAUTHENTICATED, PERMISSION_DENIED), so the next stream authenticates afresh.
    An idle stream on which nothing arrives for ``idle_timeout`` seconds (default: three heartbeat
    intervals) is dropped and reopened, so a signaling server that vanished without closing the
    connection is noticed; ``None`` waits forever. ``describe_failure`` turns a failure it
    recognises (e.g. TLS: an untrusted certificate) into a sentence; such a failure is logged as a
    WARNING once per streak across all workers (until a stream opens again), then at DEBUG.
    """

    def __init__(
        self,
        channel: Channel,
        hosts: Sequence[str],
        handle_offer: OfferHandler,
        *,
        workers: int = DEFAULT_MAX_ANSWERERS,
        reconnect_wait: float = ANSWERER_RECONNECT_WAIT,
        max_reconnect_wait: float = ANSWERER_RECONNECT_WAIT,
        connect_timeout: float = ANSWERER_CONNECT_TIMEOUT,
        min_deadline: float = ANSWERER_MIN_DEADLINE,
        default_deadline: float = OFFER_DEADLINE,
        heartbeats: bool = True,
        idle_timeout: float | None = 3 * HEARTBEAT_INTERVAL,
        metadata: Mapping[str, str] | Callable[[], Awaitable[Mapping[str, str]]] | None = None,
        describe_failure: Callable[[BaseException], str | None] | None = None,
    ) -> None:
        if not 1 <= len(hosts) <= MAX_HOSTS_IN_METADATA:
            raise ValueError(f"an answerer needs 1 to {MAX_HOSTS_IN_METADATA} hosts")
        if workers < 1:
            raise ValueError("an answerer needs at least one worker")
        self.hosts = tuple(hosts)
        self.stats = AnswererStats()
        self._stub = SignalingServiceStub(channel)
        self._handle_offer = handle_offer
        self._workers = workers
        self._reconnect_wait = reconnect_wait
        self._max_reconnect_wait = max_reconnect_wait
        self._sleep = asyncio.sleep  # the reconnect wait; tests record it
        self._connect_timeout = connect_timeout
        self._min_deadline = min_deadline
        self._default_deadline = default_deadline
        self._idle_timeout = idle_timeout
        self._metadata: list[tuple[str, str]] = [(RPC_HOST_KEY, host) for host in self.hosts]
        if heartbeats:
            self._metadata.append((HEARTBEATS_ALLOWED_KEY, "true"))
        if callable(metadata):
            self._metadata_source: Callable[[], Awaitable[Mapping[str, str]]] | None = metadata
        else:
            self._metadata_source = None
            self._metadata.extend((metadata or {}).items())
        self._describe_failure = describe_failure
        self._described_streak = False  # a described failure was logged as a WARNING since the last open stream
        self._tasks: list[asyncio.Task[None]] = []
        #: Handlers that said done early and outlived their Answer stream (see the module docstring, 6.).
        self._detached: set[asyncio.Task[None]] = set()

    @property
    def running(self) -> bool:
        return bool(self._tasks)

    def start(self) -> None:
        """Open the Answer streams (in the running loop). Idempotent."""
        if self._tasks:
            return
        self._tasks = [
            asyncio.create_task(self._worker(index), name=f"signaling-answerer-{index}")
            for index in range(self._workers)
        ]

    async def stop(self) -> None:
        """Close every Answer stream; running handlers are cancelled and awaited."""
        tasks, self._tasks = self._tasks, []
        await cancel_and_wait(*tasks)
        detached, self._detached = self._detached, set()
        await cancel_and_wait(*detached)

    async def __aenter__(self) -> Answerer:
        self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def _worker(self, index: int) -> None:
        """Streams one after another; after failures the wait doubles up to ``max_reconnect_wait``
        (a restarting rendezvous is not hammered by every robot at once), reset by a stream that opens."""
        wait = self._reconnect_wait
        failures = 0
        while True:
            handled = False
            opened: list[bool] = []  # set by _serve_stream once its stream is open (a raise loses the return)
            try:
                handled = await self._serve_stream(index, opened, reconnected=failures > 0)
            except _SilentStream as exc:
                logger.info("answerer-%d for %s: %s; reopening", index, self.hosts, exc)
            except Exception as exc:
                described = self._describe_failure(exc) if self._describe_failure is not None else None
                if described is not None:
                    # one line per streak for all workers: they all fail for the same reason
                    level = logging.DEBUG if self._described_streak else logging.WARNING
                    self._described_streak = True
                    logger.log(level, "answerer-%d for %s: %s; retrying", index, self.hosts, described)
                elif isinstance(exc, GRPCError) and exc.status in _REFUSALS:
                    # a restarted server (new signing key) refuses the old token: fetch a new one next time
                    self._forget_credentials()
                    level = logging.WARNING if failures == 0 else logging.INFO
                    logger.log(level, "answerer-%d for %s: the signaling server refused us: %s %s",
                               index, self.hosts, exc.status.name, exc.message)
                else:
                    # the first failure of a streak is worth a warning; its repeats (server down) are not
                    level = logging.WARNING if _exceptional(exc) and failures == 0 else logging.DEBUG
                    logger.log(level, "answerer-%d for %s: signaling stream failed: %r", index, self.hosts, exc)
            if opened:
                wait, failures = self._reconnect_wait, 0
                self._described_streak = False
            else:
                failures += 1
            if not handled:
                await self._sleep(wait * random.uniform(0.8, 1.0) if failures else wait)
                if failures:
                    wait = min(2 * wait, max(self._max_reconnect_wait, self._reconnect_wait))

    async def _serve_stream(self, index: int, opened: list[bool], *, reconnected: bool) -> bool:
        """One Answer stream, one call. True when an offer was handled (the next stream opens at once)."""
        async with asyncio.timeout(self._connect_timeout) as scope:
            metadata = self._metadata
            if self._metadata_source is not None:
                metadata = [*metadata, *(await self._metadata_source()).items()]
            async with self._stub.Answer.open(metadata=metadata) as stream:
                await stream.send_request()
                await self._accepted(stream)
                if reconnected or self.stats.streams == 0:
                    logger.info("answerer-%d for %s: %s signaling", index, self.hosts,
                                "reconnected to" if reconnected else "registered with")
                self.stats.streams += 1
                opened.append(True)
                scope.reschedule(None)  # idle as long as the stream lives; each wait is bounded by idle_timeout
                handled = await self._serve_call(stream, scope)
                await stream.end()  # grpclib only reads the server's trailers after our half-close
        return handled

    async def _accepted(self, stream: ClientStream) -> None:
        """Wait (at most ``ANSWER_ACCEPT_WAIT``) for the server's headers: a refusal raises here,
        before the stream counts as registered (see ``ANSWER_ACCEPT_WAIT``)."""
        try:
            async with asyncio.timeout(ANSWER_ACCEPT_WAIT):
                await stream.recv_initial_metadata()
        except TimeoutError:
            logger.debug("answerer for %s: no headers yet; taking the stream as accepted", self.hosts)

    def _forget_credentials(self) -> None:
        forget = getattr(self._metadata_source, "forget", None)
        if callable(forget):
            forget()

    async def _serve_call(self, stream: ClientStream, scope: asyncio.Timeout) -> bool:
        loop = asyncio.get_running_loop()
        request = await self._next_request(stream)
        if request is None:
            return False
        self.stats.offers += 1
        sender: LockedSender[pb.AnswerResponse] = LockedSender(stream)
        stage = request.WhichOneof("stage")
        try:
            if stage != "init":
                raise ExchangeProtocolError(f"expected first stage to be init or heartbeat; got {stage}")
            offer = self._offer(request)
        except SignalingError as exc:
            logger.warning("answerer for %s: rejecting call(%s): %s", self.hosts, request.uuid, exc.message)
            self.stats.failed += 1
            scope.reschedule(loop.time() + CLEANUP_TIMEOUT)
            error = pb.AnswerResponseErrorStage(status=exc.error_status().to_proto())
            await sender.send(pb.AnswerResponse(uuid=request.uuid, error=error))
            return False
        scope.reschedule(loop.time() + offer.time_left() + CLEANUP_TIMEOUT)
        await self._answer(stream, sender, offer)
        return True

    async def _next_request(self, stream: ClientStream) -> pb.AnswerRequest | None:
        """Skip heartbeats; the first real stage (or the end of the stream)."""
        while True:
            try:
                async with asyncio.timeout(self._idle_timeout):
                    request = await stream.recv_message()
            except TimeoutError:
                raise _SilentStream(f"nothing from the signaling server in {self._idle_timeout:g}s") from None
            if request is None or request.WhichOneof("stage") != "heartbeat":
                return request
            self.stats.heartbeats += 1
            logger.debug("answerer for %s: heartbeat", self.hosts)

    def _offer(self, request: pb.AnswerRequest) -> Offer:
        """goutils ``getDeadline``: the init's deadline clamped to at least now + 5 s, else now + 10 s."""
        init = request.init
        now = time.time()
        deadline = init.deadline.ToNanoseconds() / 1e9 if init.HasField("deadline") else now + self._default_deadline
        deadline = max(deadline, now + self._min_deadline)
        sdp = decode_sdp(init.sdp, expect_type="offer")
        config = WebRTCConfig.from_proto(init.optional_config)
        return Offer(request.uuid, sdp, config, deadline, self.hosts, init.caller_auth_entity)

    async def _answer(self, stream: ClientStream, sender: LockedSender[pb.AnswerResponse], offer: Offer) -> None:
        """Run the handler and the caller-update reader side by side until one decides the call."""
        call = _AnswerCall(offer.uuid, sender, trickle=not offer.config.disable_trickle)
        handler = asyncio.create_task(self._run_handler(offer, call), name=f"signaling-offer-{offer.uuid}")
        reader = asyncio.create_task(self._read_caller(stream, call), name=f"signaling-caller-updates-{offer.uuid}")
        detached = False
        try:
            async with asyncio.timeout(offer.time_left()):
                await asyncio.wait({handler, reader}, return_when=asyncio.FIRST_COMPLETED)
                if handler.done():
                    await call.finish(handler.result())
                    # The server ends the stream once the caller is done too; keep taking its
                    # late candidates and done until then, as goutils' answerer does.
                    await reader
                elif call.succeeded and call.caller_error is None:
                    # done is out and the server ended the stream: the connection may still be
                    # forming (the handler returns once it is ready), so it is not ours to cancel.
                    self._detach(handler, offer)
                    detached = True
                else:
                    # The server ended the stream or the caller failed: nothing left to answer.
                    await cancel_and_wait(handler)
                    if call.caller_error is not None:
                        await call.finish(ErrorStatus(Status.CANCELLED, f"caller failed: {call.caller_error.message}"))
        except TimeoutError:
            if not call.finished:
                logger.info("call(%s): the deadline passed before the connection was ready", offer.uuid)
                error = ErrorStatus(Status.DEADLINE_EXCEEDED, "answerer did not finish before the offer deadline")
                await bounded(call.finish(error), CLEANUP_TIMEOUT, f"call({offer.uuid}): sending error")
        finally:
            if detached:
                await cancel_and_wait(reader)
            else:
                await cancel_and_wait(handler, reader)
            if call.succeeded:
                self.stats.answered += 1
            else:
                self.stats.failed += 1

    def _detach(self, handler: asyncio.Task[ErrorStatus | None], offer: Offer) -> None:
        """Let a handler that said done finish on its own, within the offer's deadline."""

        async def finish() -> None:
            try:
                async with asyncio.timeout(offer.time_left()):
                    error = await handler
            except TimeoutError:
                logger.info("call(%s): the connection was not ready by the offer deadline", offer.uuid)
                await cancel_and_wait(handler)
            except asyncio.CancelledError:
                await cancel_and_wait(handler)
                raise
            else:
                if error is not None:  # done was already sent: the failure can only be logged
                    logger.info("call(%s): failed after done: %s", offer.uuid, error.message)

        task = asyncio.create_task(finish(), name=f"signaling-offer-{offer.uuid}-detached")
        self._detached.add(task)
        task.add_done_callback(self._detached.discard)

    async def _run_handler(self, offer: Offer, call: _AnswerCall) -> ErrorStatus | None:
        """The handler's outcome as the status to report (``None``: ready). Never raises but CancelledError."""
        try:
            await self._handle_offer(offer, call.inbox, call.send_candidate, call.send_answer)
        except (SignalingError, GRPCError) as exc:
            logger.info("call(%s): offer handler failed: %s", offer.uuid, exc)
            return ErrorStatus.from_exception(exc)
        except Exception as exc:
            logger.warning("call(%s): offer handler raised", offer.uuid, exc_info=True)
            return ErrorStatus.from_exception(exc)
        if not call.answer_sent:
            return ErrorStatus(Status.UNKNOWN, "the offer handler returned without an answer")
        return None

    async def _read_caller(self, stream: ClientStream, call: _AnswerCall) -> None:
        """Caller candidates into the handler's inbox until the caller is done, fails, or the stream ends."""
        while True:
            request = await stream.recv_message()
            if request is None:
                call.inbox.close()
                return
            stage = request.WhichOneof("stage")
            if stage == "heartbeat":
                self.stats.heartbeats += 1
                continue
            if request.uuid != call.uuid:
                logger.warning("call(%s): ignoring a %s stage for call %r", call.uuid, stage, request.uuid)
                continue
            if stage == "update":
                call.inbox.put(candidate_from_proto(request.update.candidate))
            elif stage == "done":
                call.inbox.close()
            elif stage == "error":
                call.caller_error = ErrorStatus.from_proto(request.error.status)
                logger.info("call(%s): caller failed: %s", call.uuid, call.caller_error.message)
                call.inbox.close()
                return
