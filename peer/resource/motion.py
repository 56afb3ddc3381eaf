"""Waiting for a timed motion of a fake actuator, the same way for every API.

Fake actuators compute their state from the clock, so a motion is just "generation N ends at
time T". A blocking call waits for that, returns early when a newer command (or ``stop``)
supersedes it, and halts the actuator when the call's operation or task is cancelled.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from ..errors import OperationCancelledError
from ..operations import Operation

#: How often a waiting call looks at its operation's cancellation flag.
POLL_S = 0.02


async def wait_for_motion(
    op: Operation,
    *,
    is_current: Callable[[], bool],
    ends_at: Callable[[], float | None],
    halt: Callable[[], None],
    what: str,
) -> bool:
    """True when the motion ran to its end; False when superseded or open-ended (``ends_at`` None)."""
    try:
        while is_current():
            end = ends_at()
            if end is None:
                return False
            remaining = end - time.monotonic()
            if remaining <= 0:
                return True
            if await op.is_cancelled():
                halt()
                raise OperationCancelledError(f"{what} cancelled")
            await asyncio.sleep(min(remaining, POLL_S))
        return False
    except asyncio.CancelledError:
        if is_current():
            halt()
        raise
