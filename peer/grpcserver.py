"""Creating grpclib servers for the handler table; every use of grpclib internals sits here.

Two things are changed on the way:

* grpclib answers a method it does not know with ``grpc-status: 12`` but no ``content-type``
  header, and grpclib's own client (which viam-sdk uses) then reports ``UNKNOWN: Missing
  content-type header`` instead of UNIMPLEMENTED. Viam's session client relies on seeing
  UNIMPLEMENTED, so unknown paths go to a handler that fails properly instead.
* grpclib writes a unary response as three socket writes (headers, data, trailers), each a
  syscall. :class:`CoalescingTransport` gathers what one event-loop step writes and sends it
  at once, which is most of what separates a small call's cost from the h2 work itself.
"""

from __future__ import annotations

import asyncio
from typing import Any

from google.protobuf import empty_pb2
from grpclib import GRPCError, Status
from grpclib.const import Cardinality, Handler
from grpclib.server import Server as GRPCServer
from grpclib.server import Stream


async def _unimplemented(stream: Stream[Any, Any]) -> None:
    raise GRPCError(Status.UNIMPLEMENTED, "unknown method")


class _MappingWithFallback(dict[str, Handler]):
    def get(self, key: str, default: Any = None) -> Any:
        found = super().get(key)
        if found is not None:
            return found
        return Handler(_unimplemented, Cardinality.UNARY_UNARY, empty_pb2.Empty, empty_pb2.Empty)


class CoalescingTransport:
    """A transport proxy that sends everything written during one loop step in one write.

    The flush runs with ``call_soon``, i.e. right after the current step, so no data waits
    for anything but the code that is already running; ``close`` flushes first.
    """

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._pending: list[bytes] = []
        self._scheduled = False

    def write(self, data: bytes) -> None:
        if not data:
            return
        self._pending.append(data)
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        self._scheduled = False
        if not self._pending:
            return
        data = b"".join(self._pending) if len(self._pending) > 1 else self._pending[0]
        self._pending.clear()
        if not self._transport.is_closing():
            self._transport.write(data)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class _CoalescingProtocol(asyncio.Protocol):
    """Hands grpclib's protocol a :class:`CoalescingTransport` and forwards every callback."""

    def __init__(self, inner: asyncio.Protocol) -> None:
        self._inner = inner

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._inner.connection_made(CoalescingTransport(transport))  # type: ignore[arg-type]

    def data_received(self, data: bytes) -> None:
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self._inner.connection_lost(exc)


def make_grpc_server(handlers: Any) -> GRPCServer:
    """A grpclib server for ``handlers`` (anything with ``__mapping__``) that answers unknown
    methods with a well-formed UNIMPLEMENTED response and coalesces its writes."""
    server = GRPCServer([handlers])
    server._mapping = _MappingWithFallback(server._mapping)
    plain_factory = server._protocol_factory

    def coalescing_factory() -> Any:
        return _CoalescingProtocol(plain_factory())

    server._protocol_factory = coalescing_factory  # type: ignore[method-assign]
    return server


class GrpclibConnections:
    """grpclib's HTTP/2 server protocol for connections accepted elsewhere (the one-port listener).

    grpclib has no public way to serve an already-accepted connection: ``Server.start()`` hands
    the private ``Server._protocol_factory`` to ``loop.create_server``, and ``Server.close()``
    refuses to run on a server that never listened, so its per-connection handlers
    (``Server._handlers``) are closed here directly (grpclib is pinned below 0.5).
    """

    def __init__(self, handlers: Any) -> None:
        # grpclib copies the mapping here: services added to the table before this are served
        self._server = make_grpc_server(handlers)

    def protocol(self) -> asyncio.Protocol:
        protocol: asyncio.Protocol = self._server._protocol_factory()
        return protocol

    def close(self) -> None:
        """Cancel every running call (as ``grpclib.server.Server.close`` does)."""
        for handler in list(self._server._handlers):
            handler.close()

    async def wait_closed(self) -> None:
        """Return once the cancelled calls have unwound."""
        waits = [handler.wait_closed() for handler in list(self._server._handlers)]
        if waits:
            await asyncio.gather(*waits)
