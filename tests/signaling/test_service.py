"""SignalingService end to end through grpclib's ChannelFor and a fake answerer, on every queue setup
(memory, Redis, two Redis instances with callers on one and answerers on the other)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from grpclib import GRPCError, Status
from grpclib.client import Channel
from grpclib.testing import ChannelFor

from signaling.answerer import Answerer
from signaling.config import IceServer, WebRTCConfig
from signaling.errors import InvalidSdpError
from signaling.gen.proto.rpc.webrtc.v1 import signaling_pb2 as pb
from signaling.gen.proto.rpc.webrtc.v1.signaling_grpc import SignalingServiceStub
from signaling.internal import internal_answerer
from signaling.sdp import candidate_from_proto, decode_sdp, encode_sdp
from signaling.service import SignalingService

from .conftest import IDLE, MakeSetup, QueueSetup
from .fakes import ANSWER, HOST, OFFER, OFFER_B64, FakePeer, cand, eventually, md, update

FAST = {"min_deadline": 0.1, "reconnect_wait": 0.05}

pytestmark = pytest.mark.timeout(10)


def answerer(channel: Channel, peer: FakePeer, *hosts: str, workers: int = 2) -> Answerer:
    return Answerer(channel, hosts or (HOST,), peer, workers=workers, min_deadline=0.1, reconnect_wait=0.05)


@contextlib.asynccontextmanager
async def channels(setup: QueueSetup, **options: Any) -> AsyncIterator[tuple[Channel, Channel]]:
    """Channels to a caller-side and an answerer-side service over ``setup`` (one service if one queue)."""
    caller = SignalingService(setup.caller, **options)
    answer = caller if setup.answerer is setup.caller else SignalingService(setup.answerer, **options)
    async with ChannelFor([caller]) as caller_channel, ChannelFor([answer]) as answer_channel:
        yield caller_channel, answer_channel


def signaling_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING and r.name.startswith("signaling")]


async def test_full_exchange_in_order(
    stub: SignalingServiceStub, channel: Channel, setup: QueueSetup, caplog: pytest.LogCaptureFixture
) -> None:
    peer = FakePeer(local=(cand(1), cand(2)))
    # A long reconnect wait proves a finished call is replaced by a fresh Answer stream at once.
    ans = Answerer(channel, [HOST], peer, min_deadline=0.1, reconnect_wait=30.0)
    async with ans, stub.Call.open(metadata=md()) as call:
        await call.send_message(pb.CallRequest(sdp=OFFER_B64), end=True)
        first = await call.recv_message()
        assert first is not None and first.WhichOneof("stage") == "init"
        uuid = first.uuid
        assert decode_sdp(first.init.sdp) == ANSWER
        updates = [await call.recv_message() for _ in range(2)]
        assert [u.uuid for u in updates if u] == [uuid, uuid]
        assert [candidate_from_proto(u.update.candidate) for u in updates if u] == [cand(1), cand(2)]

        for n in (10, 11, 12):
            await stub.CallUpdate(update(uuid, cand(n)), metadata=md())
        await stub.CallUpdate(update(uuid, done=True), metadata=md())
        assert await call.recv_message() is None  # the answerer is done: the Call stream ends OK

        assert peer.received[uuid] == [cand(10), cand(11), cand(12)]
        assert peer.ready == [uuid]
        (offer,) = peer.offers
        assert offer.sdp == OFFER and offer.uuid == uuid and offer.hosts == (HOST,)
        assert offer.deadline > time.time()
        await eventually(lambda: ans.stats.answered == 1 and ans.stats.streams == 3)
        await setup.eventually(lambda stats: stats.calls == 0)
    assert signaling_warnings(caplog) == []
    with pytest.raises(GRPCError) as err:  # the call is gone once both sides finished
        await stub.CallUpdate(update(uuid, done=True), metadata=md())
    assert err.value.status is Status.NOT_FOUND


async def test_early_done_ends_call_stream_and_late_updates_still_arrive(
    stub: SignalingServiceStub, channel: Channel
) -> None:
    """An aiortc answer is complete, so the answerer may say done at once (§5.5); the caller keeps trickling."""
    peer = FakePeer(local=(cand(1),), early_done=True)
    async with answerer(channel, peer):
        async with stub.Call.open(metadata=md()) as call:
            await call.send_message(pb.CallRequest(sdp=OFFER_B64), end=True)
            responses = [r async for r in call]
        assert [r.WhichOneof("stage") for r in responses] == ["init", "update"]
        uuid = responses[0].uuid
        await stub.CallUpdate(update(uuid, cand(7)), metadata=md())
        await stub.CallUpdate(update(uuid, done=True), metadata=md())
        await eventually(lambda: peer.ready == [uuid])
        assert peer.received[uuid] == [cand(7)]


async def test_a_handler_that_said_done_outlives_the_answer_stream(
    stub: SignalingServiceStub, channel: Channel
) -> None:
    """done early, then the caller is done: the server ends the Answer stream while the connection
    is still forming; the handler must not be cancelled for that (it returns once ready)."""
    opened = asyncio.Event()
    peer = FakePeer(early_done=True, ready_after=opened)
    async with answerer(channel, peer) as ans:
        async with stub.Call.open(metadata=md()) as call:
            await call.send_message(pb.CallRequest(sdp=OFFER_B64), end=True)
            responses = [r async for r in call]
        uuid = responses[0].uuid
        await stub.CallUpdate(update(uuid, done=True), metadata=md())
        await eventually(lambda: ans.stats.answered == 1)  # the Answer stream is over
        await asyncio.sleep(0.05)
        assert peer.cancelled == [] and peer.ready == []
        opened.set()
        await eventually(lambda: peer.ready == [uuid])
    assert peer.cancelled == []


async def test_a_detached_handler_is_cancelled_when_the_answerer_stops(
    stub: SignalingServiceStub, channel: Channel
) -> None:
    peer = FakePeer(early_done=True, ready_after=asyncio.Event())  # the connection never opens
    async with answerer(channel, peer) as ans:
        async with stub.Call.open(metadata=md()) as call:
            await call.send_message(pb.CallRequest(sdp=OFFER_B64), end=True)
            responses = [r async for r in call]
        uuid = responses[0].uuid
        await stub.CallUpdate(update(uuid, done=True), metadata=md())
        await eventually(lambda: ans.stats.answered == 1)
        assert peer.cancelled == []
    assert peer.cancelled == [uuid] and peer.ready == []


async def test_heartbeats_when_allowed(stub: SignalingServiceStub) -> None:
    assert pb.AnswerRequest(heartbeat=pb.AnswerRequestHeartbeatStage()).SerializeToString() == b"\x32\x00"
    async with stub.Answer.open(metadata=md(heartbeats_allowed="true")) as stream:
        await stream.send_request()
        beats = [await asyncio.wait_for(stream.recv_message(), 1.0) for _ in range(3)]
        assert all(b is not None and b.WhichOneof("stage") == "heartbeat" and b.uuid == "" for b in beats)
        await stream.cancel()


@pytest.mark.parametrize("value", [None, "false", "True"])
async def test_no_heartbeats_unless_exactly_true(stub: SignalingServiceStub, value: str | None) -> None:
    metadata = md() if value is None else md(heartbeats_allowed=value)
    async with stub.Answer.open(metadata=metadata) as stream:
        await stream.send_request()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(stream.recv_message(), 0.2)
        await stream.cancel()


async def test_answerer_receives_heartbeats(channel: Channel, peer: FakePeer) -> None:
    async with answerer(channel, peer) as ans:
        await eventually(lambda: ans.stats.heartbeats >= 4)
        assert ans.stats.streams == 2 and ans.stats.offers == 0


async def test_silent_idle_stream_is_reopened(channel: Channel, peer: FakePeer) -> None:
    ans = Answerer(channel, [HOST], peer, workers=1, heartbeats=False, idle_timeout=0.05, reconnect_wait=0.01)
    async with ans:
        await eventually(lambda: ans.stats.streams >= 3)


async def test_unknown_uuid_is_not_found(stub: SignalingServiceStub) -> None:
    for request in (update("nope", cand(1)), update("nope", done=True)):
        with pytest.raises(GRPCError) as err:
            await stub.CallUpdate(request, metadata=md())
        assert err.value.status is Status.NOT_FOUND
        assert err.value.message == 'no active offer for "nope"'


async def test_no_answerer_is_host_offline(stub: SignalingServiceStub, setup: QueueSetup) -> None:
    started = time.monotonic()
    with pytest.raises(GRPCError) as err:
        async with stub.Call.open(metadata=md()) as call:
            await call.send_message(pb.CallRequest(sdp=OFFER_B64), end=True)
            await call.recv_message()
    elapsed = time.monotonic() - started
    assert err.value.status is Status.NOT_FOUND
    assert err.value.message is not None and err.value.message.startswith("host appears to be offline")
    assert 0.25 <= elapsed < 1.5
    assert await setup.stats() == IDLE


async def test_answerer_present_but_busy_times_out(make_setup: MakeSetup) -> None:
    setup = await make_setup(offline_delay=0.1)
    async with channels(setup, offer_deadline=0.3) as (channel, _), setup.answerer.answerer_presence([HOST]):
        stub = SignalingServiceStub(channel)
        with pytest.raises(GRPCError) as err:
            async with stub.Call.open(metadata=md()) as call:
                await call.send_message(pb.CallRequest(sdp=OFFER_B64), end=True)
                await call.recv_message()
        assert err.value.status is Status.DEADLINE_EXCEEDED
        assert err.value.message == f"no answer from host {HOST!r} within 0.3s"
        stats = await setup.stats()
        assert stats.calls == 0 and stats.callers == {}


async def test_answerer_arriving_during_offline_delay_gets_the_call(
    stub: SignalingServiceStub, channel: Channel, peer: FakePeer
) -> None:
    async with stub.Call.open(metadata=md()) as call:
        await call.send_message(pb.CallRequest(sdp=OFFER_B64), end=True)
        await asyncio.sleep(0.1)
        async with answerer(channel, peer):
            first = await call.recv_message()
            assert first is not None and first.WhichOneof("stage") == "init"
            await stub.CallUpdate(update(first.uuid, done=True), metadata=md())
            assert await call.recv_message() is None


@pytest.mark.parametrize("rpc", ["Call", "CallUpdate", "OptionalWebRTCConfig", "Answer"])
async def test_missing_rpc_host(stub: SignalingServiceStub, rpc: str) -> None:
    with pytest.raises(GRPCError) as err:
        if rpc == "Call":
            async with stub.Call.open() as call:
                await call.send_message(pb.CallRequest(sdp=OFFER_B64), end=True)
                await call.recv_message()
        elif rpc == "CallUpdate":
            await stub.CallUpdate(update("x", done=True))
        elif rpc == "OptionalWebRTCConfig":
            await stub.OptionalWebRTCConfig(pb.OptionalWebRTCConfigRequest())
        else:
            async with stub.Answer.open(metadata=[("heartbeats-allowed", "true")]) as stream:
                await stream.send_request()
                await stream.recv_message()
    assert err.value.status is Status.UNKNOWN
    assert err.value.message == "expected rpc-host to be set in metadata"


async def test_host_count_and_empty_host(stub: SignalingServiceStub) -> None:
    with pytest.raises(GRPCError) as err:
        await stub.CallUpdate(update("x", done=True), metadata=md("a:1", "b:2"))
    assert (err.value.status, err.value.message) == (Status.UNKNOWN, "expected 1 rpc-host")
    five = [f"h{i}.local" for i in range(5)]
    await stub.OptionalWebRTCConfig(pb.OptionalWebRTCConfigRequest(), metadata=md(*five))
    with pytest.raises(GRPCError) as err:
        await stub.OptionalWebRTCConfig(pb.OptionalWebRTCConfigRequest(), metadata=md(*five, "h5.local"))
    assert (err.value.status, err.value.message) == (Status.UNKNOWN, "too many rpc-host")
    with pytest.raises(GRPCError) as err:  # grpclib refuses to send an empty value; a folded header has one
        await stub.OptionalWebRTCConfig(pb.OptionalWebRTCConfigRequest(), metadata=md("a.local,"))
    assert (err.value.status, err.value.message) == (Status.UNKNOWN, "expected non-empty rpc-host")


@pytest.mark.parametrize(
    "host", ["127.0.0.1:54321", "localhost:8080", "foo.local", "[::1]:8080", "robot.abc.viam.cloud"]
)
async def test_any_host_string_is_accepted(stub: SignalingServiceStub, channel: Channel, host: str) -> None:
    await stub.OptionalWebRTCConfig(pb.OptionalWebRTCConfigRequest(), metadata=md(host))
    peer = FakePeer(early_done=True)
    async with answerer(channel, peer, host), stub.Call.open(metadata=md(host)) as call:
        await call.send_message(pb.CallRequest(sdp=OFFER_B64), end=True)
        responses = [r async for r in call]
        assert [r.WhichOneof("stage") for r in responses] == ["init"]
        await stub.CallUpdate(update(responses[0].uuid, done=True), metadata=md(host))


async def test_allow_list() -> None:
    service = SignalingService(allowed_hosts=["robot.local"], offer_deadline=0.5)
    async with ChannelFor([service]) as channel:
        stub = SignalingServiceStub(channel)
        await stub.OptionalWebRTCConfig(pb.OptionalWebRTCConfigRequest(), metadata=md("robot.local"))
        for rpc in (
            stub.OptionalWebRTCConfig(pb.OptionalWebRTCConfigRequest(), metadata=md("robot.local", "other.local")),
            stub.CallUpdate(update("x", done=True), metadata=md("other.local")),
        ):
            with pytest.raises(GRPCError) as err:
                await rpc
            assert (err.value.status, err.value.message) == (Status.INVALID_ARGUMENT, "host not preconfigured")
    await service.close()


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    "sdp",
    [
        "",
        "not base64 at all!",
        _b64("not json"),
        _b64("[1, 2]"),
        _b64(json.dumps({"sdp": "v=0\r\n"})),
        _b64(json.dumps({"type": "offer"})),
        _b64(json.dumps({"type": "bogus", "sdp": "v=0\r\n"})),
        encode_sdp(ANSWER),  # a Call must carry an offer
    ],
)
async def test_bad_sdp_is_invalid_argument(stub: SignalingServiceStub, channel: Channel, sdp: str) -> None:
    async with answerer(channel, FakePeer()):
        with pytest.raises(GRPCError) as err:
            async with stub.Call.open(metadata=md()) as call:
                await call.send_message(pb.CallRequest(sdp=sdp), end=True)
                await call.recv_message()
        assert err.value.status is Status.INVALID_ARGUMENT


async def test_two_answerers_many_callers_each_offer_answered_once(
    stub: SignalingServiceStub, channel: Channel, setup: QueueSetup, caplog: pytest.LogCaptureFixture
) -> None:
    peers = (FakePeer(), FakePeer())
    callers = 24

    async def one_call() -> str:
        async with stub.Call.open(metadata=md()) as call:
            await call.send_message(pb.CallRequest(sdp=OFFER_B64), end=True)
            first = await call.recv_message()
            assert first is not None and first.WhichOneof("stage") == "init"
            await stub.CallUpdate(update(first.uuid, done=True), metadata=md())
            assert await call.recv_message() is None
            return first.uuid

    async with answerer(channel, peers[0]) as a0, answerer(channel, peers[1]) as a1:
        uuids = await asyncio.gather(*(one_call() for _ in range(callers)))
        await eventually(lambda: a0.stats.answered + a1.stats.answered == callers)
    answered = [offer.uuid for p in peers for offer in p.offers]
    assert len(set(uuids)) == callers
    assert sorted(answered) == sorted(uuids)  # every offer reached exactly one answerer, once
    assert all(p.offers for p in peers)
    await setup.eventually(lambda stats: stats.calls == 0)
    assert signaling_warnings(caplog) == []


async def test_caller_cancel_mid_exchange_cancels_answerer(
    stub: SignalingServiceStub, channel: Channel, setup: QueueSetup
) -> None:
    peer = FakePeer(block=True)
    async with answerer(channel, peer, workers=1) as ans:
        async with stub.Call.open(metadata=md()) as call:
            await call.send_message(pb.CallRequest(sdp=OFFER_B64), end=True)
            first = await call.recv_message()
            assert first is not None
            await call.cancel()
        await asyncio.wait_for(peer.cancel_seen.wait(), 1.0)
        assert peer.cancelled == [first.uuid] and peer.ready == []
        await eventually(lambda: ans.stats.failed == 1 and ans.stats.streams == 2)
        await setup.eventually(lambda stats: stats.calls == 0 and stats.callers == {})


async def test_caller_error_update_aborts_call(stub: SignalingServiceStub, channel: Channel) -> None:
    peer = FakePeer(block=True)
    async with answerer(channel, peer):
        with pytest.raises(GRPCError) as err:
            async with stub.Call.open(metadata=md()) as call:
                await call.send_message(pb.CallRequest(sdp=OFFER_B64), end=True)
                first = await call.recv_message()
                assert first is not None
                error = pb.CallUpdateRequest(uuid=first.uuid)
                error.error.code = Status.UNKNOWN.value
                error.error.message = "double init"
                await stub.CallUpdate(error, metadata=md())
                await call.recv_message()
        assert (err.value.status, err.value.message) == (Status.UNKNOWN, "call aborted by caller: double init")
        await asyncio.wait_for(peer.cancel_seen.wait(), 1.0)


async def test_answerer_error_reaches_caller(stub: SignalingServiceStub, channel: Channel) -> None:
    peer = FakePeer(fail_with=InvalidSdpError("cannot parse the offer"))
    async with answerer(channel, peer):
        with pytest.raises(GRPCError) as err:
            async with stub.Call.open(metadata=md()) as call:
                await call.send_message(pb.CallRequest(sdp=OFFER_B64), end=True)
                await call.recv_message()
    assert err.value.status is Status.INVALID_ARGUMENT
    assert err.value.message == "error from answerer: cannot parse the offer"


async def test_answerer_going_away_fails_the_call(stub: SignalingServiceStub, channel: Channel) -> None:
    peer = FakePeer(block=True)
    ans = answerer(channel, peer)
    ans.start()
    try:
        with pytest.raises(GRPCError) as err:
            async with stub.Call.open(metadata=md()) as call:
                await call.send_message(pb.CallRequest(sdp=OFFER_B64), end=True)
                assert await call.recv_message() is not None
                await ans.stop()
                await call.recv_message()
        assert err.value.status is Status.UNAVAILABLE
        assert peer.cancelled == [peer.offers[0].uuid]
    finally:
        await ans.stop()


async def test_deadline_cancels_a_slow_answerer(make_setup: MakeSetup) -> None:
    setup = await make_setup(offline_delay=0.2)
    peer = FakePeer(block=True, early_done=False)
    async with channels(setup, offer_deadline=0.4) as (caller_channel, channel), answerer(channel, peer) as ans:
        stub = SignalingServiceStub(caller_channel)
        with pytest.raises(GRPCError) as err:
            async with stub.Call.open(metadata=md()) as call:
                await call.send_message(pb.CallRequest(sdp=OFFER_B64), end=True)
                first = await call.recv_message()
                assert first is not None
                await stub.CallUpdate(update(first.uuid, done=True), metadata=md())
                await call.recv_message()
        assert err.value.status is Status.DEADLINE_EXCEEDED
        await asyncio.wait_for(peer.cancel_seen.wait(), 1.0)
        await eventually(lambda: ans.stats.failed == 1)
        await setup.eventually(lambda stats: stats.calls == 0)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("uuid", "uuid mismatch"),
        ("update_first", "got update stage before init stage"),
        ("done_first", "got done stage before init stage"),
        ("bad_answer", "answerer sent an invalid answer"),
        ("init_twice", "got init stage more than once"),
    ],
)
async def test_answerer_protocol_violations(stub: SignalingServiceStub, bad: str, message: str) -> None:
    """A raw Answer stream that breaks the stage order: both the answerer and the caller get INVALID_ARGUMENT."""

    async def caller() -> GRPCError:
        try:
            async with stub.Call.open(metadata=md()) as call:
                await call.send_message(pb.CallRequest(sdp=OFFER_B64), end=True)
                while await call.recv_message() is not None:
                    pass
        except GRPCError as exc:
            return exc
        raise AssertionError("the Call should fail")

    calling: asyncio.Task[GRPCError] | None = None
    with pytest.raises(GRPCError) as err:
        async with stub.Answer.open(metadata=md()) as stream:
            await stream.send_request()
            calling = asyncio.create_task(caller())
            init = await stream.recv_message()
            assert init is not None and init.WhichOneof("stage") == "init"
            assert decode_sdp(init.init.sdp) == OFFER and init.init.HasField("deadline")
            good_init = pb.AnswerResponse(uuid=init.uuid, init=pb.AnswerResponseInitStage(sdp=encode_sdp(ANSWER)))
            if bad == "uuid":
                await stream.send_message(pb.AnswerResponse(uuid="other", init=good_init.init))
            elif bad == "update_first":
                await stream.send_message(pb.AnswerResponse(uuid=init.uuid, update=pb.AnswerResponseUpdateStage()))
            elif bad == "done_first":
                await stream.send_message(pb.AnswerResponse(uuid=init.uuid, done=pb.AnswerResponseDoneStage()))
            elif bad == "bad_answer":
                bad_init = pb.AnswerResponseInitStage(sdp=OFFER_B64)
                await stream.send_message(pb.AnswerResponse(uuid=init.uuid, init=bad_init))
            else:
                await stream.send_message(good_init)
                await stream.send_message(good_init)
            replies = [reply async for reply in stream]
            assert [r.WhichOneof("stage") for r in replies] == ["error"]  # the answerer is told, too
    assert err.value.status is Status.INVALID_ARGUMENT
    assert err.value.message is not None and err.value.message.startswith(message)
    assert calling is not None
    caller_error = await asyncio.wait_for(calling, 1.0)
    assert caller_error.status is Status.INVALID_ARGUMENT
    assert caller_error.message is not None and message in caller_error.message


async def test_optional_webrtc_config_and_fake_basic_auth() -> None:
    config = WebRTCConfig.of([IceServer(("turn:turn.example:3478",), "user", "secret")], disable_trickle=True)
    service = SignalingService(config=config)
    async with ChannelFor([service]) as channel:
        stub = SignalingServiceStub(channel)
        fake_basic = "Basic ZmFrZSB1c2VybmFtZTpmYWtlIHBhc3N3b3Jk"
        reply = await stub.OptionalWebRTCConfig(
            pb.OptionalWebRTCConfigRequest(), metadata=md(authorization=fake_basic, viam_client="rust;v0")
        )
        assert WebRTCConfig.from_proto(reply.config) == config
        await stub.ReportConnectionMetadata(pb.ReportConnectionMetadataRequest(duration_ms=5), metadata=md())
    await service.close()


async def test_answerer_gets_ice_servers_and_trickle_setting() -> None:
    config = WebRTCConfig.of([IceServer(("stun:stun.example:3478",))])
    service = SignalingService(config=config, offer_deadline=1.0)
    peer = FakePeer(early_done=True)
    async with ChannelFor([service]) as channel, answerer(channel, peer):
        stub = SignalingServiceStub(channel)
        async with stub.Call.open(metadata=md()) as call:
            await call.send_message(pb.CallRequest(sdp=OFFER_B64, disable_trickle=True), end=True)
            first = await call.recv_message()
            assert first is not None
            await stub.CallUpdate(update(first.uuid, done=True), metadata=md())
    (offer,) = peer.offers
    assert offer.config == WebRTCConfig(config.ice_servers, disable_trickle=True)
    await service.close()


async def test_internal_answerer(answer_service: SignalingService, stub: SignalingServiceStub, peer: FakePeer) -> None:
    """The robot answering its own SignalingService in-process; the caller uses another connection."""
    async with internal_answerer(answer_service, [HOST], peer, **FAST) as ans:
        async with stub.Call.open(metadata=md()) as call:
            await call.send_message(pb.CallRequest(sdp=OFFER_B64), end=True)
            first = await call.recv_message()
            assert first is not None
            await stub.CallUpdate(update(first.uuid, cand(3)), metadata=md())
            await stub.CallUpdate(update(first.uuid, done=True), metadata=md())
            assert await call.recv_message() is None
        await eventually(lambda: ans.stats.answered == 1)
    assert peer.received[first.uuid] == [cand(3)]


async def test_route_host_sends_every_name_to_one_answerer() -> None:
    """Internal signaling: whichever name a client used to reach the robot, its one answerer answers."""
    service = SignalingService(route_host=lambda host: "self", offer_deadline=2.0)
    peer = FakePeer(early_done=True)
    async with ChannelFor([service]) as channel:
        stub = SignalingServiceStub(channel)
        async with internal_answerer(service, ["self"], peer, **FAST):
            for host in ("127.0.0.1:8080", "robot.local", "192.0.2.7:9090"):
                async with stub.Call.open(metadata=md(host)) as call:
                    await call.send_message(pb.CallRequest(sdp=OFFER_B64), end=True)
                    responses = [r async for r in call]
                assert [r.WhichOneof("stage") for r in responses] == ["init"]
                await stub.CallUpdate(update(responses[0].uuid, cand(4)), metadata=md(host))
                await stub.CallUpdate(update(responses[0].uuid, done=True), metadata=md(host))
    await service.close()
    assert len(peer.offers) == 3
