"""Frame encoding limits and the pure helpers shared by both ends."""

from __future__ import annotations

import pytest
from google.protobuf import wrappers_pb2
from grpclib import Status

from peer.tunnel import framing
from peer.tunnel.constants import MAX_DATA_CHANNEL_MESSAGE, REQUEST_CHUNK_SIZE, RESPONSE_CHUNK_SIZE
from signaling.gen.proto.rpc.webrtc.v1 import grpc_pb2

MAX_ID = 2**64 - 1


@pytest.mark.parametrize("stream_id", [0, 1, 300, MAX_ID])
def test_full_frames_fit_a_data_channel_message_for_every_stream_id(stream_id: int) -> None:
    payload = bytes(3 * RESPONSE_CHUNK_SIZE + 17)
    responses = list(framing.response_messages(stream_id, payload))
    requests = list(framing.request_messages(stream_id, payload, eos=True))
    assert len(responses) == 4 and len(requests) == 4
    assert max(map(len, responses + requests)) <= MAX_DATA_CHANNEL_MESSAGE
    if stream_id == MAX_ID:  # the budget is exact: a full chunk with eom (and eos) fills the message
        (response,) = framing.response_messages(stream_id, bytes(RESPONSE_CHUNK_SIZE))
        (request,) = framing.request_messages(stream_id, bytes(REQUEST_CHUNK_SIZE), eos=True)
        assert len(response) == len(request) == MAX_DATA_CHANNEL_MESSAGE


def test_chunks_carry_eom_and_eos_on_the_last_chunk_only() -> None:
    payload = bytes(range(256)) * 600  # 153,600 bytes: three request chunks
    frames = [grpc_pb2.Request.FromString(f) for f in framing.request_messages(7, payload, eos=True)]
    assert [f.message.packet_message.eom for f in frames] == [False, False, True]
    assert [f.message.eos for f in frames] == [False, False, True]
    assert all(f.message.has_message for f in frames)
    assert b"".join(f.message.packet_message.data for f in frames) == payload
    assert len(frames[0].message.packet_message.data) == REQUEST_CHUNK_SIZE


def test_an_empty_message_is_one_empty_chunk_with_eom() -> None:
    (frame,) = [grpc_pb2.Response.FromString(f) for f in framing.response_messages(0, b"")]
    assert frame.HasField("stream") and frame.stream.id == 0
    assert frame.message.HasField("packet_message")
    assert frame.message.packet_message.data == b"" and frame.message.packet_message.eom


def test_stream_zero_is_present_on_the_wire() -> None:
    for data in (framing.request_headers(0, "/a/b"), framing.request_rst(0), framing.request_eos(0)):
        assert grpc_pb2.Request.FromString(data).HasField("stream")
    eos = grpc_pb2.Request.FromString(framing.request_eos(0))
    assert not eos.message.has_message and eos.message.eos and not eos.message.HasField("packet_message")


def test_reassembler_joins_and_enforces_the_cap() -> None:
    r = framing.Reassembler(limit=10)
    assert r.add(b"abc", False) is None and r.pending == 3
    assert r.add(b"def", True) == b"abcdef" and r.pending == 0
    assert r.add(b"", True) == b""
    assert r.add(b"0123456789", True) == b"0123456789"  # exactly the limit is fine
    r.add(b"012345", False)
    with pytest.raises(framing.MessageTooLargeError):
        r.add(b"67890", False)
    assert r.pending == 0  # the partial message is forgotten
    assert r.add(b"ok", True) == b"ok"


def test_request_metadata_drops_transport_headers_and_decodes_bin() -> None:
    proto = grpc_pb2.Metadata()
    framing.metadata_to_proto(
        [("Content-Type", "application/grpc"), ("te", "trailers"), ("user-agent", "x"), ("grpc-timeout", "5S"),
         ("viam_client", "rust"), ("x-two", "a"), ("x-two", "b"), ("x-bin", b"\x00\x01\xfe")],
        proto,
    )
    md = framing.metadata_from_proto(proto, request=True)
    assert sorted(set(md.keys())) == ["viam_client", "x-bin", "x-two"]
    assert md.getall("x-two") == ["a", "b"]
    assert md["x-bin"] == b"\x00\x01\xfe"
    assert framing.first_value(proto, "user-agent") == "x"
    assert "content-type" in framing.metadata_from_proto(proto)  # only request metadata is filtered


def test_deadline_sources() -> None:
    headers = grpc_pb2.RequestHeaders(method="/a/b")
    assert framing.deadline_from_headers(headers) is None
    headers.timeout.FromNanoseconds(0)  # Go always sends a Duration; 0 means none
    assert framing.deadline_from_headers(headers) is None
    headers.metadata.md["grpc-timeout"].values.append("2S")  # Rust/Python: only in metadata
    deadline = framing.deadline_from_headers(headers)
    assert deadline is not None and 1.5 < deadline.time_remaining() <= 2
    headers.timeout.FromMilliseconds(500)  # the Duration wins when set
    deadline = framing.deadline_from_headers(headers)
    assert deadline is not None and deadline.time_remaining() <= 0.5
    bad = grpc_pb2.RequestHeaders(method="/a/b")
    bad.metadata.md["grpc-timeout"].values.append("soon")
    with pytest.raises(ValueError):
        framing.deadline_from_headers(bad)


def test_status_round_trip_with_details_and_unknown_codes() -> None:
    proto = framing.status_to_proto(Status.NOT_FOUND, "gone", [wrappers_pb2.StringValue(value="d")])
    status, message, details = framing.status_from_proto(proto)
    assert (status, message) == (Status.NOT_FOUND, "gone")
    assert details == [wrappers_pb2.StringValue(value="d")]
    proto.code = 99
    assert framing.status_from_proto(proto)[0] is Status.UNKNOWN
    assert framing.status_from_proto(framing.status_to_proto(Status.OK)) == (Status.OK, None, None)
