"""The client side of gRPC over a data channel, shaped like grpclib's ``Channel``.

Generated grpclib stubs only call ``channel.request(...)`` and then drive the returned stream
(``send_message``/``end``/``recv_message``/``recv_*_metadata``/``cancel`` inside ``async with``).
:class:`TunnelChannel` provides exactly that over a :class:`~peer.tunnel.channel.MessageChannel`,
so ``RobotServiceStub(TunnelChannel(dc))`` works unchanged, for our own dialer and for tests.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable
from types import TracebackType
from typing import Any, Generic, TypeVar

from google.protobuf.message import DecodeError
from grpclib.const import Cardinality, Status
from grpclib.exceptions import GRPCError, ProtocolError, StreamTerminatedError
from grpclib.metadata import Deadline
from multidict import MultiDict

from signaling.gen.proto.rpc.webrtc.v1 import grpc_pb2

from . import framing
from .channel import FrameSender, MessageChannel
from .constants import MAX_MESSAGE_SIZE, SEND_PAUSE_THRESHOLD, SEND_STALL_TIMEOUT_S

logger = logging.getLogger(__name__)

SendT = TypeVar("SendT")
RecvT = TypeVar("RecvT")

_Trailers = tuple[Status, str | None, Any, framing.Metadata]


class TunnelChannel:
    """A grpclib-compatible client channel whose calls travel as frames on a data channel.

    Stream ids come from a per-channel counter starting at ``first_stream_id`` (0, as the TS
    and Rust clients do) and are never reused. Registers itself as the channel's listener.
    """

    def __init__(
        self,
        channel: MessageChannel,
        *,
        first_stream_id: int = 0,
        max_message_size: int = MAX_MESSAGE_SIZE,
        send_pause_threshold: int = SEND_PAUSE_THRESHOLD,
        send_stall_timeout: float = SEND_STALL_TIMEOUT_S,
        tag: str | None = None,
    ) -> None:
        self._channel = channel
        self._tag = tag if tag is not None else f"{id(channel):x}"
        self.sender = FrameSender(channel, pause_threshold=send_pause_threshold, stall_timeout=send_stall_timeout,
                                  tag=self._tag)
        self.max_message_size = max_message_size
        self._ids = itertools.count(first_stream_id)
        self._streams: dict[int, TunnelClientStream[Any, Any]] = {}
        self._closed = False
        channel.set_listener(self._handle_frame, self._on_channel_closed)

    def __repr__(self) -> str:
        return f"<TunnelChannel {self._tag} streams={len(self._streams)}>"

    @property
    def active_streams(self) -> int:
        return len(self._streams)

    @property
    def closed(self) -> bool:
        return self._closed

    def request(
        self,
        name: str,
        cardinality: Cardinality,
        request_type: type[SendT],
        reply_type: type[RecvT],
        *,
        timeout: float | None = None,
        deadline: Deadline | None = None,
        metadata: framing.MetadataLike | None = None,
    ) -> TunnelClientStream[SendT, RecvT]:
        """Same signature and deadline rules as :meth:`grpclib.client.Channel.request`."""
        if timeout is not None:
            from_timeout = Deadline.from_timeout(timeout)
            deadline = from_timeout if deadline is None else min(from_timeout, deadline)
        return TunnelClientStream(self, name, MultiDict(framing.metadata_items(metadata)), cardinality,
                                  request_type, reply_type, deadline=deadline)

    def close(self) -> None:
        """Fail every open call with UNAVAILABLE and close the data channel."""
        if self._closed:
            return
        self._shut("the data channel was closed by the client")
        self._channel.close()

    async def __aenter__(self) -> TunnelChannel:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- used by the streams -------------------------------------------------------------------
    def _register(self, stream: TunnelClientStream[Any, Any]) -> int:
        if self._closed:
            raise GRPCError(Status.UNAVAILABLE, "the data channel is closed")
        stream_id = next(self._ids)
        self._streams[stream_id] = stream
        return stream_id

    def _forget(self, stream_id: int) -> None:
        self._streams.pop(stream_id, None)

    # -- frames in -----------------------------------------------------------------------------
    def _handle_frame(self, data: bytes) -> None:
        try:
            self._dispatch(data)
        except Exception:  # never into the channel's callback: see TunnelServer.handle_frame
            logger.exception("tunnel[%s] failed to handle a frame", self._tag)

    def _dispatch(self, data: bytes) -> None:
        response = grpc_pb2.Response()
        try:
            response.ParseFromString(data)
        except DecodeError:
            logger.warning("tunnel[%s] dropping a frame that is not a Response (%d bytes)", self._tag, len(data))
            return
        if not response.HasField("stream"):
            return
        stream = self._streams.get(response.stream.id)
        if stream is None:  # every Viam client drops frames of streams it does not know
            logger.debug("tunnel[%s] stream %d: dropping a frame for an unknown stream", self._tag,
                         response.stream.id)
            return
        kind = response.WhichOneof("type")
        if kind == "headers":
            stream._on_headers(response.headers)
        elif kind == "message":
            stream._on_message(response.message)
        elif kind == "trailers":
            stream._on_trailers(response.trailers)
        else:
            stream._fail(GRPCError(Status.INTERNAL, "unknown response frame type"), rst=True)

    def _on_channel_closed(self) -> None:
        self.sender.closed = True
        self._shut("the data channel closed")

    def _shut(self, reason: str) -> None:
        self._closed = True
        self.sender.closed = True
        self._channel.set_listener(None, None)
        for stream in list(self._streams.values()):
            stream._fail(GRPCError(Status.UNAVAILABLE, reason), rst=False)
        self._streams.clear()


class TunnelClientStream(Generic[SendT, RecvT]):
    """One call, with the method set of :class:`grpclib.client.Stream` that stubs and users need.

    Errors surface as grpclib's: :class:`~grpclib.exceptions.GRPCError` with the trailers'
    status (raised by :meth:`recv_trailing_metadata`, hence at the end of ``async with``),
    :class:`~grpclib.exceptions.ProtocolError` for misuse. A deadline that passes is reported as
    ``GRPCError(DEADLINE_EXCEEDED)`` whether the server or the local timer noticed it first.
    """

    #: Initial metadata from the server's ``ResponseHeaders`` (after :meth:`recv_initial_metadata`).
    initial_metadata: framing.Metadata | None = None
    #: Trailing metadata from ``ResponseTrailers`` (after :meth:`recv_trailing_metadata`).
    trailing_metadata: framing.Metadata | None = None
    #: No transport-level peer information over a data channel.
    peer: Any = None

    def __init__(
        self,
        channel: TunnelChannel,
        method_name: str,
        metadata: framing.Metadata,
        cardinality: Cardinality,
        send_type: type[SendT],
        recv_type: type[RecvT],
        *,
        deadline: Deadline | None = None,
    ) -> None:
        self._channel = channel
        self._method_name = method_name
        self._metadata = metadata
        self._cardinality = cardinality
        self._send_type: Any = send_type
        self._recv_type: Any = recv_type
        self._deadline = deadline
        self.id: int | None = None
        self._send_request_done = False
        self._send_message_done = False
        self._eos_sent = False
        self._end_done = False
        self._recv_initial_metadata_done = False
        self._recv_trailing_metadata_done = False
        self._cancel_done = False
        self._open = False  # registered on the channel: headers sent, trailers not yet received
        self._headers: framing.Metadata | None = None
        self._messages: deque[bytes] = deque()
        self._trailers: _Trailers | None = None
        self._error: BaseException | None = None
        self._reassembler = framing.Reassembler(channel.max_message_size)
        self._waiters: list[asyncio.Future[None]] = []
        self._timer: asyncio.TimerHandle | None = None

    def __repr__(self) -> str:
        return f"<TunnelClientStream {self.id} {self._method_name}>"

    # -- sending -------------------------------------------------------------------------------
    async def send_request(self, *, end: bool = False) -> None:
        """Open the stream (``Request{headers}``); called by the first :meth:`send_message`."""
        if self._send_request_done:
            raise ProtocolError("Request is already sent")
        if end and not self._cardinality.client_streaming:
            raise ProtocolError("Unary request requires a message to be sent before ending outgoing stream")
        self._raise_if_failed()
        timeout = None
        if self._deadline is not None:
            timeout = self._deadline.time_remaining()
            if timeout <= 0:
                raise GRPCError(Status.DEADLINE_EXCEEDED, "Deadline exceeded")
        self.id = self._channel._register(self)
        self._open = True
        self._send_request_done = True
        self._start_timer()
        self._send_now(framing.request_headers(self.id, self._method_name, self._metadata, timeout))
        if end:
            self._send_now(framing.request_eos(self.id))
            self._eos_sent = self._end_done = True

    async def send_message(self, message: SendT, *, end: bool = False) -> None:
        if not self._send_request_done:
            await self.send_request()
        end_stream = end
        if not self._cardinality.client_streaming:
            if self._send_message_done:
                raise ProtocolError("Message was already sent")
            end_stream = True
        if self._end_done:
            raise ProtocolError("Stream is ended")
        self._raise_if_failed()
        if not isinstance(message, self._send_type):
            raise TypeError(f"Message must be of type {self._send_type!r}, not {type(message)!r}")
        assert self.id is not None
        frames = framing.request_messages(self.id, message.SerializeToString(), eos=end_stream)
        delay = None if self._deadline is None else self._deadline.time_remaining()
        try:
            async with asyncio.timeout(delay):
                for frame in frames:
                    if self._trailers is not None:
                        break  # the server has ended the call: the rest would be dropped anyway
                    await self._channel.sender.send(frame)
                    self._raise_if_failed()
        except TimeoutError:
            self._expire()
            self._raise_if_failed()
        except ConnectionError as exc:
            self._fail(GRPCError(Status.UNAVAILABLE, str(exc)), rst=False)
            self._raise_if_failed()
        self._send_message_done = True
        self._eos_sent = end_stream
        if end:
            self._end_done = True

    async def end(self) -> None:
        """Half-close: ``Request{message{eos}}`` (nothing more for a unary request, already ended)."""
        if not self._send_request_done:
            raise ProtocolError("Request was not sent")
        if self._end_done:
            raise ProtocolError("Stream was already ended")
        if not self._cardinality.client_streaming:
            if not self._send_message_done:
                raise ProtocolError("Unary request requires a single message to be sent")
            self._end_done = True
            return
        self._raise_if_failed()
        if not self._eos_sent:
            assert self.id is not None
            self._send_now(framing.request_eos(self.id))
            self._eos_sent = True
        self._end_done = True

    async def cancel(self) -> None:
        """Reset the call (``Request{rst_stream}``); later operations raise ``StreamTerminatedError``."""
        if not self._send_request_done:
            raise ProtocolError("Request was not sent yet")
        if self._cancel_done:
            raise ProtocolError("Stream was already cancelled")
        self._cancel_done = True
        self._fail(StreamTerminatedError("Stream was cancelled"), rst=True)

    # -- receiving -----------------------------------------------------------------------------
    async def recv_initial_metadata(self) -> None:
        if not self._send_request_done:
            raise ProtocolError("Request was not sent yet")
        if self._recv_initial_metadata_done:
            raise ProtocolError("Initial metadata was already received")
        await self._wait(lambda: self._headers is not None or self._trailers is not None)
        self._recv_initial_metadata_done = True
        if self._headers is not None:
            self.initial_metadata = self._headers
        else:  # trailers without headers: take them as a trailers-only response
            self.initial_metadata = MultiDict()
            self._take_trailers()

    async def recv_message(self) -> RecvT | None:
        """The next reply, or ``None`` once the trailers have arrived (their status is raised later)."""
        if not self._recv_initial_metadata_done:
            await self.recv_initial_metadata()
        await self._wait(lambda: bool(self._messages) or self._trailers is not None)
        if not self._messages:
            return None
        payload = self._messages.popleft()
        try:
            message: RecvT = self._recv_type.FromString(payload)
        except DecodeError:
            raise GRPCError(Status.INTERNAL, f"could not decode the reply as {self._recv_type.__name__}") from None
        return message

    async def recv_trailing_metadata(self) -> None:
        """Wait for the trailers; raises ``GRPCError`` unless their status is OK."""
        if self._recv_trailing_metadata_done:
            raise ProtocolError("Trailing metadata was already received")
        if not self._recv_initial_metadata_done:
            await self.recv_initial_metadata()
            if self._recv_trailing_metadata_done:
                return
        await self._wait(lambda: self._trailers is not None)
        self._take_trailers()

    def __aiter__(self) -> AsyncIterator[RecvT]:
        return self

    async def __anext__(self) -> RecvT:
        message = await self.recv_message()
        if message is None:
            raise StopAsyncIteration
        return message

    async def __aenter__(self) -> TunnelClientStream[SendT, RecvT]:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        if not self._send_request_done:
            return
        try:
            if exc_val is None and not self._cancel_done:
                if not self._recv_initial_metadata_done:
                    await self.recv_initial_metadata()
                if not self._recv_trailing_metadata_done:
                    await self.recv_trailing_metadata()
        finally:
            if self._open:  # left early: tell the server, as grpclib resets its HTTP/2 stream
                self._fail(StreamTerminatedError("Stream was left before it ended"), rst=True)
            self._stop_timer()

    # -- fed by the channel --------------------------------------------------------------------
    def _on_headers(self, headers: grpc_pb2.ResponseHeaders) -> None:
        if self._headers is not None:
            self._fail(GRPCError(Status.INTERNAL, "the server sent headers twice"), rst=True)
            return
        self._headers = framing.metadata_from_proto(headers.metadata)
        self._wake()

    def _on_message(self, message: grpc_pb2.ResponseMessage) -> None:
        if self._headers is None:
            self._fail(GRPCError(Status.INTERNAL, "the server sent a message before headers"), rst=True)
            return
        packet = message.packet_message
        try:
            payload = self._reassembler.add(packet.data, packet.eom)
        except framing.MessageTooLargeError as exc:
            self._fail(GRPCError(Status.RESOURCE_EXHAUSTED, str(exc)), rst=True)
            return
        if payload is not None:
            self._messages.append(payload)
            self._wake()

    def _on_trailers(self, trailers: grpc_pb2.ResponseTrailers) -> None:
        if trailers.HasField("status"):
            status, message, details = framing.status_from_proto(trailers.status)
        else:  # absent status means OK to every Viam client
            status, message, details = Status.OK, None, None
        self._trailers = (status, message, details, framing.metadata_from_proto(trailers.metadata))
        self._close()
        self._wake()

    def _fail(self, error: BaseException, *, rst: bool) -> None:
        """End the call locally with ``error`` (no-op once the trailers are in)."""
        if self._trailers is not None or self._error is not None:
            return
        self._error = error
        if rst and self._open and self.id is not None:
            try:
                self._channel.sender.send_now(framing.request_rst(self.id))
            except ConnectionError:
                pass
        self._close()
        self._messages.clear()
        self._reassembler.reset()
        self._wake()

    # -- helpers -------------------------------------------------------------------------------
    def _close(self) -> None:
        if self._open and self.id is not None:
            self._open = False
            self._channel._forget(self.id)
        self._stop_timer()

    def _send_now(self, frame: bytes) -> None:
        try:
            self._channel.sender.send_now(frame)
        except ConnectionError as exc:
            self._fail(GRPCError(Status.UNAVAILABLE, str(exc)), rst=False)
            self._raise_if_failed()

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            # a fresh traceback each time: re-raising one instance would keep growing its traceback
            raise self._error.with_traceback(None)

    def _take_trailers(self) -> None:
        assert self._trailers is not None
        status, message, details, metadata = self._trailers
        self._recv_trailing_metadata_done = True
        self.trailing_metadata = metadata
        if status is not Status.OK:
            raise GRPCError(status, message, details)

    async def _wait(self, ready: Callable[[], bool]) -> None:
        while True:
            self._raise_if_failed()
            if ready():
                return
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def _start_timer(self) -> None:
        if self._deadline is not None and self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self._deadline.time_remaining(), self._expire)

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expire(self) -> None:
        self._timer = None
        self._fail(GRPCError(Status.DEADLINE_EXCEEDED, "Deadline exceeded"), rst=True)
