"""The robot server: resources + RobotService + one handler table, served over gRPC."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Sequence

from grpclib.server import Server as GRPCServer

from .grpcserver import bound_addresses, make_grpc_server
from .handlers import HandlerTable
from .operations import OperationManager
from .resource import Registry, ResourceBase, ResourceManager, ResourceName
from .robot import RobotService
from .robot.service import stop_resource
from .sessions import DEFAULT_HEARTBEAT_WINDOW, SessionManager
from .signals import stop_on_signals

logger = logging.getLogger(__name__)

#: How long close() lets running calls finish before they are cancelled.
SHUTDOWN_GRACE_S = 5.0


class Server:
    """Serves a set of resources: ``await Server(resources).serve(port=9090)``.

    Every registered API gets its gRPC service (a call for a resource the robot lacks is
    NOT_FOUND, not UNIMPLEMENTED); the services form one :class:`HandlerTable` that every
    transport dispatches into.
    """

    def __init__(
        self,
        resources: Sequence[ResourceBase] = (),
        *,
        heartbeat_window: float = DEFAULT_HEARTBEAT_WINDOW,
    ) -> None:
        self.manager = ResourceManager(resources)
        self.operations = OperationManager()
        self.sessions = SessionManager(self._stop_resource, heartbeat_window)
        self.robot_service = RobotService(
            self.manager, self.operations, self.sessions, on_shutdown=self.request_stop
        )
        api_services = [reg.rpc_service(self.manager) for reg in Registry.REGISTERED_APIS().values()]
        self.handlers = HandlerTable(
            [self.robot_service, *api_services], operations=self.operations, sessions=self.sessions
        )
        self._listeners: list[GRPCServer] = []
        self._unix_paths: list[str] = []
        self._stop_requested: asyncio.Event | None = None
        self._closed = False

    # -- lifecycle -------------------------------------------------------------------------
    async def start(
        self, host: str | None = "localhost", port: int | None = 9090, *, path: str | None = None,
        also_unix: str | None = None,
    ) -> None:
        """Start listening. ``path`` (a Unix socket) replaces TCP; ``also_unix`` adds one beside it."""
        if path is not None:
            await self._listen_unix(path)
        else:
            listener = make_grpc_server(self.handlers)
            await listener.start(host, port)
            self._listeners.append(listener)
            if also_unix is not None:
                await self._listen_unix(also_unix)
        for address in self.addresses:
            logger.info("serving gRPC on %s", address)

    async def _listen_unix(self, path: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)  # a stale socket from a crashed run would block the bind
        listener = make_grpc_server(self.handlers)
        await listener.start(path=path)
        self._listeners.append(listener)
        self._unix_paths.append(path)

    @property
    def addresses(self) -> list[str]:
        """Where the server listens, as ``host:port`` or ``unix:/path``."""
        return [address for listener in self._listeners for address in bound_addresses(listener)]

    @property
    def port(self) -> int | None:
        for address in self.addresses:
            if not address.startswith("unix:"):
                return int(address.rsplit(":", 1)[1])
        return None

    def request_stop(self) -> None:
        """Ask :meth:`serve` to shut down gracefully (signals, RobotService.Shutdown)."""
        if self._stop_requested is not None:
            self._stop_requested.set()

    async def serve(
        self,
        host: str | None = "localhost",
        port: int | None = 9090,
        log_level: int = logging.INFO,
        *,
        path: str | None = None,
        also_unix: str | None = None,
    ) -> None:
        """Serve until SIGTERM/SIGINT (or a Shutdown call), then close everything."""
        logging.getLogger("peer").setLevel(log_level)
        self._stop_requested = asyncio.Event()
        try:
            with stop_on_signals(self.request_stop):
                await self.start(host, port, path=path, also_unix=also_unix)
                await self._stop_requested.wait()
                logger.info("shutting down")
        finally:
            await self.close()

    @classmethod
    async def create_and_serve(
        cls,
        resources: Sequence[ResourceBase],
        host: str | None = "localhost",
        port: int | None = 9090,
        log_level: int = logging.INFO,
        *,
        path: str | None = None,
    ) -> None:
        await cls(resources).serve(host, port, log_level, path=path)

    async def close(self) -> None:
        """Stop listening, cancel running calls, stop session timers, close every resource."""
        if self._closed:
            return
        self._closed = True
        for listener in self._listeners:
            listener.close()
        if self._listeners:
            waits = [asyncio.ensure_future(listener.wait_closed()) for listener in self._listeners]
            _, pending = await asyncio.wait(waits, timeout=SHUTDOWN_GRACE_S)
            for task in pending:
                task.cancel()
        self.operations.cancel_all()
        await self.sessions.close()
        await self.manager.close()
        for path in self._unix_paths:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        self._listeners.clear()

    async def _stop_resource(self, name: ResourceName) -> None:
        resource = self.manager.resources.get(name)
        if resource is not None:
            await stop_resource(resource)
