"""Encoding and decoding of ``proto.rpc.webrtc.v1`` frames (wire-protocol.md §7).

Pure functions and one small reassembly buffer, shared by the server and the client side so that
both chunk, reassemble and translate metadata and status the same way.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Collection, Iterator, Mapping, Sequence
from typing import Any

import google.rpc.status_pb2 as status_pb2
from google.protobuf import symbol_database
from google.protobuf.message import Message
from grpclib.const import Status
from grpclib.metadata import Deadline, decode_timeout
from multidict import MultiDict

from signaling.gen.proto.rpc.webrtc.v1 import grpc_pb2

from .constants import MAX_MESSAGE_SIZE, REQUEST_CHUNK_SIZE, RESPONSE_CHUNK_SIZE

#: What grpclib accepts as metadata (a mapping or pairs; ``-bin`` keys carry bytes).
MetadataLike = Mapping[str, str | bytes] | Collection[tuple[str, str | bytes]]
Metadata = MultiDict[str | bytes]

#: HTTP/2 request headers the Rust client forwards as metadata; grpclib never shows them to a
#: handler as metadata, so neither do we (the deadline comes from ``grpc-timeout`` separately).
_TRANSPORT_KEYS = frozenset({"te", "content-type", "user-agent"})


class MessageTooLargeError(Exception):
    """A message grew past the reassembly limit; the partial message has been dropped."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"message of at least {size} bytes exceeds the {limit}-byte limit")
        self.size = size
        self.limit = limit


# -- chunking ----------------------------------------------------------------------------------
def split_message(payload: bytes, chunk_size: int) -> Iterator[tuple[bytes, bool]]:
    """``(chunk, eom)`` pairs; a zero-length message is one empty chunk with ``eom``."""
    size = len(payload)
    if size <= chunk_size:
        yield payload, True
        return
    for start in range(0, size, chunk_size):
        end = start + chunk_size
        yield payload[start:end], end >= size


class Reassembler:
    """Joins ``PacketMessage`` chunks into messages, dropping any message over ``limit`` bytes."""

    __slots__ = ("_parts", "_size", "limit")

    def __init__(self, limit: int = MAX_MESSAGE_SIZE) -> None:
        self.limit = limit
        self._parts: list[bytes] = []
        self._size = 0

    @property
    def pending(self) -> int:
        """Bytes of the message being assembled."""
        return self._size

    def add(self, data: bytes, eom: bool) -> bytes | None:
        """Append one chunk; returns the whole message on ``eom``.

        Raises :class:`MessageTooLargeError` (after forgetting the partial message) when the
        message would exceed the limit.
        """
        size = self._size + len(data)
        if size > self.limit:
            self.reset()
            raise MessageTooLargeError(size, self.limit)
        if not eom:
            self._parts.append(data)
            self._size = size
            return None
        if not self._parts:
            return data
        self._parts.append(data)
        message = b"".join(self._parts)
        self.reset()
        return message

    def reset(self) -> None:
        self._parts = []
        self._size = 0


# -- metadata ----------------------------------------------------------------------------------
def metadata_items(metadata: MetadataLike | None) -> Collection[tuple[str, str | bytes]]:
    if not metadata:
        return ()
    if isinstance(metadata, Mapping):
        return list(metadata.items())
    return metadata


def metadata_to_proto(metadata: MetadataLike | None, target: grpc_pb2.Metadata) -> None:
    """Fill ``target`` (keys lower-cased; bytes values base64, as on HTTP/2)."""
    for key, value in metadata_items(metadata):
        text = base64.b64encode(value).decode("ascii") if isinstance(value, bytes) else value
        target.md[key.lower()].values.append(text)


def _decode_bin(value: str) -> bytes:
    try:
        return base64.b64decode(value + "=" * (-len(value) % 4), validate=True)
    except (binascii.Error, ValueError):
        return value.encode("utf-8", "surrogateescape")


def metadata_from_proto(proto: grpc_pb2.Metadata, *, request: bool = False) -> Metadata:
    """A multidict as grpclib gives handlers; ``request`` drops transport keys like grpclib does."""
    metadata: Metadata = MultiDict()
    for raw_key, strings in proto.md.items():
        key = raw_key.lower()
        if request and (key.startswith((":", "grpc-")) or key in _TRANSPORT_KEYS):
            continue
        binary = key.endswith("-bin")
        for value in strings.values:
            metadata.add(key, _decode_bin(value) if binary else value)
    return metadata


def first_value(proto: grpc_pb2.Metadata, key: str) -> str | None:
    strings = proto.md.get(key)
    if strings is None or not strings.values:
        return None
    return strings.values[0]


def deadline_from_headers(headers: grpc_pb2.RequestHeaders) -> Deadline | None:
    """The handler deadline: ``timeout`` (Go), else ``grpc-timeout`` metadata (Rust/Python).

    A zero or absent ``timeout`` means none (Go always sends the field). Raises ``ValueError``
    for a malformed ``grpc-timeout``.
    """
    if headers.HasField("timeout"):
        seconds = headers.timeout.seconds + headers.timeout.nanos / 1e9
        if seconds > 0:
            return Deadline.from_timeout(seconds)
    strings = headers.metadata.md.get("grpc-timeout")
    if strings is None or not strings.values:
        return None
    return Deadline.from_timeout(min(decode_timeout(value) for value in strings.values))


# -- status ------------------------------------------------------------------------------------
def status_to_proto(status: Status, message: str | None = None, details: Sequence[Any] | None = None,
                    ) -> status_pb2.Status:
    proto = status_pb2.Status(code=status.value, message=message or "")
    for detail in details or ():
        if isinstance(detail, Message):
            proto.details.add().Pack(detail)
    return proto


def status_from_proto(proto: status_pb2.Status) -> tuple[Status, str | None, list[Any] | None]:
    """``(status, message, details)`` as grpclib's ``GRPCError`` takes them; unknown codes are UNKNOWN."""
    try:
        status = Status(proto.code)
    except ValueError:
        status = Status.UNKNOWN
    details: list[Any] | None = None
    if proto.details:
        details = []
        db = symbol_database.Default()
        for packed in proto.details:
            try:
                detail = db.GetSymbol(packed.TypeName())()
            except KeyError:
                continue  # a detail type this process does not know cannot be decoded
            packed.Unpack(detail)
            details.append(detail)
    return status, proto.message or None, details


# -- server → client frames --------------------------------------------------------------------
def response_headers(stream_id: int, metadata: MetadataLike | None = None) -> bytes:
    frame = grpc_pb2.Response(stream=grpc_pb2.Stream(id=stream_id), headers=grpc_pb2.ResponseHeaders())
    if metadata:
        metadata_to_proto(metadata, frame.headers.metadata)
    return frame.SerializeToString()


def response_messages(stream_id: int, payload: bytes, chunk_size: int = RESPONSE_CHUNK_SIZE) -> Iterator[bytes]:
    """Serialized ``Response{message}`` frames carrying ``payload``, each ≤ 65,535 bytes."""
    frame = grpc_pb2.Response(stream=grpc_pb2.Stream(id=stream_id))
    packet = frame.message.packet_message
    for chunk, eom in split_message(payload, chunk_size):
        packet.data = chunk
        packet.eom = eom
        yield frame.SerializeToString()


def response_trailers(stream_id: int, status: status_pb2.Status, metadata: MetadataLike | None = None) -> bytes:
    frame = grpc_pb2.Response(stream=grpc_pb2.Stream(id=stream_id))
    frame.trailers.status.CopyFrom(status)
    if metadata:
        metadata_to_proto(metadata, frame.trailers.metadata)
    return frame.SerializeToString()


# -- client → server frames --------------------------------------------------------------------
def request_headers(stream_id: int, method: str, metadata: MetadataLike | None = None,
                    timeout: float | None = None) -> bytes:
    frame = grpc_pb2.Request(stream=grpc_pb2.Stream(id=stream_id))
    frame.headers.method = method
    if metadata:
        metadata_to_proto(metadata, frame.headers.metadata)
    if timeout is not None:
        frame.headers.timeout.FromNanoseconds(max(int(timeout * 1e9), 1))
    return frame.SerializeToString()


def request_messages(stream_id: int, payload: bytes, *, eos: bool = False,
                     chunk_size: int = REQUEST_CHUNK_SIZE) -> Iterator[bytes]:
    """Serialized ``Request{message}`` frames; ``eos`` rides on the last chunk only."""
    frame = grpc_pb2.Request(stream=grpc_pb2.Stream(id=stream_id))
    message = frame.message
    message.has_message = True
    packet = message.packet_message
    for chunk, eom in split_message(payload, chunk_size):
        packet.data = chunk
        packet.eom = eom
        message.eos = eos and eom
        yield frame.SerializeToString()


def request_eos(stream_id: int) -> bytes:
    """A half-close without a message, shaped like the Rust client's (no ``packet_message``)."""
    frame = grpc_pb2.Request(stream=grpc_pb2.Stream(id=stream_id), message=grpc_pb2.RequestMessage(eos=True))
    return frame.SerializeToString()


def request_rst(stream_id: int) -> bytes:
    return grpc_pb2.Request(stream=grpc_pb2.Stream(id=stream_id), rst_stream=True).SerializeToString()
