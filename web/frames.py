"""gRPC-web body framing: 5-byte-prefixed messages in, data and trailer frames out.

Kept apart from the HTTP handling so the byte layout (wire-protocol.md §11: ``[flag u8][len u32
BE][payload]``, flag 0x80 = an HTTP/1 header block of trailers) is checked on its own, and so every
malformed body is reported as one :class:`grpclib.GRPCError` with a status a client can act on.
"""

from __future__ import annotations

from collections.abc import Iterable

from grpclib.const import Status
from grpclib.exceptions import GRPCError

from .const import FLAG_COMPRESSED, FLAG_TRAILERS, FRAME_HEADER_SIZE, MAX_MESSAGE_SIZE


def encode_message(payload: bytes) -> bytes:
    """One uncompressed data frame."""
    return b"\x00" + len(payload).to_bytes(4, "big") + payload


def encode_trailers(pairs: Iterable[tuple[str, str]]) -> bytes:
    """The trailer frame: ``name: value\\r\\n`` lines (names lower-case), flag 0x80."""
    block = "".join(f"{name.lower()}: {value}\r\n" for name, value in pairs).encode("ascii")
    return bytes([FLAG_TRAILERS]) + len(block).to_bytes(4, "big") + block


def decode_messages(body: bytes, max_message_size: int = MAX_MESSAGE_SIZE) -> list[bytes]:
    """Every message of a request body, in order.

    A gRPC-web request over HTTP/1.1 arrives whole (fetch cannot stream uploads), so the body is
    split here at once. Errors: a truncated frame or a trailer frame from a client is
    INVALID_ARGUMENT; a compressed frame is UNIMPLEMENTED (we announce no ``grpc-accept-encoding``,
    as the gRPC spec says for an unsupported encoding); an oversized message is RESOURCE_EXHAUSTED.
    """
    messages: list[bytes] = []
    view = memoryview(body)
    offset = 0
    while offset < len(view):
        if len(view) - offset < FRAME_HEADER_SIZE:
            raise GRPCError(Status.INVALID_ARGUMENT,
                            f"malformed gRPC-web body: {len(view) - offset} stray bytes after the last frame")
        flag = view[offset]
        length = int.from_bytes(view[offset + 1:offset + FRAME_HEADER_SIZE], "big")
        if flag & FLAG_TRAILERS:
            raise GRPCError(Status.INVALID_ARGUMENT, "malformed gRPC-web body: a request may not carry trailers")
        if flag & FLAG_COMPRESSED:
            raise GRPCError(Status.UNIMPLEMENTED, "compressed gRPC messages are not supported")
        if flag:
            raise GRPCError(Status.INVALID_ARGUMENT, f"malformed gRPC-web body: unknown frame flags 0x{flag:02x}")
        if length > max_message_size:
            raise GRPCError(Status.RESOURCE_EXHAUSTED,
                            f"request message of {length} bytes exceeds the limit of {max_message_size}")
        start = offset + FRAME_HEADER_SIZE
        if len(view) - start < length:
            raise GRPCError(Status.INVALID_ARGUMENT,
                            f"malformed gRPC-web body: a frame declares {length} bytes but "
                            f"{len(view) - start} follow")
        messages.append(bytes(view[start:start + length]))
        offset = start + length
    return messages
