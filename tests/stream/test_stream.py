"""StreamService end to end: AddStream renegotiates the caller's aiortc connection and frames flow."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator

import av
import numpy as np
import pytest
from aiortc import MediaStreamTrack
from grpclib import GRPCError, Status
from grpclib.client import Channel

from peer.components.camera.pattern import read_frame_code
from peer.gen.proto.stream.v1 import stream_pb2 as pb
from peer.gen.proto.stream.v1.stream_grpc import StreamServiceStub
from peer.webrtc import DialedChannel, dial
from signaling.sdp import SessionDescription, encode_sdp
from tests.serverproc import REPO

from .conftest import CAM1, CAM2, VideoRobot, eventually

pytestmark = pytest.mark.timeout(30)

WAIT = 10.0


@pytest.fixture
async def client(video_robot: VideoRobot) -> AsyncIterator[DialedChannel]:
    dialed = await asyncio.wait_for(dial(video_robot.address, timeout=WAIT), WAIT + 1)
    try:
        yield dialed
    finally:
        await asyncio.wait_for(dialed.close(), WAIT)


def stub(channel: DialedChannel) -> StreamServiceStub:
    return StreamServiceStub(channel.as_channel())


async def frames(track: MediaStreamTrack, count: int, timeout: float = WAIT) -> list[tuple[int, int, int]]:
    """(width, height, pattern index) of the next ``count`` decoded frames."""
    seen = []
    async with asyncio.timeout(timeout):
        while len(seen) < count:
            frame = await track.recv()
            assert isinstance(frame, av.VideoFrame)
            i420 = np.asarray(frame.to_ndarray(format="yuv420p"), dtype=np.uint8)
            seen.append((frame.width, frame.height, read_frame_code(i420[: frame.height])))
    return seen


async def add_and_watch(channel: DialedChannel, name: str) -> MediaStreamTrack:
    await stub(channel).AddStream(pb.AddStreamRequest(name=name), timeout=WAIT)
    await channel.wait_remote_track(name, timeout=WAIT)
    return channel.remote_tracks[name]


def assert_live(seen: list[tuple[int, int, int]], size: tuple[int, int]) -> None:
    assert {(w, h) for w, h, _ in seen} == {size}
    codes = [code for _, _, code in seen]
    assert codes == sorted(codes) and codes[-1] > codes[0], codes


async def test_list_add_remove_and_readd(video_robot: VideoRobot, client: DialedChannel) -> None:
    listed = await stub(client).ListStreams(pb.ListStreamsRequest(), timeout=WAIT)
    assert list(listed.names) == ["cam1", "cam2"]

    track = await add_and_watch(client, "cam1")
    assert_live(await frames(track, 15), CAM1)
    (session,) = video_robot.sessions
    assert session.video.names == ["cam1"]
    capture = video_robot.streams.captures["cam1"]
    assert capture.running and capture.subscribers == 1

    await stub(client).RemoveStream(pb.RemoveStreamRequest(name="cam1"), timeout=WAIT)
    await client.wait_remote_track("cam1", present=False, timeout=WAIT)
    await eventually(lambda: not capture.running and capture.subscribers == 0, timeout=WAIT, what="capture stopped")
    captured = capture.frames_captured
    await asyncio.sleep(0.3)
    assert capture.frames_captured == captured and session.video.names == []

    # the idle transceiver is reused for the next camera; its sender survives the swap
    track2 = await add_and_watch(client, "cam2")
    seen = await frames(track2, 12)
    while seen and seen[0][:2] == CAM1:  # decoded before the removal, still queued in aiortc's receiver
        seen.pop(0)
    assert len(seen) >= 10
    assert_live(seen, CAM2)
    assert len(client.pc.getTransceivers()) == 1
    # and RemoveStream of something not streaming is fine, as in RDK
    await stub(client).RemoveStream(pb.RemoveStreamRequest(name="cam1"), timeout=WAIT)


async def test_two_viewers_share_one_capture(video_robot: VideoRobot) -> None:
    async with await dial(video_robot.address, timeout=WAIT) as one, await dial(video_robot.address,
                                                                               timeout=WAIT) as two:
        tracks = [await add_and_watch(one, "cam1"), await add_and_watch(two, "cam1")]
        for seen in await asyncio.gather(*(frames(t, 10) for t in tracks)):
            assert_live(seen, CAM1)
        capture = video_robot.streams.captures["cam1"]
        assert capture.viewers == 2 and capture.loops_started == 1
        await one.close()
        await eventually(lambda: capture.viewers == 1, timeout=WAIT, what="first viewer released")
        assert_live(await frames(tracks[1], 5), CAM1)
    await eventually(lambda: not capture.running, timeout=WAIT, what="capture stopped after the last viewer")
    assert capture.loops_started == 1


async def test_errors(video_robot: VideoRobot, client: DialedChannel) -> None:
    with pytest.raises(GRPCError) as err:
        await stub(client).AddStream(pb.AddStreamRequest(name="nope"), timeout=WAIT)
    assert err.value.status is Status.NOT_FOUND and "cam1" in (err.value.message or "")

    await add_and_watch(client, "cam1")
    with pytest.raises(GRPCError) as err:
        await stub(client).AddStream(pb.AddStreamRequest(name="cam1"), timeout=WAIT)
    assert err.value.status is Status.ALREADY_EXISTS

    direct = Channel("127.0.0.1", video_robot.port)
    try:
        h2c = StreamServiceStub(direct)
        assert list((await h2c.ListStreams(pb.ListStreamsRequest(), timeout=WAIT)).names) == ["cam1", "cam2"]
        with pytest.raises(GRPCError) as err:
            await h2c.AddStream(pb.AddStreamRequest(name="cam1"), timeout=WAIT)
        assert err.value.status is Status.FAILED_PRECONDITION
        assert (err.value.message or "").startswith("AddStream needs a WebRTC connection (")
    finally:
        direct.close()


async def test_stream_options(video_robot: VideoRobot, client: DialedChannel) -> None:
    options = await stub(client).GetStreamOptions(pb.GetStreamOptionsRequest(name="cam1"), timeout=WAIT)
    sizes = [(r.width, r.height) for r in options.resolutions]
    assert sizes[:3] == [CAM1, (160, 120), (80, 60)] and all(w % 2 == 0 and h % 2 == 0 for w, h in sizes)

    with pytest.raises(GRPCError) as err:  # not streaming yet on this connection
        await stub(client).SetStreamOptions(
            pb.SetStreamOptionsRequest(name="cam1", resolution=pb.Resolution(width=160, height=120)), timeout=WAIT
        )
    assert err.value.status is Status.FAILED_PRECONDITION

    track = await add_and_watch(client, "cam1")
    await stub(client).SetStreamOptions(
        pb.SetStreamOptionsRequest(name="cam1", resolution=pb.Resolution(width=160, height=120)), timeout=WAIT
    )
    async with asyncio.timeout(WAIT):
        while (await frames(track, 1))[0][:2] != (160, 120):
            pass
    await stub(client).SetStreamOptions(pb.SetStreamOptionsRequest(name="cam1"), timeout=WAIT)  # reset
    async with asyncio.timeout(WAIT):
        while (await frames(track, 1))[0][:2] != CAM1:
            pass
    with pytest.raises(GRPCError) as err:
        await stub(client).SetStreamOptions(
            pb.SetStreamOptionsRequest(name="cam1", resolution=pb.Resolution(width=161, height=120)), timeout=WAIT
        )
    assert err.value.status is Status.INVALID_ARGUMENT


async def test_client_offer_is_answered(video_robot: VideoRobot, client: DialedChannel) -> None:
    """A re-offer from the caller (the browser's negotiationneeded) is answered by the robot."""
    track = await add_and_watch(client, "cam1")
    await client.negotiator.renegotiate(
        lambda: client.pc.addTransceiver("audio", direction="recvonly"), why="test offer"
    )
    (session,) = video_robot.sessions
    assert session.negotiator.offers_answered == 1
    assert_live(await frames(track, 5), CAM1)
    assert list((await stub(client).ListStreams(pb.ListStreamsRequest(), timeout=WAIT)).names) == ["cam1", "cam2"]


async def test_colliding_offer_is_dropped_and_garbage_ignored(video_robot: VideoRobot, client: DialedChannel) -> None:
    """The robot is the impolite side: a caller offer during the robot's own offer is dropped."""
    (session,) = video_robot.sessions
    client.negotiation.send("this is not base64 JSON")
    held: list[str | bytes] = []
    client.on_negotiation = lambda _conn, message: held.append(message)  # sit on the robot's offer
    add = asyncio.ensure_future(stub(client).AddStream(pb.AddStreamRequest(name="cam1"), timeout=WAIT))
    try:
        await eventually(lambda: len(held) == 1, timeout=WAIT, what="robot offer sent")
        offer = await client.pc.createOffer()  # glare: our own offer while the robot's is pending
        client.negotiation.send(encode_sdp(SessionDescription("offer", offer.sdp)))
        await eventually(lambda: session.negotiator.offers_dropped == 1, timeout=WAIT, what="offer dropped")
        client.on_negotiation = client.negotiator.handle_message
        client.negotiator.handle_message(client, held[0])  # now answer the robot
        await asyncio.wait_for(add, WAIT)
    finally:
        if not add.done():
            add.cancel()
            await asyncio.wait({add})
    await client.wait_remote_track("cam1", timeout=WAIT)
    assert_live(await frames(client.remote_tracks["cam1"], 5), CAM1)
    assert session.negotiator.offers_answered == 0 and not session.closing


async def test_cancelled_add_stream_still_completes(video_robot: VideoRobot, client: DialedChannel) -> None:
    """A caller that gives up on AddStream does not leave a half-done renegotiation behind."""
    add = asyncio.ensure_future(stub(client).AddStream(pb.AddStreamRequest(name="cam2"), timeout=WAIT))
    await eventually(lambda: video_robot.sessions and next(iter(video_robot.sessions)).video.names == ["cam2"],
                     timeout=WAIT, what="stream reserved")
    add.cancel()
    await asyncio.wait({add})
    await client.wait_remote_track("cam2", timeout=WAIT)
    assert_live(await frames(client.remote_tracks["cam2"], 5), CAM2)
    await stub(client).RemoveStream(pb.RemoveStreamRequest(name="cam2"), timeout=WAIT)
    await client.wait_remote_track("cam2", present=False, timeout=WAIT)


async def test_stats_count_what_the_senders_encode(video_robot: VideoRobot) -> None:
    """``encoded_fps`` and ``bitrate_kbps`` follow real viewers: nonzero while one watches, summed over
    viewers, back to 0 after the last one leaves (counted at the senders, not guessed from capture)."""
    streams = video_robot.streams
    async with await dial(video_robot.address, timeout=WAIT) as one:
        track = await add_and_watch(one, "cam1")
        await frames(track, 30)  # a second of decoded video
        single = streams.stats()["cam1"]
        assert single["viewers"] == 1
        assert single["encoded_fps"] >= 5 and single["bitrate_kbps"] > 10, single
        capture = streams.captures["cam1"]
        assert capture.encoded.total <= capture.frames_captured  # one encoder: never more than captured
        received = await frames(track, 10)
        assert len(received) == 10

        async with await dial(video_robot.address, timeout=WAIT) as two:
            await frames(await add_and_watch(two, "cam1"), 30)
            both = streams.stats()["cam1"]
            assert both["viewers"] == 2
            # two senders of the one capture: more frames sent per second than captured
            assert both["encoded_fps"] > both["fps"] > 0, both
    await eventually(lambda: streams.stats()["cam1"]["viewers"] == 0, timeout=WAIT, what="viewers released")
    await eventually(
        lambda: streams.stats()["cam1"]["encoded_fps"] == 0 and streams.stats()["cam1"]["bitrate_kbps"] == 0,
        timeout=WAIT, what="encode rates back to 0",
    )


#: Generous bound for noticing a killed viewer: the liveness check closes within ~6 s, aioice's
#: own consent check alone would take ~30 s (reliability.md §2 row 14).
VANISHED_BOUND_S = 15.0


@pytest.mark.timeout(60)
async def test_killed_viewer_is_released_quickly(video_robot: VideoRobot) -> None:
    """A viewer process killed with SIGKILL (no DTLS/SCTP goodbye) loses its session, viewer and
    encoder within the bound, through the ICE liveness probes; a healthy viewer keeps watching."""
    streams = video_robot.streams
    async with await dial(video_robot.address, timeout=WAIT) as healthy:
        track = await add_and_watch(healthy, "cam1")
        (kept,) = video_robot.sessions
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.stream.vanishing_viewer", video_robot.address, "cam1",
            cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        try:
            line = await asyncio.wait_for(proc.stdout.readline(), 30) if proc.stdout else b""
            if line.strip() != b"watching":
                _, err = await asyncio.wait_for(proc.communicate(), WAIT)
                pytest.fail(f"viewer process did not start watching: {line!r} {err.decode()[-2000:]}")
            await eventually(lambda: streams.stats()["cam1"]["viewers"] == 2, timeout=WAIT, what="two viewers")
            (gone,) = [s for s in video_robot.sessions if s is not kept]
            assert gone.liveness is not None and gone.liveness.running
            t0 = asyncio.get_running_loop().time()
            proc.kill()
            await asyncio.wait_for(proc.wait(), WAIT)
            await eventually(lambda: streams.stats()["cam1"]["viewers"] == 1, timeout=VANISHED_BOUND_S,
                             what="killed viewer released")
            released = asyncio.get_running_loop().time() - t0
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        assert gone.closing and "ICE probes" in (gone.close_reason or ""), gone.close_reason
        assert released < VANISHED_BOUND_S, released
        await eventually(lambda: gone.closed and gone not in set(video_robot.sessions), timeout=WAIT,
                         what="session closed")
        # the healthy viewer was heard from (RTCP receiver reports) or answered probes; it still gets frames
        assert kept.liveness is not None and kept.liveness.heard + kept.liveness.answered >= 2 and not kept.closing
        assert_live(await frames(track, 10), CAM1)
    await eventually(lambda: not streams.captures["cam1"].running, timeout=WAIT, what="capture stopped")


async def test_idle_peer_answers_probes_and_stays(video_robot: VideoRobot, client: DialedChannel) -> None:
    """A connected peer that sends nothing at all (no calls, no video) is kept: it answers the probes."""
    (session,) = video_robot.sessions
    liveness = session.liveness
    assert liveness is not None
    await asyncio.sleep(6.5)  # longer than the 4 s after which a silent, unanswering peer is closed
    assert not session.closing and liveness.running, session.close_reason
    assert liveness.answered >= 3 and liveness.missed == 0, (liveness.sent, liveness.answered, liveness.heard)
    assert list((await stub(client).ListStreams(pb.ListStreamsRequest(), timeout=WAIT)).names) == ["cam1", "cam2"]
