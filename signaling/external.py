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

The connection is TLS unless asked otherwise, because the robot secret and every token cross it:
the server certificate is verified against the system trust store (or only the CA file given, for
a private rendezvous), for the host named in the address, with ALPN ``h2``; there is never a
fallback to cleartext. ``insecure`` (Viam's ``cloud.signaling_insecure``: "dial the signaling
server without TLS") means cleartext HTTP/2 (h2c), and is the only way to get it. A TLS failure
(untrusted certificate, wrong name, a server that does not speak TLS) is logged once per failure
streak with the reason and retried with the usual backoff: a rendezvous that is fixed later (or
whose certificate is renewed) is picked up without restarting the robot.
"""

from __future__ import annotations

import ipaddress
import logging
import ssl
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
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


def is_loopback(host: str) -> bool:
    """``localhost`` or a loopback IP literal: traffic that never leaves this machine. Names are
    not resolved (a name that happens to resolve to 127.0.0.1 today is still a network name)."""
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def secret_in_clear(host: str, secret: str | None, context: ssl.SSLContext | None) -> bool:
    """Whether a robot secret would cross the network readable: cleartext to a non-loopback host.
    Only ever true with insecure signaling, which must be asked for; the answerer then warns."""
    return context is None and secret is not None and not is_loopback(host)


def signaling_client_context(ca_file: str | Path | None = None) -> ssl.SSLContext:
    """The TLS client context for a signaling server: certificate and host name verified, TLS 1.2
    or later, ALPN ``h2`` (the one port routes ``h2`` to gRPC).

    Without ``ca_file`` the system trust store (OpenSSL's default paths, so ``SSL_CERT_FILE`` and
    ``SSL_CERT_DIR`` apply, as for viam-sdk); with it, only that CA (a private rendezvous).
    ``ValueError`` names the file and OpenSSL's reason when it cannot be used.
    """
    if ca_file is not None and not Path(ca_file).is_file():
        raise ValueError(f"cannot read the signaling CA file {ca_file}: no such file")
    try:
        context = ssl.create_default_context(cafile=None if ca_file is None else str(ca_file))
    except ssl.SSLError as exc:
        raise ValueError(f"cannot use the signaling CA file {ca_file}: {exc.reason or exc}") from None
    except OSError as exc:
        raise ValueError(f"cannot read the signaling CA file {ca_file}: {exc.strerror or exc}") from None
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["h2"])
    return context


#: OpenSSL's X509_V_ERR_HOSTNAME_MISMATCH and X509_V_ERR_IP_ADDRESS_MISMATCH: a trusted certificate
#: that names some other host.
_NAME_MISMATCH = (62, 64)


def describe_tls_failure(address: str, exc: BaseException) -> str | None:
    """What a TLS failure towards the signaling server means, in words a robot owner can act on
    (``None``: not a TLS failure)."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        reason = exc.verify_message or exc.reason
        if exc.verify_code in _NAME_MISMATCH:
            hint = "give --signaling-address a name the certificate was issued for"
        else:
            hint = "--signaling-ca FILE trusts a private CA"
        return f"the signaling server at {address} presented a certificate this robot does not trust ({reason}); {hint}"
    if isinstance(exc, ssl.SSLError):
        reason = exc.reason or str(exc)
        if reason in ("WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG", "HTTP_REQUEST"):
            return (f"the signaling server at {address} does not speak TLS ({reason}); a cleartext "
                    "rendezvous needs --signaling-insecure (the robot never falls back to cleartext on its own)")
        return f"TLS with the signaling server at {address} failed: {reason}"
    return None


@dataclass(frozen=True, slots=True)
class ExternalSignaling:
    """Where to answer (``HOST:PORT`` of the rendezvous), under which host names (1 to 5), the
    robot secret to authenticate with there (``None``: the rendezvous has no auth), and how to
    secure the connection: TLS verified by the system trust store by default, only ``ca_file``'s
    CA if given, cleartext only with ``insecure`` (``cloud.signaling_insecure``).

    The TLS context is built here, so a CA file that cannot be used fails at start-up
    (``ValueError``), not in the background answerer.
    """

    address: str
    hosts: tuple[str, ...]
    secret: str | None = field(default=None, repr=False)
    #: cleartext h2c (Viam's ``cloud.signaling_insecure``); never chosen implicitly.
    insecure: bool = False
    #: trust only this CA (PEM) for the signaling server's certificate instead of the system store.
    ca_file: str | None = None
    #: extra :class:`~signaling.answerer.Answerer` keyword arguments (tests shorten the waits).
    options: Mapping[str, Any] = field(default_factory=dict)
    #: the client context (``None``: cleartext), from ``insecure`` and ``ca_file``.
    tls: ssl.SSLContext | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        split_host_port(self.address)
        if not 1 <= len(self.hosts) <= MAX_HOSTS_IN_METADATA or not all(self.hosts):
            raise ValueError(f"external signaling needs 1 to {MAX_HOSTS_IN_METADATA} non-empty host names")
        if self.secret == "":
            raise ValueError("the robot secret may not be empty")
        if self.insecure and self.ca_file is not None:
            raise ValueError("a signaling CA file means TLS; it contradicts insecure (cleartext) signaling")
        object.__setattr__(self, "tls", None if self.insecure else signaling_client_context(self.ca_file))


@asynccontextmanager
async def external_answerer(
    address: str,
    hosts: Sequence[str],
    handle_offer: OfferHandler,
    *,
    secret: str | None = None,
    tls: ssl.SSLContext | None = None,
    insecure: bool = False,
    **options: Any,
) -> AsyncIterator[Answerer]:
    """Answer calls for ``hosts`` at the signaling server on ``address`` until the block exits.

    ``secret``: authenticate with this robot secret (as ``hosts[0]``). ``tls``: the client context
    (default: :func:`signaling_client_context`, the system trust store); ``insecure=True`` instead
    connects in cleartext, the one way to get cleartext. ``options`` are
    :class:`~signaling.answerer.Answerer` keyword arguments (external defaults for the reconnect
    waits). Entering never waits for the server: the answerer connects in the background.
    """
    host, port = split_host_port(address)
    if insecure and tls is not None:
        raise ValueError("insecure (cleartext) signaling takes no TLS context")
    context = None if insecure else (tls if tls is not None else signaling_client_context())
    if secret_in_clear(host, secret, context):
        # explicitly asked for (cloud.signaling_insecure, as Viam allows), but worth saying loudly
        logger.warning("the robot secret goes to the signaling server at %s in cleartext (insecure signaling): "
                       "anyone on the path can read it and answer as this robot", address)
    options.setdefault("reconnect_wait", EXTERNAL_RECONNECT_WAIT)
    options.setdefault("max_reconnect_wait", EXTERNAL_MAX_RECONNECT_WAIT)
    options.setdefault("describe_failure", lambda exc: describe_tls_failure(address, exc))
    # asyncio sends the address's host as the TLS server name (SNI) and verifies the certificate for it
    channel = Channel(host, port, ssl=context)
    if secret is not None:
        options["metadata"] = RobotCredentials(channel, hosts[0], secret)
    logger.info("answering calls for %s through the signaling server at %s (%s%s)", ", ".join(hosts), address,
                "cleartext" if context is None else "TLS", ", robot secret" if secret is not None else "")
    try:
        async with Answerer(channel, hosts, handle_offer, **options) as answerer:
            yield answerer
    finally:
        channel.close()
