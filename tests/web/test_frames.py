"""gRPC-web body framing on its own, and the request-size cap over HTTP."""

from __future__ import annotations

import aiohttp
import pytest
from aiohttp import web
from google.protobuf.wrappers_pb2 import StringValue
from grpclib import GRPCError, Status

from web.frames import decode_messages, encode_message, encode_trailers
from web.grpcweb import GrpcWebHandler
from web.oneport import OnePortListener

from .probe import PREFIX, Probe
from .wire import call, frame, split_body


def test_round_trip() -> None:
    body = encode_message(b"one") + encode_message(b"") + encode_message(b"three")
    assert decode_messages(body) == [b"one", b"", b"three"]
    assert decode_messages(b"") == []
    messages, trailers = split_body(body + encode_trailers([("grpc-status", "0"), ("X-Meta", "v")]))
    assert messages == [b"one", b"", b"three"]
    assert trailers == {"grpc-status": "0", "x-meta": "v"}


@pytest.mark.parametrize(("body", "status", "text"), [
    (b"\x00\x00\x00", Status.INVALID_ARGUMENT, "stray bytes"),
    (b"\x00\x00\x00\x00\x09abc", Status.INVALID_ARGUMENT, "declares 9 bytes but 3 follow"),
    (b"\x80\x00\x00\x00\x00", Status.INVALID_ARGUMENT, "may not carry trailers"),
    (b"\x01\x00\x00\x00\x00", Status.UNIMPLEMENTED, "compressed"),
    (b"\x02\x00\x00\x00\x00", Status.INVALID_ARGUMENT, "0x02"),
    (b"\x00\x00\x00\x00\x0b" + b"x" * 11, Status.RESOURCE_EXHAUSTED, "exceeds the limit of 10"),
])
def test_malformed(body: bytes, status: Status, text: str) -> None:
    with pytest.raises(GRPCError) as info:
        decode_messages(body, max_message_size=10)
    assert info.value.status is status
    assert text in (info.value.message or "")


async def test_request_body_cap() -> None:
    probe = Probe()
    app = web.Application()
    app.router.add_post("/{service}/{method}", GrpcWebHandler(probe, max_message_size=10).handle)
    async with OnePortListener(probe, app) as listener:
        await listener.start("127.0.0.1", 0)
        assert listener.port is not None
        async with aiohttp.ClientSession() as session:
            answer = await call(session, listener.port, PREFIX + "Collect", frame(StringValue(value="12345678")))
            assert answer.status == 0
            answer = await call(session, listener.port, PREFIX + "Collect", frame(StringValue(value="x" * 20)))
            assert answer.status == 8 and "exceeds the limit" in answer.message
