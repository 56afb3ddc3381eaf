"""``peerbot signal``: a standalone rendezvous, the public meeting point of callers and robots.

It serves only ``SignalingService`` (native gRPC on h2c, and gRPC-web with CORS for browsers) on
the one-port listener, routing every call to the answerers registered under exactly the
``rpc-host`` the caller names (no ``route_host``: a robot registers with ``peerbot serve
--signaling-address … --fqdn NAME``). A call for a host nobody answers for gets NOT_FOUND "host
appears to be offline". ICE servers configured here (``--stun``, ``--turn`` …) are handed to
callers by ``OptionalWebRTCConfig`` and to answerers with each offer, TURN REST credentials
minted fresh for every request.

Auth (any of ``--api-key``, ``--api-keys-file``, ``--robot-secret``, ``--robot-secrets-file``,
``--signing-key-file`` turns it on, and then API keys and robot secrets are both required):
callers authenticate with an API key at ``AuthService/Authenticate`` for the host they call (the
token's audience, routed exactly), which must be one of the key's scope (``ID:SECRET@HOST,…``;
``@*`` every robot; a bare key only while one robot is configured: :func:`check_key_scopes`);
robots with their robot secret, for all of their names; every signaling method then
needs a Bearer token through the handler table, and only a robot's own token may Answer for its
hosts. ``--signing-key-file`` shares the HS256 key between instances, so a token from one is
valid on all. Without auth flags anyone may call or answer for any host (a trusted network).

:func:`build_queue` is the one place the call queue is chosen: in memory, or with ``--redis URL``
the Redis queue (:mod:`signaling.redis_queue`), through which several ``peerbot signal`` processes
act as one (a caller on one instance meets a robot registered on another). ``--tls-cert/--tls-key``
add TLS on the same port as ``peerbot serve`` does. :class:`Rendezvous` is what the command runs,
and what tests run in process.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import ssl
import sys
from collections.abc import Iterable, Sequence
from typing import Any

from aiohttp import web

from peer.handlers import HandlerTable
from peer.operations import OperationManager
from peer.resource import ResourceName
from peer.sessions import SessionManager
from peer.signals import serve_until_stopped
from signaling.auth import (
    ApiKey,
    Authenticator,
    AuthService,
    RequestAuthorizer,
    RobotSecret,
    load_api_keys,
    load_robot_secrets,
    load_signing_key,
)
from signaling.config import WebRTCConfig
from signaling.const import OFFER_DEADLINE
from signaling.errors import SignalingError
from signaling.ice import IceSettings
from signaling.memory_queue import MemoryCallQueue
from signaling.queue import CallQueue
from signaling.service import SignalingService

from .argtypes import from_parser
from .const import CLOSE_GRACE_S, FIRST_BYTES_TIMEOUT_S
from .cors import CorsPolicy, Origin
from .grpcweb import GrpcWebHandler
from .ice_args import add_ice_arguments, ice_settings
from .oneport import OnePortListener
from .tls import TLSSetupError, add_arguments, context_from_args

logger = logging.getLogger(__name__)

DEFAULT_SIGNAL_HOST = "localhost"
DEFAULT_SIGNAL_PORT = 8081


def add_signal_parser(commands: Any, origin_type: Any) -> argparse.ArgumentParser:
    """Register ``signal`` on the ``peerbot`` sub-command parsers; returns its parser."""
    signal: argparse.ArgumentParser = commands.add_parser(
        "signal", help="run only the signaling server (a rendezvous for remote robots)"
    )
    signal.add_argument("--host", default=DEFAULT_SIGNAL_HOST, help=f"address to bind (default {DEFAULT_SIGNAL_HOST})")
    signal.add_argument("--port", type=int, default=DEFAULT_SIGNAL_PORT,
                        help=f"TCP port for native gRPC (h2c) and gRPC-web (default {DEFAULT_SIGNAL_PORT}; "
                        "0 picks a free one)")
    signal.add_argument("--allow-origin", action="append", default=[], metavar="URL", type=origin_type,
                        help="let browser pages of this origin call with credentials; repeatable")
    signal.add_argument("--offer-deadline", type=float, default=OFFER_DEADLINE, metavar="SECONDS",
                        help=f"bound on each call's signaling exchange (default {OFFER_DEADLINE:g}, as Viam's)")
    signal.add_argument("--loop", choices=("auto", "asyncio", "uvloop"), default="auto",
                        help="event loop: uvloop when installed (auto), or force one")
    signal.add_argument("--redis", metavar="URL",
                        help="share calls through this Redis (redis://HOST:PORT/DB): every `peerbot signal` "
                        "on the same Redis acts as one rendezvous (default: in memory, this process only)")
    auth = signal.add_argument_group(
        "authentication (off unless one of these is given; then keys and robot secrets are both needed)"
    )
    auth.add_argument("--api-key", action="append", default=[], metavar="ID:SECRET@HOST[,HOST...]",
                      type=from_parser(ApiKey.parse),
                      help="callers authenticate with this API key and may reach only these robot names "
                      "(@* : every robot; no @ only while one robot is configured); repeatable")
    auth.add_argument("--api-keys-file", metavar="FILE",
                      help="more API keys, one ID:SECRET@HOST[,HOST...] (or @*) per line (# comments)")
    auth.add_argument("--robot-secret", action="append", default=[], metavar="HOST[,HOST...]=SECRET",
                      type=from_parser(RobotSecret.parse),
                      help="the robot answering for these host names authenticates with SECRET "
                      "(its `peerbot serve --robot-secret`); repeatable")
    auth.add_argument("--robot-secrets-file", metavar="FILE",
                      help="more robot secrets, one HOST[,HOST...]=SECRET per line (# comments)")
    auth.add_argument("--signing-key-file", metavar="FILE",
                      help="HS256 token key (at least 32 bytes) shared by several `peerbot signal` "
                      "instances so each accepts the others' tokens (default: random per process)")
    add_ice_arguments(signal)
    add_arguments(signal)  # --tls-cert, --tls-key
    return signal


def signal_authenticator(args: argparse.Namespace) -> Authenticator | None:
    """The rendezvous's :class:`Authenticator` from the flags, ``None`` without auth flags.

    Its hosts (token audience) are exactly the robots' names: an API key gets a token only for a
    host some robot may answer for. ``ValueError`` (with the reason) for an incomplete setup.
    """
    robots: list[RobotSecret] = list(args.robot_secret)
    if args.robot_secrets_file:
        robots.extend(load_robot_secrets(args.robot_secrets_file))
    api_keys: list[ApiKey] = list(args.api_key)
    if args.api_keys_file:
        api_keys.extend(load_api_keys(args.api_keys_file))
    if not (robots or api_keys or args.signing_key_file):
        return None
    if not api_keys or not robots:
        raise ValueError("auth needs both --api-key or --api-keys-file (for callers) and --robot-secret or "
                         "--robot-secrets-file (for robots): with only one side nobody could ever connect")
    key = load_signing_key(args.signing_key_file) if args.signing_key_file else None
    hosts = [host for robot in robots for host in robot.hosts]
    # first: duplicate keys or robot names, scopes naming no robot; then the rendezvous's own rule
    authenticator = Authenticator(api_keys, robot_secrets=robots, hosts=hosts, signing_key=key)
    check_key_scopes(api_keys, robots)
    return authenticator


def check_key_scopes(api_keys: Iterable[ApiKey], robots: Sequence[RobotSecret]) -> None:
    """Refuse (``ValueError``) a bare key on a rendezvous of several robots.

    Without ``@`` it would silently reach all of them, and any robot added later too: its reach
    must be written (``@HOST,…``, or ``@*`` to mean every robot). With a single robot there is
    nothing to confuse, so a bare key stays valid (older setups keep working). A scope naming a
    host no robot answers for (a typo, or a secret containing ``@``) the :class:`Authenticator`
    refuses itself.
    """
    for key in api_keys:
        if not key.scoped and len(robots) > 1:
            raise ValueError(f"API key {key.id!r} has no scope, but this rendezvous serves {len(robots)} robots: "
                             "write the robots it may reach, ID:SECRET@HOST[,HOST...], or ID:SECRET@* for all")


async def build_queue(args: argparse.Namespace) -> CallQueue:
    """THE place ``peerbot signal`` chooses its call queue; the rendezvous closes it. Redis must
    answer at start: a rendezvous that cannot reach its store exits rather than serve UNAVAILABLE."""
    if args.redis:
        from signaling.redis_queue import RedisCallQueue  # only here: redis-py is ~90 ms of start-up

        return await RedisCallQueue.connect(args.redis)
    return MemoryCallQueue()


async def _no_resources(name: ResourceName) -> None:
    """A rendezvous has no resources for an expired session to stop."""


class Rendezvous:
    """Signaling only, on one port: ``start`` then ``close`` (or ``serve`` until a signal).

    :param queue: where offers meet answerers; closed by :meth:`close` (the rendezvous owns it).
    :param ice: ICE servers handed out per request (none by default).
    :param auth: require tokens from this authenticator on every signaling method (``None``: open).
    """

    def __init__(
        self,
        queue: CallQueue,
        *,
        ice: IceSettings | None = None,
        auth: Authenticator | None = None,
        allowed_origins: Iterable[str | Origin] = (),
        offer_deadline: float = OFFER_DEADLINE,
        ssl_context: ssl.SSLContext | None = None,
        first_bytes_timeout: float = FIRST_BYTES_TIMEOUT_S,
        close_grace: float = CLOSE_GRACE_S,
    ) -> None:
        self.queue = queue
        self.ice = ice if ice is not None else IceSettings()
        config = self.ice.webrtc_config if self.ice else WebRTCConfig()
        self.signaling = SignalingService(queue, config=config, offer_deadline=offer_deadline)
        self.sessions = SessionManager(_no_resources)
        # the same handler table as a robot's: error mapping and /stats counting behave alike
        self.handlers = HandlerTable([self.signaling], operations=OperationManager(), sessions=self.sessions)
        self.auth = auth
        if auth is not None:
            # exact routing: a token's audience is the very rpc-host it was issued for
            authorizer = RequestAuthorizer(auth)
            self.handlers.add([AuthService(authorizer)])
            self.handlers.auth = authorizer
        self.app = web.Application()
        CorsPolicy(allowed_origins).install(self.app)
        self.app.router.add_get("/stats", self._stats)
        self.app.router.add_post("/{service}/{method}", GrpcWebHandler(self.handlers).handle)
        self.listener = OnePortListener(
            self.handlers, self.app, first_bytes_timeout=first_bytes_timeout, close_grace=close_grace,
            ssl_context=ssl_context,
        )
        self._stop_requested = asyncio.Event()
        self._closed = False

    async def _stats(self, request: web.Request) -> web.Response:
        return web.json_response(self.handlers.stats.snapshot(), headers={"Cache-Control": "no-cache"})

    async def start(self, host: str | None, port: int) -> None:
        """Listen (logs ``serving gRPC on HOST:PORT``, the line scripts and tests wait for)."""
        try:
            await self.listener.start(host, port)
        except BaseException:
            await self.close()
            raise
        logger.info("signaling only (rendezvous); ICE servers handed out: %s", self.ice.describe())
        if self.auth is not None:
            logger.info("auth required: %d API key(s); robots may answer for %s", len(self.auth.key_ids),
                        ", ".join(sorted(self.auth.hosts or ())))
            for key in self.auth.api_keys:
                logger.info("API key %s", key.describe())
        else:
            logger.warning("no auth: anyone may call or answer for any host (give --api-key and --robot-secret)")

    @property
    def addresses(self) -> list[str]:
        return self.listener.addresses

    @property
    def port(self) -> int | None:
        return self.listener.port

    def request_stop(self) -> None:
        self._stop_requested.set()

    async def serve(self, host: str | None, port: int) -> None:
        await serve_until_stopped(lambda: self.start(host, port), self._stop_requested, self.close)

    async def close(self) -> None:
        """The listener (running calls end), then the queue. Idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            await self.listener.close()
        finally:
            try:
                await self.signaling.close()
                await self.sessions.close()
            finally:
                await self.queue.close()

    async def __aenter__(self) -> Rendezvous:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


async def _run(
    args: argparse.Namespace, ice: IceSettings, auth: Authenticator | None, tls: ssl.SSLContext | None
) -> None:
    queue = await build_queue(args)
    rendezvous = Rendezvous(
        queue, ice=ice, auth=auth, allowed_origins=args.allow_origin, offer_deadline=args.offer_deadline,
        ssl_context=tls,
    )
    await rendezvous.serve(args.host, args.port)


def signal_main(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """``peerbot signal``; the exit status."""
    from .main import run_loop  # the one event-loop policy (uvloop when installed)

    if args.offer_deadline <= 0:
        parser.error("--offer-deadline must be positive")
    ice = ice_settings(parser, args)
    try:
        auth = signal_authenticator(args)
    except OSError as exc:
        parser.error(f"cannot read {exc.filename}: {exc.strerror}")
    except ValueError as exc:
        parser.error(str(exc))
    try:
        run_loop(_run(args, ice, auth, context_from_args(args)), args.loop)
    except TLSSetupError as exc:
        print(f"peerbot: TLS: {exc}", file=sys.stderr)
        return 2
    except SignalingError as exc:  # the Redis store is unreachable at start
        print(f"peerbot: {exc.message}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"peerbot: cannot serve: {exc}", file=sys.stderr)
        return 1
    return 0
