"""Renegotiation over the ``negotiation`` channel (id 1): base64(JSON) SDP as text frames (§8.2).

One :class:`Negotiator` per peer connection, modelled on goutils ``ConfigureForRenegotiation``.
One lock serializes every change of the connection's media: *(transceiver mutation → createOffer →
setLocalDescription → send → await the answer → setRemoteDescription)* and the answer to an offer
from the other side. aiortc cannot answer an offer while a local transceiver is un-negotiated
(docs/video.md §4.3), so transceivers are only changed inside the lock, right before our offer.

* The robot is the impolite side (``polite=False``): an offer arriving while we are mid-offer or
  not ``stable`` is dropped; the browser rolls back and re-offers later (video.md §3).
* The dialer is polite: it answers every offer, one at a time.

aiortc has no rollback: a round that fails half-way (no answer within the timeout, an SDP aiortc
refuses) closes the connection. Undecodable messages are logged and ignored.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from aiortc import RTCSessionDescription

from signaling.errors import InvalidSdpError
from signaling.sdp import SessionDescription, decode_sdp, encode_sdp

from .rtc import describe

if TYPE_CHECKING:
    from .connection import WebRTCConnection

logger = logging.getLogger(__name__)

#: How long our offer waits for the other side's answer before the connection is given up.
ANSWER_TIMEOUT_S = 10.0


class RenegotiationError(Exception):
    """A renegotiation round could not complete (the connection is closing or was closed for it)."""


class Negotiator:
    """Sends our offers and answers the other side's, on one connection's ``negotiation`` channel.

    :param polite: answer every offer (client role) instead of dropping offers that collide with ours.
    """

    def __init__(self, connection: WebRTCConnection, *, polite: bool, answer_timeout: float = ANSWER_TIMEOUT_S) -> None:
        self._conn = connection
        self.polite = polite
        self.answer_timeout = answer_timeout
        #: Held across every media change and offer/answer exchange of this connection.
        self.lock = asyncio.Lock()
        #: Called (synchronously, under the lock) after every completed exchange, either direction.
        self.listeners: list[Callable[[], None]] = []
        self._answer: asyncio.Future[SessionDescription] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False
        self.offers_sent = 0
        self.offers_answered = 0
        self.offers_dropped = 0

    # -- our offers ----------------------------------------------------------------------------
    async def renegotiate(
        self,
        mutate: Callable[[], None] | None = None,
        *,
        undo: Callable[[], None] | None = None,
        why: str = "",
    ) -> None:
        """Apply ``mutate`` (transceiver changes) and renegotiate, all under the lock.

        The round runs in a task of its own, so a cancelled caller never leaves it half done (the
        round completes, or fails and calls ``undo``, whether or not anyone still waits).
        Raises :class:`RenegotiationError` if the round fails (the connection is then closing).
        """
        task = self._spawn(self._round(mutate, undo, why), f"offer ({why})")
        if task is None:
            if undo is not None:
                undo()
            raise RenegotiationError("the connection is closing")
        await asyncio.shield(task)

    async def _round(self, mutate: Callable[[], None] | None, undo: Callable[[], None] | None, why: str) -> None:
        try:
            await self._offer(mutate, why)
        except BaseException:
            if undo is not None:
                try:
                    undo()
                except Exception:
                    logger.exception("webrtc[%s] undoing a failed renegotiation failed", self._conn.tag)
            raise

    async def _offer(self, mutate: Callable[[], None] | None, why: str) -> None:
        conn = self._conn
        async with self.lock:
            if conn.closing or self._closed:
                raise RenegotiationError("the connection is closing")
            if conn.negotiation.readyState != "open":
                raise RenegotiationError("the negotiation channel is not open")
            pc = conn.pc
            if mutate is not None:
                mutate()
            try:
                await pc.setLocalDescription(await pc.createOffer())
                self._answer = asyncio.get_running_loop().create_future()
                self._send(SessionDescription("offer", pc.localDescription.sdp))
                self.offers_sent += 1
                async with asyncio.timeout(self.answer_timeout):
                    answer = await self._answer
                await pc.setRemoteDescription(RTCSessionDescription(sdp=answer.sdp, type="answer"))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                reason = "no renegotiation answer in time" if isinstance(exc, TimeoutError) else describe(exc)
                logger.warning("webrtc[%s] renegotiation (%s) failed: %s", conn.tag, why, reason)
                conn.close_soon(f"renegotiation failed: {reason}")
                raise RenegotiationError(f"renegotiation failed: {reason}") from None
            finally:
                self._answer = None
            logger.debug("webrtc[%s] renegotiated (%s)", conn.tag, why)
            self._notify()

    # -- messages from the other side ------------------------------------------------------------
    def handle_message(self, _connection: WebRTCConnection, message: str | bytes) -> None:
        """The connection's ``on_negotiation`` hook: never raises."""
        tag = self._conn.tag
        try:
            text = message.decode("utf-8") if isinstance(message, bytes) else message
            description = decode_sdp(text, allow_raw_json=True)
        except (UnicodeDecodeError, InvalidSdpError) as exc:
            logger.info("webrtc[%s] ignoring an undecodable negotiation message: %s", tag, exc)
            return
        if description.type == "answer":
            waiter = self._answer
            if waiter is None or waiter.done():
                logger.info("webrtc[%s] ignoring an answer to no offer of ours", tag)
                return
            waiter.set_result(description)
        elif description.type == "offer":
            if not self.polite and (self.lock.locked() or self._conn.pc.signalingState != "stable"):
                self.offers_dropped += 1
                logger.info("webrtc[%s] dropping an offer that collides with ours", tag)
                return
            self._spawn(self._answer_offer(description), "answer")
        else:
            logger.info("webrtc[%s] ignoring a negotiation %r", tag, description.type)

    async def _answer_offer(self, offer: SessionDescription) -> None:
        conn = self._conn
        if not self.polite and self.lock.locked():  # an offer of ours started since the message came
            self.offers_dropped += 1
            return
        async with self.lock:
            if conn.closing or self._closed:
                return
            pc = conn.pc
            try:
                await pc.setRemoteDescription(RTCSessionDescription(sdp=offer.sdp, type="offer"))
                await pc.setLocalDescription(await pc.createAnswer())
                self._send(SessionDescription("answer", pc.localDescription.sdp))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning("webrtc[%s] cannot answer a renegotiation offer: %s", conn.tag, describe(exc))
                conn.close_soon(f"renegotiation offer unusable: {describe(exc)}")
                return
            self.offers_answered += 1
            self._notify()

    # -- helpers ---------------------------------------------------------------------------------
    def _send(self, description: SessionDescription) -> None:
        self._conn.negotiation.send(encode_sdp(description))  # str: a text frame, as the TS client needs

    def _notify(self) -> None:
        for listener in list(self.listeners):
            try:
                listener()
            except Exception:
                logger.exception("webrtc[%s] negotiation listener failed", self._conn.tag)

    def _spawn(self, coro: Coroutine[Any, Any, None], what: str) -> asyncio.Task[None] | None:
        if self._closed:
            coro.close()
            return None
        task = asyncio.get_running_loop().create_task(coro, name=f"webrtc[{self._conn.tag}] negotiation {what}")
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved here; the awaiting caller (if any) gets it too

    async def aclose(self, timeout: float) -> None:
        """Cancel every round in progress (bounded); no new round starts afterwards."""
        self._closed = True
        if self._answer is not None and not self._answer.done():
            self._answer.cancel()
        tasks = [t for t in self._tasks if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)
