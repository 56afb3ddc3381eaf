"""gRPC-web on aiohttp: ``POST /{package.Service}/{Method}`` into the shared handler table.

The browser SDK reaches the robot with binary gRPC-web over ``fetch`` (real-clients.md §4.1), so
this is the third transport into the one handler table (design.md): :class:`GrpcWebStream` is
shaped like :class:`grpclib.server.Stream`, so every handler runs unchanged, and counts as
``grpc-web`` in the call stats.

On the wire: the request body holds 5-byte-prefixed messages; the response streams one flushed
HTTP chunk per message (server-streaming calls are read incrementally by the browser) and ends with
the 0x80 trailer frame. A call that fails before anything was sent gets a *trailers-only* answer:
``grpc-status``/``grpc-message`` as HTTP headers and an empty body. HTTP/1.1 cannot stream a request
body from ``fetch``, so client- and bidi-streaming calls receive the body's messages all at once.

A client that disconnects cancels its call: the aiohttp server must run with
``handler_cancellation=True`` (the one-port listener does), so the request task, and with it the
handler that runs inline in it, is cancelled; no task outlives the request.
"""

from __future__ import annotations

import asyncio
import binascii
import logging
from collections.abc import AsyncIterator, Collection, Mapping
from types import TracebackType
from typing import Any, Generic, Protocol, TypeVar

from aiohttp import web
from aiohttp.client_exceptions import ClientConnectionResetError
from aiohttp.web_protocol import RequestPayloadError
from google.protobuf.message import DecodeError
from grpclib.const import Handler, Status
from grpclib.encoding.proto import ProtoStatusDetailsCodec
from grpclib.exceptions import GRPCError, ProtocolError
from grpclib.metadata import Deadline, decode_bin_value, encode_bin_value, encode_grpc_message, encode_metadata
from grpclib.protocol import Peer
from multidict import CIMultiDictProxy, MultiDict

from . import frames
from .const import FRAME_HEADER_SIZE, GRPC_WEB_CONTENT_TYPE, GRPC_WEB_CONTENT_TYPES, MAX_MESSAGE_SIZE

logger = logging.getLogger(__name__)

RecvT = TypeVar("RecvT")
SendT = TypeVar("SendT")

#: Metadata a handler may send: a mapping or ``(key, value)`` pairs, as grpclib accepts.
MetadataLike = Mapping[str, str | bytes] | Collection[tuple[str, str | bytes]]

#: Transport name in :class:`peer.handlers.CallStats`.
TRANSPORT = "grpc-web"

#: HTTP/1.1 headers that describe the connection or the body, not the call (grpclib leaves out
#: ``te``, ``content-type`` and ``user-agent`` the same way; ``grpc-*`` is dropped by prefix).
_NOT_METADATA = frozenset({
    "host", "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "trailer",
    "content-length", "te", "content-type", "user-agent",
})

_STATUS_DETAILS_KEY = "grpc-status-details-bin"
_status_details_codec = ProtoStatusDetailsCodec()


class Servable(Protocol):
    """Anything with grpclib's ``__mapping__()``: a generated service or a ``HandlerTable``."""

    def __mapping__(self) -> Mapping[str, Handler]: ...


class ClientGoneError(GRPCError):
    """The client disconnected while the call was answering.

    A :class:`GRPCError` so that the handler table passes it through without logging it as a
    handler failure; nothing is sent for it, there is nobody left to read it.
    """

    def __init__(self) -> None:
        super().__init__(Status.CANCELLED, "the client disconnected")


def metadata_from_headers(headers: CIMultiDictProxy[str]) -> MultiDict[str | bytes]:
    """Invocation metadata as grpclib would give it over HTTP/2 (lower-case keys, ``-bin`` decoded)."""
    metadata: MultiDict[str | bytes] = MultiDict()
    for key, value in headers.items():
        name = key.lower()
        if name in _NOT_METADATA or name.startswith(("grpc-", ":")):
            continue
        if name.endswith("-bin"):
            try:
                metadata.add(name, decode_bin_value(value.encode("ascii")))
            except (binascii.Error, UnicodeEncodeError, ValueError):
                raise GRPCError(Status.INVALID_ARGUMENT, f"metadata {name} is not valid base64") from None
        else:
            metadata.add(name, value)
    return metadata


def status_pairs(
    status: Status,
    message: str | None = None,
    details: Any = None,
    metadata: MetadataLike | None = None,
) -> list[tuple[str, str]]:
    """``grpc-status``, ``grpc-message`` (percent-encoded), status details and trailing metadata."""
    pairs = [("grpc-status", str(status.value))]
    if message is not None:
        pairs.append(("grpc-message", encode_grpc_message(message)))
    if details is not None:
        encoded = _status_details_codec.encode(status, message, details)
        pairs.append((_STATUS_DETAILS_KEY, encode_bin_value(encoded).decode("ascii")))
    if metadata:
        pairs.extend(encode_metadata(metadata))
    return pairs


class GrpcWebStream(Generic[RecvT, SendT]):
    """One gRPC-web call, shaped like :class:`grpclib.server.Stream`.

    Handler-facing: :meth:`recv_message` (and async iteration), :meth:`send_initial_metadata`,
    :meth:`send_message`, :meth:`send_trailing_metadata`, :meth:`cancel`, ``metadata``,
    ``deadline``, ``peer``, ``user_agent`` and the async context manager. Wire order is kept here:
    response headers once and first, then data frames, then exactly one trailer frame (or one
    trailers-only response when nothing went out before the status).
    """

    transport = TRANSPORT

    def __init__(
        self,
        request: web.BaseRequest,
        method_name: str,
        handler: Handler,
        messages: list[bytes],
        *,
        metadata: MultiDict[str | bytes],
        deadline: Deadline | None = None,
        content_type: str = GRPC_WEB_CONTENT_TYPE,
    ) -> None:
        self.method_name = method_name
        #: Invocation metadata (a multidict), without connection headers, as grpclib gives it.
        self.metadata: MultiDict[str | bytes] | None = metadata
        #: :class:`grpclib.metadata.Deadline` from the ``grpc-timeout`` header, or ``None``.
        self.deadline = deadline
        transport = request.transport
        #: The connection's peer (``addr()``, ``cert()``), as grpclib gives it; ``None`` once gone.
        self.peer = Peer(transport) if transport is not None else None
        #: connect-web sends ``x-user-agent`` (browsers may not set ``user-agent``).
        self.user_agent = request.headers.get("x-user-agent") or request.headers.get("user-agent")
        self._request = request
        self._cardinality = handler.cardinality
        self._recv_type: Any = handler.request_type
        self._send_type: Any = handler.reply_type
        self._content_type = content_type
        self._inbox = list(reversed(messages))
        self._response: web.StreamResponse | None = None
        self._message_sent = False
        self.finished = False
        self.client_gone = False

    def __repr__(self) -> str:
        return f"<GrpcWebStream {self.method_name}>"

    @property
    def response(self) -> web.StreamResponse | None:
        """What the aiohttp handler returns: prepared, and finished once trailers went out."""
        return self._response

    # -- grpclib.server.Stream -----------------------------------------------------------------
    async def recv_message(self) -> RecvT | None:
        """The next request message, or ``None`` after the body's last one."""
        if not self._inbox:
            return None
        payload = self._inbox.pop()
        try:
            message: RecvT = self._recv_type.FromString(payload)
        except DecodeError as exc:
            raise GRPCError(Status.INVALID_ARGUMENT,
                            f"malformed {self._recv_type.DESCRIPTOR.full_name}: {exc}") from None
        return message

    def __aiter__(self) -> AsyncIterator[RecvT]:
        return self

    async def __anext__(self) -> RecvT:
        message = await self.recv_message()
        if message is None:
            raise StopAsyncIteration
        return message

    async def send_initial_metadata(self, *, metadata: MetadataLike | None = None) -> None:
        """Send the response headers now (later calls put their status in the trailer frame)."""
        if self._response is not None:
            raise ProtocolError("Initial metadata was already sent")
        self._check_open()
        response = web.StreamResponse(status=200)
        response.headers["Content-Type"] = self._content_type
        for key, value in encode_metadata(MultiDict(metadata or ())):
            response.headers.add(key, value)
        await self._prepare(response)

    async def send_message(self, message: SendT) -> None:
        """One data frame, written (and so flushed to the socket) before returning."""
        self._check_open()
        if self._message_sent and not self._cardinality.server_streaming:
            raise ProtocolError("Message was already sent")
        if not isinstance(message, self._send_type):
            raise TypeError(f"Message must be of type {self._send_type!r}, not {type(message)!r}")
        if self._response is None:
            await self.send_initial_metadata()
        await self._write(frames.encode_message(message.SerializeToString()))
        self._message_sent = True

    async def send_trailing_metadata(
        self,
        *,
        status: Status = Status.OK,
        status_message: str | None = None,
        status_details: Any = None,
        metadata: MetadataLike | None = None,
    ) -> None:
        if self.finished:
            raise ProtocolError("Trailing metadata was already sent")
        if status is Status.OK and not self._message_sent and not self._cardinality.server_streaming:
            raise ProtocolError("Unary response with OK status requires a single message to be sent")
        await self.finish(status, status_message, status_details, metadata)

    async def cancel(self) -> None:
        """End the call from the server side: HTTP/1.1 has no per-request reset, so CANCELLED trailers."""
        if self.finished:
            raise ProtocolError("Stream was already closed")
        await self.finish(Status.CANCELLED, "cancelled by the server")

    async def __aenter__(self) -> GrpcWebStream[RecvT, SendT]:
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
        await self.finish_with(exc_val)
        return True

    # -- ending the call -----------------------------------------------------------------------
    async def finish_with(self, exc: BaseException | None) -> None:
        """Send the status that describes how the handler ended (grpclib's mapping)."""
        if exc is None:
            if not self._message_sent and not self._cardinality.server_streaming:
                logger.error("grpc-web %s returned without a response", self.method_name)
                await self.finish(Status.UNKNOWN, "the handler returned without sending a response")
            else:
                await self.finish(Status.OK)
        elif isinstance(exc, GRPCError):
            await self.finish(exc.status, exc.message, exc.details)
        else:
            await self.finish(Status.UNKNOWN, f"{type(exc).__name__}: {exc}")

    async def finish(
        self,
        status: Status,
        message: str | None = None,
        details: Any = None,
        metadata: MetadataLike | None = None,
    ) -> None:
        """The call's one status: a trailer frame, or a trailers-only response. Idempotent."""
        if self.finished:
            return
        self.finished = True
        self._inbox.clear()
        if self.client_gone:
            return
        pairs = status_pairs(status, message, details, metadata)
        try:
            if self._response is None:
                response = web.StreamResponse(status=200, headers={"Content-Type": self._content_type})
                for key, value in pairs:
                    response.headers.add(key, value)
                response.content_length = 0
                await self._prepare(response)
            else:
                await self._write(frames.encode_trailers(pairs))
            assert self._response is not None
            await self._response.write_eof()
        except (ClientGoneError, ClientConnectionResetError, ConnectionResetError):
            self.client_gone = True
            logger.debug("grpc-web %s: the client left before the %s status", self.method_name, status.name)

    # -- helpers -------------------------------------------------------------------------------
    def _check_open(self) -> None:
        if self.client_gone:
            raise ClientGoneError()
        if self.finished:
            raise ProtocolError("the stream is closed")

    async def _prepare(self, response: web.StreamResponse) -> None:
        self._response = response
        try:
            await response.prepare(self._request)
        except (ClientConnectionResetError, ConnectionResetError):
            self.client_gone = True
            raise ClientGoneError() from None

    async def _write(self, data: bytes) -> None:
        assert self._response is not None
        try:
            await self._response.write(data)
        except (ClientConnectionResetError, ConnectionResetError):
            self.client_gone = True
            raise ClientGoneError() from None


class GrpcWebHandler:
    """The aiohttp handler for ``POST /{service}/{method}``, over one handler table.

    Checks in grpclib's order (content type, method, ``grpc-timeout``), then reads and splits the
    body and runs the handler in the request's own task, bounded by the call's deadline.
    """

    def __init__(self, handlers: Servable, *, max_message_size: int = MAX_MESSAGE_SIZE) -> None:
        self._mapping = handlers.__mapping__()  # a live view: services added later are served too
        self._max_message_size = max_message_size
        self._max_body = max_message_size + FRAME_HEADER_SIZE

    async def handle(self, request: web.Request) -> web.StreamResponse:
        content_type = request.headers.get("Content-Type", "")
        base = content_type.partition(";")[0].strip().lower()
        if base not in GRPC_WEB_CONTENT_TYPES:
            # grpclib answers a wrong content type on the native port the same way
            return _trailers_only(415, Status.UNKNOWN,
                                  f"unsupported content-type {content_type!r}: this endpoint speaks "
                                  f"binary gRPC-web ({GRPC_WEB_CONTENT_TYPE})")
        path = request.path
        handler = self._mapping.get(path)
        if handler is None:
            logger.info("grpc-web: unknown method %s", path)
            return _trailers_only(200, Status.UNIMPLEMENTED, f"Method not found: {path}")
        try:
            deadline = Deadline.from_headers([("grpc-timeout", v) for v in request.headers.getall("grpc-timeout", ())])
        except ValueError:
            return _trailers_only(200, Status.UNKNOWN, "Invalid grpc-timeout header")
        try:
            metadata = metadata_from_headers(request.headers)
            body = await self._read_body(request)
            messages = frames.decode_messages(body, self._max_message_size)
            if not handler.cardinality.client_streaming and len(messages) > 1:
                raise GRPCError(Status.INVALID_ARGUMENT,
                                f"{path} takes one request message, the body holds {len(messages)}")
        except ClientGoneError:
            logger.debug("grpc-web %s: the client left while sending its request", path)
            return web.Response(status=499, reason="Client Closed Request")  # never sent
        except GRPCError as exc:
            logger.info("grpc-web %s: %s", path, exc.message)
            return _trailers_only(200, exc.status, exc.message)
        stream: GrpcWebStream[Any, Any] = GrpcWebStream(
            request, path, handler, messages, metadata=metadata, deadline=deadline, content_type=base,
        )
        await self._run(stream, handler)
        # no response only when the client left before it began; aiohttp drops it with the connection
        return stream.response or web.Response(status=499, reason="Client Closed Request")

    async def _read_body(self, request: web.Request) -> bytes:
        """The whole body, refused early when it declares (or reaches) more than one message's cap."""
        declared = request.content_length
        if declared is not None and declared > self._max_body:
            raise GRPCError(Status.RESOURCE_EXHAUSTED,
                            f"request body of {declared} bytes exceeds the limit of {self._max_body}")
        body = bytearray()
        try:
            async for chunk in request.content.iter_chunked(1 << 16):
                body += chunk
                if len(body) > self._max_body:
                    raise GRPCError(Status.RESOURCE_EXHAUSTED,
                                    f"request body exceeds the limit of {self._max_body} bytes")
        except (RequestPayloadError, ConnectionResetError):
            raise ClientGoneError() from None
        return bytes(body)

    async def _run(self, stream: GrpcWebStream[Any, Any], handler: Handler) -> None:
        delay = None if stream.deadline is None else stream.deadline.time_remaining()
        try:
            async with asyncio.timeout(delay) as timeout:
                await handler.func(stream)
        except TimeoutError as exc:
            if timeout.expired():
                logger.info("grpc-web %s exceeded its deadline", stream.method_name)
                await stream.finish(Status.DEADLINE_EXCEEDED, "Deadline exceeded")
            else:
                logger.exception("grpc-web %s failed", stream.method_name)
                await stream.finish_with(exc)
        except ClientGoneError:
            logger.debug("grpc-web %s: the client disconnected", stream.method_name)
        except Exception as exc:
            if not isinstance(exc, GRPCError):
                logger.exception("grpc-web %s failed", stream.method_name)
            await stream.finish_with(exc)
        else:
            await stream.finish_with(None)


def _trailers_only(http_status: int, status: Status, message: str | None) -> web.Response:
    """A call that ends before it starts: the status in HTTP headers, an empty body."""
    response = web.Response(status=http_status, headers={"Content-Type": GRPC_WEB_CONTENT_TYPE})
    for key, value in status_pairs(status, message):
        response.headers.add(key, value)
    return response
