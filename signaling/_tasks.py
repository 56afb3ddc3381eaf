"""Task hygiene shared by the service and the answerer: no task outlives its owner, cleanup is bounded.

Every child task in this package is created by a coroutine that cancels and awaits it in a
``finally``; these helpers make that one line and make sure no exception is left unretrieved
(an unretrieved exception is logged at garbage collection, far from its cause).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any

logger = logging.getLogger(__name__)


async def cancel_and_wait(*tasks: asyncio.Task[Any] | None) -> None:
    """Cancel the tasks and wait for them to finish, swallowing their results."""
    pending = {task for task in tasks if task is not None}
    for task in pending:
        task.cancel()
    if not pending:
        return
    await asyncio.wait(pending)
    for task in pending:
        if not task.cancelled() and task.exception() is not None:
            logger.debug("task %s ended with %r while being cancelled", task.get_name(), task.exception())


async def bounded(awaitable: Awaitable[None], timeout: float, what: str) -> None:
    """Run a cleanup step with a time budget; a failure is logged, never raised (it runs in ``finally``)."""
    try:
        async with asyncio.timeout(timeout):
            await awaitable
    except Exception:
        logger.warning("%s failed", what, exc_info=True)
