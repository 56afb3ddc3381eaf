"""The robot's offer handler: plugs aiortc into :class:`signaling.Answerer` (the ``OfferHandler`` contract).

Per offer: build a :class:`~peer.webrtc.session.PeerSession`, answer with an SDP that already
carries every local candidate (aiortc gathers inside ``setLocalDescription``, so nothing is ever
trickled), add the caller's trickled candidates as they come, and return when the ``data``
channel opens; the answerer then sends ``done`` and the caller's Call stream ends OK, as with
goutils (wire-protocol.md §12.2). From then on the session belongs to the
:class:`~peer.webrtc.session.PeerSessions` registry and outlives this handler. On any failure,
including cancellation at the offer deadline, the session is closed before the handler ends.

Why gathering is not reported complete right after the answer (``send_candidate(None)``), though
the answer is complete: that sends ``done`` at once, and once the caller has sent its own
``done`` too, the signaling server ends the Answer stream and :class:`signaling.Answerer` cancels
this handler, which would close a session whose data channel has not opened yet.

Bad input never escapes unwrapped: an unusable offer is INVALID_ARGUMENT (the caller's Call ends
with "error from answerer: …"); a garbage trickled candidate is logged and ignored, because
CallUpdate has already returned OK by the time it gets here and the other candidates may well
connect (goutils ignores nothing, but has no such queue in between).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any

from grpclib import Status
from grpclib.const import Handler

from peer.tunnel import Servable
from signaling.answerer import Offer, SendAnswer, SendCandidate
from signaling.auth import principal_from_offer
from signaling.config import IceServer
from signaling.errors import SignalingError
from signaling.ice import merge_ice_servers
from signaling.sdp import IceCandidate

from .session import PeerSession, PeerSessions

logger = logging.getLogger(__name__)


class OfferAnswerer:
    """``handle_offer`` for :class:`signaling.Answerer` / :func:`signaling.internal_answerer`.

    :param handlers: the robot's handler table, served on every session's ``data`` channel.
    :param sessions: the registry every session joins until it closes.
    :param tunnel_options: keyword arguments for each session's :class:`~peer.tunnel.TunnelServer`.
    :param ice_servers: the robot's own STUN/TURN servers, called per offer (fresh TURN REST
        credentials); used after the ones the signaling server sent with the offer, because aiortc
        takes only the first STUN and the first TURN URL and the rendezvous's are meant for this call.
    """

    def __init__(
        self,
        handlers: Servable | Mapping[str, Handler],
        sessions: PeerSessions,
        *,
        tunnel_options: Mapping[str, Any] | None = None,
        ice_servers: Callable[[], Sequence[IceServer]] = tuple,
    ) -> None:
        self.handlers = handlers
        self._ice_servers = ice_servers
        self.sessions = sessions
        self._tunnel_options = dict(tunnel_options or {})

    async def __call__(
        self,
        offer: Offer,
        candidates_in: AsyncIterator[IceCandidate],
        send_candidate: SendCandidate,
        send_answer: SendAnswer,
        /,
    ) -> None:
        if self.sessions.closed:
            raise SignalingError("the robot is shutting down", status=Status.UNAVAILABLE)
        tag = offer.uuid[:8]
        session = PeerSession(
            self.handlers,
            ice_servers=merge_ice_servers(offer.config.ice_servers, self._ice_servers()),
            tag=tag,
            registry=self.sessions,
            tunnel_options=self._tunnel_options,
            principal=principal_from_offer(offer.caller),
        )
        ready = False
        try:
            answer = await session.accept(offer.sdp)
            await send_answer(answer)  # holds every candidate; ``done`` follows when data opens
            feeder = asyncio.get_running_loop().create_task(
                _feed_candidates(session, candidates_in), name=f"webrtc[{tag}] caller candidates"
            )
            try:
                await session.wait_open()
            finally:
                feeder.cancel()
                await asyncio.wait({feeder})
            ready = True
            logger.info("webrtc[%s] session open in %.0f ms (call %s, remote %s)", tag,
                        1000 * ((session.times.data_open or session.times.start) - session.times.start),
                        offer.uuid, session.peer.addr())
        finally:
            if not ready:
                await session.close("signaling did not complete")


async def _feed_candidates(session: PeerSession, candidates: AsyncIterator[IceCandidate]) -> None:
    """The caller's trickled candidates into the peer connection, until the caller is done."""
    async for candidate in candidates:
        try:
            await session.add_remote_candidate(candidate)
        except SignalingError as exc:
            logger.warning("webrtc[%s] ignoring a caller candidate: %s", session.tag, exc.message)
