"""One aiortc peer connection as both ends of a Viam connection use it.

:class:`WebRTCConnection` owns the ``RTCPeerConnection`` (max-bundle, the given ICE servers only),
the two pre-negotiated channels, the remote-candidate intake, the setup timestamps and the
teardown. Teardown is terminal, as in goutils: ``connectionState`` ``failed`` or ``closed``, or the
``data`` channel closing, closes everything, and so does :meth:`WebRTCConnection.close`, which is
idempotent, bounded, and survives an aiortc ``close()`` that raises. Subclasses put the tunnel on
top (:class:`~peer.webrtc.session.PeerSession` on the robot, the dialer's channel on the client) and
close it first through :meth:`WebRTCConnection._close_tunnel`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from aiortc import RTCDataChannel, RTCIceCandidate
from grpclib import Status

from signaling.config import IceServer
from signaling.errors import InvalidCandidateError, SignalingError
from signaling.sdp import IceCandidate

from .constants import CLOSE_TIMEOUT_S, MAX_PENDING_MDNS
from .datachannel import DataChannelAdapter
from .liveness import IceLiveness
from .negotiation import Negotiator
from .rtc import close_peer_connection, create_channels, is_mdns_candidate, new_peer_connection, parse_candidate

logger = logging.getLogger(__name__)

#: Receives every message of the ``negotiation`` channel (base64 JSON SDP for renegotiation, §8.2).
NegotiationHook = Callable[["WebRTCConnection", str | bytes], None]


@dataclass(slots=True)
class SetupTimes:
    """``loop.time()`` stamps of one connection's setup; ``None`` until the step happens.

    ``start`` is when the connection object was made; the dialer also stamps ``call_sent`` and
    ``answer``. The ``*_s`` properties are seconds from the reference the owner cares about.
    """

    start: float
    call_sent: float | None = None
    answer: float | None = None
    ice_connected: float | None = None
    connected: float | None = None
    data_open: float | None = None

    def since(self, reference: float | None, stamp: float | None) -> float | None:
        if reference is None or stamp is None:
            return None
        return stamp - reference


class ConnectionFailedError(SignalingError):
    """The peer connection failed or closed before the ``data`` channel opened."""

    def __init__(self, message: str) -> None:
        super().__init__(message, status=Status.UNAVAILABLE)


class WebRTCConnection:
    """An ``RTCPeerConnection`` with the ``data`` (id 0) and ``negotiation`` (id 1) channels.

    :param ice_servers: STUN/TURN servers; none by default (aiortc's own default is a public STUN server).
    :param tag: short id used in every log line of this connection.
    :param polite: the renegotiation role (:class:`~peer.webrtc.negotiation.Negotiator`): the
        robot is impolite, the dialer polite.
    :param liveness: probe the peer over ICE once connected and close within ~6 s of it vanishing
        (:class:`~peer.webrtc.liveness.IceLiveness`); otherwise only aioice's ~30 s consent check.
    """

    def __init__(
        self, ice_servers: Sequence[IceServer] = (), *, tag: str = "", polite: bool = False, liveness: bool = False
    ) -> None:
        loop = asyncio.get_running_loop()
        self.tag = tag
        self.times = SetupTimes(start=loop.time())
        self.pc = new_peer_connection(ice_servers, tag=tag)
        channels = create_channels(self.pc)
        self.data = DataChannelAdapter(channels.data, tag=tag)
        self.negotiation: RTCDataChannel = channels.negotiation
        #: Offers and answers on ``negotiation`` (video renegotiation), under one lock per connection.
        self.negotiator = Negotiator(self, polite=polite)
        #: Called with each ``negotiation`` message; by default the negotiator. ``None``: log and drop.
        self.on_negotiation: NegotiationHook | None = self.negotiator.handle_message
        self.close_reason: str | None = None
        self.candidates_added = 0
        self.candidates_rejected = 0
        self._open = asyncio.Event()
        self._closing = asyncio.Event()
        self._closed = asyncio.Event()
        self._close_task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        #: The fast dead-peer check, when enabled.
        self.liveness = IceLiveness(self.pc, self.close_soon, tag=tag) if liveness else None
        self.pc.on("connectionstatechange", self._connection_state_changed)
        self.pc.on("iceconnectionstatechange", self._ice_state_changed)
        channels.data.on("open", self._data_opened)
        channels.data.on("close", self._data_closed)
        channels.negotiation.on("message", self._negotiation_message)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.tag} {self.connection_state}>"

    # -- state -----------------------------------------------------------------------------------
    @property
    def connection_state(self) -> str:
        return self.pc.connectionState

    @property
    def is_open(self) -> bool:
        """The ``data`` channel opened and the connection has not been torn down."""
        return self._open.is_set() and not self.closing

    @property
    def closing(self) -> bool:
        return self._close_task is not None

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    async def wait_open(self) -> None:
        """Return once ``data`` is open; :class:`ConnectionFailedError` if the connection ends first."""
        if not self._open.is_set() and not self.closing:
            opened = asyncio.ensure_future(self._open.wait())
            ended = asyncio.ensure_future(self._closing.wait())
            try:
                await asyncio.wait({opened, ended}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                opened.cancel()
                ended.cancel()
        if self.closing or not self._open.is_set():
            raise ConnectionFailedError(
                f"the peer connection ended before the data channel opened ({self.close_reason or 'closed'})"
            )

    async def wait_closed(self) -> None:
        await self._closed.wait()

    # -- remote candidates -----------------------------------------------------------------------
    async def add_remote_candidate(self, candidate: IceCandidate) -> None:
        """Add one trickled remote candidate; end-of-candidates (``""``) is skipped on purpose.

        Never signalling end-of-candidates keeps aioice from declaring failure while a pair may
        still appear peer-reflexively. Raises :class:`~signaling.errors.InvalidCandidateError` for
        garbage. A ``.local`` candidate is resolved in the background (aioice spends up to 1 s on
        it), at most :data:`~peer.webrtc.constants.MAX_PENDING_MDNS` at a time.
        """
        if candidate.is_end_of_candidates or self.closing:
            return
        try:
            parsed = parse_candidate(candidate)
        except InvalidCandidateError:
            self.candidates_rejected += 1
            raise
        if is_mdns_candidate(parsed):
            if len(self._tasks) >= MAX_PENDING_MDNS:
                self.candidates_rejected += 1
                logger.info("webrtc[%s] dropping .local candidate %s: %d already resolving", self.tag, parsed.ip,
                            len(self._tasks))
                return
            task = asyncio.get_running_loop().create_task(self._add(parsed), name=f"webrtc[{self.tag}] mdns")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return
        await self._add(parsed)

    async def _add(self, candidate: RTCIceCandidate) -> None:
        try:
            await self.pc.addIceCandidate(candidate)
        except Exception as exc:
            self.candidates_rejected += 1
            logger.info("webrtc[%s] remote candidate refused by aiortc: %r", self.tag, exc)
            return
        self.candidates_added += 1
        logger.debug("webrtc[%s] remote candidate added", self.tag)

    # -- aiortc events (synchronous; never raise into the emitter) ------------------------------------
    def _connection_state_changed(self) -> None:
        state = self.pc.connectionState
        logger.debug("webrtc[%s] connection %s", self.tag, state)
        if state == "connected" and self.times.connected is None:
            self.times.connected = asyncio.get_running_loop().time()
        elif state in ("failed", "closed"):
            self.close_soon(f"connection {state}")

    def _ice_state_changed(self) -> None:
        state = self.pc.iceConnectionState
        logger.debug("webrtc[%s] ICE %s", self.tag, state)
        if state in ("connected", "completed") and self.times.ice_connected is None:
            self.times.ice_connected = asyncio.get_running_loop().time()
            if self.liveness is not None and not self.closing:
                self.liveness.start()

    def _data_opened(self) -> None:
        self.times.data_open = asyncio.get_running_loop().time()
        self._open.set()
        logger.debug("webrtc[%s] data channel open", self.tag)

    def _data_closed(self) -> None:
        self.close_soon("data channel closed")

    def _negotiation_message(self, message: str | bytes) -> None:
        hook = self.on_negotiation
        if hook is None:
            logger.info("webrtc[%s] ignoring a %d-byte negotiation message (no handler)",
                        self.tag, len(message))
            return
        try:
            hook(self, message)
        except Exception:
            logger.exception("webrtc[%s] negotiation hook failed", self.tag)

    # -- teardown --------------------------------------------------------------------------------
    def close_soon(self, reason: str = "closed") -> asyncio.Task[None]:
        """Start the teardown (idempotent) and return its task."""
        if self._close_task is None:
            self.close_reason = reason
            self._closing.set()
            logger.info("webrtc[%s] closing: %s", self.tag, reason)
            self._close_task = asyncio.get_running_loop().create_task(
                self._teardown(), name=f"webrtc[{self.tag}] close"
            )
        return self._close_task

    async def close(self, reason: str = "closed") -> None:
        """Tear everything down and wait for it (bounded); idempotent and safe to cancel."""
        await asyncio.shield(self.close_soon(reason))

    async def _teardown(self) -> None:
        """Never raises: tunnel first (its streams get UNAVAILABLE while the channel still works), then aiortc."""
        try:
            if self.liveness is not None:
                await self.liveness.aclose()
            await self.negotiator.aclose(CLOSE_TIMEOUT_S)
            for task in list(self._tasks):
                task.cancel()
            if self._tasks:
                await asyncio.wait(list(self._tasks), timeout=CLOSE_TIMEOUT_S)
            try:
                await self._close_tunnel()
            except Exception:
                logger.exception("webrtc[%s] closing the tunnel failed", self.tag)
            self.data.close()
            await close_peer_connection(self.pc, timeout=CLOSE_TIMEOUT_S, tag=self.tag)
            self._after_close()
        finally:
            self._closed.set()
            logger.debug("webrtc[%s] closed", self.tag)

    async def _close_tunnel(self) -> None:
        """Subclasses close what runs on the ``data`` channel."""

    def _after_close(self) -> None:
        """Subclasses release what is left (registry entries, signaling channels)."""
