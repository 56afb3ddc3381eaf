"""In-memory stand-ins for a WebRTC data channel pair, and a raw-frame client that mimics browsers.

:class:`FakeChannel` implements :class:`peer.tunnel.MessageChannel`. Sends land in a send buffer
(counted in ``bufferedAmount``) that is flushed to the other end on the next loop iteration,
unless the end is ``paused``, which is how tests hold the buffer high to exercise back-pressure.
Like a browser, it refuses messages larger than 65,535 bytes.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

from peer.tunnel.channel import ChannelClosedError
from peer.tunnel.constants import MAX_DATA_CHANNEL_MESSAGE
from signaling.gen.proto.rpc.webrtc.v1 import grpc_pb2

WAIT = 5.0


class FakeChannel:
    def __init__(self, name: str) -> None:
        self.name = name
        self.remote: FakeChannel | None = None
        self.is_open = True
        self.paused = False
        #: Sizes of every message sent from this end, in order.
        self.sent_sizes: list[int] = []
        self.max_buffered_seen = 0
        self._on_message: Callable[[bytes], None] | None = None
        self._on_close: Callable[[], None] | None = None
        self._buffer: deque[bytes] = deque()
        self._buffered = 0
        self._flush_scheduled = False
        self._low_waiters: list[tuple[int, asyncio.Future[None]]] = []

    def __repr__(self) -> str:
        return f"<FakeChannel {self.name}>"

    # -- MessageChannel ----------------------------------------------------------------------
    @property
    def bufferedAmount(self) -> int:
        return self._buffered

    def send(self, data: bytes) -> None:
        if not self.is_open:
            raise ChannelClosedError(f"{self.name} is closed")
        if len(data) > MAX_DATA_CHANNEL_MESSAGE:
            raise ValueError(f"message of {len(data)} bytes is over the data-channel limit")
        self.sent_sizes.append(len(data))
        self._buffer.append(bytes(data))
        self._buffered += len(data)
        self.max_buffered_seen = max(self.max_buffered_seen, self._buffered)
        self._schedule_flush()

    async def wait_buffered_amount_low(self, threshold: int) -> None:
        if self._buffered <= threshold or not self.is_open:
            return
        waiter = asyncio.get_running_loop().create_future()
        self._low_waiters.append((threshold, waiter))
        await waiter

    def set_listener(self, on_message: Callable[[bytes], None] | None, on_close: Callable[[], None] | None) -> None:
        self._on_message = on_message
        self._on_close = on_close

    def close(self) -> None:
        if not self.is_open:
            return
        self._closed()
        if self.remote is not None:
            self.remote._closed()

    # -- test controls -----------------------------------------------------------------------
    def pause(self) -> None:
        self.paused = True

    def resume(self) -> None:
        self.paused = False
        self._schedule_flush()

    # -- internals ---------------------------------------------------------------------------
    def _schedule_flush(self) -> None:
        if not self._flush_scheduled and not self.paused:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        while self._buffer and not self.paused and self.is_open:
            data = self._buffer.popleft()
            self._buffered -= len(data)
            if self.remote is not None:
                self.remote._receive(data)
        self._wake_low()

    def _wake_low(self) -> None:
        still = []
        for threshold, waiter in self._low_waiters:
            if waiter.done():
                continue
            if self._buffered <= threshold or not self.is_open:
                waiter.set_result(None)
            else:
                still.append((threshold, waiter))
        self._low_waiters = still

    def _receive(self, data: bytes) -> None:
        if self.is_open and self._on_message is not None:
            self._on_message(data)

    def _closed(self) -> None:
        if not self.is_open:
            return
        # what was already buffered still goes out first, as SCTP delivers before the close
        if not self.paused:
            self._flush()
        self.is_open = False
        self._buffer.clear()
        self._buffered = 0
        self._wake_low()
        on_close = self._on_close
        if on_close is not None:
            asyncio.get_running_loop().call_soon(on_close)


def channel_pair() -> tuple[FakeChannel, FakeChannel]:
    """``(client_end, server_end)``."""
    client, server = FakeChannel("client"), FakeChannel("server")
    client.remote, server.remote = server, client
    return client, server


class RawClient:
    """Speaks raw ``Request`` frames on one end and records every ``Response``, like a test browser."""

    def __init__(self, end: FakeChannel) -> None:
        self.end = end
        self.responses: list[grpc_pb2.Response] = []
        self._changed = asyncio.Event()
        end.set_listener(self._on_message, None)

    def _on_message(self, data: bytes) -> None:
        response = grpc_pb2.Response()
        response.ParseFromString(data)
        self.responses.append(response)
        self._changed.set()

    def send(self, request: grpc_pb2.Request) -> None:
        self.end.send(request.SerializeToString())

    def headers(self, stream_id: int, method: str, *, metadata: dict[str, str] | None = None,
                timeout: float | None = None) -> None:
        request = grpc_pb2.Request(stream=grpc_pb2.Stream(id=stream_id), headers=grpc_pb2.RequestHeaders(method=method))
        for key, value in (metadata or {}).items():
            request.headers.metadata.md[key].values.append(value)
        if timeout is not None:
            request.headers.timeout.FromNanoseconds(int(timeout * 1e9))
        self.send(request)

    def message(self, stream_id: int, data: bytes = b"", *, eom: bool = True, eos: bool = False,
                has_message: bool = True, packet: bool = True) -> None:
        message = grpc_pb2.RequestMessage(has_message=has_message, eos=eos)
        if packet:
            message.packet_message.CopyFrom(grpc_pb2.PacketMessage(data=data, eom=eom))
        self.send(grpc_pb2.Request(stream=grpc_pb2.Stream(id=stream_id), message=message))

    def chunks(self, stream_id: int, payload: bytes, size: int, *, eos_on_every_chunk: bool = False) -> None:
        """One message in ``size``-byte chunks (16,373 for TS/Rust; Go sets eos on every chunk)."""
        pieces = [payload[i:i + size] for i in range(0, len(payload), size)] or [b""]
        for index, piece in enumerate(pieces):
            self.message(stream_id, piece, eom=index == len(pieces) - 1, eos=eos_on_every_chunk)

    def rst(self, stream_id: int) -> None:
        self.send(grpc_pb2.Request(stream=grpc_pb2.Stream(id=stream_id), rst_stream=True))

    def frames(self, stream_id: int) -> list[grpc_pb2.Response]:
        return [r for r in self.responses if r.stream.id == stream_id]

    def kinds(self, stream_id: int) -> list[str]:
        return [str(r.WhichOneof("type")) for r in self.frames(stream_id)]

    async def until(self, ready: Callable[[], bool], timeout: float = WAIT) -> None:
        async with asyncio.timeout(timeout):
            while not ready():
                self._changed.clear()
                await self._changed.wait()

    async def trailers(self, stream_id: int, timeout: float = WAIT) -> grpc_pb2.ResponseTrailers:
        """Wait for the stream's trailers, after checking headers-first/one-trailers ordering."""
        await self.until(lambda: "trailers" in self.kinds(stream_id), timeout)
        await settle()
        kinds = self.kinds(stream_id)
        assert kinds[0] == "headers" and kinds.count("headers") == 1, kinds
        assert kinds[-1] == "trailers" and kinds.count("trailers") == 1, kinds
        return self.frames(stream_id)[-1].trailers

    def payloads(self, stream_id: int) -> list[bytes]:
        """Reassembled reply messages of a stream."""
        messages, parts = [], []
        for frame in self.frames(stream_id):
            if frame.WhichOneof("type") == "message":
                parts.append(frame.message.packet_message.data)
                if frame.message.packet_message.eom:
                    messages.append(b"".join(parts))
                    parts = []
        return messages


async def settle(rounds: int = 5) -> None:
    """Let already-scheduled callbacks (flushes, task steps) run."""
    for _ in range(rounds):
        await asyncio.sleep(0)


async def eventually(ready: Callable[[], bool], timeout: float = WAIT) -> None:
    """Wait, bounded, for state that changes in callbacks and tasks with no event of its own to await."""
    async with asyncio.timeout(timeout):
        while not ready():  # noqa: ASYNC110 - no event exists for these conditions
            await asyncio.sleep(0.001)
