"""A small test service covering every cardinality, built from well-known message types."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from google.protobuf import empty_pb2, struct_pb2, wrappers_pb2
from grpclib import GRPCError, Status
from grpclib.client import StreamStreamMethod, StreamUnaryMethod, UnaryStreamMethod, UnaryUnaryMethod
from grpclib.const import Cardinality, Handler

SERVICE = "/test.tunnel.Echo"
FLOOD_MESSAGE_SIZE = 60_000


def pattern(size: int) -> bytes:
    """Deterministic, non-repeating-at-chunk-boundaries bytes."""
    block = bytes(range(251))  # prime length, so chunk boundaries never line up with the pattern
    return (block * (size // len(block) + 1))[:size]


class EchoService:
    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.cancelled = 0
        self.cancelled_event = asyncio.Event()
        self.running = 0
        self.flood_sent = 0
        self.calls: list[str] = []
        self.seen: list[dict[str, Any]] = []

    # -- unary ---------------------------------------------------------------------------------
    async def Unary(self, stream: Any) -> None:
        request = await stream.recv_message()
        self.calls.append("Unary")
        if request.value == b"fail":
            raise GRPCError(Status.FAILED_PRECONDITION, "told to fail", [wrappers_pb2.StringValue(value="why")])
        if request.value == b"boom":
            raise RuntimeError("boom")
        await stream.send_message(wrappers_pb2.BytesValue(value=request.value))

    async def Big(self, stream: Any) -> None:
        request = await stream.recv_message()
        await stream.send_message(wrappers_pb2.BytesValue(value=pattern(request.value)))

    async def Silent(self, stream: Any) -> None:
        await stream.recv_message()  # returns without a reply: a handler bug

    async def Sleep(self, stream: Any) -> None:
        request = await stream.recv_message()
        self.running += 1
        self.started.set()
        try:
            await asyncio.sleep(request.value)
        except asyncio.CancelledError:
            self.cancelled += 1
            self.cancelled_event.set()
            raise
        finally:
            self.running -= 1
        await stream.send_message(empty_pb2.Empty())

    async def Info(self, stream: Any) -> None:
        """Reports what the handler saw; sends both kinds of metadata."""
        await stream.recv_message()
        metadata = stream.metadata
        seen = {
            "metadata": {key: metadata.getall(key) for key in metadata},
            "deadline": None if stream.deadline is None else stream.deadline.time_remaining(),
            "user_agent": stream.user_agent,
        }
        self.seen.append(seen)
        await stream.send_initial_metadata(metadata={"x-initial": "one"})
        reply = struct_pb2.Struct()
        reply.update({"keys": sorted(seen["metadata"]), "has_deadline": seen["deadline"] is not None})
        await stream.send_message(reply)
        await stream.send_trailing_metadata(metadata={"x-trailing": "two", "x-blob-bin": b"\x00\xff"})

    # -- streaming -----------------------------------------------------------------------------
    async def Count(self, stream: Any) -> None:
        request = await stream.recv_message()
        for i in range(request.value):
            await stream.send_message(wrappers_pb2.Int64Value(value=i))

    async def Flood(self, stream: Any) -> None:
        request = await stream.recv_message()
        for _ in range(request.value):
            await stream.send_message(wrappers_pb2.BytesValue(value=pattern(FLOOD_MESSAGE_SIZE)))
            self.flood_sent += 1

    async def Sum(self, stream: Any) -> None:
        total = count = 0
        async for message in stream:
            total += len(message.value)
            count += 1
        await stream.send_message(wrappers_pb2.Int64Value(value=total * 1000 + count))

    async def Chat(self, stream: Any) -> None:
        async for message in stream:
            await stream.send_message(wrappers_pb2.BytesValue(value=message.value[::-1]))

    def __mapping__(self) -> Mapping[str, Handler]:
        u, us, su, ss = (Cardinality.UNARY_UNARY, Cardinality.UNARY_STREAM, Cardinality.STREAM_UNARY,
                         Cardinality.STREAM_STREAM)
        b, i, d = wrappers_pb2.BytesValue, wrappers_pb2.Int64Value, wrappers_pb2.DoubleValue
        return {
            f"{SERVICE}/Unary": Handler(self.Unary, u, b, b),
            f"{SERVICE}/Big": Handler(self.Big, u, i, b),
            f"{SERVICE}/Silent": Handler(self.Silent, u, b, b),
            f"{SERVICE}/Sleep": Handler(self.Sleep, u, d, empty_pb2.Empty),
            f"{SERVICE}/Info": Handler(self.Info, u, empty_pb2.Empty, struct_pb2.Struct),
            f"{SERVICE}/Count": Handler(self.Count, us, i, i),
            f"{SERVICE}/Flood": Handler(self.Flood, us, i, b),
            f"{SERVICE}/Sum": Handler(self.Sum, su, b, i),
            f"{SERVICE}/Chat": Handler(self.Chat, ss, b, b),
        }


class EchoStub:
    """What grpclib's plugin would generate for the service above."""

    def __init__(self, channel: Any) -> None:
        b, i, d = wrappers_pb2.BytesValue, wrappers_pb2.Int64Value, wrappers_pb2.DoubleValue
        self.Unary = UnaryUnaryMethod(channel, f"{SERVICE}/Unary", b, b)
        self.Big = UnaryUnaryMethod(channel, f"{SERVICE}/Big", i, b)
        self.Silent = UnaryUnaryMethod(channel, f"{SERVICE}/Silent", b, b)
        self.Sleep = UnaryUnaryMethod(channel, f"{SERVICE}/Sleep", d, empty_pb2.Empty)
        self.Info = UnaryUnaryMethod(channel, f"{SERVICE}/Info", empty_pb2.Empty, struct_pb2.Struct)
        self.Count = UnaryStreamMethod(channel, f"{SERVICE}/Count", i, i)
        self.Flood = UnaryStreamMethod(channel, f"{SERVICE}/Flood", i, b)
        self.Sum = StreamUnaryMethod(channel, f"{SERVICE}/Sum", b, i)
        self.Chat = StreamStreamMethod(channel, f"{SERVICE}/Chat", b, b)
