"""Sessions: setup variants (trickle, ``.local`` candidates), teardown from either side, the registry."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncGenerator, Callable

import pytest
from grpclib import GRPCError, Status

from peer.gen.viam.robot.v1 import robot_pb2
from peer.gen.viam.robot.v1.robot_grpc import RobotServiceStub
from peer.webrtc import OfferAnswerer, PeerSession, PeerSessions, WebRTCConnection, dial
from signaling.answerer import Offer
from signaling.config import WebRTCConfig
from signaling.sdp import IceCandidate, SessionDescription

from .conftest import WAIT, FakeMDns, Robot, eventually

pytestmark = pytest.mark.timeout(60)


async def resource_names(channel: object) -> int:
    reply = await RobotServiceStub(channel).ResourceNames(  # type: ignore[arg-type]
        robot_pb2.ResourceNamesRequest(), timeout=WAIT
    )
    return len(reply.resources)


def remote_candidate_types(session: PeerSession) -> dict[str, str]:
    """The server's view of the caller's candidates: address (or .local name) → type."""
    sctp = session.pc.sctp
    assert sctp is not None
    return {c.ip: c.type for c in sctp.transport.transport.getRemoteCandidates()}


# -- setup variants ------------------------------------------------------------------------------
async def test_a_trickling_caller_connects_through_call_updates(robot: Robot) -> None:
    async with await dial(robot.address, timeout=WAIT, trickle=True) as channel:
        assert await resource_names(channel) > 0
        (session,) = robot.sessions
        assert session.candidates_added >= 1 and session.candidates_rejected == 0
        assert "127.0.0.1" in remote_candidate_types(session)


def to_mdns(names: dict[str, str]) -> Callable[[IceCandidate], IceCandidate]:
    """A candidate filter that hides each host address behind a fresh ``<uuid>.local`` name, as Rust does."""

    def rewrite(candidate: IceCandidate) -> IceCandidate:
        parts = candidate.candidate.split()
        name = f"{uuid.uuid4()}.local"
        names[name] = parts[4]
        parts[4] = name
        return IceCandidate(" ".join(parts), sdp_mid=candidate.sdp_mid, sdp_mline_index=candidate.sdp_mline_index)

    return rewrite


async def test_unresolvable_local_candidates_connect_peer_reflexively(robot: Robot, loopback_only: FakeMDns) -> None:
    """aioice asks mDNS (our fake never answers), drops the name, and learns the caller from its checks."""
    names: dict[str, str] = {}
    async with await dial(robot.address, timeout=WAIT, trickle=True, candidate_filter=to_mdns(names)) as channel:
        assert await resource_names(channel) > 0
        (session,) = robot.sessions
        await eventually(lambda: sorted(loopback_only.queries) == sorted(names), what="mDNS queried")
        assert names and loopback_only.created >= 1
        types = remote_candidate_types(session)
        assert "prflx" in types.values() and not any(host.endswith(".local") for host in types), types


async def test_resolvable_local_candidates_are_paired_by_name(robot: Robot, loopback_only: FakeMDns) -> None:
    names: dict[str, str] = {}

    def rewrite_and_publish(candidate: IceCandidate) -> IceCandidate:
        hidden = to_mdns(names)(candidate)
        loopback_only.table.update(names)
        return hidden

    async with await dial(robot.address, timeout=WAIT, trickle=True, candidate_filter=rewrite_and_publish) as channel:
        assert await resource_names(channel) > 0
        (session,) = robot.sessions
        await eventually(lambda: any(h.endswith(".local") for h in remote_candidate_types(session)),
                         what="the .local candidate resolved and added")
        assert set(loopback_only.queries) == set(names)


# -- teardown ------------------------------------------------------------------------------------
async def test_a_client_close_tears_the_server_session_down(robot: Robot) -> None:
    channel = await dial(robot.address, timeout=WAIT)
    (session,) = robot.sessions
    assert session.is_open
    started = time.monotonic()
    await asyncio.wait_for(channel.close(), WAIT)
    await asyncio.wait_for(session.wait_closed(), 5.0)
    assert time.monotonic() - started < 5.0
    assert len(robot.sessions) == 0 and session.tunnel.closed
    assert session.close_reason in ("data channel closed", "connection closed")
    assert channel.closed and channel.tunnel.closed


async def test_close_all_ends_running_calls_and_refuses_new_peers(robot: Robot) -> None:
    channel = await dial(robot.address, timeout=WAIT)
    stub = RobotServiceStub(channel.as_channel())
    every = robot_pb2.StreamStatusRequest()
    every.every.FromMilliseconds(20)
    try:
        with pytest.raises(GRPCError) as err:  # the trailers' status is raised when the call is left
            async with stub.StreamStatus.open(timeout=WAIT) as stream:
                await stream.send_message(every, end=True)
                assert await stream.recv_message() is not None
                await asyncio.wait_for(robot.sessions.close_all(), WAIT)
                while await asyncio.wait_for(stream.recv_message(), WAIT) is not None:
                    pass
        assert err.value.status is Status.UNAVAILABLE
        await asyncio.wait_for(channel.wait_closed(), 5.0)  # the client noticed and released everything
        assert len(robot.sessions) == 0 and robot.sessions.closed
        with pytest.raises(GRPCError) as refused:
            await dial(robot.address, timeout=WAIT)
        assert refused.value.status is Status.UNAVAILABLE
        assert "shutting down" in (refused.value.message or "")
    finally:
        await channel.close()


async def test_session_close_is_idempotent_bounded_and_survives_a_raising_aiortc_close(
    robot: Robot, monkeypatch: pytest.MonkeyPatch
) -> None:
    channel = await dial(robot.address, timeout=WAIT)
    (session,) = robot.sessions

    real_close = session.pc.close
    calls = 0

    async def broken_close() -> None:
        nonlocal calls
        calls += 1
        if calls == 1:  # ours; aiortc calls close() itself too once every DTLS transport has closed
            raise AttributeError("'NoneType' object has no attribute 'stop'")  # what the fuzzing found
        await real_close()

    monkeypatch.setattr(session.pc, "close", broken_close)
    try:
        await asyncio.wait_for(asyncio.gather(session.close("test"), session.close("again")), WAIT)
        await asyncio.wait_for(session.close(), WAIT)  # already closed: returns at once
        assert session.closed and session.close_reason == "test" and len(robot.sessions) == 0
        sctp = session.pc.sctp
        assert sctp is not None and sctp.transport.state == "closed"  # stopped one by one instead
        assert sctp.transport.transport.state == "closed"
        await asyncio.wait_for(channel.wait_closed(), 5.0)
    finally:
        await channel.close()


async def test_a_handler_cancelled_before_the_channel_opens_releases_the_session(robot: Robot) -> None:
    """The answerer cancels the handler at the offer deadline: the half-made session must go."""
    sessions = PeerSessions()
    handle_offer = OfferAnswerer(robot.server.handlers, sessions)
    client = WebRTCConnection(tag="silent-client")
    await client.pc.setLocalDescription(await client.pc.createOffer())
    offer = Offer("0123456789", SessionDescription("offer", client.pc.localDescription.sdp), WebRTCConfig(),
                  time.time() + 5, ("x",))
    answers: list[SessionDescription] = []

    async def send_answer(answer: SessionDescription) -> None:
        answers.append(answer)

    async def send_candidate(candidate: IceCandidate | None) -> None:
        raise AssertionError("aiortc has nothing to trickle")

    async def no_candidates() -> AsyncGenerator[IceCandidate, None]:
        await asyncio.Event().wait()
        yield IceCandidate("")

    candidates = no_candidates()
    try:
        with pytest.raises(TimeoutError):  # the caller never applies the answer
            await asyncio.wait_for(handle_offer(offer, candidates, send_candidate, send_answer), 0.3)
        assert len(answers) == 1 and answers[0].type == "answer"
        assert len(sessions) == 0 and sessions.created == 1
    finally:
        await candidates.aclose()
        await client.close()


async def test_negotiation_messages_reach_the_hook_and_text_on_data_is_dropped(robot: Robot) -> None:
    async with await dial(robot.address, timeout=WAIT) as channel:
        (session,) = robot.sessions
        seen: list[str | bytes] = []
        session.on_negotiation = lambda _session, message: seen.append(message)
        await eventually(lambda: channel.negotiation.readyState == "open", what="negotiation channel open")
        channel.negotiation.send("eyJ0eXBlIjoib2ZmZXIifQ==")
        await eventually(lambda: seen == ["eyJ0eXBlIjoib2ZmZXIifQ=="], what="negotiation message delivered")

        channel.data.channel.send("text is not a tunnel frame")
        await eventually(lambda: session.data.text_dropped == 1, what="text dropped")
        assert await resource_names(channel) > 0
