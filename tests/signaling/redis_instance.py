"""A signaling instance in its own process, for tests that SIGKILL it.

``python -m tests.signaling.redis_instance URL HOST``

It registers one answerer for HOST on a :class:`RedisCallQueue` with 0.2 s/1 s presence timings,
prints ``ready``, claims one offer, answers it (init plus one candidate), prints ``answered UUID``,
then waits to be killed mid-exchange (it never says done).
"""

from __future__ import annotations

import asyncio
import sys

from signaling.queue import AnswerCandidate, AnswerInit
from signaling.redis_queue import RedisCallQueue
from tests.signaling.fakes import cand


async def main(url: str, host: str) -> None:
    queue = await RedisCallQueue.connect(url, refresh_interval=0.2, presence_ttl=1.0)
    async with queue.answerer_presence([host]):
        print("ready", flush=True)
        exchange = await queue.recv_offer([host])
        await exchange.respond(AnswerInit("answer-from-doomed-instance"))
        await exchange.respond(AnswerCandidate(cand(1)))
        print("answered", exchange.uuid, flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
