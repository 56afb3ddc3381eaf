"""Calls through TunnelChannel ↔ TunnelServer with grpclib-style stubs, over the in-memory channel."""

from __future__ import annotations

import asyncio

import pytest
from google.protobuf import empty_pb2, wrappers_pb2
from grpclib import GRPCError, Status
from grpclib.const import Cardinality

from peer.gen.viam.robot.v1 import robot_pb2
from peer.gen.viam.robot.v1.robot_grpc import RobotServiceStub
from peer.server import Server
from peer.tunnel import TunnelChannel, TunnelServer
from peer.tunnel.constants import MAX_DATA_CHANNEL_MESSAGE, MAX_MESSAGE_SIZE

from .conftest import Client, echo_table
from .echo import EchoService, EchoStub, pattern
from .fakes import WAIT, channel_pair, eventually, settle

Bytes, Int, Double = wrappers_pb2.BytesValue, wrappers_pb2.Int64Value, wrappers_pb2.DoubleValue


# -- the four cardinalities --------------------------------------------------------------------
async def test_unary(client: Client) -> None:
    reply = await client.stub.Unary(Bytes(value=b"hello"))
    assert reply.value == b"hello"
    assert await client.stub.Unary(Bytes(value=b"")) == Bytes(value=b"")  # an empty message is one empty chunk
    assert client.server.active_streams == 0 and client.channel.active_streams == 0


async def test_server_streaming(client: Client) -> None:
    assert [m.value for m in await client.stub.Count(Int(value=5))] == [0, 1, 2, 3, 4]
    assert await client.stub.Count(Int(value=0)) == []


async def test_client_streaming(client: Client) -> None:
    reply = await client.stub.Sum([Bytes(value=b"ab"), Bytes(value=b""), Bytes(value=b"cde")])
    assert reply.value == 5 * 1000 + 3
    assert (await client.stub.Sum([])).value == 0  # opened with end=True: headers then a bare EOS


async def test_bidi_streaming_interleaves(client: Client) -> None:
    async with client.stub.Chat.open() as stream:
        for word in (b"abc", b"xyz"):
            await stream.send_message(Bytes(value=word))
            reply = await stream.recv_message()
            assert reply is not None and reply.value == word[::-1]
        await stream.end()
        assert await stream.recv_message() is None
    assert stream.trailing_metadata is not None


async def test_stream_ids_start_at_zero_and_are_not_reused(client: Client) -> None:
    ids = []
    for _ in range(3):
        async with client.stub.Unary.open() as stream:
            await stream.send_message(Bytes(value=b"x"), end=True)
            await stream.recv_message()
            ids.append(stream.id)
    assert ids == [0, 1, 2]


# -- status, errors, metadata ------------------------------------------------------------------
async def test_grpc_error_keeps_status_message_and_details(client: Client) -> None:
    with pytest.raises(GRPCError) as caught:
        await client.stub.Unary(Bytes(value=b"fail"))
    assert caught.value.status is Status.FAILED_PRECONDITION
    assert caught.value.message == "told to fail"
    assert caught.value.details == [wrappers_pb2.StringValue(value="why")]


async def test_other_exceptions_are_unknown_with_a_message(client: Client) -> None:
    with pytest.raises(GRPCError) as caught:
        await client.stub.Unary(Bytes(value=b"boom"))
    assert caught.value.status is Status.UNKNOWN and "boom" in (caught.value.message or "")


async def test_a_unary_handler_without_a_reply_is_unknown(client: Client) -> None:
    with pytest.raises(GRPCError) as caught:
        await client.stub.Silent(Bytes(value=b"x"))
    assert caught.value.status is Status.UNKNOWN


async def test_raw_mapping_without_handler_table_maps_exceptions_itself() -> None:
    """The tunnel's own mapping (no HandlerTable wrapper in front of the handler)."""
    service = EchoService()
    client_end, server_end = channel_pair()
    server = TunnelServer(server_end, service)  # a bare servable, not a HandlerTable
    channel = TunnelChannel(client_end)
    stub = EchoStub(channel)
    try:
        with pytest.raises(GRPCError) as caught:
            await stub.Unary(Bytes(value=b"boom"))
        assert caught.value.status is Status.UNKNOWN and caught.value.message == "RuntimeError: boom"
        assert (await stub.Unary(Bytes(value=b"ok"))).value == b"ok"
    finally:
        channel.close()
        await server.close()


async def test_unknown_method_is_unimplemented(client: Client) -> None:
    request = client.channel.request("/no.Such/Method", Cardinality.UNARY_UNARY, Bytes, Bytes)
    with pytest.raises(GRPCError) as caught:
        async with request as stream:
            await stream.send_message(Bytes(value=b"x"), end=True)
            await stream.recv_message()
    assert caught.value.status is Status.UNIMPLEMENTED
    assert client.server.active_streams == 0


async def test_metadata_both_ways(client: Client) -> None:
    async with client.stub.Info.open(metadata={"viam_client": "test", "x-key-bin": b"\x01\x02"}) as stream:
        await stream.send_message(empty_pb2.Empty(), end=True)
        reply = await stream.recv_message()
        await stream.recv_trailing_metadata()
    assert reply is not None and list(reply["keys"]) == ["viam_client", "x-key-bin"]
    assert client.service.seen[0]["metadata"]["x-key-bin"] == [b"\x01\x02"]
    assert stream.initial_metadata is not None and stream.initial_metadata["x-initial"] == "one"
    assert stream.trailing_metadata is not None and stream.trailing_metadata["x-trailing"] == "two"
    assert stream.trailing_metadata["x-blob-bin"] == b"\x00\xff"


# -- sizes -------------------------------------------------------------------------------------
async def test_large_messages_are_chunked_both_ways(client: Client) -> None:
    size = 3 * 65_535 + 1234
    reply = await client.stub.Big(Int(value=size))
    assert reply.value == pattern(size)
    echoed = await client.stub.Unary(Bytes(value=pattern(size)))
    assert echoed.value == pattern(size)
    assert max(client.server_end.sent_sizes) <= MAX_DATA_CHANNEL_MESSAGE
    assert sum(1 for s in client.server_end.sent_sizes if s > 60_000) >= 6  # 2 x 4 chunks, the big ones
    assert max(client.client_end.sent_sizes) <= MAX_DATA_CHANNEL_MESSAGE


async def test_an_oversized_request_is_refused_and_the_channel_keeps_working(client: Client) -> None:
    huge = Bytes(value=bytes(MAX_MESSAGE_SIZE))  # its serialization is 32 MiB + 5 bytes
    with pytest.raises(GRPCError) as caught:
        await client.stub.Unary(huge)
    assert caught.value.status is Status.RESOURCE_EXHAUSTED
    assert client.service.calls == []  # the handler never got a message
    assert (await client.stub.Unary(Bytes(value=b"still fine"))).value == b"still fine"
    assert client.server.active_streams == 0


async def test_an_oversized_reply_is_refused_by_the_client() -> None:
    client_end, server_end = channel_pair()
    server = TunnelServer(server_end, echo_table(EchoService()))
    channel = TunnelChannel(client_end, max_message_size=100_000)
    stub = EchoStub(channel)
    try:
        with pytest.raises(GRPCError) as caught:
            await stub.Big(Int(value=200_000))
        assert caught.value.status is Status.RESOURCE_EXHAUSTED
        assert (await stub.Big(Int(value=10))).value == pattern(10)
        await settle()
        assert server.active_streams == 0  # the client reset the stream it gave up on
    finally:
        channel.close()
        await server.close()


# -- cancellation, deadlines, concurrency ------------------------------------------------------
async def test_cancel_resets_the_stream_and_cancels_the_handler(client: Client) -> None:
    async with client.stub.Sleep.open() as stream:
        await stream.send_message(Double(value=30), end=True)
        await asyncio.wait_for(client.service.started.wait(), WAIT)
        await stream.cancel()
    await asyncio.wait_for(client.service.cancelled_event.wait(), WAIT)
    assert client.service.cancelled == 1
    assert client.server.active_streams == 0
    await settle()
    assert not client.server.tasks


async def test_leaving_a_stream_early_resets_it(client: Client) -> None:
    with pytest.raises(RuntimeError):
        async with client.stub.Sleep.open() as stream:
            await stream.send_message(Double(value=30), end=True)
            await asyncio.wait_for(client.service.started.wait(), WAIT)
            raise RuntimeError("caller gave up")
    await asyncio.wait_for(client.service.cancelled_event.wait(), WAIT)
    assert client.server.active_streams == 0


async def test_deadline_exceeded(client: Client) -> None:
    with pytest.raises(GRPCError) as caught:
        await client.stub.Sleep(Double(value=30), timeout=0.05)
    assert caught.value.status is Status.DEADLINE_EXCEEDED
    await asyncio.wait_for(client.service.cancelled_event.wait(), WAIT)
    assert client.server.active_streams == 0


async def test_the_handler_sees_the_deadline(client: Client) -> None:
    await client.stub.Info(empty_pb2.Empty(), timeout=5)
    await client.stub.Info(empty_pb2.Empty())
    first, second = client.service.seen
    assert 4 < first["deadline"] <= 5 and second["deadline"] is None


async def test_a_slow_stream_does_not_block_another(client: Client) -> None:
    slow = asyncio.create_task(client.stub.Sleep(Double(value=30)))
    await asyncio.wait_for(client.service.started.wait(), WAIT)
    async with asyncio.timeout(1):
        assert (await client.stub.Unary(Bytes(value=b"quick"))).value == b"quick"
        assert [m.value for m in await client.stub.Count(Int(value=3))] == [0, 1, 2]
    assert not slow.done()
    slow.cancel()
    with pytest.raises(asyncio.CancelledError):
        await slow


async def test_concurrent_stream_cap() -> None:
    service = EchoService()
    client_end, server_end = channel_pair()
    server = TunnelServer(server_end, echo_table(service), max_streams=2)
    channel = TunnelChannel(client_end)
    stub = EchoStub(channel)
    sleepers = [asyncio.create_task(stub.Sleep(Double(value=30))) for _ in range(2)]
    try:
        await eventually(lambda: service.running == 2)
        with pytest.raises(GRPCError) as caught:
            await stub.Unary(Bytes(value=b"one too many"))
        assert caught.value.status is Status.RESOURCE_EXHAUSTED
        assert server.active_streams == 2
        sleepers[0].cancel()  # leaves the call: the client resets it, which frees a slot
        await asyncio.wait_for(service.cancelled_event.wait(), WAIT)
        assert (await stub.Unary(Bytes(value=b"fits now"))).value == b"fits now"
    finally:
        for task in sleepers:
            task.cancel()
        await asyncio.gather(*sleepers, return_exceptions=True)
        channel.close()
        await server.close()


# -- generated stubs of the real API -----------------------------------------------------------
async def test_robot_service_stub_works_unchanged() -> None:
    robot = Server([])
    client_end, server_end = channel_pair()
    server = TunnelServer(server_end, robot.handlers)
    channel = TunnelChannel(client_end)
    try:
        stub = RobotServiceStub(channel)  # type: ignore[arg-type]
        names = await stub.ResourceNames(robot_pb2.ResourceNamesRequest())
        assert list(names.resources) == []
        operations = await stub.GetOperations(robot_pb2.GetOperationsRequest())
        assert [op.method for op in operations.operations] == ["/viam.robot.v1.RobotService/GetOperations"]
        with pytest.raises(GRPCError) as caught:
            await stub.GetCloudMetadata(robot_pb2.GetCloudMetadataRequest())
        assert caught.value.status is Status.FAILED_PRECONDITION
    finally:
        channel.close()
        await server.close()
        await robot.close()

