"""The message channel the tunnel runs on, and the paced writer every stream shares.

The tunnel never imports aiortc: it needs only a reliable, ordered channel of binary messages
with a send-buffer gauge. Keeping that surface this small lets the framing be tested against an
in-memory fake and attached to an ``RTCDataChannel`` by a thin adapter.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Protocol

from .constants import SEND_PAUSE_THRESHOLD, SEND_STALL_TIMEOUT_S

logger = logging.getLogger(__name__)


class ChannelClosedError(ConnectionError):
    """The channel is closed; nothing more can be sent on it."""


class SendStalledError(ConnectionError):
    """The channel's send buffer stayed above the pause threshold for too long."""


class MessageChannel(Protocol):
    """A reliable, ordered channel of binary messages (what a WebRTC data channel offers).

    Implementations must deliver every received message to the registered ``on_message`` in
    order, call ``on_close`` once when the channel closes (whichever side closed it), and let
    several tasks wait in :meth:`wait_buffered_amount_low` at once.
    """

    @property
    def bufferedAmount(self) -> int:  # the W3C name, as aiortc spells it
        """Bytes accepted by :meth:`send` but not yet handed to the transport."""
        ...

    def send(self, data: bytes) -> None:
        """Queue one message; raises :class:`ConnectionError` once the channel is closed."""
        ...

    async def wait_buffered_amount_low(self, threshold: int) -> None:
        """Return once ``bufferedAmount <= threshold`` (at once if it already is), or the channel closed."""
        ...

    def set_listener(
        self, on_message: Callable[[bytes], None] | None, on_close: Callable[[], None] | None
    ) -> None:
        """Register (or, with ``None``, drop) the receiver of incoming messages and of the close."""
        ...

    def close(self) -> None:
        """Close the channel; idempotent."""
        ...


class FrameSender:
    """Sends frames on a channel, pausing message frames while its send buffer is over threshold.

    Headers and trailers go out at once (:meth:`send_now`): they are tiny, and holding a trailer
    back would leave the client waiting on a stream that has finished. Message frames
    (:meth:`send`) wait, per frame, until the buffer has drained, but never longer than
    ``stall_timeout`` per pause, because aiortc can stall silently. Every waiter rechecks after
    waking, so the buffer overshoots the threshold by at most one frame.
    """

    def __init__(
        self,
        channel: MessageChannel,
        *,
        pause_threshold: int = SEND_PAUSE_THRESHOLD,
        stall_timeout: float = SEND_STALL_TIMEOUT_S,
        tag: str = "",
    ) -> None:
        self._channel = channel
        self._threshold = pause_threshold
        self._stall_timeout = stall_timeout
        self._tag = tag
        self.closed = False
        #: How many times a send had to pause (observability and tests).
        self.pauses = 0

    def send_now(self, frame: bytes) -> None:
        """Send without waiting for the buffer to drain."""
        if self.closed:
            raise ChannelClosedError("the data channel is closed")
        try:
            self._channel.send(frame)
        except ConnectionError:  # anything else (e.g. aiortc's ValueError for an oversized frame) is a bug
            self.closed = True
            raise

    async def send(self, frame: bytes) -> None:
        """Send once the channel's buffer is at or below the pause threshold."""
        while self._channel.bufferedAmount > self._threshold:
            if self.closed:
                raise ChannelClosedError("the data channel is closed")
            self.pauses += 1
            logger.debug("tunnel[%s] send paused: %d bytes buffered", self._tag, self._channel.bufferedAmount)
            try:
                async with asyncio.timeout(self._stall_timeout):
                    await self._channel.wait_buffered_amount_low(self._threshold)
            except TimeoutError:
                raise SendStalledError(
                    f"the data channel send buffer stayed above {self._threshold} bytes "
                    f"for {self._stall_timeout:g} s"
                ) from None
        self.send_now(frame)
