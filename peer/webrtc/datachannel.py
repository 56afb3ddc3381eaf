"""An aiortc ``RTCDataChannel`` as the tunnel's :class:`~peer.tunnel.channel.MessageChannel`.

aiortc emits ``message``, ``close`` and ``bufferedamountlow`` synchronously from its SCTP receive
and transmit paths; the adapter registers one plain function per event once, at construction,
and forwards to whichever listener the tunnel has set, so a listener change never touches
aiortc's emitter (which drops every listener itself once the channel is closed).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from aiortc import RTCDataChannel
from aiortc.exceptions import InvalidStateError

from peer.tunnel.channel import ChannelClosedError

logger = logging.getLogger(__name__)


class DataChannelAdapter:
    """Implements :class:`peer.tunnel.channel.MessageChannel` over one ``RTCDataChannel``.

    * ``send`` raises :class:`~peer.tunnel.channel.ChannelClosedError` when the channel is not
      open (aiortc raises ``InvalidStateError``, also before the channel has opened).
    * ``wait_buffered_amount_low`` uses ``bufferedAmountLowThreshold`` and the
      ``bufferedamountlow`` event; any number of tasks may wait, each with its own threshold, and
      every waiter is released when the channel closes.
    * Text messages are not part of the tunnel protocol: they are dropped with a log.
    * ``on_close`` runs once, whichever side closed the channel.
    """

    def __init__(self, channel: RTCDataChannel, *, tag: str = "") -> None:
        self._channel = channel
        self._tag = tag
        self._on_message: Callable[[bytes], None] | None = None
        self._on_close: Callable[[], None] | None = None
        self._closed = channel.readyState == "closed"
        self._close_reported = False
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self.text_dropped = 0
        channel.on("message", self._message)
        channel.on("close", self._closed_event)
        channel.on("bufferedamountlow", self._buffered_amount_low)

    def __repr__(self) -> str:
        return f"<DataChannelAdapter {self._tag} {self._channel.label}:{self._channel.readyState}>"

    @property
    def channel(self) -> RTCDataChannel:
        return self._channel

    @property
    def closed(self) -> bool:
        return self._closed

    # -- MessageChannel --------------------------------------------------------------------------
    @property
    def bufferedAmount(self) -> int:
        return self._channel.bufferedAmount

    def send(self, data: bytes) -> None:
        if self._closed:
            raise ChannelClosedError(f"data channel {self._channel.label!r} is closed")
        try:
            self._channel.send(data)
        except InvalidStateError:
            raise ChannelClosedError(
                f"data channel {self._channel.label!r} is {self._channel.readyState}"
            ) from None

    async def wait_buffered_amount_low(self, threshold: int) -> None:
        if self._closed or self._channel.bufferedAmount <= threshold:
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((threshold, waiter))
        self._arm()
        try:
            await waiter
        finally:
            self._waiters = [(t, w) for t, w in self._waiters if w is not waiter]

    def set_listener(
        self, on_message: Callable[[bytes], None] | None, on_close: Callable[[], None] | None
    ) -> None:
        self._on_message = on_message
        self._on_close = on_close
        if on_close is not None and self._closed:
            self._report_close()  # closed before anyone listened: still tell the new listener, once

    def close(self) -> None:
        if self._channel.readyState in ("closing", "closed"):
            return
        try:
            self._channel.close()
        except Exception as exc:  # aiortc may fail on a transport that is already gone
            logger.debug("webrtc[%s] closing data channel %r raised %r", self._tag, self._channel.label, exc)

    # -- aiortc events -----------------------------------------------------------------------------
    def _message(self, message: bytes | str) -> None:
        if isinstance(message, str):
            self.text_dropped += 1
            logger.warning("webrtc[%s] dropping a text message (%d chars) on %r: the tunnel is binary",
                           self._tag, len(message), self._channel.label)
            return
        listener = self._on_message
        if listener is None:
            return
        try:
            listener(message)
        except Exception:  # never into aiortc's SCTP receive path
            logger.exception("webrtc[%s] message listener of %r failed", self._tag, self._channel.label)

    def _closed_event(self) -> None:
        self._closed = True
        self._release_at(0)
        self._report_close()

    def _report_close(self) -> None:
        listener = self._on_close
        if listener is None or self._close_reported:
            return
        self._close_reported = True
        try:
            listener()
        except Exception:  # never into aiortc's emitter
            logger.exception("webrtc[%s] close listener of %r failed", self._tag, self._channel.label)

    def _buffered_amount_low(self) -> None:
        self._release_at(self._channel.bufferedAmount)
        self._arm()

    def _release_at(self, amount: int) -> None:
        """Wake every waiter whose threshold ``amount`` satisfies (all of them once closed)."""
        for threshold, waiter in self._waiters:
            if (self._closed or amount <= threshold) and not waiter.done():
                waiter.set_result(None)

    def _arm(self) -> None:
        """Point the low threshold at the highest unsatisfied waiter; release any already satisfied.

        aiortc fires ``bufferedamountlow`` only when the amount crosses the threshold downwards,
        so after moving the threshold the current amount is checked once more by hand.
        """
        while True:
            pending = [threshold for threshold, waiter in self._waiters if not waiter.done()]
            if not pending:
                return
            highest = max(pending)
            self._channel.bufferedAmountLowThreshold = highest
            amount = self._channel.bufferedAmount
            if amount > highest:
                return
            self._release_at(amount)
