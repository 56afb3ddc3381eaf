"""The composition root: one robot served on the one port, and on a Unix socket if asked.

:class:`Robot` builds the :class:`peer.server.Server` (resources, operations, sessions, the handler
table), the aiohttp app over the same table, and the one-port listener, and owns their order of
start and close. The command line uses it, and so do tests, in process::

    async with Robot(resources) as robot:
        await robot.start("127.0.0.1", 0)
        ...
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Iterable, Sequence
from typing import Any

from aiohttp import web

from peer.resource import ResourceBase
from peer.server import Server
from peer.signals import serve_until_stopped
from peer.stream import StreamService
from peer.webrtc import OfferAnswerer, PeerSessions, set_udp_receive_buffer
from signaling.answerer import Answerer
from signaling.auth import ApiKey, Authenticator, AuthService, RequestAuthorizer
from signaling.config import WebRTCConfig
from signaling.external import ExternalSignaling, external_answerer
from signaling.ice import IceSettings
from signaling.internal import internal_answerer
from signaling.service import SignalingService

from .app import make_app
from .const import CLOSE_GRACE_S, FIRST_BYTES_TIMEOUT_S
from .cors import CorsPolicy, Origin
from .oneport import OnePortListener

logger = logging.getLogger(__name__)

#: The one host name this robot's own answerer registers under: with internal signaling every
#: ``rpc-host`` a caller sends (``127.0.0.1:8080``, a LAN address, ``robot.local``) means "this robot".
SELF_HOST = "peerbot-self"
#: Concurrent Answer streams, i.e. offers being negotiated at once (goutils runs 2).
ANSWER_WORKERS = 4


def robot_authenticator(api_keys: Iterable[ApiKey], **options: Any) -> Authenticator:
    """The authenticator ``peerbot serve`` uses: its tokens are valid on this robot only."""
    return Authenticator(api_keys, hosts=[SELF_HOST], **options)


class Robot:
    """Everything ``peerbot serve`` runs; ``start`` then ``close`` (or ``serve`` until a signal)."""

    def __init__(
        self,
        resources: Sequence[ResourceBase] = (),
        *,
        allowed_origins: Iterable[str | Origin] = (),
        webrtc_config: WebRTCConfig | None = None,
        auth: Authenticator | None = None,
        ice: IceSettings | None = None,
        external_signaling: ExternalSignaling | None = None,
        first_bytes_timeout: float = FIRST_BYTES_TIMEOUT_S,
        close_grace: float = CLOSE_GRACE_S,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.server = Server(resources)
        # RobotService.Shutdown stops the whole robot, not only the Server's own listeners
        self.server.robot_service.on_shutdown = self.request_stop
        # Signaling joins the one handler table, so it is served on every transport (h2c, gRPC-web).
        # ICE servers (fresh TURN REST credentials per request) for LAN callers and our own answers
        self.ice = ice if ice is not None else IceSettings()
        self.signaling = SignalingService(
            config=webrtc_config if webrtc_config is not None else self.ice.webrtc_config,
            route_host=lambda host: SELF_HOST,
        )
        #: Answers through a remote rendezvous too (``--signaling-address``), started with the robot.
        self.external_signaling = external_signaling
        self.external_answerer: Answerer | None = None
        self.server.handlers.add([self.signaling])
        # Auth (optional): required on every method of every transport but Authenticate. Every
        # host a caller names means this robot, so tokens are for SELF_HOST (see robot_authenticator).
        self.auth = auth
        if auth is not None:
            authorizer = RequestAuthorizer(auth, host=SELF_HOST, route_host=lambda host: SELF_HOST)
            self.server.handlers.add([AuthService(authorizer)])
            self.server.handlers.auth = authorizer
        # Live video: AddStream renegotiates the caller's peer connection (WebRTC callers only).
        self.streams = StreamService(self.server.manager)
        self.server.handlers.add([self.streams])
        self.peer_sessions = PeerSessions()
        self.cors = CorsPolicy(allowed_origins)
        self.app: web.Application = make_app(
            self.server.handlers, cors=self.cors, peers=lambda: len(self.peer_sessions),
            cameras=self.streams.stats,
        )
        self.listener = OnePortListener(
            self.server.handlers, self.app, first_bytes_timeout=first_bytes_timeout, close_grace=close_grace,
            ssl_context=ssl_context,  # TLS beside cleartext on the one port (web.tls.server_context)
        )
        self._stop_requested = asyncio.Event()
        self._answering = contextlib.AsyncExitStack()
        self._closed = False

    async def start(self, host: str | None = "localhost", port: int | None = 8080, *, unix: str | None = None) -> None:
        """Listen on ``host:port`` (everything) when ``port`` is given, and on ``unix`` (native gRPC)."""
        try:
            set_udp_receive_buffer()
            answer = OfferAnswerer(self.server.handlers, self.peer_sessions, ice_servers=self.ice.servers)
            await self._answering.enter_async_context(
                internal_answerer(self.signaling, [SELF_HOST], answer, workers=ANSWER_WORKERS)
            )
            if self.external_signaling is not None:
                self.external_answerer = await self._answering.enter_async_context(
                    external_answerer(self.external_signaling.address, self.external_signaling.hosts, answer,
                                      secret=self.external_signaling.secret, workers=ANSWER_WORKERS,
                                      tls=self.external_signaling.tls, insecure=self.external_signaling.insecure,
                                      **self.external_signaling.options)
                )
            if port is not None:
                await self.listener.start(host, port)
            if unix is not None:
                await self.server.start(path=unix)  # logs "serving gRPC on unix:PATH"
        except BaseException:
            await self.close()
            raise

    @property
    def addresses(self) -> list[str]:
        """``host:port`` of the one port, then ``unix:/path``."""
        return [*self.listener.addresses, *self.server.addresses]

    @property
    def port(self) -> int | None:
        return self.listener.port

    def request_stop(self) -> None:
        """Make :meth:`serve` return (signals, ``RobotService.Shutdown``)."""
        self._stop_requested.set()

    async def serve(self, host: str | None = "localhost", port: int | None = 8080, *, unix: str | None = None) -> None:
        """Start, serve until SIGTERM/SIGINT or a Shutdown call, then close everything."""
        await serve_until_stopped(lambda: self.start(host, port, unix=unix), self._stop_requested, self.close)

    async def close(self) -> None:
        """Listener (its calls and connections), peer connections, the answerer, then the robot."""
        if self._closed:
            return
        self._closed = True
        try:
            await self.listener.close()
        finally:
            try:
                await self.peer_sessions.close_all()
                await self.streams.close()
                await self._answering.aclose()
            finally:
                await self.server.close()
                await self.signaling.close()

    async def __aenter__(self) -> Robot:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
