"""The aiortc/aioice glue both ends share: building a peer connection, candidates, closing.

Everything that hands peer input to aiortc goes through here and is wrapped in ``except
Exception``: aiortc's parsers raise ``ValueError``, ``AssertionError``, ``KeyError``,
``IndexError``, ``AttributeError`` and ``RuntimeError`` on malformed input (reliability.md §0), and
``RTCPeerConnection.close()`` itself can raise on a half-built connection, after which a second
``close()`` would wait forever on aiortc's unresolved close future.

``.local`` candidates (what we found in aioice 0.13): ``Connection.add_remote_candidate`` resolves
an mDNS host name itself (``aioice.mdns``: one multicast query to 224.0.0.251:5353, answered or
given up after 1 s, through one shared socket per thread) and pairs the resolved address; an
unresolved name is logged by aioice and dropped. Either way the pair also forms peer-reflexively:
our answer carries our host candidates, the caller's checks reach them, and aioice learns the
caller's address from the check (RFC 8445 §7.3.1.3) and answers with a triggered check. So a
caller whose candidates are all ``.local`` connects with or without multicast; resolution only
matters when our own checks must go first. Because resolving can take a second per name, callers
of :func:`add_remote_candidate` run ``.local`` candidates in the background.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import aioice.turn
from aioice.mdns import is_mdns_hostname
from aiortc import (
    RTCBundlePolicy,
    RTCConfiguration,
    RTCDataChannel,
    RTCIceCandidate,
    RTCIceServer,
    RTCPeerConnection,
)
from aiortc.rtcicetransport import parse_stun_turn_uri
from aiortc.sdp import SessionDescription as ParsedSdp
from aiortc.sdp import candidate_from_sdp, candidate_to_sdp

from signaling.config import IceServer
from signaling.errors import InvalidCandidateError, InvalidSdpError
from signaling.sdp import IceCandidate

from . import sctp_tuning
from .constants import (
    CLOSE_TIMEOUT_S,
    DATA_CHANNEL_ID,
    DATA_CHANNEL_LABEL,
    MAX_CANDIDATE_LENGTH,
    MAX_SDP_LENGTH,
    NEGOTIATION_CHANNEL_ID,
    NEGOTIATION_CHANNEL_LABEL,
    UDP_RECEIVE_BUFFER,
)

logger = logging.getLogger(__name__)

_CANDIDATE_TYPES = frozenset({"host", "srflx", "prflx", "relay"})
_CANDIDATE_PROTOCOLS = frozenset({"udp", "tcp"})
_MAX_PRIORITY = 2**32 - 1
_CANDIDATE_PREFIX = "candidate:"


def set_udp_receive_buffer(size: int = UDP_RECEIVE_BUFFER) -> None:
    """Ask for ``size`` bytes of ``SO_RCVBUF`` on every ICE socket opened from now on (aioice's global).

    The kernel caps it at ``net.core.rmem_max``; call once at start-up (performance.md §5).
    """
    aioice.turn.UDP_SOCKET_BUFFER_SIZE = size


def rtc_ice_servers(servers: Sequence[IceServer], *, tag: str = "") -> list[RTCIceServer]:
    """aiortc's form of ``servers``, without the URLs it cannot parse (it would raise deep inside
    ``createDataChannel``). Always a list: ``None`` would make aiortc fall back to a public STUN server."""
    result: list[RTCIceServer] = []
    for server in servers:
        urls = []
        for url in server.urls:
            try:
                parse_stun_turn_uri(url)
            except Exception as exc:
                logger.warning("webrtc[%s] ignoring ICE server URL %r: %s", tag, url, exc)
                continue
            urls.append(url)
        if urls:
            result.append(RTCIceServer(urls=urls, username=server.username or None,
                                       credential=server.credential or None))
    return result


def new_peer_connection(ice_servers: Sequence[IceServer] = (), *, tag: str = "") -> RTCPeerConnection:
    """A peer connection as every Viam peer builds it: max-bundle, only the given ICE servers.

    Its SCTP association bundles chunks and delays SACKs (:mod:`~peer.webrtc.sctp_tuning`, installed
    here once per process unless aiortc is not the version it was written for).
    """
    sctp_tuning.install()
    configuration = RTCConfiguration(
        iceServers=rtc_ice_servers(ice_servers, tag=tag), bundlePolicy=RTCBundlePolicy.MAX_BUNDLE
    )
    return RTCPeerConnection(configuration)


@dataclass(frozen=True, slots=True)
class Channels:
    """The two pre-negotiated channels of wire-protocol.md §8.1."""

    data: RTCDataChannel
    negotiation: RTCDataChannel


def create_channels(pc: RTCPeerConnection) -> Channels:
    """Both sides create both channels themselves with the agreed ids: there is no DCEP."""
    negotiation = pc.createDataChannel(
        NEGOTIATION_CHANNEL_LABEL, negotiated=True, id=NEGOTIATION_CHANNEL_ID, ordered=True
    )
    data = pc.createDataChannel(DATA_CHANNEL_LABEL, negotiated=True, id=DATA_CHANNEL_ID, ordered=True)
    return Channels(data=data, negotiation=negotiation)


# -- descriptions ----------------------------------------------------------------------------------
def check_remote_description(sdp: str, kind: str) -> None:
    """Refuse, with :class:`~signaling.errors.InvalidSdpError`, a description aiortc would choke on.

    aiortc's parser raises assorted exceptions on malformed text (mapped here), and it *accepts* a
    description without DTLS fingerprints or ICE credentials, failing later inside a task of its
    own whose exception nobody retrieves; so those are checked up front, as is the data channel
    section every Viam peer needs.
    """
    if len(sdp) > MAX_SDP_LENGTH:
        raise InvalidSdpError(f"{kind} SDP is larger than {MAX_SDP_LENGTH} bytes")
    try:
        parsed = ParsedSdp.parse(sdp)
    except Exception as exc:
        raise InvalidSdpError(f"malformed {kind} SDP: {describe(exc)}") from None
    if not any(media.kind == "application" for media in parsed.media):
        raise InvalidSdpError(f"{kind} has no data channel section (m=application)")
    for index, media in enumerate(parsed.media):
        if media.ice is None or not media.ice.usernameFragment or not media.ice.password:
            raise InvalidSdpError(f"{kind} m-line {index} has no ICE username fragment or password")
        if media.dtls is None or not media.dtls.fingerprints:
            raise InvalidSdpError(f"{kind} m-line {index} has no DTLS fingerprint or setup role")
        for candidate in media.ice_candidates:
            try:
                check_candidate(candidate)
            except InvalidCandidateError as exc:
                # aioice would send to it and die: an out-of-range port closes the ICE socket
                raise InvalidSdpError(f"{kind} m-line {index}: {exc.message}") from None


def describe(exc: BaseException) -> str:
    """An exception as a short status message (aiortc's often have no text: AssertionError())."""
    text = str(exc)
    return f"{type(exc).__name__}: {text[:200]}" if text else type(exc).__name__


# -- candidates ------------------------------------------------------------------------------------
def is_mdns_candidate(candidate: RTCIceCandidate) -> bool:
    return is_mdns_hostname(candidate.ip)


def parse_candidate(candidate: IceCandidate) -> RTCIceCandidate:
    """A signalled candidate as aiortc's ``RTCIceCandidate``; :class:`InvalidCandidateError` if it is garbage.

    aiortc's own parser asserts and indexes without checks, and aioice would only find out later,
    in a task, that a port does not fit; so the fields are checked here. The candidate is routed
    to the first m-line: with max-bundle every m-line shares its transport, and aiortc drops a
    candidate whose mid names a bundled (non-first) m-line.
    """
    line = candidate.candidate
    if len(line) > MAX_CANDIDATE_LENGTH:
        raise InvalidCandidateError(f"candidate longer than {MAX_CANDIDATE_LENGTH} characters")
    try:
        parsed = candidate_from_sdp(candidate.sdp_value)
    except Exception as exc:
        raise InvalidCandidateError(f"malformed candidate {line[:80]!r}: {type(exc).__name__}") from None
    check_candidate(parsed)
    parsed.sdpMid = None
    parsed.sdpMLineIndex = 0
    return parsed


def check_candidate(parsed: RTCIceCandidate) -> None:
    """:class:`InvalidCandidateError` unless every field of ``parsed`` is one aioice can use safely."""
    if parsed.type not in _CANDIDATE_TYPES:
        raise InvalidCandidateError(f"unknown candidate type {parsed.type!r}")
    if parsed.protocol.lower() not in _CANDIDATE_PROTOCOLS:
        raise InvalidCandidateError(f"unknown candidate transport {parsed.protocol!r}")
    if not 1 <= parsed.component <= 256 or not 0 <= parsed.priority <= _MAX_PRIORITY:
        raise InvalidCandidateError("candidate component or priority out of range")
    if not 0 < parsed.port <= 0xFFFF or (parsed.relatedPort is not None and not 0 <= parsed.relatedPort <= 0xFFFF):
        raise InvalidCandidateError(f"candidate port {parsed.port} out of range")
    if not is_mdns_hostname(parsed.ip):
        try:
            address = ipaddress.ip_address(parsed.ip)
        except ValueError:
            raise InvalidCandidateError(
                f"candidate address {parsed.ip[:64]!r} is neither an IP nor a .local name"
            ) from None
        if address.is_multicast or address.is_unspecified:
            raise InvalidCandidateError(f"candidate address {parsed.ip} is not a unicast address")


def candidate_line(candidate: RTCIceCandidate) -> str:
    """The ``candidate:…`` line that goes on the wire (with its prefix, as browsers and pion send it)."""
    return _CANDIDATE_PREFIX + candidate_to_sdp(candidate)


def split_candidates(sdp: str) -> tuple[str, list[IceCandidate]]:
    """``sdp`` without its ``a=candidate`` and ``a=end-of-candidates`` lines, and those candidates.

    For a trickling caller (TS and Rust offer no candidates and trickle them through CallUpdate).
    """
    mids: dict[int, str] = {}
    index = -1
    for line in sdp.splitlines():
        if line.startswith("m="):
            index += 1
        elif line.startswith("a=mid:") and index >= 0:
            mids[index] = line[len("a=mid:") :]
    kept: list[str] = []
    found: list[IceCandidate] = []
    index = -1
    for line in sdp.splitlines():
        if line.startswith("m="):
            index += 1
        if line.startswith("a=candidate:"):
            m_line = max(index, 0)
            found.append(IceCandidate(line[len("a=") :], sdp_mid=mids.get(m_line), sdp_mline_index=m_line))
        elif line != "a=end-of-candidates":
            kept.append(line)
    return "\r\n".join(kept) + "\r\n", found


# -- state -----------------------------------------------------------------------------------------
def selected_remote_address(pc: RTCPeerConnection) -> tuple[str, int] | None:
    """The remote address of the nominated ICE pair of the data transport, or ``None``.

    aioice has no public accessor for the selected pair; this is the one read of its internals,
    and any surprise there yields ``None``.
    """
    try:
        sctp = pc.sctp
        if sctp is None:
            return None
        connection = sctp.transport.transport._connection
        nominated = connection._nominated
        for pair in nominated.values():
            host, port = pair.remote_addr
            return str(host), int(port)
    except Exception:
        logger.debug("no selected ICE pair", exc_info=True)
    return None


async def close_peer_connection(pc: RTCPeerConnection, *, timeout: float = CLOSE_TIMEOUT_S, tag: str = "") -> None:
    """Close ``pc`` within ``timeout``; never raises (it runs in ``finally`` blocks and callbacks).

    If aiortc's ``close()`` raises half-way (it does on some malformed remote descriptions), the
    transports it did not reach are stopped one by one through their public attributes, so their
    sockets and tasks do not leak. Call it once per connection: after a failed ``close()`` aiortc
    would make a second one wait forever.
    """
    try:
        async with asyncio.timeout(timeout):
            await pc.close()
        return
    except TimeoutError:
        logger.warning("webrtc[%s] closing the peer connection took over %g s; abandoning it", tag, timeout)
        return
    except Exception as exc:
        logger.info("webrtc[%s] peer connection close raised %r; stopping its transports directly", tag, exc)
    try:
        async with asyncio.timeout(timeout):
            await _stop_transports(pc, tag)
    except Exception:
        logger.warning("webrtc[%s] stopping the transports failed", tag, exc_info=True)


async def _stop_transports(pc: RTCPeerConnection, tag: str) -> None:
    stoppers = []
    sctp = pc.sctp
    if sctp is not None:  # SCTP first: its pending sends must not outlive DTLS (they would fail in a task)
        stoppers += [sctp.stop, sctp.transport.stop, sctp.transport.transport.stop]
    for transceiver in pc.getTransceivers():
        dtls = transceiver.receiver.transport
        stoppers += [dtls.stop, dtls.transport.stop]
    for stop in stoppers:
        try:
            await stop()
        except Exception as exc:
            logger.debug("webrtc[%s] stopping a transport raised %r", tag, exc)
