"""The one handler table that every transport dispatches into.

Each gRPC service object contributes its ``__mapping__()``; :class:`HandlerTable` wraps every
handler once so that, whichever transport delivers the call (HTTP/2, gRPC-web, a WebRTC data
channel), it runs with the same authentication, operation tracking, session checks and error mapping.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections.abc import Callable, Coroutine, Iterable, Mapping
from typing import Any

from google.protobuf import descriptor_pool
from google.protobuf.message import DecodeError
from grpclib import GRPCError, Status
from grpclib.const import Handler
from grpclib.server import Stream

from signaling.auth import Principal, RequestAuthorizer, current_principal
from signaling.errors import SignalingError

from .errors import PeerError
from .gen.viam.common.v1 import common_pb2
from .operations import OperationManager
from .sessions import SESSION_METADATA_KEY, SessionManager

logger = logging.getLogger(__name__)

HandlerFunc = Callable[[Stream[Any, Any]], Coroutine[Any, Any, None]]


def is_safety_monitored(method_path: str) -> bool:
    """Whether our proto marks ``/pkg.Service/Method`` with ``safety_heartbeat_monitored``."""
    service, _, method = method_path.lstrip("/").partition("/")
    try:
        descriptor = descriptor_pool.Default().FindMethodByName(f"{service}.{method}")
    except KeyError:
        return False
    options = descriptor.GetOptions()
    return bool(options.Extensions[common_pb2.safety_heartbeat_monitored])


class CallStats:
    """Calls counted per method and per transport since start (``/stats`` reads this).

    A transport marks its stream objects with a ``transport`` attribute ("webrtc", "grpc-web");
    grpclib's own HTTP/2 streams have none and count as "grpc".
    """

    TRANSPORTS = ("webrtc", "grpc", "grpc-web")

    def __init__(self) -> None:
        self.by_transport: dict[str, int] = dict.fromkeys(self.TRANSPORTS, 0)
        self.by_method: dict[str, dict[str, int]] = {}

    def count(self, path: str, transport: str) -> None:
        self.by_transport[transport] = self.by_transport.get(transport, 0) + 1
        per_method = self.by_method.setdefault(path, dict.fromkeys(self.TRANSPORTS, 0))
        per_method[transport] = per_method.get(transport, 0) + 1

    def snapshot(self) -> dict[str, Any]:
        return {"rpcs": dict(self.by_transport), "methods": {k: dict(v) for k, v in self.by_method.items()}}


def transport_of(stream: Any) -> str:
    transport = getattr(stream, "transport", None)
    return transport if isinstance(transport, str) else "grpc"


def _raised_by_grpclib(exc: BaseException) -> bool:
    """Whether ``exc`` came out of grpclib itself: it reports a truncated frame with a bare
    AssertionError ("Received less data than expected"), which is the client's fault, not ours."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb is not None and str(tb.tb_frame.f_globals.get("__name__", "")).startswith("grpclib.")


def carried_principal(stream: Any) -> Principal | None:
    """The principal a transport vouches for: a WebRTC session's ``RemotePeer.principal``."""
    principal = getattr(getattr(stream, "peer", None), "principal", None)
    return principal if isinstance(principal, Principal) else None


def _first(metadata: Any, key: str) -> str | None:
    if metadata is None:
        return None
    value = metadata.get(key)
    return value if isinstance(value, str) else None


class HandlerTable:
    """``method path → Handler``, shared by every transport; servable by grpclib as is.

    Set :attr:`auth` to require authentication on every method but ``Authenticate``: a refused
    call ends with UNAUTHENTICATED or PERMISSION_DENIED before its handler runs. With auth on,
    every call first sets :data:`signaling.auth.current_principal` to whom it runs as (``None``
    for Authenticate); it is never reset, because the next call on the same task overwrites it
    before any handler code runs.
    """

    def __init__(
        self,
        services: Iterable[Any],
        *,
        operations: OperationManager,
        sessions: SessionManager,
    ) -> None:
        self.operations = operations
        self.sessions = sessions
        self.stats = CallStats()
        #: ``None``: no authentication (every caller is trusted, as on a LAN).
        self.auth: RequestAuthorizer | None = None
        self._mapping: dict[str, Handler] = {}
        self.add(services)

    def __mapping__(self) -> Mapping[str, Handler]:
        return self._mapping

    def get(self, path: str) -> Handler | None:
        return self._mapping.get(path)

    def add(self, services: Iterable[Any]) -> None:
        """Serve more services (e.g. signaling, added by the composition root) through the same table."""
        for service in services:
            for path, handler in service.__mapping__().items():
                if path in self._mapping:
                    raise ValueError(f"two services serve {path}")
                self._mapping[path] = Handler(
                    self._wrap(path, handler.func, handler.request_type),
                    handler.cardinality,
                    handler.request_type,
                    handler.reply_type,
                )

    def _wrap(self, path: str, func: HandlerFunc, request_type: Any) -> HandlerFunc:
        monitored = is_safety_monitored(path)
        operations, sessions, stats = self.operations, self.sessions, self.stats
        exempt = RequestAuthorizer.exempt(path)

        async def handle(stream: Stream[Any, Any]) -> None:
            stats.count(path, transport_of(stream))
            auth = self.auth
            if auth is not None:
                try:
                    principal = None if exempt else auth.authorize(path, stream.metadata, carried_principal(stream))
                except SignalingError as exc:
                    logger.info("%s refused (%s): %s", path, exc.status.name, exc.message)
                    raise exc.grpc_error() from None
                current_principal.set(principal)
            session_id = _first(stream.metadata, SESSION_METADATA_KEY) or ""
            if session_id:
                try:
                    sessions.get(session_id)
                except PeerError as exc:
                    raise exc.grpc_error() from None
            with operations.track(path, stream.metadata, session_id=session_id) as op:  # type: ignore[arg-type]
                if monitored and session_id:
                    op.on_resource = lambda name: sessions.associate(session_id, name)
                try:
                    await func(stream)
                except GRPCError:
                    raise
                except PeerError as exc:
                    raise exc.grpc_error() from None
                except DecodeError as exc:
                    raise GRPCError(Status.INVALID_ARGUMENT,
                                    f"malformed {request_type.DESCRIPTOR.full_name}: {exc}") from None
                except NotImplementedError as exc:
                    raise GRPCError(Status.UNIMPLEMENTED, str(exc) or f"{path} is not implemented") from None
                except asyncio.CancelledError:
                    task = asyncio.current_task()
                    if op.cancel_requested and task is not None and task.uncancel() == 0:
                        raise GRPCError(Status.CANCELLED, f"operation {op.id} was cancelled") from None
                    raise
                except (AssertionError, struct.error) as exc:
                    if not _raised_by_grpclib(exc):
                        logger.exception("%s failed", path)
                        raise GRPCError(Status.UNKNOWN, f"{type(exc).__name__}: {exc}") from None
                    raise GRPCError(Status.INTERNAL, f"malformed gRPC frame: {exc}") from None
                except Exception as exc:
                    logger.exception("%s failed", path)
                    raise GRPCError(Status.UNKNOWN, f"{type(exc).__name__}: {exc}") from None

        handle.__name__ = func.__name__
        handle.__qualname__ = getattr(func, "__qualname__", func.__name__)
        return handle
