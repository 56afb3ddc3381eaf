"""The external answerer's reconnect waits: doubling while the rendezvous is down, reset once a stream opens.

The waits are recorded (not slept), so nothing here depends on timing.
"""

from __future__ import annotations

import asyncio
import socket

from signaling.external import external_answerer
from signaling.memory_queue import MemoryCallQueue
from tests.webrtc.conftest import eventually, no_leaked_tasks  # noqa: F401 (autouse fixture)
from web.signal import Rendezvous


async def _never_called(*args: object) -> None:
    raise AssertionError("no offer is expected")


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def test_waits_double_to_the_cap_and_reset_after_a_stream_opened() -> None:
    port = closed_port()
    waits: list[float] = []

    async def record(delay: float) -> None:
        waits.append(delay)
        await asyncio.sleep(0.01)

    async with external_answerer(f"127.0.0.1:{port}", ["robot.test"], _never_called, workers=1, insecure=True,
                                 reconnect_wait=1.0, max_reconnect_wait=8.0) as answerer:
        answerer._sleep = record
        await eventually(lambda: len(waits) >= 6, timeout=10, what="six reconnect attempts")
        down = list(waits)
        # jitter takes at most 20% off each wait
        for got, nominal in zip(down, [1.0, 2.0, 4.0, 8.0, 8.0, 8.0], strict=False):
            assert 0.8 * nominal <= got <= nominal, down
        async with Rendezvous(MemoryCallQueue()) as rendezvous:
            await rendezvous.start("127.0.0.1", port)
            await eventually(lambda: answerer.stats.streams > 0, timeout=20, what="the answerer registered")
            seen = len(waits)
        # the rendezvous went away with the open stream: the next wait starts from 1 s again
        await eventually(lambda: len(waits) > seen, timeout=10, what="a reconnect attempt")
        assert 0.8 <= waits[seen] <= 1.0, waits
