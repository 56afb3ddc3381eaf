"""``peerbot serve`` flags for answering through a remote rendezvous (external signaling).

``--signaling-address HOST:PORT`` and ``--fqdn NAME`` (repeatable) override the config's
``cloud.signaling_address`` and ``cloud.fqdn``/``cloud.local_fqdn`` (Viam's names). The robot keeps
its own port and internal signaling; the rendezvous is one more way in. ``--robot-secret SECRET``
(config ``cloud.secret``, Viam's name) is what it authenticates with there when the rendezvous
requires auth.

The connection is TLS, verified with the system trust store, unless told otherwise:
``--signaling-ca FILE`` trusts only that CA (a private rendezvous, e.g. ``peerbot signal
--tls-cert``); ``--signaling-insecure`` (config ``cloud.signaling_insecure``, Viam's name and
meaning) connects in cleartext. Nothing falls back to cleartext by itself, loopback included.
"""

from __future__ import annotations

import argparse

from signaling.const import MAX_HOSTS_IN_METADATA
from signaling.external import ExternalSignaling, split_host_port

from .argtypes import from_parser
from .config import ConfigError, RobotConfig


def add_external_signaling_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("external signaling (a remote rendezvous, e.g. `peerbot signal`)")
    group.add_argument("--signaling-address", metavar="HOST:PORT", type=from_parser(_address),
                       help="also answer calls through the signaling server there (default: cloud.signaling_address)")
    group.add_argument("--fqdn", action="append", default=[], metavar="NAME",
                       help="host name to answer for at the signaling server; repeatable "
                       "(default: cloud.fqdn and cloud.local_fqdn)")
    group.add_argument("--robot-secret", metavar="SECRET",
                       help="authenticate with the signaling server with this robot secret "
                       "(its `peerbot signal --robot-secret NAME=SECRET`; default: cloud.secret)")
    group.add_argument("--signaling-ca", metavar="FILE",
                       help="trust only this CA (PEM) for the signaling server's TLS certificate "
                       "(default: the system trust store)")
    group.add_argument("--signaling-insecure", action="store_true", default=None,
                       help="connect to the signaling server in cleartext (h2c) instead of TLS; the robot "
                       "secret then crosses the network readable (default: cloud.signaling_insecure, else TLS)")


def _address(value: str) -> str:
    split_host_port(value)  # ValueError with the reason
    return value


def external_signaling(args: argparse.Namespace, config: RobotConfig) -> ExternalSignaling | None:
    """What the flags and config ask for, or ``None``; :class:`ConfigError` if it is incomplete."""
    address = args.signaling_address or config.cloud.signaling_address
    hosts = list(args.fqdn) or [h for h in (config.cloud.fqdn, config.cloud.local_fqdn) if h]
    secret = args.robot_secret or config.cloud.secret
    insecure = bool(args.signaling_insecure) or config.cloud.signaling_insecure
    if address is None:
        for flag, given in (("--fqdn", args.fqdn), ("--robot-secret", args.robot_secret),
                            ("--signaling-ca", args.signaling_ca), ("--signaling-insecure", args.signaling_insecure)):
            if given:
                raise ConfigError([f"{flag} needs --signaling-address (or cloud.signaling_address)"])
        return None
    if not hosts:
        raise ConfigError([f"external signaling at {address} needs a host name: --fqdn NAME or cloud.fqdn"])
    if len(hosts) > MAX_HOSTS_IN_METADATA or not all(hosts):
        raise ConfigError([f"--fqdn: 1 to {MAX_HOSTS_IN_METADATA} non-empty host names"])
    if insecure and args.signaling_ca:
        raise ConfigError(["--signaling-ca means TLS: it cannot go with --signaling-insecure "
                           "(or cloud.signaling_insecure)"])
    try:
        return ExternalSignaling(address, tuple(dict.fromkeys(hosts)), secret=secret, insecure=insecure,
                                 ca_file=args.signaling_ca)
    except ValueError as exc:
        raise ConfigError([f"--signaling-ca: {exc}"]) from None
