"""SDP and candidate encodings (wire-protocol.md §4), including the clients' quirks."""

from __future__ import annotations

import base64
import json

import pytest
from google.rpc import status_pb2
from grpclib import Status

from signaling.config import IceServer, WebRTCConfig
from signaling.errors import ErrorStatus, InvalidCandidateError, InvalidSdpError
from signaling.gen.proto.rpc.webrtc.v1 import signaling_pb2 as pb
from signaling.metadata import heartbeats_allowed, host_from_metadata, hosts_from_metadata
from signaling.sdp import (
    IceCandidate,
    SessionDescription,
    candidate_from_init,
    candidate_from_proto,
    candidate_to_init,
    candidate_to_proto,
    decode_sdp,
    encode_sdp,
)

from .fakes import OFFER

LINE = "candidate:1 1 udp 2130706431 192.168.1.2 5000 typ host"

pytestmark = pytest.mark.timeout(10)


def test_sdp_round_trip_is_go_compatible() -> None:
    encoded = encode_sdp(OFFER)
    assert json.loads(base64.b64decode(encoded)) == {"type": "offer", "sdp": OFFER.sdp}
    assert base64.b64decode(encoded).startswith(b'{"type":')  # Go's key order
    assert decode_sdp(encoded, expect_type="offer") == OFFER


def test_decode_tolerates_ts_key_order_missing_padding_and_extra_lines() -> None:
    sdp = OFFER.sdp + "a=x-priority:3\r\n"  # TS additionalSdpFields after the last m-section
    encoded = base64.b64encode(json.dumps({"sdp": sdp, "type": "offer", "extra": 1}).encode()).decode()
    assert decode_sdp(encoded.rstrip("=")) == SessionDescription("offer", sdp)
    assert decode_sdp(f"  {encoded}\n") == SessionDescription("offer", sdp)


def test_raw_json_only_when_allowed() -> None:
    raw = json.dumps({"type": "answer", "sdp": "v=0\r\n"})
    with pytest.raises(InvalidSdpError):
        decode_sdp(raw)
    assert decode_sdp(raw, allow_raw_json=True) == SessionDescription("answer", "v=0\r\n")


def test_url_safe_base64_is_rejected() -> None:
    encoded = base64.urlsafe_b64encode(json.dumps({"type": "offer", "sdp": "v=0 ~~~>>>???"}).encode()).decode()
    assert "-" in encoded or "_" in encoded
    with pytest.raises(InvalidSdpError):
        decode_sdp(encoded)


def test_wrong_type_and_empty_sdp() -> None:
    with pytest.raises(InvalidSdpError, match="expected an SDP of type 'offer'"):
        decode_sdp(encode_sdp(SessionDescription("answer", "v=0\r\n")), expect_type="offer")
    with pytest.raises(InvalidSdpError, match="empty"):
        decode_sdp(encode_sdp(SessionDescription("offer", "  ")))
    assert InvalidSdpError("x").status is Status.INVALID_ARGUMENT


def test_candidate_from_proto_copies_only_present_fields() -> None:
    assert candidate_from_proto(pb.ICECandidate(candidate=LINE)) == IceCandidate(LINE)
    full = pb.ICECandidate(candidate=LINE, sdp_mid="0", sdpm_line_index=0, username_fragment="abcd")
    assert candidate_from_proto(full) == IceCandidate(LINE, "0", 0, "abcd")


def test_rust_empty_strings_mean_absent() -> None:
    rust = pb.ICECandidate(candidate=LINE, sdp_mid="", username_fragment="", sdpm_line_index=0)
    assert candidate_from_proto(rust) == IceCandidate(LINE, None, 0, None)


def test_candidate_to_proto_is_safe_for_browsers() -> None:
    bare = candidate_to_proto(IceCandidate(LINE))
    assert bare.HasField("sdpm_line_index") and bare.sdpm_line_index == 0 and not bare.HasField("sdp_mid")
    assert candidate_to_proto(IceCandidate(LINE), default_mid="0").sdp_mid == "0"
    with_mid = candidate_to_proto(IceCandidate(LINE, sdp_mid="1"))
    assert with_mid.sdp_mid == "1" and not with_mid.HasField("sdpm_line_index")
    assert candidate_from_proto(candidate_to_proto(IceCandidate(LINE, "0", 0, "u"))) == IceCandidate(LINE, "0", 0, "u")


def test_w3c_dicts() -> None:
    candidate = IceCandidate(LINE, "0", 0, "ufrag")
    init = candidate_to_init(candidate)
    assert init == {"candidate": LINE, "sdpMid": "0", "sdpMLineIndex": 0, "usernameFragment": "ufrag"}
    assert candidate_from_init(init) == candidate
    assert candidate_from_init({"candidate": LINE, "sdpmLineIndex": 2}) == IceCandidate(LINE, None, 2)
    assert candidate_from_init({"candidate": "", "sdpMid": None}).is_end_of_candidates
    for bad in ({"candidate": 5}, {"candidate": LINE, "sdpMLineIndex": -1}, {"candidate": LINE, "sdpMLineIndex": True}):
        with pytest.raises(InvalidCandidateError):
            candidate_from_init(bad)


def test_sdp_value_strips_prefixes() -> None:
    assert IceCandidate(LINE).sdp_value == LINE.removeprefix("candidate:")
    assert IceCandidate("a=" + LINE).sdp_value == LINE.removeprefix("candidate:")


def test_config_round_trip() -> None:
    config = WebRTCConfig.of([IceServer(("turn:a:3478", "turn:a:3478?transport=tcp"), "u", "p")], disable_trickle=True)
    assert WebRTCConfig.from_proto(config.to_proto()) == config
    assert WebRTCConfig.from_proto(pb.WebRTCConfig()) == WebRTCConfig()


def test_error_status_from_proto() -> None:
    assert ErrorStatus.from_proto(status_pb2.Status(code=3, message="m")) == ErrorStatus(Status.INVALID_ARGUMENT, "m")
    assert ErrorStatus.from_proto(status_pb2.Status(code=0, message="m")).code is Status.UNKNOWN  # an error is never OK
    assert ErrorStatus.from_proto(status_pb2.Status(code=99)).code is Status.UNKNOWN
    assert ErrorStatus(Status.NOT_FOUND, "x").to_proto() == status_pb2.Status(code=5, message="x")


def test_metadata_parsing() -> None:
    assert hosts_from_metadata({"rpc-host": "a:1"}) == ("a:1",)
    assert hosts_from_metadata({"rpc-host": "a:1, b.local,a:1"}) == ("a:1", "b.local")
    assert host_from_metadata({"rpc-host": " foo.local "}) == "foo.local"
    assert heartbeats_allowed({"heartbeats-allowed": "true"})
    assert not heartbeats_allowed({"heartbeats-allowed": "TRUE"})
    assert not heartbeats_allowed(None)
