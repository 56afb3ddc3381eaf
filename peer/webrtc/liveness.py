"""Fast detection of a peer that vanished without a goodbye (a killed tab, a pulled cable).

Nothing in aiortc notices such a peer quickly: SCTP and DTLS send no keepalives, and aioice's
consent freshness (RFC 7675) probes every ~5 s and gives up after 6 misses, so a dead peer keeps
its session, camera viewers and encoders for ~30 s (reliability.md §2 row 14, measured 32 s).

:class:`IceLiveness` adds a faster consent check of its own on the same path: a STUN binding
request on the nominated ICE pair every :data:`PROBE_INTERVAL_S`, answered by every ICE agent
(Chromium, webrtc-rs in viam-sdk, aioice) without any cooperation from the application, so it
works for the unmodified browser SDK where a data-channel heartbeat would not. Probes run side by
side, each allowed :data:`PROBE_TIMEOUT_S` (one STUN retransmission), so a slow path (a distant
TURN relay, a congested uplink) is not mistaken for a dead one. Anything the peer sent in between
(RTCP reports, SCTP, the DTLS transport's received-packet count) counts as an answer too, and
that tick sends no probe: a viewer whose *downlink* is congested, so our probes queue behind
video, still talks to us and is kept.

When nothing has been heard for :data:`DEAD_AFTER_S` and at least :data:`MIN_MISSES` probes in a
row went unanswered (so one stall of our own event loop cannot close a healthy peer), the
connection is closed, which releases its streams: a vanished peer is closed about DEAD_AFTER_S +
PROBE_INTERVAL_S after it was last heard (≤ 6 s, reliability.md §4; ~4.5 s measured).

aioice has no public way to send a request on the selected pair, nor aiortc a synchronous
received-packet count; :func:`probe_selected_pair` and :func:`packets_received` are the places that
read their internals (``_connection``, ``_nominated``, ``_get_stats``), and any surprise there
makes the watchdog stand down (aioice's own consent check still applies) rather than close.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from aioice import stun
from aiortc import RTCPeerConnection

logger = logging.getLogger(__name__)

#: Seconds between probes.
PROBE_INTERVAL_S = 1.0
#: STUN retransmissions per probe: aioice waits 0.5 s, then 1 s more, so a probe may take 1.5 s.
PROBE_RETRANSMISSIONS = 1
PROBE_TIMEOUT_S = 1.5
#: Seconds without hearing from the peer after which it is considered gone.
DEAD_AFTER_S = 4.0
#: Probes in a row that must have gone unanswered as well.
MIN_MISSES = 2


class NoPairError(Exception):
    """There is no nominated pair to probe (not connected yet, or aioice changed)."""


async def probe_selected_pair(pc: RTCPeerConnection) -> bool:
    """Send one STUN binding request on the data transport's nominated pair; ``True`` if answered.

    ``False`` when it went unanswered for :data:`PROBE_TIMEOUT_S` (or was refused);
    :class:`NoPairError` when there is nothing to probe.
    """
    try:
        connection = pc.sctp.transport.transport._connection  # type: ignore[union-attr]
        pair = next(iter(connection._nominated.values()))
        password = connection.remote_password
        request = connection.build_request(pair, nominate=False)
        protocol = pair.protocol
    except Exception as exc:  # no pair yet, or an aioice change: never a reason to close
        raise NoPairError(repr(exc)) from None
    if password is None:
        raise NoPairError("no remote ICE password")
    try:
        await protocol.request(request, pair.remote_addr, integrity_key=password.encode("utf8"),
                               retransmissions=PROBE_RETRANSMISSIONS)
    except stun.TransactionError:
        return False
    return True


def packets_received(pc: RTCPeerConnection) -> int | None:
    """Datagrams the data transport's DTLS layer has received so far (SRTP, SRTCP, SCTP), or ``None``."""
    try:
        report = pc.sctp.transport._get_stats()  # type: ignore[union-attr]
        return sum(int(getattr(s, "packetsReceived", 0) or 0) for s in report.values() if s.type == "transport")
    except Exception:
        logger.debug("no DTLS transport stats", exc_info=True)
        return None


class IceLiveness:
    """Closes a connection whose peer went silent (see the module docstring).

    :param pc: the peer connection to watch.
    :param on_dead: called once with a reason when the peer is considered gone.
    :param tag: the connection's log tag.
    """

    def __init__(
        self,
        pc: RTCPeerConnection,
        on_dead: Callable[[str], object],
        *,
        tag: str = "",
        interval: float = PROBE_INTERVAL_S,
        dead_after: float = DEAD_AFTER_S,
    ) -> None:
        self._pc = pc
        self._on_dead = on_dead
        self.tag = tag
        self.interval = interval
        self.dead_after = dead_after
        self._task: asyncio.Task[None] | None = None
        self._probes: set[asyncio.Task[None]] = set()
        self._last_heard = 0.0
        self._misses = 0  # probes in a row that went unanswered
        #: Ticks at which the peer had sent something since the previous one (no probe needed).
        self.heard = 0
        #: Probes sent, answered, and missed (for tests and diagnosis).
        self.sent = 0
        self.answered = 0
        self.missed = 0

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Start watching (idempotent); call once ICE is connected."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"webrtc[{self.tag}] liveness")

    async def aclose(self) -> None:
        """Stop watching and wait (bounded) for the loop and any probe in flight."""
        tasks = [t for t in (self._task, *self._probes) if t is not None and not t.done()]
        self._task = None
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=PROBE_TIMEOUT_S + 1.0)

    def _heard_now(self) -> None:
        self._last_heard = asyncio.get_running_loop().time()
        self._misses = 0

    async def _probe(self) -> None:
        self.sent += 1
        try:
            answered = await probe_selected_pair(self._pc)
        except NoPairError as exc:
            logger.debug("webrtc[%s] liveness probe not sent: %s", self.tag, exc)
            return
        if answered:
            self.answered += 1
            self._heard_now()
        else:
            self.missed += 1
            self._misses += 1

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        self._heard_now()
        received = packets_received(self._pc)
        while True:
            await asyncio.sleep(self.interval)
            now_received = packets_received(self._pc)
            if now_received is not None and received is not None and now_received > received:
                self.heard += 1
                self._heard_now()
            received = now_received
            silent = loop.time() - self._last_heard
            if self._misses >= MIN_MISSES and silent >= self.dead_after:
                logger.info("webrtc[%s] peer gone: nothing heard for %.1f s, %d ICE probes unanswered",
                            self.tag, silent, self._misses)
                self._on_dead(f"peer stopped answering ICE probes for {silent:.1f} s")
                return
            if silent >= self.interval / 2:  # nothing heard this tick: ask
                probe = loop.create_task(self._probe(), name=f"webrtc[{self.tag}] liveness probe")
                self._probes.add(probe)
                probe.add_done_callback(self._probes.discard)
