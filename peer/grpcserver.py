"""Creating grpclib servers for the handler table; every use of grpclib internals sits here.

grpclib answers a method it does not know with ``grpc-status: 12`` but no ``content-type``
header, and grpclib's own client (which viam-sdk uses) then reports ``UNKNOWN: Missing
content-type header`` instead of UNIMPLEMENTED. Viam's session client relies on seeing
UNIMPLEMENTED, so unknown paths go to a handler that fails properly instead.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import empty_pb2
from grpclib import GRPCError, Status
from grpclib.const import Cardinality, Handler
from grpclib.server import Server as GRPCServer
from grpclib.server import Stream


async def _unimplemented(stream: Stream[Any, Any]) -> None:
    raise GRPCError(Status.UNIMPLEMENTED, "unknown method")


class _MappingWithFallback(dict[str, Handler]):
    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
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


def protocol_factory(server: GRPCServer) -> Any:
    """The per-connection HTTP/2 protocol of ``server``, for listeners that accept sockets themselves."""
    return server._protocol_factory()
