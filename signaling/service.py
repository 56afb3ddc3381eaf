"""``proto.rpc.webrtc.v1.SignalingService`` on grpclib (wire-protocol.md §2, §3, §5.2-§5.4, §12.2).

Each handler validates the routing metadata, then delegates to the :class:`~signaling.queue.CallQueue`:
Call queues an offer and streams the answerer's init and candidates back; CallUpdate feeds the
caller's candidates, done or error into the call; Answer claims one call for an answerer and
relays it (:mod:`signaling.relay`). Every wait is bounded by the offer deadline except an idle
answerer's wait for a call, which lasts as long as its stream (heartbeats find dead answerers).
``authorization`` is never read here: when auth is configured, the handler table checks it first
(:mod:`signaling.auth`) and leaves the caller's principal in ``current_principal``; each call is
bound to that principal's entity, so a CallUpdate from anyone else finds no such call (NOT_FOUND).
Without auth the Rust dialer's fake ``Basic`` header must pass (§10).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from grpclib import Status

from ._tasks import bounded, cancel_and_wait
from .auth import current_principal
from .config import WebRTCConfig
from .const import CLEANUP_TIMEOUT, HEARTBEAT_INTERVAL, OFFER_DEADLINE
from .errors import (
    ErrorStatus,
    ExchangeProtocolError,
    OfferTimeoutError,
    RemoteError,
    SignalingError,
)
from .gen.proto.rpc.webrtc.v1 import signaling_pb2 as pb
from .gen.proto.rpc.webrtc.v1.signaling_grpc import SignalingServiceBase
from .memory_queue import MemoryCallQueue
from .metadata import HostAllowList, heartbeats_allowed, host_from_metadata, hosts_from_metadata
from .queue import AnswerFailed, AnswerInit, CallerExchange, CallQueue
from .relay import AnswerRelay, LockedSender
from .sdp import candidate_from_proto, candidate_to_proto, decode_sdp

if TYPE_CHECKING:
    from grpclib.server import Stream

logger = logging.getLogger(__name__)

_CALLER_GONE = ErrorStatus(Status.CANCELLED, "caller went away or the call was cancelled")
_HEARTBEAT = pb.AnswerRequest(heartbeat=pb.AnswerRequestHeartbeatStage())


@contextlib.contextmanager
def _grpc_errors() -> Iterator[None]:
    """Report every expected failure with its own status (never grpclib's generic UNKNOWN)."""
    try:
        yield
    except SignalingError as exc:
        raise exc.grpc_error() from exc


def _caller_entity() -> str:
    principal = current_principal.get()
    return principal.entity if principal is not None else ""


@dataclass(slots=True)
class _CallProgress:
    answered: bool = False


class SignalingService(SignalingServiceBase):
    """The signaling server. Share one instance (and its queue) between the native gRPC server,
    gRPC-web and any in-process answerer.

    :param queue: where offers meet answerers; an in-memory queue when omitted (closed by :meth:`close`).
    :param config: ICE servers and trickle setting handed to callers and answerers; or a function
        returning them, called per request (TURN REST credentials are minted fresh each time).
    :param allowed_hosts: optional ``forHosts`` allow-list; empty accepts any ``rpc-host`` (§3).
    :param offer_deadline: bound on Call, CallUpdate and the whole exchange (10 s on the wire).
    :param heartbeat_interval: heartbeat period on Answer streams that ask for heartbeats.
    :param route_host: maps a caller's ``rpc-host`` to the host its offer is queued for. A robot
        doing its own (internal) signaling answers for itself under whatever name a client
        reached it by (``127.0.0.1:8080``, a LAN address, ``robot.local``…), so it routes every
        host to its one answerer host; a rendezvous server routes exactly (the default).
    """

    def __init__(
        self,
        queue: CallQueue | None = None,
        *,
        config: WebRTCConfig | Callable[[], WebRTCConfig] | None = None,
        allowed_hosts: Iterable[str] | None = None,
        offer_deadline: float = OFFER_DEADLINE,
        heartbeat_interval: float = HEARTBEAT_INTERVAL,
        route_host: Callable[[str], str] | None = None,
    ) -> None:
        self._route_host = route_host or (lambda host: host)
        self._owns_queue = queue is None
        self._queue: CallQueue = queue if queue is not None else MemoryCallQueue()
        fixed = config if isinstance(config, WebRTCConfig) else WebRTCConfig()
        self._config: Callable[[], WebRTCConfig] = config if callable(config) else (lambda: fixed)
        self._allowed = HostAllowList(allowed_hosts)
        self._offer_deadline = offer_deadline
        self._heartbeat_interval = heartbeat_interval

    @property
    def queue(self) -> CallQueue:
        return self._queue

    @property
    def config(self) -> WebRTCConfig:
        """The config for one request (fresh TURN credentials when a provider was given)."""
        return self._config()

    async def close(self) -> None:
        """Close the queue if this service created it; running RPCs then end promptly."""
        if self._owns_queue:
            await self._queue.close()

    # --- caller RPCs ----------------------------------------------------------------------------------

    async def Call(self, stream: Stream[pb.CallRequest, pb.CallResponse]) -> None:
        with _grpc_errors():
            host = host_from_metadata(stream.metadata)
            self._allowed.check((host,))
            host = self._route_host(host)
            request = await stream.recv_message()
            if request is None:
                raise SignalingError("missing CallRequest", status=Status.INVALID_ARGUMENT)
            decode_sdp(request.sdp, expect_type="offer")
            await self._call(stream, host, request)

    async def _call(self, stream: Stream[pb.CallRequest, pb.CallResponse], host: str, request: pb.CallRequest) -> None:
        deadline = time.time() + self._offer_deadline
        progress = _CallProgress()
        caller: CallerExchange | None = None
        outcome: ErrorStatus | None = _CALLER_GONE
        try:
            try:
                async with asyncio.timeout(self._offer_deadline):
                    caller = await self._queue.send_offer_init(
                        host, request.sdp, request.disable_trickle, deadline=deadline, caller=_caller_entity()
                    )
                    logger.info("call(%s): offer for host %r", caller.uuid, host)
                    await self._relay_answers(stream, caller, progress)
            except TimeoutError:
                if progress.answered:
                    message = f"signaling did not finish within {self._offer_deadline:g}s"
                else:
                    message = f"no answer from host {host!r} within {self._offer_deadline:g}s"
                raise OfferTimeoutError(message) from None
            outcome = None
        except SignalingError as exc:
            outcome = exc.error_status()
            logger.info("call for host %r failed: %s %s", host, exc.status.name, exc.message)
            raise
        finally:
            if caller is not None:
                await bounded(caller.close(outcome), CLEANUP_TIMEOUT, f"call({caller.uuid}): closing")

    @staticmethod
    async def _relay_answers(
        stream: Stream[pb.CallRequest, pb.CallResponse], caller: CallerExchange, progress: _CallProgress
    ) -> None:
        """goutils' Call loop: the first response is init, every response carries the uuid."""
        async for event in caller.answers():
            if isinstance(event, AnswerFailed):
                raise RemoteError(f"error from answerer: {event.error.message}", status=event.error.code)
            if isinstance(event, AnswerInit):
                if progress.answered:
                    raise ExchangeProtocolError("answerer sent its answer twice")
                progress.answered = True
                await stream.send_message(
                    pb.CallResponse(uuid=caller.uuid, init=pb.CallResponseInitStage(sdp=event.sdp))
                )
            else:
                if not progress.answered:
                    raise ExchangeProtocolError("answerer sent a candidate before its answer")
                update = pb.CallResponseUpdateStage(candidate=candidate_to_proto(event.candidate))
                await stream.send_message(pb.CallResponse(uuid=caller.uuid, update=update))
        if not progress.answered:
            raise RemoteError("error from answerer: finished without an answer", status=Status.UNKNOWN)

    async def CallUpdate(self, stream: Stream[pb.CallUpdateRequest, pb.CallUpdateResponse]) -> None:
        with _grpc_errors():
            host = host_from_metadata(stream.metadata)
            self._allowed.check((host,))
            host = self._route_host(host)
            request = await stream.recv_message()
            if request is None:
                raise SignalingError("missing CallUpdateRequest", status=Status.INVALID_ARGUMENT)
            try:
                async with asyncio.timeout(self._offer_deadline):
                    await self._call_update(host, request)
            except TimeoutError:
                raise OfferTimeoutError(f"call update for {request.uuid!r} timed out") from None
            await stream.send_message(pb.CallUpdateResponse())

    async def _call_update(self, host: str, request: pb.CallUpdateRequest) -> None:
        stage = request.WhichOneof("update")
        caller = _caller_entity()
        if stage == "candidate":
            candidate = candidate_from_proto(request.candidate)
            await self._queue.send_offer_update(host, request.uuid, candidate, caller=caller)
        elif stage == "done":
            await self._queue.send_offer_done(host, request.uuid, caller=caller)
        elif stage == "error":
            error = ErrorStatus.from_proto(request.error)
            logger.info("call(%s): caller reports %s: %s", request.uuid, error.code.name, error.message)
            await self._queue.send_offer_error(host, request.uuid, error, caller=caller)
        else:
            raise SignalingError("CallUpdateRequest has no update stage", status=Status.INVALID_ARGUMENT)

    async def OptionalWebRTCConfig(
        self, stream: Stream[pb.OptionalWebRTCConfigRequest, pb.OptionalWebRTCConfigResponse]
    ) -> None:
        with _grpc_errors():
            self._allowed.check(hosts_from_metadata(stream.metadata))
            await stream.recv_message()
            await stream.send_message(pb.OptionalWebRTCConfigResponse(config=self.config.to_proto()))

    async def ReportConnectionMetadata(
        self, stream: Stream[pb.ReportConnectionMetadataRequest, pb.ReportConnectionMetadataResponse]
    ) -> None:
        """No client calls it yet and its server semantics are unknown (§14): accept and ignore."""
        request = await stream.recv_message()
        if request is not None:
            logger.debug(
                "connection metadata: stage=%d duration=%dms path=%d failure=%d",
                request.reached_stage,
                request.duration_ms,
                request.signaling_path,
                request.failure_code,
            )
        await stream.send_message(pb.ReportConnectionMetadataResponse())

    # --- answerer RPC ---------------------------------------------------------------------------------

    async def Answer(self, stream: Stream[pb.AnswerResponse, pb.AnswerRequest]) -> None:
        """One Answer stream serves exactly one call (§3): register presence, wait, relay, end."""
        with _grpc_errors():
            hosts = hosts_from_metadata(stream.metadata)
            self._allowed.check(hosts)
            sender: LockedSender[pb.AnswerRequest] = LockedSender(stream)
            async with self._queue.answerer_presence(hosts):
                # headers now tell the answerer it is registered (a refusal would have been trailers-only)
                await stream.send_initial_metadata()
                body = asyncio.create_task(self._answer(stream, sender, hosts), name="signaling-answer")
                beat = None
                if heartbeats_allowed(stream.metadata):
                    beat = asyncio.create_task(self._heartbeats(sender), name="signaling-heartbeats")
                try:
                    if beat is not None:
                        await asyncio.wait({body, beat}, return_when=asyncio.FIRST_COMPLETED)
                        if beat.done() and not body.done():
                            beat.result()  # re-raises why the answerer is unreachable
                    await body
                finally:
                    await cancel_and_wait(beat, body)

    async def _answer(
        self,
        stream: Stream[pb.AnswerResponse, pb.AnswerRequest],
        sender: LockedSender[pb.AnswerRequest],
        hosts: tuple[str, ...],
    ) -> None:
        exchange = await self._queue.recv_offer(hosts)
        logger.info("call(%s): answering for host %r", exchange.uuid, exchange.host)
        try:
            await AnswerRelay(stream, sender, exchange, self.config).run()
        finally:
            await bounded(exchange.close(), CLEANUP_TIMEOUT, f"call({exchange.uuid}): closing answer")

    async def _heartbeats(self, sender: LockedSender[pb.AnswerRequest]) -> None:
        """Heartbeats for the stream's whole life, including during an exchange (§3).

        A heartbeat that cannot be sent within one interval means the answerer is gone: the
        Answer stream ends with UNAVAILABLE, so its presence stops attracting calls.
        """
        while True:
            await asyncio.sleep(self._heartbeat_interval)
            try:
                async with asyncio.timeout(self._heartbeat_interval):
                    await sender.send(_HEARTBEAT)
            except Exception as exc:
                raise SignalingError(
                    f"answerer unreachable: heartbeat failed ({exc!r})", status=Status.UNAVAILABLE
                ) from exc
