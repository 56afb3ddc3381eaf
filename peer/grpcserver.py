"""Creating grpclib servers for the handler table; every use of grpclib internals sits here.

grpclib answers a method it does not know with ``grpc-status: 12`` but no ``content-type``
header, and grpclib's own client (which viam-sdk uses) then reports ``UNKNOWN: Missing
content-type header`` instead of UNIMPLEMENTED. Viam's session client relies on seeing
UNIMPLEMENTED, so unknown paths go to a handler that fails properly instead.

(Coalescing grpclib's three writes per response into one syscall was tried and measured: the
extra event-loop pass it needs cost more than the syscalls it saved, so it is not done.)
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


def make_grpc_server(handlers: Any) -> GRPCServer:
    """A grpclib server for ``handlers`` (anything with ``__mapping__``) that answers unknown
    methods with a well-formed UNIMPLEMENTED response."""
    server = GRPCServer([handlers])
    server._mapping = _MappingWithFallback(server._mapping)
    return server


def bound_addresses(server: GRPCServer) -> list[str]:
    """Where a started grpclib server listens, as ``host:port`` or ``unix:/path`` (grpclib keeps
    its asyncio server private)."""
    listening: Any = server._server
    found = []
    for sock in listening.sockets if listening is not None else ():
        name: Any = sock.getsockname()
        found.append(f"unix:{name}" if isinstance(name, str) else f"{name[0]}:{name[1]}")
    return found


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
