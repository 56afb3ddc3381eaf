"""Bitrate of a shared VP8 encoder from its viewers' receiver estimates (REMB).

One encoder feeds every viewer of a camera at one size, so it has one bitrate for all of them.
Following the slowest viewer (the minimum) lets one bad link degrade everyone; an SFU would
answer with per-viewer layers (simulcast), which would mean several encodes per frame. The policy
here instead follows the viewers in the middle:

* The shared rate is the highest rate that at least half of the viewers can take: the upper
  median of their estimates (one viewer: its own; two: the better one). A viewer with no fresh
  estimate (none yet, or its receiver sends no REMB) counts as able to take the cap, so it never
  drags the others down and never is dragged down by a missing report.
* Always within :data:`FLOOR` and the picture size's cap (:func:`peer.media.encoder.target_bitrate`).
* Changing the rate reopens the libvpx context (PyAV's ``bit_rate`` is read only when the context
  opens; setting it later has no effect), which starts with a keyframe. So a change must differ by
  more than :data:`CHANGE_RATIO`, and decreases happen at most every :data:`DECREASE_INTERVAL`,
  increases at most every :data:`INCREASE_INTERVAL` after the last change (back off fast, probe
  up slowly, as congestion control does).
* A viewer whose estimate is far below the shared rate (under :data:`SLIDESHOW_BELOW` of it) gets
  keyframes only, one every :data:`SLIDESHOW_INTERVAL` (a decodable slideshow instead of a stream
  that mostly dies in its bottleneck and answers with PLI storms). Such a viewer receives little,
  so its estimate cannot grow (receive-side estimators are capped near what arrives): after
  :data:`SLIDESHOW_RETRY` it gets the full stream again, and falls back if its estimate drops again.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

logger = logging.getLogger(__name__)

#: Lowest shared rate, whatever the viewers say (below it 480p VP8 is mush).
FLOOR = 150_000
#: Least relative change that reopens the encoder.
CHANGE_RATIO = 0.15
#: Least time between a change and a following decrease / increase (seconds).
DECREASE_INTERVAL = 1.0
INCREASE_INTERVAL = 3.0
#: An estimate older than this no longer counts (seconds): aiortc and browsers send REMB about every second.
ESTIMATE_TTL = 5.0
#: A viewer whose estimate is under this fraction of the shared rate gets keyframes only ...
SLIDESHOW_BELOW = 0.5
#: ... one every this many seconds ...
SLIDESHOW_INTERVAL = 2.0
#: ... and the full stream again after this long (its estimate is then forgotten and measured anew).
SLIDESHOW_RETRY = 10.0


def shared_rate(estimates: Sequence[int | None], cap: int) -> int:
    """The highest rate at least half the viewers can take, within :data:`FLOOR` and ``cap``.

    ``None``: a viewer without an estimate (it can take the cap). No viewers: the cap.
    """
    if not estimates:
        return cap
    ordered = sorted((cap if e is None else e for e in estimates), reverse=True)
    rate = ordered[(len(ordered) + 1) // 2 - 1]
    return max(min(FLOOR, cap), min(cap, rate))


class RateGovernor:
    """The shared rate of one encoder over time: :func:`shared_rate`, with hysteresis and pacing."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        #: The bitrate the encoder should run at now.
        self.target = cap
        self._changed_at: float | None = None
        #: Number of times :attr:`target` changed (each one reopens the encoder: a keyframe).
        self.changes = 0

    def set_cap(self, cap: int) -> None:
        """A new cap (the picture size or frame rate changed): the target never exceeds it."""
        if cap != self.cap:
            self.cap = cap
            self.target = min(self.target, cap) if self._changed_at is not None else cap

    def update(self, estimates: Sequence[int | None], now: float) -> bool:
        """Recompute the target from the viewers' ``estimates``; ``True`` if it changed."""
        wanted = shared_rate(estimates, self.cap)
        current = self.target
        if wanted == current or abs(wanted - current) <= CHANGE_RATIO * current:
            return False
        if self._changed_at is not None:
            wait = DECREASE_INTERVAL if wanted < current else INCREASE_INTERVAL
            if now - self._changed_at < wait:
                return False
        logger.debug("shared bitrate %d -> %d bps (estimates %s)", current, wanted, list(estimates))
        self.target = wanted
        self._changed_at = now
        self.changes += 1
        return True


__all__ = [
    "CHANGE_RATIO",
    "DECREASE_INTERVAL",
    "ESTIMATE_TTL",
    "FLOOR",
    "INCREASE_INTERVAL",
    "SLIDESHOW_BELOW",
    "SLIDESHOW_INTERVAL",
    "SLIDESHOW_RETRY",
    "RateGovernor",
    "shared_rate",
]
