"""The encodings shared by signaling and renegotiation (wire-protocol.md §4).

An SDP travels as standard base64 (with padding, not URL-safe) of the JSON of an
``RTCSessionDescription``; a candidate travels as the ``ICECandidate`` proto, which mirrors the W3C
``RTCIceCandidateInit``. These helpers are the one place that knows the clients' quirks: key order
differs (TS writes ``sdp`` first, Go ``type`` first), Rust sends ``""`` for absent optional
candidate fields, and a browser's ``addIceCandidate`` throws when both ``sdpMid`` and
``sdpMLineIndex`` are null.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import InvalidCandidateError, InvalidSdpError
from .gen.proto.rpc.webrtc.v1 import signaling_pb2

SDP_TYPES = frozenset({"offer", "answer", "pranswer", "rollback"})
_CANDIDATE_PREFIX = "candidate:"
_MAX_MLINE_INDEX = 0xFFFF  # W3C sdpMLineIndex is an unsigned short


@dataclass(frozen=True, slots=True)
class SessionDescription:
    """An ``RTCSessionDescriptionInit``: ``type`` is one of :data:`SDP_TYPES`, ``sdp`` the SDP text."""

    type: str
    sdp: str


def encode_sdp(description: SessionDescription) -> str:
    """base64(JSON) exactly as goutils ``EncodeSDP`` and the TS client's ``btoa(JSON.stringify())``."""
    payload = json.dumps({"type": description.type, "sdp": description.sdp}, separators=(",", ":"))
    return base64.b64encode(payload.encode("utf-8")).decode("ascii")


def decode_sdp(encoded: str, *, expect_type: str | None = None, allow_raw_json: bool = False) -> SessionDescription:
    """Parse an encoded SDP; raise :class:`InvalidSdpError` (INVALID_ARGUMENT) on anything else.

    Missing ``=`` padding and surrounding whitespace are tolerated; the JSON is parsed as an
    object, never by key position, and unknown keys are ignored. ``allow_raw_json`` also accepts
    the un-encoded JSON that the Rust client sends on the negotiation channel (§8.2).
    """
    text = encoded.strip()
    if allow_raw_json and text.startswith("{"):
        raw = text.encode("utf-8")
    else:
        if not text:
            raise InvalidSdpError("sdp is empty")
        try:
            raw = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise InvalidSdpError(f"sdp is not base64: {exc}") from exc
    try:
        obj: Any = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidSdpError(f"sdp is not base64 of JSON: {exc}") from exc
    if not isinstance(obj, dict):
        raise InvalidSdpError("sdp JSON is not an object with type and sdp")
    sdp_type = obj.get("type")
    sdp_text = obj.get("sdp")
    if not isinstance(sdp_type, str) or sdp_type not in SDP_TYPES:
        raise InvalidSdpError(f"sdp JSON has no valid type (got {sdp_type!r})")
    if not isinstance(sdp_text, str):
        raise InvalidSdpError("sdp JSON has no sdp string")
    if expect_type is not None and sdp_type != expect_type:
        raise InvalidSdpError(f"expected an SDP of type {expect_type!r}, got {sdp_type!r}")
    if sdp_type != "rollback" and not sdp_text.strip():
        raise InvalidSdpError(f"{sdp_type} has an empty sdp")
    return SessionDescription(sdp_type, sdp_text)


@dataclass(frozen=True, slots=True)
class IceCandidate:
    """A W3C ``RTCIceCandidateInit``; ``None`` means the field was absent.

    ``candidate`` is the full line with its ``candidate:`` prefix; ``""`` is a browser's
    end-of-candidates marker.
    """

    candidate: str
    sdp_mid: str | None = None
    sdp_mline_index: int | None = None
    username_fragment: str | None = None

    @property
    def is_end_of_candidates(self) -> bool:
        return self.candidate == ""

    @property
    def sdp_value(self) -> str:
        """The candidate attribute without ``a=`` and ``candidate:``, as aiortc's ``candidate_from_sdp`` wants."""
        value = self.candidate.strip()
        if value.startswith("a="):
            value = value[2:]
        if value.startswith(_CANDIDATE_PREFIX):
            value = value[len(_CANDIDATE_PREFIX) :]
        return value


def _present(value: str) -> str | None:
    # Rust sends "" for absent sdp_mid/username_fragment; an empty mid or ufrag is never meaningful.
    return value or None


def candidate_from_proto(proto: signaling_pb2.ICECandidate) -> IceCandidate:
    """goutils ``iceCandidateFromProto``: optional fields only when present (and non-empty)."""
    return IceCandidate(
        candidate=proto.candidate,
        sdp_mid=_present(proto.sdp_mid) if proto.HasField("sdp_mid") else None,
        sdp_mline_index=proto.sdpm_line_index if proto.HasField("sdpm_line_index") else None,
        username_fragment=_present(proto.username_fragment) if proto.HasField("username_fragment") else None,
    )


def candidate_to_proto(candidate: IceCandidate, *, default_mid: str | None = None) -> signaling_pb2.ICECandidate:
    """The mirror image, made safe for browsers.

    When neither ``sdp_mid`` nor ``sdp_mline_index`` is known, ``sdpm_line_index`` is set to 0
    (the bundled first m-line) and ``sdp_mid`` to ``default_mid`` if given, because a browser's
    ``addIceCandidate`` throws when both are null.
    """
    proto = signaling_pb2.ICECandidate(candidate=candidate.candidate)
    sdp_mid = candidate.sdp_mid
    sdp_mline_index = candidate.sdp_mline_index
    if sdp_mid is None and sdp_mline_index is None:
        sdp_mid = default_mid
        sdp_mline_index = 0
    if sdp_mid is not None:
        proto.sdp_mid = sdp_mid
    if sdp_mline_index is not None:
        proto.sdpm_line_index = sdp_mline_index
    if candidate.username_fragment is not None:
        proto.username_fragment = candidate.username_fragment
    return proto


def candidate_to_init(candidate: IceCandidate) -> dict[str, str | int | None]:
    """The W3C JSON form (``sdpMLineIndex``, capital L, unlike the proto's JSON ``sdpmLineIndex``)."""
    return {
        "candidate": candidate.candidate,
        "sdpMid": candidate.sdp_mid,
        "sdpMLineIndex": candidate.sdp_mline_index,
        "usernameFragment": candidate.username_fragment,
    }


def candidate_from_init(init: Mapping[str, Any]) -> IceCandidate:
    """Parse a W3C ``RTCIceCandidateInit`` dict; also accepts the proto JSON spelling ``sdpmLineIndex``."""
    line = init.get("candidate", "")
    sdp_mid = init.get("sdpMid")
    index = init.get("sdpMLineIndex", init.get("sdpmLineIndex"))
    ufrag = init.get("usernameFragment")
    if not isinstance(line, str):
        raise InvalidCandidateError("candidate must be a string")
    if sdp_mid is not None and not isinstance(sdp_mid, str):
        raise InvalidCandidateError("sdpMid must be a string or null")
    if index is not None and (
        isinstance(index, bool) or not isinstance(index, int) or not 0 <= index <= _MAX_MLINE_INDEX
    ):
        raise InvalidCandidateError("sdpMLineIndex must be an unsigned short or null")
    if ufrag is not None and not isinstance(ufrag, str):
        raise InvalidCandidateError("usernameFragment must be a string or null")
    return IceCandidate(line, _present(sdp_mid or ""), index, _present(ufrag or ""))
