"""The ``peerbot`` command line."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import importlib.metadata
import logging
import sys
from collections.abc import Coroutine, Sequence
from typing import Any

import peer.components
import peer.services  # noqa: F401
from peer.errors import ValidationError
from peer.resource.build import build_resources
from signaling.auth import ApiKey
from signaling.external import ExternalSignaling
from signaling.ice import IceSettings

from .argtypes import from_parser
from .config import ConfigError, RobotConfig, builtin_config, load_config
from .cors import parse_origin
from .external_args import add_external_signaling_arguments, external_signaling
from .ice_args import add_ice_arguments, ice_settings
from .robot import Robot, robot_authenticator
from .signal import add_signal_parser, signal_main
from .tls import TLSSetupError, add_arguments, context_from_args

logger = logging.getLogger(__name__)

DEFAULT_HOST = "localhost"
DEFAULT_PORT = 8080


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="peerbot", description="A WebRTC-first robot server (Viam wire protocol).")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve a robot (the built-in fake robot without --config)")
    serve.add_argument("--config", metavar="FILE", help="robot config in Viam's JSON shape")
    serve.add_argument("--host", help=f"address to bind (default {DEFAULT_HOST}, or network.bind_address)")
    serve.add_argument("--port", type=int, help=f"TCP port for native gRPC (h2c), gRPC-web, /stats and the page "
                       f"(default {DEFAULT_PORT}; 0 picks a free one)")
    serve.add_argument("--unix", metavar="PATH", help="also serve native gRPC on this Unix socket "
                       "(only there when neither --port nor --host is given)")
    serve.add_argument("--allow-origin", action="append", default=[], metavar="URL", type=_origin,
                       help="let browser pages of this origin (e.g. http://laptop.local:5173) call with "
                       "credentials; repeatable. Pages on the robot's own host name are always allowed")
    serve.add_argument("--module", action="append", default=[], metavar="NAME",
                       help="import a Python module first (it may register custom APIs and models); repeatable")
    serve.add_argument("--loop", choices=("auto", "asyncio", "uvloop"), default="auto",
                       help="event loop: uvloop when installed (auto), or force one")
    serve.add_argument("--api-key", action="append", default=[], metavar="ID:SECRET", type=from_parser(_robot_api_key),
                       help="require authentication; callers authenticate with this API key (viam-sdk: "
                       "auth_entity=ID, Credentials(type='api-key', payload=SECRET)); repeatable, adds to "
                       "the config's auth section")
    add_arguments(serve)  # --tls-cert, --tls-key
    serve.add_argument("--check", action="store_true", help="validate the config, build nothing, exit")
    add_external_signaling_arguments(serve)
    add_ice_arguments(serve)
    add_signal_parser(commands, _origin)
    return parser


_origin = from_parser(parse_origin)


def _robot_api_key(value: str) -> ApiKey:
    """``ID:SECRET`` (or ``ID:SECRET@*``): the same syntax as ``peerbot signal``, but a robot's own
    keys reach only the robot, so naming hosts would promise a limit that means nothing here."""
    key = ApiKey.parse(value)
    if key.named_hosts is not None:
        raise ValueError(
            f"API key {key.id!r}: a robot's own keys reach only this robot, so '@HOST' scopes belong on "
            "`peerbot signal`; write ID:SECRET (a secret containing '@' is written ID:SECRET@*)")
    return key


def _bind(args: argparse.Namespace, config: RobotConfig) -> tuple[str, int]:
    host, port = DEFAULT_HOST, DEFAULT_PORT
    if config.network.bind_address:
        bind_host, _, bind_port = config.network.bind_address.rpartition(":")
        host, port = bind_host or host, int(bind_port)
    return (args.host or host), (port if args.port is None else args.port)


async def _serve(
    args: argparse.Namespace, config: RobotConfig, ice: IceSettings, external: ExternalSignaling | None
) -> None:
    resources = await build_resources(config.resources)
    api_keys = list({key.id: key for key in [*config.auth.api_keys, *args.api_key]}.values())  # the CLI wins
    auth = robot_authenticator(api_keys) if api_keys else None
    robot = Robot(
        resources, allowed_origins=args.allow_origin, auth=auth, ice=ice, external_signaling=external,
        ssl_context=args.tls,
    )
    host, port = _bind(args, config)
    if args.unix and args.port is None and args.host is None:
        await robot.serve(unix=args.unix, port=None)
    else:
        await robot.serve(host, port, unix=args.unix)


def run_loop(main_coro: Coroutine[Any, Any, None], loop: str) -> None:
    """Run on uvloop when asked or (``auto``) installed: it shortens every call's path through the
    event loop, the WebRTC data path most (performance.md §2, §5)."""
    if loop != "asyncio":
        try:
            import uvloop
        except ImportError:
            if loop == "uvloop":
                raise
        else:
            logger.info("event loop: uvloop %s", importlib.metadata.version("uvloop"))
            uvloop.run(main_coro)
            return
    asyncio.run(main_coro)


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * (args.verbose + 1)
    logging.basicConfig(level=max(level, logging.DEBUG), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.command == "signal":
        return signal_main(parser, args)
    ice = ice_settings(parser, args)
    try:
        for name in args.module:
            importlib.import_module(name)
        config = load_config(args.config) if args.config else builtin_config()
        external = external_signaling(args, config)
        args.tls = context_from_args(args)
        if args.check:
            print(f"config ok: {len(config.components)} components, {len(config.services)} services")
            return 0
        run_loop(_serve(args, config, ice, external), args.loop)
    except ConfigError as exc:
        print(f"peerbot: {exc.message}", file=sys.stderr)
        return 2
    except ValidationError as exc:
        print(f"peerbot: invalid robot config: {exc.message}", file=sys.stderr)
        return 2
    except TLSSetupError as exc:
        print(f"peerbot: TLS: {exc}", file=sys.stderr)
        return 2
    except ImportError as exc:
        print(f"peerbot: cannot import module: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"peerbot: cannot serve: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
