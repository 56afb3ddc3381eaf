"""The robot's side of one WebRTC connection, and the registry of live ones.

A :class:`PeerSession` is a :class:`~peer.webrtc.connection.WebRTCConnection` answering one
caller's offer, with a :class:`~peer.tunnel.TunnelServer` on its ``data`` channel serving the
robot's one handler table (each call counted under "webrtc" in the table's stats, because
:class:`~peer.tunnel.TunnelStream` says ``transport = "webrtc"``). :class:`PeerSessions` holds
every session that is not closed yet: its length is the ``peers`` figure of ``/stats``, and
:meth:`PeerSessions.close_all` ends them on shutdown.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from aiortc import RTCSessionDescription
from grpclib import Status
from grpclib.const import Handler

from peer.tunnel import Servable, TunnelServer
from signaling.auth import Principal
from signaling.config import IceServer
from signaling.errors import InvalidSdpError, SignalingError
from signaling.sdp import SessionDescription

from .connection import WebRTCConnection
from .constants import CLOSE_TIMEOUT_S
from .rtc import check_remote_description, describe, selected_remote_address
from .video import PeerVideo

logger = logging.getLogger(__name__)


class RemotePeer:
    """What a handler sees as ``stream.peer`` over WebRTC: grpclib's ``Peer`` shape.

    ``addr()`` is the remote address of the selected ICE pair (the caller's host, reflexive or
    relay address), read when asked, since ICE may still be settling when a call starts.
    """

    def __init__(self, session: PeerSession) -> None:
        self._session = session

    @property
    def session(self) -> PeerSession:
        """The caller's connection: what a handler needs to add media to it (``StreamService``)."""
        return self._session

    def addr(self) -> tuple[str, int] | None:
        return selected_remote_address(self._session.pc)

    def cert(self) -> None:
        return None

    @property
    def principal(self) -> Principal | None:
        """Whom the session's Call was authenticated as; its calls run as them (``peer.handlers``)."""
        return self._session.principal

    def __repr__(self) -> str:
        return f"<RemotePeer {self._session.tag} {self.addr()}>"


class PeerSession(WebRTCConnection):
    """One caller's connection to the robot.

    Typical use (this is what :class:`~peer.webrtc.answer.OfferAnswerer` does)::

        session = PeerSession(handlers, ice_servers=offer.config.ice_servers, tag=uuid[:8], registry=sessions)
        answer = await session.accept(offer.sdp)     # InvalidSdpError for a bad offer
        ...                                          # add trickled candidates as they come
        await session.wait_open()                    # the caller's data channel is up
        ...                                          # the session now lives until either side closes

    :param handlers: the robot's handler table (anything with ``__mapping__()``).
    :param registry: where the session is listed until it closes.
    :param tunnel_options: keyword arguments for :class:`~peer.tunnel.TunnelServer` (limits).
    :param principal: the caller's principal, vouched for by the signaling server.

    A caller that vanishes without a goodbye is noticed by :class:`~peer.webrtc.liveness.IceLiveness`
    within ~6 s (not aioice's ~30 s), and closing releases its camera viewers and encoders.
    """

    def __init__(
        self,
        handlers: Servable | Mapping[str, Handler],
        *,
        ice_servers: Sequence[IceServer] = (),
        tag: str = "",
        registry: PeerSessions | None = None,
        tunnel_options: Mapping[str, Any] | None = None,
        principal: Principal | None = None,
    ) -> None:
        super().__init__(ice_servers, tag=tag, polite=False, liveness=True)
        self.principal = principal
        self.peer = RemotePeer(self)
        #: The video streams sent to this caller (added by ``StreamService.AddStream``).
        self.video = PeerVideo(self)
        self.tunnel = TunnelServer(self.data, handlers, peer=self.peer, tag=tag, **(tunnel_options or {}))
        self._registry = registry
        if registry is not None:
            registry.add(self)

    async def accept(self, offer: SessionDescription) -> SessionDescription:
        """Apply the caller's offer and return our answer, which carries all our candidates.

        A malformed or unusable offer raises :class:`~signaling.errors.InvalidSdpError`
        (INVALID_ARGUMENT); a local failure (gathering) raises a ``SignalingError`` with INTERNAL.
        The caller closes the session on failure.
        """
        if offer.type != "offer":
            raise InvalidSdpError(f"expected an offer, got {offer.type!r}")
        check_remote_description(offer.sdp, "offer")
        try:
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=offer.sdp, type="offer"))
            answer = await self.pc.createAnswer()
        except Exception as exc:
            logger.info("webrtc[%s] unusable offer: %r", self.tag, exc)
            raise InvalidSdpError(f"cannot answer the offer: {describe(exc)}") from None
        try:
            await self.pc.setLocalDescription(answer)
            local = self.pc.localDescription
        except Exception as exc:
            logger.warning("webrtc[%s] could not set the local answer", self.tag, exc_info=True)
            raise SignalingError(f"could not prepare the answer: {describe(exc)}", status=Status.INTERNAL) from None
        return SessionDescription("answer", local.sdp)

    async def _close_tunnel(self) -> None:
        try:
            await self.tunnel.close()
        finally:
            self.video.close()  # releases every camera subscription this caller held

    def _after_close(self) -> None:
        if self._registry is not None:
            self._registry.discard(self)


class PeerSessions:
    """Every :class:`PeerSession` that has not finished closing.

    ``len()`` is the ``peers`` figure of ``/stats``. After :meth:`close_all` the registry is
    closed: an answerer must check :attr:`closed` and refuse new offers.
    """

    def __init__(self) -> None:
        self._sessions: dict[PeerSession, None] = {}
        self.closed = False
        #: Sessions ever registered.
        self.created = 0

    def __len__(self) -> int:
        return len(self._sessions)

    def __iter__(self) -> Iterator[PeerSession]:
        return iter(list(self._sessions))

    def __repr__(self) -> str:
        return f"<PeerSessions {len(self)} live>"

    @property
    def open_count(self) -> int:
        """Sessions whose data channel is open (the others are still connecting or closing)."""
        return sum(1 for session in self._sessions if session.is_open)

    def add(self, session: PeerSession) -> None:
        self._sessions[session] = None
        self.created += 1

    def discard(self, session: PeerSession) -> None:
        self._sessions.pop(session, None)

    def snapshot(self) -> dict[str, Any]:
        """Counts for ``/stats``."""
        return {"live": len(self), "open": self.open_count, "created": self.created}

    async def close_all(self, timeout: float = 2 * CLOSE_TIMEOUT_S) -> None:
        """Close every session concurrently (bounded) and refuse new ones from now on."""
        self.closed = True
        sessions = list(self._sessions)
        if not sessions:
            return
        logger.info("closing %d WebRTC session(s)", len(sessions))
        tasks = [session.close_soon("robot shutting down") for session in sessions]
        _, pending = await asyncio.wait(tasks, timeout=timeout)
        if pending:
            logger.warning("%d WebRTC session(s) did not close within %g s", len(pending), timeout)
