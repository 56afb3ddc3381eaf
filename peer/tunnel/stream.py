"""The server side of one tunnelled call: what a grpclib handler sees instead of its HTTP/2 stream.

:class:`TunnelStream` duck-types :class:`grpclib.server.Stream`, so every handler of the shared
handler table runs unchanged over a data channel. It also holds the call's receive state (the
reassembly buffer and the queue of whole messages), because the frame dispatcher feeds it
synchronously and the handler drains it from its own task: a slow handler fills only its own
queue and never stalls the other streams of the channel.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable
from types import TracebackType
from typing import Any, Generic, TypeVar

from google.protobuf.message import DecodeError
from grpclib.const import Cardinality, Handler, Status
from grpclib.exceptions import GRPCError, ProtocolError
from grpclib.metadata import Deadline

from . import framing
from .channel import ChannelClosedError, FrameSender
from .constants import MAX_MESSAGE_SIZE

logger = logging.getLogger(__name__)

RecvT = TypeVar("RecvT")
SendT = TypeVar("SendT")


class TunnelStream(Generic[RecvT, SendT]):
    """One call on the data channel, shaped like :class:`grpclib.server.Stream`.

    Handler-facing: :meth:`recv_message` (and async iteration), :meth:`send_initial_metadata`,
    :meth:`send_message`, :meth:`send_trailing_metadata`, :meth:`cancel`, ``metadata``,
    ``deadline``, ``peer``, ``user_agent`` and the async context manager. The wire order is
    guaranteed here: headers go out once and first (lazily, as in goutils), then messages, then
    exactly one trailers frame.
    """

    #: Which transport served the call; :class:`peer.handlers.CallStats` counts calls by it.
    transport = "webrtc"

    def __init__(
        self,
        stream_id: int,
        method_name: str,
        handler: Handler,
        sender: FrameSender,
        *,
        metadata: framing.Metadata,
        deadline: Deadline | None = None,
        peer: Any = None,
        user_agent: str | None = None,
        max_message_size: int = MAX_MESSAGE_SIZE,
        on_finished: Callable[[TunnelStream[Any, Any]], None] | None = None,
        tag: str = "",
    ) -> None:
        self.id = stream_id
        self.method_name = method_name
        #: Invocation metadata (a multidict), without transport headers, as grpclib gives it.
        self.metadata: framing.Metadata | None = metadata
        #: :class:`grpclib.metadata.Deadline` of the call, from ``timeout`` or ``grpc-timeout``.
        self.deadline = deadline
        #: Whatever the transport says about the remote end (``addr()``/``cert()``), or ``None``.
        self.peer = peer
        self.user_agent = user_agent
        self.task: asyncio.Task[None] | None = None
        self.reassembler = framing.Reassembler(max_message_size)
        self._cardinality: Cardinality = handler.cardinality
        self._recv_type: Any = handler.request_type
        self._send_type: Any = handler.reply_type
        self._sender = sender
        self._on_finished = on_finished
        self._tag = tag
        self._inbox: deque[bytes] = deque()
        self._inbox_bytes = 0
        self._max_unread = max_message_size
        self._waiter: asyncio.Future[None] | None = None
        self.recv_closed = False
        self.finished = False
        self._headers_sent = False
        self._message_sent = False

    def __repr__(self) -> str:
        return f"<TunnelStream {self._tag}/{self.id} {self.method_name}>"

    # -- fed by the frame dispatcher ---------------------------------------------------------
    def deliver(self, payload: bytes) -> bool:
        """Queue one whole request message; ``False`` if the handler is too far behind.

        A stream may always hold one unread message, and more only while the unread bytes stay
        within the message-size cap. A call whose request is not a stream is complete after its
        first message (the browser never sends an end-of-stream for unary calls).
        """
        if self._inbox and self._inbox_bytes + len(payload) > self._max_unread:
            return False
        self._inbox.append(payload)
        self._inbox_bytes += len(payload)
        if not self._cardinality.client_streaming:
            self.recv_closed = True
        self._wake()
        return True

    def close_recv(self) -> None:
        """The client half-closed: once the queue is drained, :meth:`recv_message` returns ``None``."""
        self.recv_closed = True
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- grpclib.server.Stream -----------------------------------------------------------------
    async def recv_message(self) -> RecvT | None:
        """The next request message, or ``None`` once the client has ended its side."""
        while not self._inbox:
            if self.recv_closed or self.finished:
                return None
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        payload = self._inbox.popleft()
        self._inbox_bytes -= len(payload)
        try:
            message: RecvT = self._recv_type.FromString(payload)
        except DecodeError:
            raise GRPCError(Status.INTERNAL, f"could not decode the request as {self._recv_type.__name__}") from None
        return message

    def __aiter__(self) -> AsyncIterator[RecvT]:
        return self

    async def __anext__(self) -> RecvT:
        message = await self.recv_message()
        if message is None:
            raise StopAsyncIteration
        return message

    async def send_initial_metadata(self, *, metadata: framing.MetadataLike | None = None) -> None:
        if self._headers_sent:
            raise ProtocolError("Initial metadata was already sent")
        self._check_open()
        self._send_headers(metadata)

    async def send_message(self, message: SendT) -> None:
        self._check_open()
        if self._message_sent and not self._cardinality.server_streaming:
            raise ProtocolError("Message was already sent")
        if not isinstance(message, self._send_type):
            raise TypeError(f"Message must be of type {self._send_type!r}, not {type(message)!r}")
        if not self._headers_sent:
            self._send_headers()
        for frame in framing.response_messages(self.id, message.SerializeToString()):
            await self._sender.send(frame)
        self._message_sent = True

    async def send_trailing_metadata(
        self,
        *,
        status: Status = Status.OK,
        status_message: str | None = None,
        status_details: Any = None,
        metadata: framing.MetadataLike | None = None,
    ) -> None:
        if self.finished:
            raise ProtocolError("Trailing metadata was already sent")
        if status is Status.OK and not self._message_sent and not self._cardinality.server_streaming:
            raise ProtocolError("Unary response with OK status requires a single message to be sent")
        self.finish(status, status_message, status_details, metadata)

    async def cancel(self) -> None:
        """End the call from the server side (there is no server RST on the wire: CANCELLED trailers)."""
        if self.finished:
            raise ProtocolError("Stream was already closed")
        self.finish(Status.CANCELLED, "cancelled by the server")

    async def __aenter__(self) -> TunnelStream[RecvT, SendT]:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> bool | None:
        if self.finished:
            return True
        if exc_val is not None and not isinstance(exc_val, Exception):
            return None  # CancelledError, KeyboardInterrupt…: let them through
        self.finish_with(exc_val)
        return True

    # -- ending the call -----------------------------------------------------------------------
    def finish_with(self, exc: BaseException | None) -> None:
        """Send the trailers that describe how the handler ended (grpclib's mapping)."""
        if self.finished:
            return
        if exc is None:
            if not self._message_sent and not self._cardinality.server_streaming:
                logger.error("tunnel[%s] stream %d: %s returned without a response", self._tag, self.id,
                             self.method_name)
                self.finish(Status.UNKNOWN, "the handler returned without sending a response")
            else:
                self.finish(Status.OK)
        elif isinstance(exc, GRPCError):
            self.finish(exc.status, exc.message, exc.details)
        else:
            self.finish(Status.UNKNOWN, f"{type(exc).__name__}: {exc}")

    def finish(
        self,
        status: Status,
        message: str | None = None,
        details: Any = None,
        metadata: framing.MetadataLike | None = None,
    ) -> None:
        """Send headers (if still owed) and the one trailers frame, then release the stream.

        Idempotent. Sent without waiting on back-pressure: the client needs the trailers to
        finish the call, and a frame this small cannot flood the channel.
        """
        if self.finished:
            return
        self.finished = True
        self.recv_closed = True
        try:
            if not self._headers_sent:
                self._headers_sent = True
                self._sender.send_now(framing.response_headers(self.id))
            trailers = framing.status_to_proto(status, message, details)
            self._sender.send_now(framing.response_trailers(self.id, trailers, metadata))
        except ChannelClosedError:
            logger.debug("tunnel[%s] stream %d: channel closed before trailers %s", self._tag, self.id, status.name)
        self.release()
        self._wake()
        if self._on_finished is not None:
            self._on_finished(self)

    def release(self) -> None:
        """Drop buffered request data (the stream will read no more)."""
        self._inbox.clear()
        self._inbox_bytes = 0
        self.reassembler.reset()

    # -- helpers -------------------------------------------------------------------------------
    def _check_open(self) -> None:
        if self.finished:
            raise ProtocolError("the stream is closed")

    def _send_headers(self, metadata: framing.MetadataLike | None = None) -> None:
        self._headers_sent = True
        self._sender.send_now(framing.response_headers(self.id, metadata))
