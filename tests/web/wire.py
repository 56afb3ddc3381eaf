"""A hand-built gRPC-web client: frames, a raw POST, and the parsed answer.

Deliberately not our server's own framing code, so the tests check the bytes against the spec
(wire-protocol.md §11) rather than against themselves.
"""

from __future__ import annotations

import ssl
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from grpclib.metadata import decode_grpc_message

CONTENT_TYPE = "application/grpc-web+proto"


def frame(payload: bytes | Any, flag: int = 0) -> bytes:
    """``[flag][u32 length BE][payload]``; protobuf messages are serialized first."""
    if not isinstance(payload, bytes):
        payload = payload.SerializeToString()
    return struct.pack(">BI", flag, len(payload)) + payload


def parse_trailers(block: bytes) -> dict[str, str]:
    pairs = {}
    for line in block.decode("ascii").split("\r\n"):
        if line:
            name, _, value = line.partition(":")
            pairs[name.strip().lower()] = value.strip()
    return pairs


def split_body(body: bytes) -> tuple[list[bytes], dict[str, str] | None]:
    """Data frames and the trailer frame of a response body (asserting it is well formed)."""
    messages: list[bytes] = []
    trailers = None
    offset = 0
    while offset < len(body):
        assert trailers is None, "data after the trailer frame"
        flag, length = struct.unpack(">BI", body[offset:offset + 5])
        payload = body[offset + 5:offset + 5 + length]
        assert len(payload) == length, f"truncated frame: {len(payload)} of {length} bytes"
        if flag == 0x80:
            trailers = parse_trailers(payload)
        else:
            assert flag == 0, f"unexpected frame flag {flag:#x}"
            messages.append(payload)
        offset += 5 + length
    return messages, trailers


@dataclass
class Answer:
    http_status: int
    headers: Mapping[str, str]
    messages: list[bytes]
    trailers: dict[str, str] | None
    raw_headers: Any = field(repr=False, default=None)

    @property
    def trailers_only(self) -> bool:
        return "grpc-status" in self.headers

    @property
    def status(self) -> int:
        source = self.headers if self.trailers_only else (self.trailers or {})
        return int(source["grpc-status"])

    @property
    def message(self) -> str:
        source = self.headers if self.trailers_only else (self.trailers or {})
        return decode_grpc_message(source.get("grpc-message", ""))


async def call(
    session: aiohttp.ClientSession,
    port: int,
    path: str,
    body: bytes | Any = b"",
    *,
    headers: Mapping[str, str] | None = None,
    tls: ssl.SSLContext | None = None,
) -> Answer:
    """POST one gRPC-web call (over HTTPS with ``tls``); ``body`` is raw bytes or a message to frame."""
    data = body if isinstance(body, bytes) else frame(body)
    sent = {"Content-Type": CONTENT_TYPE, "X-Grpc-Web": "1", "X-User-Agent": "tests/web", **(headers or {})}
    url = f"{'https' if tls else 'http'}://127.0.0.1:{port}{path}"
    async with session.post(url, data=data, headers=sent, ssl=tls or True) as resp:
        raw = await resp.read()
        lowered = {k.lower(): v for k, v in resp.headers.items()}
        messages, trailers = split_body(raw)
        if "grpc-status" in lowered:
            assert raw == b"", "a trailers-only response must have an empty body"
        return Answer(resp.status, lowered, messages, trailers, resp.headers)
