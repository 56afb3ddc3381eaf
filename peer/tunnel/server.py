"""The server side of gRPC over a data channel: frames in, handler tasks, frames out.

:class:`TunnelServer` implements the per-message algorithm of goutils' server channel
(wire-protocol.md §7.4) over any :class:`~peer.tunnel.channel.MessageChannel`, dispatching into
the same handler table that grpclib serves on HTTP/2. Unlike goutils, each stream has its own
queue and task, so one slow handler never holds up the frames of another stream.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, Protocol

from google.protobuf.message import DecodeError
from grpclib.const import Handler, Status
from grpclib.exceptions import GRPCError

from signaling.gen.proto.rpc.webrtc.v1 import grpc_pb2

from . import framing
from .channel import ChannelClosedError, FrameSender, MessageChannel
from .constants import (
    CLOSE_GRACE_S,
    DEFAULT_MAX_STREAMS,
    MAX_MESSAGE_SIZE,
    RST_MESSAGE,
    SEND_PAUSE_THRESHOLD,
    SEND_STALL_TIMEOUT_S,
    UNIMPLEMENTED_MESSAGE,
)
from .stream import TunnelStream

logger = logging.getLogger(__name__)

HandlerFunc = Callable[[TunnelStream[Any, Any]], Coroutine[Any, Any, None]]


class Servable(Protocol):
    """Anything with grpclib's ``__mapping__()``: a generated service or a ``HandlerTable``."""

    def __mapping__(self) -> Mapping[str, Handler]: ...


class TunnelServer:
    """Serves the calls that arrive on one data channel.

    It registers itself as the channel's listener on construction. Frames are handled
    synchronously in the channel's message callback (:meth:`handle_frame`); each call runs its
    handler in a task of its own. :meth:`close` (also run when the channel closes) cancels every
    handler and drops every buffer.
    """

    def __init__(
        self,
        channel: MessageChannel,
        handlers: Servable | Mapping[str, Handler],
        *,
        max_streams: int = DEFAULT_MAX_STREAMS,
        max_message_size: int = MAX_MESSAGE_SIZE,
        send_pause_threshold: int = SEND_PAUSE_THRESHOLD,
        send_stall_timeout: float = SEND_STALL_TIMEOUT_S,
        peer: Any = None,
        tag: str | None = None,
    ) -> None:
        self._mapping: Mapping[str, Handler] = (
            handlers if isinstance(handlers, Mapping) else handlers.__mapping__()
        )
        self._channel = channel
        self._tag = tag if tag is not None else f"{id(channel):x}"
        self._sender = FrameSender(
            channel, pause_threshold=send_pause_threshold, stall_timeout=send_stall_timeout, tag=self._tag
        )
        self._max_streams = max_streams
        self._max_message_size = max_message_size
        self._peer = peer
        self._streams: dict[int, TunnelStream[Any, Any]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False
        self._close_done = asyncio.Event()
        self._close_task: asyncio.Task[None] | None = None
        channel.set_listener(self.handle_frame, self._on_channel_closed)

    def __repr__(self) -> str:
        return f"<TunnelServer {self._tag} streams={len(self._streams)}>"

    @property
    def active_streams(self) -> int:
        """Calls that have not sent their trailers yet."""
        return len(self._streams)

    @property
    def tasks(self) -> frozenset[asyncio.Task[None]]:
        """Handler tasks still running (a handler may outlive its trailers briefly)."""
        return frozenset(self._tasks)

    @property
    def sender(self) -> FrameSender:
        return self._sender

    @property
    def closed(self) -> bool:
        return self._closed

    # -- frames in -----------------------------------------------------------------------------
    def handle_frame(self, data: bytes) -> None:
        """Process one data-channel message (one serialized ``Request``); never raises.

        An exception escaping into the channel's callback would reach aiortc's SCTP receive path
        (pyee re-raises an unhandled ``error`` event) and could break the whole connection, so
        anything unexpected is logged here instead.
        """
        if self._closed:
            return
        try:
            self._handle_frame(data)
        except Exception:
            logger.exception("tunnel[%s] failed to handle a frame", self._tag)

    def _handle_frame(self, data: bytes) -> None:
        request = grpc_pb2.Request()
        try:
            request.ParseFromString(data)
        except DecodeError:
            logger.warning("tunnel[%s] dropping a frame that is not a Request (%d bytes)", self._tag, len(data))
            return
        if not request.HasField("stream"):  # id 0 is an empty but present submessage
            logger.debug("tunnel[%s] dropping a frame without a stream", self._tag)
            return
        stream_id = request.stream.id
        kind = request.WhichOneof("type")
        stream = self._streams.get(stream_id)
        if stream is None:
            if kind == "headers":
                self._open(stream_id, request.headers)
            else:  # late frames of finished streams, RSTs after trailers, messages before headers
                logger.debug("tunnel[%s] stream %d: dropping %s for an unknown stream", self._tag, stream_id, kind)
            return
        if kind == "message":
            self._on_message(stream, request.message)
        elif kind == "rst_stream":
            logger.debug("tunnel[%s] stream %d: reset by the client", self._tag, stream_id)
            self._abort(stream, Status.CANCELLED, RST_MESSAGE)
        elif kind == "headers":
            self._abort(stream, Status.INVALID_ARGUMENT, "headers already received")
        else:
            self._abort(stream, Status.INVALID_ARGUMENT, "unknown frame type")

    def _open(self, stream_id: int, headers: grpc_pb2.RequestHeaders) -> None:
        method = headers.method
        handler = self._mapping.get(method)
        if handler is None:
            logger.info("tunnel[%s] stream %d: unknown method %s", self._tag, stream_id, method)
            self._reject(stream_id, Status.UNIMPLEMENTED, UNIMPLEMENTED_MESSAGE)
            return
        if len(self._streams) >= self._max_streams:
            logger.warning("tunnel[%s] stream %d: refusing %s, %d streams already open", self._tag, stream_id,
                           method, len(self._streams))
            self._reject(stream_id, Status.RESOURCE_EXHAUSTED,
                         f"too many concurrent streams on this data channel (max {self._max_streams})")
            return
        try:
            deadline = framing.deadline_from_headers(headers)
        except ValueError:
            self._reject(stream_id, Status.UNKNOWN, "Invalid grpc-timeout header")
            return
        stream: TunnelStream[Any, Any] = TunnelStream(
            stream_id,
            method,
            handler,
            self._sender,
            metadata=framing.metadata_from_proto(headers.metadata, request=True),
            deadline=deadline,
            peer=self._peer,
            user_agent=framing.first_value(headers.metadata, "user-agent"),
            max_message_size=self._max_message_size,
            on_finished=self._on_stream_finished,
            tag=self._tag,
        )
        self._streams[stream_id] = stream
        task = asyncio.get_running_loop().create_task(self._run(stream, handler.func),
                                                      name=f"tunnel[{self._tag}]/{stream_id}{method}")
        stream.task = task
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _on_message(self, stream: TunnelStream[Any, Any], message: grpc_pb2.RequestMessage) -> None:
        if stream.recv_closed:
            return  # after EOS (or the one request of a unary call) messages are ignored
        if message.has_message:
            if not message.HasField("packet_message"):
                self._abort(stream, Status.INVALID_ARGUMENT, "message frame without a packet")
                return
            packet = message.packet_message
            try:
                payload = stream.reassembler.add(packet.data, packet.eom)
            except framing.MessageTooLargeError as exc:
                logger.warning("tunnel[%s] stream %d: %s", self._tag, stream.id, exc)
                self._abort(stream, Status.RESOURCE_EXHAUSTED, str(exc))
                return
            if payload is None:
                return  # not the last chunk: EOS only counts on the chunk that ends a message
            if not stream.deliver(payload):
                self._abort(stream, Status.RESOURCE_EXHAUSTED,
                            "the handler is not reading its requests fast enough")
                return
        if message.eos:
            stream.close_recv()

    # -- handler tasks -------------------------------------------------------------------------
    async def _run(self, stream: TunnelStream[Any, Any], func: HandlerFunc) -> None:
        delay = None if stream.deadline is None else stream.deadline.time_remaining()
        try:
            async with asyncio.timeout(delay) as timeout:
                await func(stream)
        except TimeoutError as exc:
            if timeout.expired():
                logger.info("tunnel[%s] stream %d: %s exceeded its deadline", self._tag, stream.id,
                            stream.method_name)
                stream.finish(Status.DEADLINE_EXCEEDED, "Deadline exceeded")
            else:
                logger.exception("tunnel[%s] stream %d: %s failed", self._tag, stream.id, stream.method_name)
                stream.finish_with(exc)
        except asyncio.CancelledError:
            # reset by the client, or the tunnel is closing: the trailers are already settled
            stream.finish(Status.CANCELLED, RST_MESSAGE)
            raise
        except Exception as exc:
            if not isinstance(exc, GRPCError):
                logger.exception("tunnel[%s] stream %d: %s failed", self._tag, stream.id, stream.method_name)
            stream.finish_with(exc)
        else:
            stream.finish_with(None)

    def _on_stream_finished(self, stream: TunnelStream[Any, Any]) -> None:
        if self._streams.get(stream.id) is stream:
            del self._streams[stream.id]

    def _abort(self, stream: TunnelStream[Any, Any], status: Status, message: str) -> None:
        """Trailers now, then cancel the handler (goutils sends CANCELLED trailers on RST too)."""
        stream.finish(status, message)
        task = stream.task
        if task is not None and not task.done():
            task.cancel()

    def _reject(self, stream_id: int, status: Status, message: str) -> None:
        """Answer a stream that never starts: empty headers, then trailers (all clients want both)."""
        try:
            self._sender.send_now(framing.response_headers(stream_id))
            self._sender.send_now(framing.response_trailers(stream_id, framing.status_to_proto(status, message)))
        except ChannelClosedError:
            pass

    # -- closing -------------------------------------------------------------------------------
    def _on_channel_closed(self) -> None:
        self._sender.closed = True
        if not self._closed and self._close_task is None:
            self._close_task = asyncio.get_running_loop().create_task(self.close(), name=f"tunnel[{self._tag}] close")

    async def close(self) -> None:
        """Cancel every call and release every buffer; closes the channel too. Idempotent.

        Streams still open are told UNAVAILABLE if the channel can still carry it. Handlers get
        :data:`~peer.tunnel.constants.CLOSE_GRACE_S` to unwind after cancellation.
        """
        if self._closed:
            await self._close_done.wait()  # a close already under way (e.g. after a remote close)
            return
        self._closed = True
        self._channel.set_listener(None, None)
        for stream in list(self._streams.values()):
            stream.finish(Status.UNAVAILABLE, "the data channel is closing")
        self._streams.clear()
        self._sender.closed = True
        tasks = [task for task in self._tasks if task is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=CLOSE_GRACE_S)
            for task in pending:
                logger.warning("tunnel[%s] %s ignored cancellation for %g s", self._tag, task.get_name(),
                               CLOSE_GRACE_S)
        try:
            self._channel.close()
        except Exception:
            logger.exception("tunnel[%s] closing the data channel failed", self._tag)
        self._close_done.set()
        logger.debug("tunnel[%s] closed", self._tag)

    async def wait_closed(self) -> None:
        """Return once the tunnel has closed (locally or because the channel closed)."""
        await self._close_done.wait()
