"""Graceful shutdown on SIGTERM/SIGINT, shared by every ``serve`` loop."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager

logger = logging.getLogger(__name__)


@contextmanager
def stop_on_signals(request_stop: Callable[[], None]) -> Iterator[None]:
    """Call ``request_stop`` on SIGTERM/SIGINT while the block runs (a no-op off the main thread)."""
    loop = asyncio.get_running_loop()
    installed = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, request_stop)
            installed.append(sig)
        except (NotImplementedError, RuntimeError):  # not the main thread
            pass
    try:
        yield
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


async def serve_until_stopped(
    start: Callable[[], Awaitable[None]], stop_requested: asyncio.Event, close: Callable[[], Awaitable[None]]
) -> None:
    """``start``, wait for ``stop_requested`` (set by SIGTERM/SIGINT too), then always ``close``:
    the one shape of ``Robot.serve`` and ``Rendezvous.serve``."""
    try:
        with stop_on_signals(stop_requested.set):
            await start()
            await stop_requested.wait()
            logger.info("shutting down")
    finally:
        await close()
