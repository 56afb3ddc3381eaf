"""The server side of one Answer exchange: between an answerer's stream and a claimed call (wire-protocol.md §5.4).

Two loops run under the offer deadline. The *answerer loop* reads ``AnswerResponse`` stages and
forwards them to the caller (init, then candidates, then done or error). The *caller loop*
forwards the caller's candidates as ``AnswerRequest{update}`` and ends with ``done`` (caller done)
or ``error`` (caller failed or left). As in Go, the answerer's ``done`` ends the caller's Call
stream at once, while the Answer stream stays open until the caller is done too, so late caller
candidates still reach the answerer. Unlike Go, every way out has an explicit outcome for both
sides: a stage-order violation or the deadline is reported to the caller *and* the answerer.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Generic, Protocol, TypeVar

from google.protobuf import timestamp_pb2
from grpclib import Status

from ._tasks import bounded, cancel_and_wait
from .config import WebRTCConfig
from .const import CLEANUP_TIMEOUT
from .errors import (
    ErrorStatus,
    ExchangeProtocolError,
    InactiveOfferError,
    InvalidSdpError,
    OfferTimeoutError,
    SignalingError,
)
from .gen.proto.rpc.webrtc.v1 import signaling_pb2 as pb
from .queue import (
    AnswerCandidate,
    AnswererEvent,
    AnswererExchange,
    AnswerFailed,
    AnswerInit,
    CallerCandidate,
    CallerFailed,
)
from .sdp import candidate_from_proto, candidate_to_proto, decode_sdp

logger = logging.getLogger(__name__)

_T_contra = TypeVar("_T_contra", contravariant=True)


class _SendStream(Protocol[_T_contra]):
    async def send_message(self, message: _T_contra, /) -> None: ...


class _RecvStream(Protocol):
    async def recv_message(self) -> pb.AnswerResponse | None: ...


class LockedSender(Generic[_T_contra]):
    """Serialises sends on one gRPC stream: the heartbeat task and the relay share an Answer stream,
    and two interleaved ``send_message`` calls could interleave the DATA frames of two messages."""

    def __init__(self, stream: _SendStream[_T_contra]) -> None:
        self._stream = stream
        self._lock = asyncio.Lock()

    async def send(self, message: _T_contra) -> None:
        async with self._lock:
            await self._stream.send_message(message)


def deadline_timestamp(deadline: float) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromNanoseconds(int(deadline * 1e9))
    return stamp


class AnswerRelay:
    """Relays one claimed call. :meth:`run` returns normally when the exchange ended as the
    protocol allows (including an error stage from either side) and raises a
    :class:`~signaling.errors.SignalingError` when the answerer broke it or the deadline passed."""

    def __init__(
        self,
        stream: _RecvStream,
        sender: LockedSender[pb.AnswerRequest],
        exchange: AnswererExchange,
        config: WebRTCConfig,
    ) -> None:
        self._stream = stream
        self._sender = sender
        self._exchange = exchange
        self._config = config
        self._answerer_done = False
        self._answerer_failed = False
        self._caller_failed = False
        self._caller_gone = False
        self._done_sent = False

    async def run(self) -> None:
        exchange = self._exchange
        await self._sender.send(
            pb.AnswerRequest(
                uuid=exchange.uuid,
                init=pb.AnswerRequestInitStage(
                    sdp=exchange.sdp,
                    optional_config=WebRTCConfig(self._config.ice_servers, exchange.disable_trickle).to_proto(),
                    deadline=deadline_timestamp(exchange.deadline),
                    caller_auth_entity=exchange.caller,
                ),
            )
        )
        caller_task = asyncio.create_task(self._caller_loop(), name=f"signaling-caller-loop-{exchange.uuid}")
        try:
            async with asyncio.timeout(max(0.0, exchange.deadline - time.time())):
                await self._answerer_loop()
                if self._answerer_failed:
                    return
                await exchange.done()
                await caller_task
        except TimeoutError:
            await self._on_deadline()
        finally:
            await cancel_and_wait(caller_task)

    # --- answerer -> caller ---------------------------------------------------------------------------

    async def _answerer_loop(self) -> None:
        try:
            await self._read_answerer()
        except SignalingError as exc:
            logger.warning("call(%s): answerer broke the exchange: %s", self._exchange.uuid, exc.message)
            self._answerer_failed = True
            await self._tell_caller(AnswerFailed(exc.error_status()))
            await self._send_error(exc.error_status())
            raise

    async def _read_answerer(self) -> None:
        uuid = self._exchange.uuid
        have_init = False
        while not self._caller_gone:
            message = await self._stream.recv_message()
            if message is None:
                if not have_init:
                    self._answerer_failed = True
                    await self._tell_caller(
                        AnswerFailed(ErrorStatus(Status.UNAVAILABLE, "answerer closed its stream without answering"))
                    )
                return
            if message.uuid != uuid:
                raise ExchangeProtocolError(f"uuid mismatch; have={message.uuid!r} want={uuid!r}")
            stage = message.WhichOneof("stage")
            if stage == "init":
                if have_init:
                    raise ExchangeProtocolError("got init stage more than once")
                try:
                    decode_sdp(message.init.sdp, expect_type="answer")
                except InvalidSdpError as exc:
                    raise ExchangeProtocolError(f"answerer sent an invalid answer: {exc.message}") from exc
                have_init = True
                await self._tell_caller(AnswerInit(message.init.sdp))
            elif stage == "update":
                if not have_init:
                    raise ExchangeProtocolError("got update stage before init stage")
                await self._tell_caller(AnswerCandidate(candidate_from_proto(message.update.candidate)))
            elif stage == "done":
                if not have_init:
                    raise ExchangeProtocolError("got done stage before init stage")
                self._answerer_done = True
                return
            elif stage == "error":
                error = ErrorStatus.from_proto(message.error.status)
                logger.info("call(%s): answerer reported %s: %s", uuid, error.code.name, error.message)
                self._answerer_failed = True
                await self._tell_caller(AnswerFailed(error))
                return
            else:
                raise ExchangeProtocolError("AnswerResponse has no stage")

    async def _tell_caller(self, event: AnswererEvent) -> None:
        if self._caller_gone:
            return
        try:
            await self._exchange.respond(event)
        except InactiveOfferError:
            logger.debug("call(%s): caller is gone; dropping %s", self._exchange.uuid, type(event).__name__)
            self._caller_gone = True

    # --- caller -> answerer ---------------------------------------------------------------------------

    async def _caller_loop(self) -> None:
        uuid = self._exchange.uuid
        async for event in self._exchange.caller_events():
            if isinstance(event, CallerCandidate):
                candidate = candidate_to_proto(event.candidate)
                await self._sender.send(
                    pb.AnswerRequest(uuid=uuid, update=pb.AnswerRequestUpdateStage(candidate=candidate))
                )
            elif isinstance(event, CallerFailed):
                logger.info("call(%s): caller failed with %s: %s", uuid, event.error.code.name, event.error.message)
                self._caller_failed = True
                await self._send_error(event.error)
                return
            else:
                break
        if not self._answerer_failed:
            await self._send_done()

    async def _send_done(self) -> None:
        if not self._done_sent:
            self._done_sent = True
            await self._sender.send(pb.AnswerRequest(uuid=self._exchange.uuid, done=pb.AnswerRequestDoneStage()))

    async def _send_error(self, error: ErrorStatus) -> None:
        if self._done_sent:
            return
        self._done_sent = True
        request = pb.AnswerRequest(uuid=self._exchange.uuid, error=pb.AnswerRequestErrorStage(status=error.to_proto()))
        await bounded(self._sender.send(request), CLEANUP_TIMEOUT, f"call({self._exchange.uuid}): sending error")

    async def _on_deadline(self) -> None:
        uuid = self._exchange.uuid
        if self._answerer_done or self._answerer_failed or self._caller_failed:
            # The exchange itself finished; only the caller's done never came. Nothing failed.
            if not self._answerer_failed and not self._caller_failed:
                await bounded(self._send_done(), CLEANUP_TIMEOUT, f"call({uuid}): sending done")
            return
        error = ErrorStatus(Status.DEADLINE_EXCEEDED, "offer deadline exceeded before the answerer finished")
        logger.info("call(%s): %s", uuid, error.message)
        await self._tell_caller(AnswerFailed(error))
        await self._send_error(error)
        raise OfferTimeoutError(error.message)
