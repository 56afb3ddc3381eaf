"""Send back-pressure, stalls, and closing: nothing may be left running or buffered."""

from __future__ import annotations

import asyncio

import pytest
from google.protobuf import wrappers_pb2
from grpclib import GRPCError, Status

from peer.tunnel import FrameSender, SendStalledError, TunnelChannel, TunnelServer
from peer.tunnel.constants import MAX_DATA_CHANNEL_MESSAGE, SEND_PAUSE_THRESHOLD

from .conftest import Client, echo_table
from .echo import FLOOD_MESSAGE_SIZE, EchoService, EchoStub
from .fakes import WAIT, FakeChannel, channel_pair, eventually, settle

Bytes, Int, Double = wrappers_pb2.BytesValue, wrappers_pb2.Int64Value, wrappers_pb2.DoubleValue


async def test_sends_pause_while_the_buffer_is_high(client: Client) -> None:
    total = 60  # 60 x 60 KB ≈ 3.4 MiB, well over the 1 MiB pause threshold
    client.server_end.pause()  # the transport stops draining the server's send buffer
    call = asyncio.create_task(client.stub.Flood(Int(value=total)))
    await eventually(lambda: client.server.sender.pauses > 0)
    await settle(20)
    sent_while_paused = client.service.flood_sent
    assert 0 < sent_while_paused < total
    assert client.server_end.bufferedAmount > SEND_PAUSE_THRESHOLD
    assert client.server_end.max_buffered_seen <= SEND_PAUSE_THRESHOLD + MAX_DATA_CHANNEL_MESSAGE
    client.server_end.resume()
    replies = await asyncio.wait_for(call, WAIT)
    assert len(replies) == total and all(len(r.value) == FLOOD_MESSAGE_SIZE for r in replies)
    assert client.server_end.max_buffered_seen <= SEND_PAUSE_THRESHOLD + MAX_DATA_CHANNEL_MESSAGE


async def test_client_sends_pause_too(client: Client) -> None:
    client.client_end.pause()
    messages = [Bytes(value=bytes(60_000)) for _ in range(40)]
    call = asyncio.create_task(client.stub.Sum(messages))
    await eventually(lambda: client.channel.sender.pauses > 0)
    assert client.client_end.max_buffered_seen <= SEND_PAUSE_THRESHOLD + MAX_DATA_CHANNEL_MESSAGE
    client.client_end.resume()
    reply = await asyncio.wait_for(call, WAIT)
    assert reply.value == 40 * 60_000 * 1000 + 40


async def test_a_stalled_channel_fails_the_send_not_the_server() -> None:
    service = EchoService()
    client_end, server_end = channel_pair()
    server = TunnelServer(server_end, echo_table(service), send_stall_timeout=0.05)
    channel = TunnelChannel(client_end)
    stub = EchoStub(channel)
    try:
        server_end.pause()
        call = asyncio.create_task(stub.Flood(Int(value=100)))
        await eventually(lambda: server.active_streams == 1 and service.flood_sent > 0)
        await eventually(lambda: server.active_streams == 0)  # the handler gave up after the stall
        server_end.resume()
        with pytest.raises(GRPCError) as caught:
            await asyncio.wait_for(call, WAIT)
        assert caught.value.status is Status.UNKNOWN
        assert "SendStalledError" in (caught.value.message or "")
        assert (await stub.Unary(Bytes(value=b"alive"))).value == b"alive"
    finally:
        channel.close()
        await server.close()


async def test_frame_sender_wait_is_bounded() -> None:
    end = FakeChannel("lonely")  # no remote: the buffer only drains when flushed by resume
    end.pause()
    sender = FrameSender(end, pause_threshold=10, stall_timeout=0.02)
    await sender.send(b"x" * 11)  # under the threshold before this send
    with pytest.raises(SendStalledError):
        await sender.send(b"y")


async def test_closing_the_server_cancels_every_handler_and_releases_everything() -> None:
    baseline = len(asyncio.all_tasks())
    service = EchoService()
    client_end, server_end = channel_pair()
    server = TunnelServer(server_end, echo_table(service))
    channel = TunnelChannel(client_end)
    stub = EchoStub(channel)
    calls = [asyncio.create_task(stub.Sleep(Double(value=30))) for _ in range(3)]
    # a half-received message sits in a reassembly buffer
    partial = stub.Sum.open()
    await partial.__aenter__()
    await partial.send_message(Bytes(value=b"first"))
    await eventually(lambda: service.running == 3 and server.active_streams == 4)
    assert len(server.tasks) == 4

    await server.close()

    assert service.cancelled == 3 and service.running == 0
    assert server.active_streams == 0 and not server.tasks
    for call in calls:
        with pytest.raises(GRPCError) as caught:
            await asyncio.wait_for(call, WAIT)
        assert caught.value.status is Status.UNAVAILABLE
    with pytest.raises(GRPCError):
        await partial.__aexit__(None, None, None)
    assert channel.closed and channel.active_streams == 0
    assert not server_end.is_open and not client_end.is_open
    await eventually(lambda: len(asyncio.all_tasks()) <= baseline, timeout=1)  # every task the tunnel started
    await server.close()  # idempotent


async def test_a_remote_close_closes_the_server(client: Client) -> None:
    call = asyncio.create_task(client.stub.Sleep(Double(value=30)))
    await asyncio.wait_for(client.service.started.wait(), WAIT)
    client.client_end.close()  # the browser went away
    await asyncio.wait_for(client.service.cancelled_event.wait(), WAIT)
    await asyncio.wait_for(client.server.wait_closed(), WAIT)
    assert client.server.closed and not client.server.tasks
    with pytest.raises(GRPCError) as caught:
        await asyncio.wait_for(call, WAIT)
    assert caught.value.status is Status.UNAVAILABLE
    client.server.handle_frame(b"")  # frames after the close are ignored


async def test_closing_the_client_channel_fails_open_calls(client: Client) -> None:
    call = asyncio.create_task(client.stub.Sleep(Double(value=30)))
    await asyncio.wait_for(client.service.started.wait(), WAIT)
    client.channel.close()
    with pytest.raises(GRPCError) as caught:
        await asyncio.wait_for(call, WAIT)
    assert caught.value.status is Status.UNAVAILABLE
    with pytest.raises(GRPCError):
        await client.stub.Unary(Bytes(value=b"too late"))
    await asyncio.wait_for(client.service.cancelled_event.wait(), WAIT)


async def test_the_client_stops_sending_once_the_server_has_refused_the_call() -> None:
    client_end, server_end = channel_pair()
    server = TunnelServer(server_end, echo_table(EchoService()), max_message_size=100_000)
    channel = TunnelChannel(client_end)
    try:
        with pytest.raises(GRPCError) as caught:
            await EchoStub(channel).Unary(Bytes(value=bytes(8 << 20)))
        assert caught.value.status is Status.RESOURCE_EXHAUSTED
        assert sum(client_end.sent_sizes) < 3 << 20  # paused at 1 MiB, then saw the trailers
    finally:
        channel.close()
        await server.close()
