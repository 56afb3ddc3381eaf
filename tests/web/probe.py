"""A test-only service for what the fake robot cannot show: every cardinality, metadata both ways,
errors after a message, a handler that never returns (deadlines, disconnects)."""

from __future__ import annotations

import asyncio
from typing import Any

from google.protobuf.wrappers_pb2 import StringValue
from grpclib import GRPCError, Status
from grpclib.const import Cardinality, Handler

PREFIX = "/tests.web.Probe/"


class Probe:
    def __init__(self) -> None:
        self.sleeping = asyncio.Event()
        self.cancelled = asyncio.Event()

    def __mapping__(self) -> dict[str, Handler]:
        def h(func: Any, cardinality: Cardinality) -> Handler:
            return Handler(func, cardinality, StringValue, StringValue)

        return {
            PREFIX + "Metadata": h(self.metadata, Cardinality.UNARY_UNARY),
            PREFIX + "Sleep": h(self.sleep, Cardinality.UNARY_UNARY),
            PREFIX + "Collect": h(self.collect, Cardinality.STREAM_UNARY),
            PREFIX + "Echo": h(self.echo, Cardinality.STREAM_STREAM),
            PREFIX + "FailAfterOne": h(self.fail_after_one, Cardinality.UNARY_STREAM),
        }

    async def metadata(self, stream: Any) -> None:
        request = await stream.recv_message()
        seen = {key: stream.metadata.get(key) for key in ("rpc-host", "x-grpc-web", "host", "content-length")}
        await stream.send_initial_metadata(metadata={"x-initial": "one"})
        await stream.send_message(StringValue(value=f"{request.value}|{seen}|{stream.user_agent}"))
        await stream.send_trailing_metadata(metadata={"x-trailing": "two"})

    async def sleep(self, stream: Any) -> None:
        await stream.recv_message()
        self.sleeping.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            self.cancelled.set()
            raise

    async def collect(self, stream: Any) -> None:
        values = [message.value async for message in stream]
        await stream.send_message(StringValue(value=",".join(values)))

    async def echo(self, stream: Any) -> None:
        async for message in stream:
            await stream.send_message(StringValue(value=message.value.upper()))

    async def fail_after_one(self, stream: Any) -> None:
        await stream.recv_message()
        await stream.send_message(StringValue(value="first"))
        raise GRPCError(Status.ABORTED, "gave up: 100% sûre\nsecond line")
