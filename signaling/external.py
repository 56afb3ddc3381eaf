"""External signaling: the robot answers through a remote rendezvous (``peerbot signal``), over gRPC.

What viam-server does with ``cloud.signaling_address``: its answerer dials the signaling server,
registers under the robot's host names (``cloud.fqdn``, ``cloud.local_fqdn``) and keeps Answer
streams open there, so a client anywhere reaches the robot by name through that meeting point.
The robot never fails because of it: a rendezvous that is down, restarts or goes silent only
makes the answerer reconnect, with a wait that doubles up to ``max_reconnect_wait``.

With a robot secret the answerer authenticates as ``robot-secret`` (entity = its first host name)
before opening Answer streams (:class:`~signaling.auth.RobotCredentials`: renewed before expiry,
and fetched again whenever the server refuses a stream, e.g. after a restart with a new key). A
wrong secret only costs retries with the same backoff, and WARNING lines.

The connection is cleartext HTTP/2 (h2c) for now: peerbot's one port has no TLS yet.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from grpclib.client import Channel

from .answerer import Answerer, OfferHandler
from .auth import RobotCredentials
from .const import MAX_HOSTS_IN_METADATA

logger = logging.getLogger(__name__)

#: Answer-stream reconnect waits against a remote rendezvous: 1 s (goutils), doubling to 8 s.
EXTERNAL_RECONNECT_WAIT = 1.0
EXTERNAL_MAX_RECONNECT_WAIT = 8.0


def split_host_port(address: str) -> tuple[str, int]:
    """``host:port`` (or ``[v6]:port``) into its parts; ``ValueError`` naming the problem."""
    host, sep, port = address.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or not port.isdigit() or not 0 < int(port) <= 0xFFFF:
        raise ValueError(f"expected HOST:PORT, got {address!r}")
    return host, int(port)


@dataclass(frozen=True, slots=True)
class ExternalSignaling:
    """Where to answer (``HOST:PORT`` of the rendezvous), under which host names (1 to 5), and the
    robot secret to authenticate with there (``None``: the rendezvous has no auth)."""

    address: str
    hosts: tuple[str, ...]
    secret: str | None = field(default=None, repr=False)
    #: extra :class:`~signaling.answerer.Answerer` keyword arguments (tests shorten the waits).
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        split_host_port(self.address)
        if not 1 <= len(self.hosts) <= MAX_HOSTS_IN_METADATA or not all(self.hosts):
            raise ValueError(f"external signaling needs 1 to {MAX_HOSTS_IN_METADATA} non-empty host names")
        if self.secret == "":
            raise ValueError("the robot secret may not be empty")


@asynccontextmanager
async def external_answerer(
    address: str,
    hosts: Sequence[str],
    handle_offer: OfferHandler,
    *,
    secret: str | None = None,
    **options: Any,
) -> AsyncIterator[Answerer]:
    """Answer calls for ``hosts`` at the signaling server on ``address`` until the block exits.

    ``secret``: authenticate with this robot secret (as ``hosts[0]``). ``options`` are
    :class:`~signaling.answerer.Answerer` keyword arguments (external defaults for the reconnect
    waits). Entering never waits for the server: the answerer connects in the background.
    """
    host, port = split_host_port(address)
    options.setdefault("reconnect_wait", EXTERNAL_RECONNECT_WAIT)
    options.setdefault("max_reconnect_wait", EXTERNAL_MAX_RECONNECT_WAIT)
    channel = Channel(host, port)
    if secret is not None:
        options["metadata"] = RobotCredentials(channel, hosts[0], secret)
    logger.info("answering calls for %s through the signaling server at %s%s", ", ".join(hosts), address,
                " (robot secret)" if secret is not None else "")
    try:
        async with Answerer(channel, hosts, handle_offer, **options) as answerer:
            yield answerer
    finally:
        channel.close()
