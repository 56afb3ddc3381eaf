"""The server's TLS context for the one port (``--tls-cert`` / ``--tls-key``).

The context carries the ALPN list that makes the one port route TLS connections: browsers get
HTTP/1.1 (aiohttp), gRPC clients get ``h2`` (grpclib); see :data:`web.const.TLS_ALPN`.
"""

from __future__ import annotations

import argparse
import ssl
from pathlib import Path

from .const import TLS_ALPN


class TLSSetupError(Exception):
    """The certificate or key cannot be used; the message names the files and the reason."""


def server_context(cert: str | Path, key: str | Path) -> ssl.SSLContext:
    """A server context for ``cert`` (PEM, the chain after the leaf) and ``key`` (PEM).

    TLS 1.2 is the floor: viam-sdk's direct dialer and rustls both require it anyway.
    """
    # load_cert_chain's FileNotFoundError does not say which of the two files is missing
    for what, path in (("certificate", cert), ("key", key)):
        if not Path(path).is_file():
            raise TLSSetupError(f"cannot read the {what} {path}: no such file")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key)
    except ssl.SSLError as exc:
        # OpenSSL's reasons are terse (PEM_lib, KEY_VALUES_MISMATCH): say which files were meant
        raise TLSSetupError(f"cannot use certificate {cert} with key {key}: {exc.reason or exc}") from None
    except OSError as exc:
        raise TLSSetupError(f"cannot read certificate {cert} or key {key}: {exc.strerror or exc}") from None
    context.set_alpn_protocols(list(TLS_ALPN))
    return context


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--tls-cert`` and ``--tls-key`` (every command that serves the one port takes them)."""
    parser.add_argument("--tls-cert", metavar="FILE", help="PEM certificate (chain): the port also serves TLS "
                        "(ALPN h2 → gRPC, http/1.1 → gRPC-web and the page); cleartext keeps working")
    parser.add_argument("--tls-key", metavar="FILE", help="PEM private key of --tls-cert")


def context_from_args(args: argparse.Namespace) -> ssl.SSLContext | None:
    """The context :func:`add_arguments` asked for, or None without ``--tls-cert``."""
    if args.tls_cert is None and args.tls_key is None:
        return None
    if args.tls_cert is None or args.tls_key is None:
        raise TLSSetupError("--tls-cert and --tls-key go together")
    return server_context(args.tls_cert, args.tls_key)
