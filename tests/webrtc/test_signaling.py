"""Bad input at the signaling level, through a raw grpclib SignalingService stub; the robot keeps serving.

Decisions these tests pin down:

* An offer that is not base64 JSON is refused by the signaling server itself (INVALID_ARGUMENT);
  one that decodes but is not a usable SDP reaches our answerer and comes back as the Call's
  status, INVALID_ARGUMENT with "error from answerer: …". No session survives it.
* A garbage candidate in CallUpdate is **ignored** (logged): CallUpdate only hands it to the call
  queue and has already answered OK when the answerer parses it, and the caller's other
  candidates may still connect. The same connection then opens normally.
* An unknown uuid in CallUpdate is NOT_FOUND; a missing ``rpc-host`` is UNKNOWN with goutils'
  text "expected rpc-host to be set in metadata" (Go sends a plain error, wire-protocol.md §3).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest
from aiortc import RTCSessionDescription
from grpclib import GRPCError, Status
from grpclib.client import Channel

from peer.gen.viam.robot.v1 import robot_pb2
from peer.gen.viam.robot.v1.robot_grpc import RobotServiceStub
from peer.webrtc import WebRTCConnection, dial
from peer.webrtc.rtc import split_candidates
from signaling.gen.proto.rpc.webrtc.v1 import signaling_pb2 as pb
from signaling.gen.proto.rpc.webrtc.v1.signaling_grpc import SignalingServiceStub
from signaling.sdp import IceCandidate, SessionDescription, candidate_to_proto, decode_sdp, encode_sdp

from .conftest import WAIT, Robot, eventually

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def stub(robot: Robot) -> AsyncIterator[SignalingServiceStub]:
    host, port = robot.address.rsplit(":", 1)
    channel = Channel(host, int(port))
    try:
        yield SignalingServiceStub(channel)
    finally:
        channel.close()


def md(robot: Robot) -> list[tuple[str, str]]:
    return [("rpc-host", robot.address)]


async def still_serving(robot: Robot) -> None:
    """A fresh WebRTC connection and call work, and nothing from the bad exchange is left."""
    await eventually(lambda: len(robot.sessions) == 0, what="no session left over")
    async with await dial(robot.address, timeout=WAIT) as channel:
        reply = await RobotServiceStub(channel.as_channel()).ResourceNames(robot_pb2.ResourceNamesRequest(),
                                                                            timeout=WAIT)
        assert reply.resources
    await eventually(lambda: len(robot.sessions) == 0, what="the check's own session closed")


async def client_offer(trickle: bool = False) -> tuple[WebRTCConnection, str, list[IceCandidate]]:
    client = WebRTCConnection(tag="raw-client")
    await client.pc.setLocalDescription(await client.pc.createOffer())
    sdp = client.pc.localDescription.sdp
    if trickle:
        sdp, candidates = split_candidates(sdp)
        return client, sdp, candidates
    return client, sdp, []


async def call_error(stub: SignalingServiceStub, robot: Robot, sdp_field: str) -> GRPCError:
    with pytest.raises(GRPCError) as err:
        async with stub.Call.open(metadata=md(robot), timeout=WAIT) as call:
            await call.send_message(pb.CallRequest(sdp=sdp_field), end=True)
            while await call.recv_message() is not None:
                pass
    return err.value


async def test_an_offer_that_is_not_base64_json_is_invalid_argument(robot: Robot, stub: SignalingServiceStub) -> None:
    for field in ("not base64 at all!", encode_sdp(SessionDescription("answer", "v=0\r\n")), ""):
        error = await call_error(stub, robot, field)
        assert error.status is Status.INVALID_ARGUMENT, error
    assert robot.sessions.created == 0  # refused before any answerer saw it
    await still_serving(robot)


@pytest.mark.parametrize("mutation", ["garbage", "truncated", "no-fingerprint", "no-ice-pwd", "no-data-channel",
                                      "huge"])
async def test_a_malformed_sdp_is_invalid_argument_from_the_answerer(
    robot: Robot, stub: SignalingServiceStub, mutation: str
) -> None:
    client, sdp, _ = await client_offer()
    await client.close()
    lines = sdp.split("\r\n")
    bad = {
        "garbage": "v=0\r\nthis is not an SDP\r\nm=application\r\n",
        "truncated": sdp[: len(sdp) // 3],
        "no-fingerprint": "\r\n".join(line for line in lines if not line.startswith("a=fingerprint")),
        "no-ice-pwd": "\r\n".join(line for line in lines if not line.startswith("a=ice-pwd")),
        "no-data-channel": sdp.replace("m=application", "m=audio").replace("webrtc-datachannel", "0"),
        "huge": sdp + "a=x-filler:" + "x" * 70_000 + "\r\n",
    }[mutation]
    error = await call_error(stub, robot, encode_sdp(SessionDescription("offer", bad)))
    assert error.status is Status.INVALID_ARGUMENT, error
    assert (error.message or "").startswith("error from answerer:"), error.message
    assert robot.sessions.created == 1
    await still_serving(robot)


async def test_garbage_candidates_are_ignored_and_the_call_still_connects(
    robot: Robot, stub: SignalingServiceStub, caplog: pytest.LogCaptureFixture
) -> None:
    client, sdp, candidates = await client_offer(trickle=True)
    assert candidates, "the client gathered a loopback candidate"
    garbage = [
        IceCandidate("candidate:garbage", sdp_mid="0"),
        IceCandidate("candidate:1 1 udp 2130706431 not-an-ip 5000 typ host", sdp_mid="0"),
        IceCandidate("candidate:1 1 udp 2130706431 127.0.0.1 70000 typ host", sdp_mid="0"),
        IceCandidate("candidate:1 1 udp 2130706431 127.0.0.1 5000 typ bogus", sdp_mid="0"),
        IceCandidate("candidate:1 1 sctp 2130706431 127.0.0.1 5000 typ host", sdp_mid="0"),
        IceCandidate("candidate:" + "9" * 2000, sdp_mid="0"),
        IceCandidate("\x00\xff", sdp_mline_index=7),
    ]
    harmless = [IceCandidate("", sdp_mid="0")]  # a browser's end-of-candidates: skipped
    caplog.set_level(logging.WARNING, logger="peer.webrtc")
    try:
        async with stub.Call.open(metadata=md(robot), timeout=WAIT) as call:
            await call.send_message(pb.CallRequest(sdp=encode_sdp(SessionDescription("offer", sdp))), end=True)
            first = await call.recv_message()
            assert first is not None and first.WhichOneof("stage") == "init"
            answer = decode_sdp(first.init.sdp, expect_type="answer")
            await client.pc.setRemoteDescription(RTCSessionDescription(sdp=answer.sdp, type="answer"))
            for candidate in [*garbage, *harmless]:
                reply = await stub.CallUpdate(pb.CallUpdateRequest(uuid=first.uuid, candidate=candidate_to_proto(
                    candidate)), metadata=md(robot), timeout=WAIT)
                assert reply == pb.CallUpdateResponse()
            # the real candidates go last, with a mid that names nothing: routed to the bundle anyway
            for candidate in candidates:
                await stub.CallUpdate(pb.CallUpdateRequest(uuid=first.uuid, candidate=candidate_to_proto(
                    IceCandidate(candidate.candidate, sdp_mid="no-such-mid"))), metadata=md(robot), timeout=WAIT)
            await stub.CallUpdate(pb.CallUpdateRequest(uuid=first.uuid, done=True), metadata=md(robot), timeout=WAIT)
            await asyncio.wait_for(client.wait_open(), WAIT)
            assert await asyncio.wait_for(call.recv_message(), WAIT) is None  # the Call ends OK once ready
        (session,) = robot.sessions
        assert session.is_open
        assert session.candidates_rejected == len(garbage)
        assert session.candidates_added == len(candidates)
        ignored = [r for r in caplog.records if "ignoring a caller candidate" in r.getMessage()]
        assert len(ignored) == len(garbage)
    finally:
        await client.close()
    await still_serving(robot)


async def test_call_update_for_an_unknown_uuid_is_not_found(robot: Robot, stub: SignalingServiceStub) -> None:
    for request in (pb.CallUpdateRequest(uuid="no-such-call", done=True),
                    pb.CallUpdateRequest(uuid="", candidate=pb.ICECandidate(candidate="candidate:x"))):
        with pytest.raises(GRPCError) as err:
            await stub.CallUpdate(request, metadata=md(robot), timeout=WAIT)
        assert err.value.status is Status.NOT_FOUND
        assert "no active offer" in (err.value.message or "")
    await still_serving(robot)


async def test_a_missing_rpc_host_is_refused_as_goutils_does(robot: Robot, stub: SignalingServiceStub) -> None:
    client, sdp, _ = await client_offer()
    await client.close()
    text = "expected rpc-host to be set in metadata"
    with pytest.raises(GRPCError) as err:
        async with stub.Call.open(timeout=WAIT) as call:
            await call.send_message(pb.CallRequest(sdp=encode_sdp(SessionDescription("offer", sdp))), end=True)
            await call.recv_message()
    assert (err.value.status, err.value.message) == (Status.UNKNOWN, text)
    with pytest.raises(GRPCError) as err:
        await stub.CallUpdate(pb.CallUpdateRequest(uuid="x", done=True), timeout=WAIT)
    assert (err.value.status, err.value.message) == (Status.UNKNOWN, text)
    with pytest.raises(GRPCError) as err:
        await stub.OptionalWebRTCConfig(pb.OptionalWebRTCConfigRequest(), timeout=WAIT)
    assert (err.value.status, err.value.message) == (Status.UNKNOWN, text)
    assert robot.sessions.created == 0
    await still_serving(robot)


async def test_dial_reports_signaling_failures_as_grpc_errors(robot: Robot) -> None:
    with pytest.raises(GRPCError) as err:  # nothing listens there
        await dial("127.0.0.1:1", timeout=WAIT)
    assert err.value.status is Status.UNAVAILABLE
    with pytest.raises(GRPCError) as err:  # no answerer for that host: offline after the queue's delay
        await dial(robot.address, host="nobody.test", timeout=WAIT)
    assert err.value.status is Status.NOT_FOUND
    with pytest.raises(GRPCError) as err:  # the whole dial is bounded
        await dial(robot.address, host="nobody.test", timeout=0.05)
    assert err.value.status is Status.DEADLINE_EXCEEDED
    with pytest.raises(ValueError):
        await dial("no-port-here")
    async with await dial(robot.address, host="robot.test", timeout=WAIT) as channel:  # the answerer's 2nd host
        assert channel.is_open
    await still_serving(robot)
