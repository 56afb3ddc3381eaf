"""Units of the aiortc glue: candidate parsing, SDP checks (with a small mutation fuzz), the adapter."""

from __future__ import annotations

import asyncio
import random
from typing import cast

import pytest
from aiortc import RTCDataChannel
from aiortc.exceptions import InvalidStateError
from pyee.asyncio import AsyncIOEventEmitter

from peer.tunnel.channel import ChannelClosedError
from peer.webrtc import DataChannelAdapter, PeerSession, PeerSessions, WebRTCConnection
from peer.webrtc.constants import MAX_CANDIDATE_LENGTH, MAX_SDP_LENGTH
from peer.webrtc.rtc import candidate_line, parse_candidate, rtc_ice_servers, split_candidates
from signaling.config import IceServer
from signaling.errors import InvalidCandidateError, InvalidSdpError, SignalingError
from signaling.sdp import IceCandidate, SessionDescription

pytestmark = pytest.mark.timeout(60)

HOST = "candidate:842163049 1 udp 1677729535 192.0.2.7 50000 typ srflx raddr 10.0.0.2 rport 50000 generation 0"


# -- candidates ----------------------------------------------------------------------------------
def test_a_candidate_is_parsed_and_routed_to_the_bundled_first_m_line() -> None:
    parsed = parse_candidate(IceCandidate(HOST, sdp_mid="3", sdp_mline_index=3))
    assert (parsed.ip, parsed.port, parsed.type, parsed.relatedAddress, parsed.relatedPort) == (
        "192.0.2.7", 50000, "srflx", "10.0.0.2", 50000)
    assert (parsed.sdpMid, parsed.sdpMLineIndex) == (None, 0)
    assert candidate_line(parsed).startswith("candidate:842163049 1 udp 1677729535 192.0.2.7 50000 typ srflx")
    assert parse_candidate(IceCandidate("a=" + HOST)).ip == "192.0.2.7"  # an attribute line is tolerated
    mdns = parse_candidate(IceCandidate("candidate:1 1 udp 2122260223 0b6e4b2a-33c2-4a0f-9ff4-4e5d2f3c1a7e.local "
                                        "54321 typ host"))
    assert mdns.ip.endswith(".local")


@pytest.mark.parametrize("line", [
    "candidate:",
    "candidate:garbage",
    "candidate:1 1 udp 2130706431 127.0.0.1",  # too short
    "candidate:1 x udp 2130706431 127.0.0.1 5000 typ host",  # component not a number
    "candidate:1 1 udp 2130706431 127.0.0.1 0 typ host",
    "candidate:1 1 udp 2130706431 127.0.0.1 65536 typ host",
    "candidate:1 1 udp 99999999999 127.0.0.1 5000 typ host",
    "candidate:1 0 udp 2130706431 127.0.0.1 5000 typ host",
    "candidate:1 1 udp 2130706431 127.0.0.1 5000 typ bogus",
    "candidate:1 1 quic 2130706431 127.0.0.1 5000 typ host",
    "candidate:1 1 udp 2130706431 example.com 5000 typ host",
    "candidate:1 1 udp 2130706431 0.0.0.0 5000 typ host",
    "candidate:1 1 udp 2130706431 224.0.0.251 5353 typ host",
    "candidate:1 1 udp 2130706431 bad_name.local 5000 typ host",
    "candidate:1 1 udp 2130706431 127.0.0.1 5000 typ srflx raddr 10.0.0.1 rport 99999",
    "candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host raddr",  # odd trailer: ignored? must not crash
    "candidate:" + "1" * MAX_CANDIDATE_LENGTH,
])
def test_garbage_candidates_are_invalid_argument(line: str) -> None:
    try:
        parse_candidate(IceCandidate(line))
    except InvalidCandidateError as exc:
        assert exc.status.name == "INVALID_ARGUMENT"
    else:
        assert line.endswith("raddr"), f"accepted {line!r}"  # a dangling key is ignored by aiortc's parser


def test_random_candidate_mutants_never_raise_anything_else() -> None:
    rng = random.Random(7)
    alphabet = "0123456789abcdef.: -typhostudpraddr"
    for _ in range(3000):
        chars = list(HOST)
        for _ in range(rng.randint(1, 6)):
            position = rng.randrange(len(chars))
            action = rng.random()
            if action < 0.4:
                chars[position] = rng.choice(alphabet)
            elif action < 0.7:
                del chars[position]
            else:
                chars.insert(position, rng.choice(alphabet))
        try:
            parse_candidate(IceCandidate("".join(chars)))
        except InvalidCandidateError:
            pass


def test_split_candidates_strips_them_from_the_sdp() -> None:
    sdp = ("v=0\r\ns=-\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n"
           "a=candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host\r\na=end-of-candidates\r\na=mid:0\r\n")
    stripped, candidates = split_candidates(sdp)
    assert "a=candidate" not in stripped and "end-of-candidates" not in stripped and "a=mid:0" in stripped
    assert candidates == [IceCandidate("candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host", sdp_mid="0",
                                       sdp_mline_index=0)]


def test_ice_servers_with_urls_aiortc_cannot_parse_are_dropped() -> None:
    servers = rtc_ice_servers([
        IceServer(("stun:stun.example.test:3478", "http://nope")),
        IceServer(("bogus",)),
        IceServer(("turn:turn.example.test?transport=udp",), "user", "secret"),
    ])
    assert [s.urls for s in servers] == [["stun:stun.example.test:3478"], ["turn:turn.example.test?transport=udp"]]
    assert servers[1].username == "user" and servers[1].credential == "secret"
    assert rtc_ice_servers([]) == []  # never None: aiortc would then use a public STUN server


# -- offers --------------------------------------------------------------------------------------
async def test_sdp_mutants_are_refused_cleanly_and_release_everything() -> None:
    """reliability.md §0: aiortc raises seven exception types on mutated offers; we raise one."""
    client = WebRTCConnection(tag="fuzz-client")
    await client.pc.setLocalDescription(await client.pc.createOffer())
    offer = client.pc.localDescription.sdp
    await client.close()
    lines = offer.split("\r\n")
    rng = random.Random(11)
    sessions = PeerSessions()
    outcomes: dict[str, int] = {}
    for _ in range(120):
        mutated = list(lines)
        for _ in range(rng.randint(1, 3)):
            index = rng.randrange(len(mutated))
            action = rng.random()
            if action < 0.35:
                del mutated[index]
            elif action < 0.7:
                words = mutated[index].split(" ")
                words[rng.randrange(len(words))] = rng.choice(["", "x", "-1", "99999999999", "a=", ":"])
                mutated[index] = " ".join(words)
            else:
                mutated.insert(index, rng.choice(lines))
        session = PeerSession({}, tag="fuzz", registry=sessions)
        try:
            answer = await session.accept(SessionDescription("offer", "\r\n".join(mutated)))
            assert answer.type == "answer"
            outcomes["accepted"] = outcomes.get("accepted", 0) + 1
        except SignalingError as exc:
            outcomes[exc.status.name] = outcomes.get(exc.status.name, 0) + 1
        finally:
            await asyncio.wait_for(session.close(), 5)
    assert len(sessions) == 0 and sessions.created == 120
    assert set(outcomes) <= {"accepted", "INVALID_ARGUMENT"} and outcomes.get("INVALID_ARGUMENT", 0) > 0, outcomes


async def test_an_oversized_offer_is_refused_before_parsing() -> None:
    session = PeerSession({}, tag="big")
    try:
        with pytest.raises(InvalidSdpError):
            await session.accept(SessionDescription("offer", "v=0\r\n" + "a=x\r\n" * MAX_SDP_LENGTH))
        with pytest.raises(InvalidSdpError):
            await session.accept(SessionDescription("answer", "v=0\r\n"))
    finally:
        await session.close()


# -- the data-channel adapter ------------------------------------------------------------------------
class FakeDataChannel(AsyncIOEventEmitter):
    """The part of ``RTCDataChannel`` the adapter uses, with aiortc's event semantics."""

    label = "data"

    def __init__(self) -> None:
        super().__init__()
        self.readyState = "open"
        self.bufferedAmount = 0
        self.bufferedAmountLowThreshold = 0
        self.sent: list[bytes] = []

    def send(self, data: bytes) -> None:
        if self.readyState != "open":
            raise InvalidStateError
        self.sent.append(data)
        self.bufferedAmount += len(data)

    def drain(self, amount: int) -> None:
        """aiortc's ``_addBufferedAmount(-amount)``: the event fires only on crossing the threshold."""
        crosses = (self.bufferedAmount > self.bufferedAmountLowThreshold
                   and self.bufferedAmount - amount <= self.bufferedAmountLowThreshold)
        self.bufferedAmount -= amount
        if crosses:
            self.emit("bufferedamountlow")

    def close(self) -> None:
        self.readyState = "closed"
        self.emit("close")


def adapter() -> tuple[DataChannelAdapter, FakeDataChannel]:
    fake = FakeDataChannel()
    return DataChannelAdapter(cast(RTCDataChannel, fake), tag="unit"), fake


async def test_adapter_waiters_with_different_thresholds_wake_in_turn() -> None:
    channel, fake = adapter()
    channel.send(b"x" * 1000)
    assert channel.bufferedAmount == 1000
    await asyncio.wait_for(channel.wait_buffered_amount_low(1000), 1)  # already low enough
    high = asyncio.ensure_future(channel.wait_buffered_amount_low(800))
    low = asyncio.ensure_future(channel.wait_buffered_amount_low(100))
    await asyncio.sleep(0)
    assert fake.bufferedAmountLowThreshold == 800
    fake.drain(300)  # 700: crosses 800
    await asyncio.sleep(0)
    assert high.done() and not low.done() and fake.bufferedAmountLowThreshold == 100
    fake.drain(650)  # 50: crosses 100
    await asyncio.wait_for(low, 1)
    assert not channel._waiters


async def test_adapter_releases_waiters_and_reports_close_once() -> None:
    channel, fake = adapter()
    messages: list[bytes] = []
    closes: list[None] = []
    channel.set_listener(messages.append, lambda: closes.append(None))
    fake.emit("message", b"frame")
    fake.emit("message", "text is dropped")
    assert messages == [b"frame"] and channel.text_dropped == 1
    channel.send(b"y" * 10)
    waiter = asyncio.ensure_future(channel.wait_buffered_amount_low(0))
    await asyncio.sleep(0)
    fake.close()
    await asyncio.wait_for(waiter, 1)
    fake.emit("close")
    assert closes == [None]
    with pytest.raises(ChannelClosedError):
        channel.send(b"late")
    channel.set_listener(None, None)


async def test_adapter_turns_invalid_state_into_channel_closed() -> None:
    channel, fake = adapter()
    fake.readyState = "connecting"  # aiortc refuses sends before the channel opens
    with pytest.raises(ChannelClosedError):
        channel.send(b"early")
    late_listener: list[None] = []
    fake.readyState = "open"
    fake.close()
    channel.set_listener(None, lambda: late_listener.append(None))  # closed before anyone listened
    assert late_listener == [None]
