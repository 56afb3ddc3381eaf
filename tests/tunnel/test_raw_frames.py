"""The server against hand-written frames: each real client's quirks, and malformed input."""

from __future__ import annotations

import asyncio

from google.protobuf import empty_pb2, wrappers_pb2
from grpclib import Status

from peer.tunnel import TunnelServer
from peer.tunnel.constants import RST_MESSAGE, UNIMPLEMENTED_MESSAGE
from signaling.gen.proto.rpc.webrtc.v1 import grpc_pb2

from .conftest import Raw, echo_table
from .echo import SERVICE, EchoService, pattern
from .fakes import WAIT, RawClient, channel_pair, settle

Bytes, Int, Double = wrappers_pb2.BytesValue, wrappers_pb2.Int64Value, wrappers_pb2.DoubleValue
BROWSER_CHUNK = 16_373  # TS and Rust split requests here
GO_CHUNK = 65_509


def ser(message: object) -> bytes:
    return message.SerializeToString()  # type: ignore[attr-defined, no-any-return]


# -- the three real clients' shapes ------------------------------------------------------------
async def test_browser_unary_without_eos(raw: Raw) -> None:
    """TS: headers without timeout, 16,373-byte chunks, eos never sent for unary calls."""
    payload = ser(Bytes(value=pattern(40_000)))
    raw.raw.headers(0, f"{SERVICE}/Unary", metadata={"viam_client": "typescript"})
    raw.raw.chunks(0, payload, BROWSER_CHUNK)
    trailers = await raw.raw.trailers(0)
    assert trailers.status.code == Status.OK.value
    assert raw.raw.payloads(0) == [payload]
    assert raw.raw.kinds(0) == ["headers", "message", "trailers"]


async def test_browser_stream_end_frame_carries_no_message(raw: Raw) -> None:
    """TS ends a stream with ``{has_message:false, packet{eom:true}, eos:true}``: the packet is not a message."""
    raw.raw.headers(0, f"{SERVICE}/Sum")
    raw.raw.message(0, ser(Bytes(value=b"abc")))
    raw.raw.message(0, ser(Bytes(value=b"de")))
    raw.raw.message(0, b"", has_message=False, eom=True, eos=True)
    await raw.raw.trailers(0)
    assert raw.raw.payloads(0) == [ser(Int(value=5 * 1000 + 2))]


async def test_rust_unary_with_separate_eos_and_http2_metadata(raw: Raw) -> None:
    """Rust/Python: all HTTP/2 headers as metadata, deadline only as grpc-timeout, a bare EOS frame."""
    raw.raw.headers(0, f"{SERVICE}/Info", metadata={
        "content-type": "application/grpc", "te": "trailers", "user-agent": "grpc-python-grpclib/0.4.9",
        "grpc-timeout": "5S", "viam_client": "python-sdk",
    })
    raw.raw.message(0, ser(empty_pb2.Empty()))
    raw.raw.message(0, has_message=False, packet=False, eos=True)
    trailers = await raw.raw.trailers(0)
    assert trailers.status.code == Status.OK.value
    (seen,) = raw.service.seen
    assert seen["metadata"] == {"viam_client": ["python-sdk"]}
    assert seen["user_agent"] == "grpc-python-grpclib/0.4.9"
    assert 4 < seen["deadline"] <= 5
    assert trailers.metadata.md["x-trailing"].values == ["two"]
    headers = raw.raw.frames(0)[0].headers
    assert headers.metadata.md["x-initial"].values == ["one"]


async def test_go_unary_with_eos_on_every_chunk(raw: Raw) -> None:
    """Go: eos=true on every chunk; it only counts on the chunk that completes the message."""
    payload = ser(Bytes(value=pattern(150_000)))
    raw.raw.headers(1, f"{SERVICE}/Unary", timeout=0)  # Go always sends a Duration; 0 means no deadline
    raw.raw.chunks(1, payload, GO_CHUNK, eos_on_every_chunk=True)
    trailers = await raw.raw.trailers(1)
    assert trailers.status.code == Status.OK.value
    assert raw.raw.payloads(1) == [payload]


async def test_go_client_stream_eos_after_messages(raw: Raw) -> None:
    raw.raw.headers(1, f"{SERVICE}/Sum", timeout=0)
    big = ser(Bytes(value=pattern(100_000)))
    raw.raw.chunks(1, big, GO_CHUNK)  # eos=false on a streaming message's chunks
    raw.raw.message(1, b"", has_message=False, eom=True, eos=True)
    await raw.raw.trailers(1)
    assert raw.raw.payloads(1) == [ser(Int(value=100_000 * 1000 + 1))]


async def test_server_streaming_dispatches_on_the_first_message(raw: Raw) -> None:
    raw.raw.headers(0, f"{SERVICE}/Count")
    raw.raw.message(0, ser(Int(value=3)))  # no eos, as the browser does
    await raw.raw.trailers(0)
    assert raw.raw.payloads(0) == [ser(Int(value=i)) for i in range(3)]


async def test_interleaved_streams(raw: Raw) -> None:
    first, second = ser(Bytes(value=pattern(50_000))), ser(Bytes(value=b"short"))
    raw.raw.headers(4, f"{SERVICE}/Unary")
    raw.raw.headers(5, f"{SERVICE}/Unary")
    raw.raw.message(4, first[:20_000], eom=False)
    raw.raw.message(5, second)
    raw.raw.message(4, first[20_000:])
    await raw.raw.trailers(4)
    await raw.raw.trailers(5)
    assert raw.raw.payloads(4) == [first] and raw.raw.payloads(5) == [second]


# -- what is dropped ---------------------------------------------------------------------------
async def test_frames_for_unknown_streams_are_dropped(raw: Raw) -> None:
    raw.raw.message(9, ser(Bytes(value=b"x")))  # a message before headers
    raw.raw.rst(10)  # an RST for a stream that never existed
    raw.raw.send(grpc_pb2.Request(headers=grpc_pb2.RequestHeaders(method=f"{SERVICE}/Unary")))  # no stream
    raw.client_end.send(b"\xff\xff\xff not a frame")
    await settle(20)
    assert raw.raw.responses == []
    assert raw.server.active_streams == 0
    # the id is still free: headers open it normally, and the early message was not kept
    raw.raw.headers(9, f"{SERVICE}/Unary")
    raw.raw.message(9, ser(Bytes(value=b"late")))
    await raw.raw.trailers(9)
    assert raw.raw.payloads(9) == [ser(Bytes(value=b"late"))]


async def test_late_frames_of_a_finished_stream_are_dropped(raw: Raw) -> None:
    raw.raw.headers(0, f"{SERVICE}/Unary")
    raw.raw.message(0, ser(Bytes(value=b"x")))
    await raw.raw.trailers(0)
    count = len(raw.raw.responses)
    raw.raw.message(0, b"", has_message=False, packet=False, eos=True)  # Rust's EOS, after the reply
    raw.raw.rst(0)  # Go resets streams it considers open
    await settle(20)
    assert len(raw.raw.responses) == count


async def test_message_after_eos_is_ignored(raw: Raw) -> None:
    raw.raw.headers(0, f"{SERVICE}/Chat")
    raw.raw.message(0, ser(Bytes(value=b"ab")), eos=True)
    raw.raw.message(0, ser(Bytes(value=b"ignored")))
    await raw.raw.trailers(0)
    assert raw.raw.payloads(0) == [ser(Bytes(value=b"ba"))]


# -- what is rejected --------------------------------------------------------------------------
async def test_unknown_method(raw: Raw) -> None:
    raw.raw.headers(3, "/no.Such/Method")
    raw.raw.message(3, b"")
    trailers = await raw.raw.trailers(3)
    assert (trailers.status.code, trailers.status.message) == (Status.UNIMPLEMENTED.value, UNIMPLEMENTED_MESSAGE)
    assert raw.raw.kinds(3) == ["headers", "trailers"]
    assert raw.raw.frames(3)[0].headers == grpc_pb2.ResponseHeaders()


async def test_headers_twice(raw: Raw) -> None:
    raw.raw.headers(0, f"{SERVICE}/Chat")
    raw.raw.headers(0, f"{SERVICE}/Chat")
    trailers = await raw.raw.trailers(0)
    assert trailers.status.code == Status.INVALID_ARGUMENT.value
    assert trailers.status.message == "headers already received"


async def test_has_message_without_a_packet(raw: Raw) -> None:
    raw.raw.headers(0, f"{SERVICE}/Chat")
    raw.raw.message(0, has_message=True, packet=False)
    trailers = await raw.raw.trailers(0)
    assert trailers.status.code == Status.INVALID_ARGUMENT.value


async def test_invalid_grpc_timeout(raw: Raw) -> None:
    raw.raw.headers(0, f"{SERVICE}/Unary", metadata={"grpc-timeout": "whenever"})
    trailers = await raw.raw.trailers(0)
    assert trailers.status.code == Status.UNKNOWN.value
    assert raw.server.active_streams == 0


async def test_oversized_message_drops_the_rest_and_the_channel_keeps_working() -> None:
    service = EchoService()
    client_end, server_end = channel_pair()
    server = TunnelServer(server_end, echo_table(service), max_message_size=100_000)
    raw = RawClient(client_end)
    try:
        raw.headers(0, f"{SERVICE}/Unary")
        for index in range(5):  # 150,000 bytes: over the cap on the fourth chunk
            raw.message(0, bytes(30_000), eom=index == 4)
        trailers = await raw.trailers(0)
        assert trailers.status.code == Status.RESOURCE_EXHAUSTED.value
        assert service.calls == []
        raw.headers(1, f"{SERVICE}/Unary")
        raw.chunks(1, ser(Bytes(value=pattern(90_000))), BROWSER_CHUNK)
        assert (await raw.trailers(1)).status.code == Status.OK.value
    finally:
        await server.close()


# -- reset and deadlines -----------------------------------------------------------------------
async def test_rst_sends_cancelled_trailers_and_cancels_the_handler(raw: Raw) -> None:
    raw.raw.headers(0, f"{SERVICE}/Sleep")
    raw.raw.message(0, ser(Double(value=30)))
    await asyncio.wait_for(raw.service.started.wait(), WAIT)
    raw.raw.rst(0)
    trailers = await raw.raw.trailers(0)
    assert (trailers.status.code, trailers.status.message) == (Status.CANCELLED.value, RST_MESSAGE)
    await asyncio.wait_for(raw.service.cancelled_event.wait(), WAIT)
    await settle()
    assert raw.server.active_streams == 0 and not raw.server.tasks


async def test_deadline_from_the_timeout_field(raw: Raw) -> None:
    raw.raw.headers(1, f"{SERVICE}/Sleep", timeout=0.05)
    raw.raw.message(1, ser(Double(value=30)), eos=True)
    trailers = await raw.raw.trailers(1)
    assert trailers.status.code == Status.DEADLINE_EXCEEDED.value
    assert raw.service.cancelled == 1


async def test_deadline_from_grpc_timeout_metadata(raw: Raw) -> None:
    raw.raw.headers(0, f"{SERVICE}/Sleep", metadata={"grpc-timeout": "50m"})
    raw.raw.message(0, ser(Double(value=30)))
    raw.raw.message(0, has_message=False, packet=False, eos=True)
    trailers = await raw.raw.trailers(0)
    assert trailers.status.code == Status.DEADLINE_EXCEEDED.value


async def test_deadline_counts_while_waiting_for_the_request(raw: Raw) -> None:
    """The deadline starts at the headers: a request that never comes still ends the call."""
    raw.raw.headers(0, f"{SERVICE}/Info", timeout=0.05)
    trailers = await raw.raw.trailers(0)
    assert trailers.status.code == Status.DEADLINE_EXCEEDED.value
    assert raw.raw.frames(0)[0].headers == grpc_pb2.ResponseHeaders()
    assert raw.raw.kinds(0) == ["headers", "trailers"]  # Info never replied
