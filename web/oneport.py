"""One TCP port for native gRPC (h2c), gRPC-web, the page and ``/stats`` (design.md "One port").

Each accepted connection starts with a :class:`_Sniffer` protocol that looks at the first bytes:

* the HTTP/2 prior-knowledge preface → a grpclib HTTP/2 server protocol (Rust, Python, Go clients);
* a TLS handshake record → a short plaintext refusal, then close (the Rust dialer tries TLS first
  and falls back to h2c; viam-sdk's direct dialer needs OpenSSL's ``WRONG_VERSION_NUMBER``);
* anything else → aiohttp's HTTP/1.1 protocol (gRPC-web from browsers, the page, ``/stats``).

With an ``ssl_context`` the port terminates TLS as well and still serves cleartext. The listener
then accepts connections itself and peeks (``MSG_PEEK``, nothing consumed) at the first byte: a
TLS handshake record gets ``loop.connect_accepted_socket(..., ssl=context)`` (asyncio's or uvloop's
TLS, handshake bounded by ``tls_handshake_timeout``), anything else the cleartext sniffer above.
Over TLS the negotiated ALPN protocol decides (``h2`` → grpclib, ``http/1.1`` → aiohttp) once the
first decrypted bytes arrive (within ``first_bytes_timeout``, as on cleartext); without ALPN those
bytes are sniffed as on cleartext.

The chosen protocol gets ``connection_made`` with the real transport and the bytes read so far;
the sniffer stays in between as a thin relay so the listener knows every live connection and can
close them all. A connection must show its protocol within ``first_bytes_timeout`` (partial
reads are collected until then), so idle and slowloris sockets never reach either server.
"""

from __future__ import annotations

import asyncio
import enum
import errno
import logging
import socket
import ssl
from typing import cast

from aiohttp import web

from peer.grpcserver import GrpclibConnections

from .const import (
    ACCEPT_RETRY_S,
    ALPN_H2,
    ALPN_HTTP1,
    CLOSE_GRACE_S,
    FIRST_BYTES_TIMEOUT_S,
    H2_PREFACE,
    HTTP_KEEPALIVE_TIMEOUT_S,
    LISTEN_BACKLOG,
    TLS_HANDSHAKE_RECORD,
    TLS_HANDSHAKE_TIMEOUT_S,
    TLS_LINGER_S,
    TLS_MAX_RECORD,
    TLS_REFUSAL,
    TLS_SHUTDOWN_TIMEOUT_S,
)
from .grpcweb import Servable

logger = logging.getLogger(__name__)


class Kind(enum.Enum):
    """What a connection turned out to speak (H2 and HTTP also over TLS)."""

    SNIFFING = "sniffing"
    H2 = "h2c"
    HTTP = "http/1.1"
    TLS = "tls"


class OnePortListener:
    """Serves ``grpc`` (native gRPC over h2c) and ``app`` (aiohttp, HTTP/1.1) on one TCP port.

    ``await start(host, port)``; ``await close()`` stops accepting, cancels the running calls of
    both sides, closes every connection and waits (at most ``close_grace`` seconds, then aborts).
    The aiohttp side runs with ``handler_cancellation=True``: a client that disconnects cancels its
    request (gRPC-web relies on it). With ``ssl_context`` (see :func:`web.tls.server_context`) TLS
    clients are served on the same port; connections still peeking or in their TLS handshake
    count as :attr:`Kind.SNIFFING`.
    """

    def __init__(
        self,
        grpc: Servable,
        app: web.Application,
        *,
        first_bytes_timeout: float = FIRST_BYTES_TIMEOUT_S,
        close_grace: float = CLOSE_GRACE_S,
        tls_linger: float = TLS_LINGER_S,
        ssl_context: ssl.SSLContext | None = None,
        tls_handshake_timeout: float = TLS_HANDSHAKE_TIMEOUT_S,
    ) -> None:
        self._grpc = grpc
        self._app = app
        self.first_bytes_timeout = first_bytes_timeout
        self.close_grace = close_grace
        self.tls_linger = tls_linger
        self.ssl_context = ssl_context
        self.tls_handshake_timeout = tls_handshake_timeout
        # with TLS: our own listening sockets, their accept loops, connections not yet handed over
        self._sockets: list[socket.socket] = []
        self._accepting: list[asyncio.Task[None]] = []
        self._pending: set[asyncio.Task[None]] = set()
        self._h2: GrpclibConnections | None = None
        self._runner: web.AppRunner | None = None
        self._http: web.Server | None = None
        self._server: asyncio.Server | None = None
        self._connections: set[_Sniffer] = set()
        self._all_closed = asyncio.Event()
        self._all_closed.set()
        self._closed = False

    # -- lifecycle -------------------------------------------------------------------------------
    async def start(self, host: str | None, port: int) -> None:
        if self._server is not None or self._closed:
            raise RuntimeError("the listener was already started")
        # built when serving starts: grpclib copies the mapping, so services added to the handler
        # table before start are served
        self._h2 = GrpclibConnections(self._grpc)
        self._runner = web.AppRunner(
            self._app, handle_signals=False, handler_cancellation=True,
            keepalive_timeout=HTTP_KEEPALIVE_TIMEOUT_S, shutdown_timeout=self.close_grace,
        )
        await self._runner.setup()
        self._http = self._runner.server  # aiohttp's protocol factory (web_server.Server)
        loop = asyncio.get_running_loop()
        try:
            if self.ssl_context is None:
                self._server = await loop.create_server(lambda: _Sniffer(self), host, port)
            else:
                self._sockets = await _listening_sockets(host, port)
                self._accepting = [asyncio.create_task(self._accept(sock)) for sock in self._sockets]
        except BaseException:
            await self._runner.cleanup()
            self._runner = None
            raise
        for address in self.addresses:
            logger.info("serving gRPC on %s", address)  # tests and scripts parse this line: keep its shape
            logger.info("%s also serves gRPC-web, /stats and the page (HTTP/1.1)", address)
            if self.ssl_context is not None:
                logger.info("%s serves TLS (ALPN h2 → gRPC, http/1.1 → the rest) beside cleartext", address)

    @property
    def addresses(self) -> list[str]:
        """Where the listener accepts, as ``host:port``."""
        if self._server is not None:
            names = [sock.getsockname() for sock in self._server.sockets]
        else:
            names = [sock.getsockname() for sock in self._sockets if sock.fileno() != -1]
        return [f"{name[0]}:{name[1]}" for name in names]

    @property
    def port(self) -> int | None:
        addresses = self.addresses
        return int(addresses[0].rsplit(":", 1)[1]) if addresses else None

    @property
    def connections(self) -> dict[Kind, int]:
        """Live connections by protocol (for tests and diagnostics)."""
        counts = dict.fromkeys(Kind, 0)
        for conn in self._connections:
            counts[conn.kind] += 1
        counts[Kind.SNIFFING] += len(self._pending)
        return counts

    @property
    def secure_connections(self) -> int:
        """Live connections past their TLS handshake (for tests and diagnostics)."""
        return sum(conn.secure for conn in self._connections)

    async def close(self) -> None:
        """Stop accepting, cancel running calls, close every connection; bounded. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._server is not None:
            self._server.close()
        await self._stop_accepting()
        if self._h2 is not None:
            self._h2.close()
        for conn in list(self._connections):
            conn.close()  # aiohttp cancels the request of a lost connection (handler_cancellation)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.close_grace
        if self._runner is not None:
            await self._runner.cleanup()  # app shutdown/cleanup hooks; its own wait is bounded too
        if self._h2 is not None:
            try:
                await asyncio.wait_for(self._h2.wait_closed(), max(0.0, deadline - loop.time()))
            except TimeoutError:
                logger.warning("gRPC calls still unwinding %g s after they were cancelled", self.close_grace)
        try:
            await asyncio.wait_for(self._all_closed.wait(), max(0.0, deadline - loop.time()))
        except TimeoutError:
            if self._connections:  # the last one may have gone just as the grace ran out
                logger.warning("%d connections still open after %g s; aborting them", len(self._connections),
                               self.close_grace)
            for conn in list(self._connections):
                conn.abort()
        if self._server is not None:
            await self._server.wait_closed()
        logger.debug("one-port listener closed")

    async def __aenter__(self) -> OnePortListener:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- accepting ourselves (TLS beside cleartext) -----------------------------------------------
    async def _accept(self, listening: socket.socket) -> None:
        """Accept until cancelled; each connection is routed by its own task."""
        loop = asyncio.get_running_loop()
        while True:
            try:
                conn, _ = await loop.sock_accept(listening)
            except OSError as exc:
                if exc.errno in (errno.ECONNABORTED, errno.EPROTO, errno.EPERM):
                    # the client gave up before we accepted, or a firewall refused it: next one
                    logger.debug("accept on %s failed: %s", listening.getsockname(), exc)
                else:  # out of descriptors or memory, or worse: say so, and do not spin
                    logger.warning("cannot accept on %s: %s; retrying in %g s", listening.getsockname(), exc,
                                   ACCEPT_RETRY_S)
                    await asyncio.sleep(ACCEPT_RETRY_S)
                continue
            conn.setblocking(False)
            task = asyncio.create_task(self._route(conn))
            self._pending.add(task)
            self._all_closed.clear()
            task.add_done_callback(self._route_done)

    def _route_done(self, task: asyncio.Task[None]) -> None:
        self._pending.discard(task)
        if not self._connections and not self._pending:
            self._all_closed.set()

    async def _route(self, conn: socket.socket) -> None:
        """Peek at the first byte, then hand the socket to asyncio: with TLS or in cleartext."""
        loop = asyncio.get_running_loop()
        try:
            peer = conn.getpeername()
        except OSError:
            peer = None
        try:
            first = await asyncio.wait_for(_peek(conn), self.first_bytes_timeout)
        except TimeoutError:
            logger.info("<connection %s>: no byte after %g s; closing", peer, self.first_bytes_timeout)
            conn.close()
            return
        except OSError as exc:
            logger.debug("<connection %s>: lost before its first byte: %s", peer, exc)
            conn.close()
            return
        except BaseException:
            conn.close()
            raise
        if not first:
            logger.debug("<connection %s>: closed by the client before any byte", peer)
            conn.close()
            return
        tls = first[0] == TLS_HANDSHAKE_RECORD
        try:
            if tls:
                await loop.connect_accepted_socket(
                    lambda: _Sniffer(self), conn, ssl=self.ssl_context,
                    ssl_handshake_timeout=self.tls_handshake_timeout,
                    ssl_shutdown_timeout=TLS_SHUTDOWN_TIMEOUT_S,
                )
            else:
                await loop.connect_accepted_socket(lambda: _Sniffer(self), conn)
        except (OSError, TimeoutError) as exc:  # ssl.SSLError is an OSError; so is a handshake timeout
            # peer input, not our fault: no traceback, and not above debug (a scanner would flood the log)
            logger.debug("<connection %s>: %s: %s", peer, "TLS handshake failed" if tls else "lost", exc)
            conn.close()  # asyncio closed it already, uvloop detached it: closing again is a no-op
        except BaseException:
            conn.close()
            raise

    async def _stop_accepting(self) -> None:
        for task in self._accepting:
            task.cancel()
        for task in list(self._pending):
            task.cancel()
        waits = [*self._accepting, *self._pending]
        if waits:
            await asyncio.wait(waits, timeout=self.close_grace)
        for sock in self._sockets:
            sock.close()

    # -- for the sniffers --------------------------------------------------------------------------
    def _track(self, conn: _Sniffer) -> None:
        self._connections.add(conn)
        self._all_closed.clear()

    def _forget(self, conn: _Sniffer) -> None:
        self._connections.discard(conn)
        if not self._connections and not self._pending:
            self._all_closed.set()

    def _protocol_for(self, kind: Kind) -> asyncio.Protocol:
        if kind is Kind.H2:
            assert self._h2 is not None
            return self._h2.protocol()
        assert self._http is not None
        return self._http()


class _Sniffer(asyncio.Protocol):
    """One connection: collects the first bytes, then relays to the protocol they call for."""

    def __init__(self, listener: OnePortListener) -> None:
        self._listener = listener
        self._transport: asyncio.Transport | None = None
        self._inner: asyncio.Protocol | None = None
        self._buffer = bytearray()
        self._timer: asyncio.TimerHandle | None = None
        self.secure = False
        self._alpn: str | None = None  # what TLS negotiated, when secure
        self.kind = Kind.SNIFFING

    def __repr__(self) -> str:
        peer = self._transport.get_extra_info("peername") if self._transport is not None else None
        if self.secure:
            return f"<connection {peer} {'h2' if self.kind is Kind.H2 else self.kind.value} over TLS>"
        return f"<connection {peer} {self.kind.value}>"

    # -- asyncio.Protocol ---------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # a stream transport (asyncio's, or uvloop's, which does not subclass asyncio.Transport)
        self._transport = cast(asyncio.Transport, transport)
        self._listener._track(self)
        tls: ssl.SSLObject | None = transport.get_extra_info("ssl_object")
        if tls is not None:
            self.secure = True
            self._alpn = tls.selected_alpn_protocol()
        # over TLS too, the first (decrypted) bytes are awaited before handing over: neither aiohttp
        # nor grpclib bounds a connection that never sends its first request
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(self._listener.first_bytes_timeout, self._on_first_bytes_timeout)

    def data_received(self, data: bytes) -> None:
        if self._inner is not None:
            self._inner.data_received(data)
        elif self.kind is Kind.SNIFFING:
            self._buffer += data
            self._sniff()
        # Kind.TLS: whatever else the TLS client sends is dropped while we wait for it to hang up

    def eof_received(self) -> bool | None:
        if self._inner is not None:
            return self._inner.eof_received()
        if self.kind is Kind.SNIFFING:
            logger.debug("%r: closed by the client before choosing a protocol (%d bytes)", self, len(self._buffer))
        return False  # the transport closes itself

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timer()
        self._buffer.clear()
        self._listener._forget(self)
        if self._inner is not None:
            self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        if self._inner is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._inner is not None:
            self._inner.resume_writing()

    # -- for the listener -----------------------------------------------------------------------------
    def close(self) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.close()

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()

    # -- deciding ------------------------------------------------------------------------------------
    def _sniff(self) -> None:
        if self._alpn == ALPN_H2:  # grpclib checks the preface itself
            self._hand_off(Kind.H2)
            return
        if self._alpn == ALPN_HTTP1:
            self._hand_off(Kind.HTTP)
            return
        # cleartext, or TLS without ALPN: HTTP/1.1, or an h2 client with prior knowledge
        buf = self._buffer
        if buf[0] == TLS_HANDSHAKE_RECORD and not self.secure:
            if len(buf) >= 2 and buf[1] != 0x03:
                self._hand_off(Kind.HTTP)  # not TLS after all: aiohttp answers 400
            elif len(buf) >= 5:
                record = int.from_bytes(buf[3:5], "big")
                # wait for the whole ClientHello record: closing with unread input would send a RST
                if record > TLS_MAX_RECORD or len(buf) >= 5 + record:
                    self._refuse_tls()
            return
        size = min(len(buf), len(H2_PREFACE))
        if buf[:size] != H2_PREFACE[:size]:
            self._hand_off(Kind.HTTP)
        elif size == len(H2_PREFACE):
            self._hand_off(Kind.H2)
        # else: a partial preface, wait for more

    def _hand_off(self, kind: Kind) -> None:
        self._cancel_timer()
        transport = self._transport
        assert transport is not None
        self.kind = kind
        data = bytes(self._buffer)
        self._buffer.clear()
        try:
            inner = self._listener._protocol_for(kind)
        except Exception:
            logger.exception("%r: could not create the %s protocol", self, kind.value)
            transport.abort()
            return
        self._inner = inner
        logger.debug("%r: handed over", self)
        inner.connection_made(transport)
        if not transport.is_closing():
            inner.data_received(data)

    def _refuse_tls(self) -> None:
        self._cancel_timer()
        self.kind = Kind.TLS
        self._buffer.clear()
        transport = self._transport
        assert transport is not None
        logger.debug("%r: TLS ClientHello on the cleartext port: refused (TLS is not set up)", self)
        transport.write(TLS_REFUSAL)
        if transport.can_write_eof():
            transport.write_eof()  # the client reads the refusal, fails its handshake and hangs up
            self._timer = asyncio.get_running_loop().call_later(self._listener.tls_linger, transport.close)
        else:
            transport.close()

    def _on_first_bytes_timeout(self) -> None:
        self._timer = None
        logger.info("%r: no protocol after %g s (%d bytes); closing", self, self._listener.first_bytes_timeout,
                    len(self._buffer))
        if self._transport is not None:
            self._transport.close()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


async def _listening_sockets(host: str | None, port: int) -> list[socket.socket]:
    """Bound, listening, non-blocking sockets for ``host:port``, one per address it resolves to
    (as ``loop.create_server`` makes them); with port 0 every address gets the first one's port."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in dict.fromkeys(infos):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            if port == 0 and len(sockets) > 1:
                address = (address[0], sockets[0].getsockname()[1], *address[2:])
            sock.bind(address)
            sock.listen(LISTEN_BACKLOG)
            sock.setblocking(False)
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets


async def _peek(conn: socket.socket) -> bytes:
    """The first byte the client sent, left unread in the socket (b"" when it closed first)."""
    loop = asyncio.get_running_loop()
    found: asyncio.Future[bytes] = loop.create_future()

    def readable() -> None:
        if found.done():
            return
        try:
            data = conn.recv(1, socket.MSG_PEEK)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            found.set_exception(exc)
        else:
            found.set_result(data)

    fd = conn.fileno()
    loop.add_reader(fd, readable)
    try:
        return await found
    finally:
        loop.remove_reader(fd)
