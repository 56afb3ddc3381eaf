"""ICE server flags, shared by ``peerbot serve`` and ``peerbot signal``.

``--stun URL`` and ``--turn URL`` are repeatable. TURN servers authenticate one of two ways:

* static credentials, ``--turn-user NAME --turn-password PASS`` (coturn ``lt-cred-mech``);
* TURN REST credentials, ``--turn-secret-file FILE`` (coturn ``use-auth-secret`` with the same
  ``static-auth-secret``): a fresh ``<expiry>:<user>`` username and HMAC credential per request,
  valid ``--turn-ttl`` seconds (≤ 300). ``--turn-user`` then names the ``<user>`` part.

The secret is read from a file so it never shows in ``ps``. Problems are reported like any other
bad flag (usage, exit status 2) before anything starts.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from signaling.config import IceServer
from signaling.ice import DEFAULT_REST_TTL, DEFAULT_REST_USER, MAX_REST_TTL, IceSettings, TurnRest, check_ice_url

from .argtypes import from_parser


def add_ice_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("ICE servers (NAT traversal)")
    group.add_argument("--stun", action="append", default=[], metavar="URL", type=_url("stun:"),
                       help="STUN server, e.g. stun:stun.example.org:3478; repeatable (aiortc uses the first)")
    group.add_argument("--turn", action="append", default=[], metavar="URL", type=_url("turn:", "turns:"),
                       help="TURN server, e.g. turn:turn.example.org:3478?transport=udp; repeatable "
                       "(aiortc uses the first); needs --turn-user/--turn-password or --turn-secret-file")
    group.add_argument("--turn-user", metavar="NAME",
                       help=f"static TURN username; with --turn-secret-file the user part of the REST "
                       f"username (default {DEFAULT_REST_USER})")
    group.add_argument("--turn-password", metavar="PASS", help="static TURN password")
    group.add_argument("--turn-secret-file", metavar="FILE",
                       help="file holding coturn's static-auth-secret: mint TURN REST credentials per request")
    group.add_argument("--turn-ttl", type=int, default=DEFAULT_REST_TTL, metavar="SECONDS",
                       help=f"lifetime of minted TURN credentials, 1 to {MAX_REST_TTL} (default {DEFAULT_REST_TTL})")


def _url(*schemes: str) -> Callable[[str], str]:
    def parse(value: str) -> str:
        if not value.startswith(schemes):
            raise ValueError(f"{value!r} must start with {' or '.join(schemes)}")
        return check_ice_url(value)

    return from_parser(parse)


def ice_settings(parser: argparse.ArgumentParser, args: argparse.Namespace) -> IceSettings:
    """The :class:`IceSettings` the flags describe; ``parser.error`` (exit 2) on any inconsistency."""
    static = args.turn_password is not None
    rest = args.turn_secret_file is not None
    if static and rest:
        parser.error("--turn-password and --turn-secret-file exclude each other: pick static or REST credentials")
    if args.turn and not ((static and args.turn_user) or rest):
        parser.error("--turn needs credentials: --turn-user and --turn-password, or --turn-secret-file")
    if (static or rest) and not args.turn:
        parser.error("TURN credentials were given without any --turn URL")
    if args.turn_ttl != DEFAULT_REST_TTL and not rest:
        parser.error("--turn-ttl applies only with --turn-secret-file")
    servers = [IceServer((url,)) for url in args.stun]
    try:
        if rest:
            secret = _read_secret(args.turn_secret_file)
            turn = TurnRest(tuple(args.turn), secret, args.turn_user or DEFAULT_REST_USER, args.turn_ttl)
            return IceSettings(servers, rest=turn)
        if args.turn:
            servers.append(IceServer(tuple(args.turn), args.turn_user, args.turn_password))
        return IceSettings(servers)
    except ValueError as exc:
        parser.error(str(exc))


def _read_secret(path: str) -> bytes:
    try:
        secret = Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"--turn-secret-file {path}: cannot read: {exc}") from None
    if not secret:
        raise ValueError(f"--turn-secret-file {path} is empty")
    return secret.encode("utf-8")
