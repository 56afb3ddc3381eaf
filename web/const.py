"""Numbers and names of the web layer (one port, gRPC-web, CORS), each named once.

Wire facts say where they come from (wire-protocol.md §11, §12.1; real-clients.md §4); limits that
are only our hardening say so.
"""

from __future__ import annotations

from typing import Final

# --- the one port ------------------------------------------------------------------------------

#: HTTP/2 client connection preface (RFC 9113 §3.4): a connection that starts with it speaks
#: gRPC over h2c prior knowledge (Rust, Python, Go clients).
H2_PREFACE: Final = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#: First byte of a TLS handshake record (a ClientHello on our cleartext port).
TLS_HANDSHAKE_RECORD: Final = 0x16
#: Largest TLS record body (2**14, plus the 2048 bytes of expansion TLS 1.2 allows); a ClientHello
#: that claims more is not waited for.
TLS_MAX_RECORD: Final = (1 << 14) + 2048
#: Ours: how long a new connection may take to send enough bytes to tell its protocol apart.
#: Bounds half-open and slowloris connections before any server code sees them.
FIRST_BYTES_TIMEOUT_S: Final = 10.0
#: Ours: after answering a TLS ClientHello, how long the half-closed connection waits for the
#: client to hang up before it is closed anyway (closing with unread input would send a RST).
TLS_LINGER_S: Final = 2.0
#: What a TLS client on the cleartext port reads. Any non-TLS bytes make OpenSSL fail with
#: ``WRONG_VERSION_NUMBER``, the only reason viam-sdk's direct dialer accepts for an insecure
#: downgrade (a silent close gives ``UNEXPECTED_EOF`` and the dial fails); rustls fails as well
#: and the Rust dialer retries with h2c. A plain HTTP answer also tells a human what went wrong.
_TLS_REFUSAL_BODY: Final = b"this port speaks cleartext HTTP/1.1 and h2c; TLS is not set up\n"
TLS_REFUSAL: Final = (
    b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nConnection: close\r\n"
    + b"Content-Length: %d\r\n\r\n" % len(_TLS_REFUSAL_BODY)
    + _TLS_REFUSAL_BODY
)
#: ALPN protocols offered when the port terminates TLS, in the server's order of preference.
#: Python's ssl server picks the first of these the client also offers (OpenSSL's
#: ``SSL_select_next_proto`` honours the server's order): browsers offer both and get HTTP/1.1, so
#: gRPC-web, the page and ``/stats`` reach aiohttp; gRPC clients (grpclib, tonic, grpc-go) offer
#: only ``h2`` and reach grpclib (wire-protocol.md §12.1).
ALPN_HTTP1: Final = "http/1.1"
ALPN_H2: Final = "h2"
TLS_ALPN: Final = (ALPN_HTTP1, ALPN_H2)
#: Ours: how long a TLS client may take to finish its handshake once its first byte arrived.
#: Bounds clients that send half a ClientHello (or stall mid-handshake) before any server code
#: sees the connection.
TLS_HANDSHAKE_TIMEOUT_S: Final = 10.0
#: Ours: how long closing a TLS connection waits for the client's close_notify before aborting.
#: Shorter than CLOSE_GRACE_S, so a client that never answers does not hold up closing the port.
TLS_SHUTDOWN_TIMEOUT_S: Final = 2.0
#: Ours: connections the TLS-capable listener asks the kernel to queue before accepting.
LISTEN_BACKLOG: Final = 100
#: Ours: the pause after ``accept`` fails for a reason other than a client giving up (EMFILE,
#: ENFILE, ENOBUFS, ...), so the accept loop does not spin while the process is out of them.
ACCEPT_RETRY_S: Final = 0.1
#: Ours: how long closing the listener lets cancelled calls unwind and connections drain.
CLOSE_GRACE_S: Final = 5.0
#: Ours: an idle HTTP/1.1 keep-alive connection is closed after this (aiohttp's default is an hour).
HTTP_KEEPALIVE_TIMEOUT_S: Final = 75.0

# --- gRPC-web ----------------------------------------------------------------------------------

#: Request content types served as binary gRPC-web (connect-web sends the ``+proto`` one).
GRPC_WEB_CONTENT_TYPES: Final = frozenset({"application/grpc-web", "application/grpc-web+proto"})
#: Response content type when the request named none we know (it always did, once past the check).
GRPC_WEB_CONTENT_TYPE: Final = "application/grpc-web+proto"
#: gRPC length-prefixed message: 1 flag byte and a 4-byte big-endian length.
FRAME_HEADER_SIZE: Final = 5
#: Frame flags: bit 0 = compressed message, bit 7 = trailers (gRPC-web only).
FLAG_COMPRESSED: Final = 0x01
FLAG_TRAILERS: Final = 0x80
#: The largest message in either direction is the data channel's (signaling names it once). A
#: gRPC-web request body arrives whole, so it is capped at one such message and its prefix.
from signaling.const import MAX_MESSAGE_SIZE as MAX_MESSAGE_SIZE  # noqa: E402

# --- CORS --------------------------------------------------------------------------------------

#: Response headers a cross-origin gRPC-web client must be able to read (a trailers-only error
#: puts the status in headers; connect-web cannot see it unless exposed).
EXPOSED_HEADERS: Final = ("grpc-status", "grpc-message", "grpc-status-details-bin")
#: Methods a preflight may ask for.
CORS_METHODS: Final = "GET, POST, OPTIONS"
#: goutils (improbable grpcweb) caches preflights for 10 minutes.
CORS_MAX_AGE_S: Final = 600
