"""A :class:`~signaling.queue.CallQueue` on Redis: many signaling instances, one set of calls (reliability.md §3.3).

Any number of :class:`~signaling.service.SignalingService` processes share one Redis. A caller
may reach instance A while the robot's Answer stream is held by instance B; CallUpdates for the
call may land on either. Nothing about a call lives only in one process's memory, except who is
waiting locally.

Key layout (``P`` is the ``prefix`` tunable, ``sig`` by default; ``{…}`` is the hash tag). Every
key has a TTL or is deleted by its last user, so an idle Redis returns to its baseline key count:

==================================  ================================================================
``P:inst:{id}``                     string, ``PX presence_ttl``, refreshed every ``refresh_interval``:
                                    the instance is alive (goutils' operators document).
``P:answerers:{host}``              ZSET, member ``<instance>:<n>`` per open Answer stream, score =
                                    its expiry (ms), refreshed with the instance key: a dead
                                    instance's answerers drop out of every count once it passes.
``P:callers:{host}``                ZSET, member = call uuid, score = the call's deadline (ms): the
                                    per-host caller cap.
``P:offers:{host}``                 LIST of call uuids not yet claimed, oldest first.
``P:call:{host}:uuid``              HASH: offer, caller entity, deadline, claim and terminal
                                    flags, candidate counts; ``PEXPIREAT`` deadline. Its existence
                                    is what "the call is live" means; deleting it forgets the call.
                                    A uuid under another host names no key (the uuid → host binding
                                    is free); a CallUpdate from another entity is refused by the
                                    scripts (uuid → caller binding).
``P:call:{host}:uuid:a`` / ``:c``   STREAMs towards the answerer / the caller, ``PEXPIREAT``
                                    deadline. Each is read from id 0 by its one reader, who deletes
                                    it when done.
``P:wake:{id}``                     LIST: a token pushed to interrupt this instance's blocking pop.
``P:rwake:{id}``                    STREAM (one entry, ``PX`` 1 s): added to interrupt this
                                    instance's shared stream read when a new stream must join it.
==================================  ================================================================

Flow. ``send_offer_init`` is one Lua script on the host's keys: prune expired callers, check the
cap, count the caller, and if answerers are present create the call and push its uuid onto the
offer list (otherwise it polls the answerer count for up to the offline delay, then queues). Each
instance runs **one** dispatcher that pops (``BLPOP``) from the offer lists of every host it has waiting
``recv_offer`` calls for, plus its wake list (pushed when that host set grows). ``BLPOP`` hands
each uuid to exactly one instance, and a Lua claim on the call hash (live, not claimed, more than
``close_to_expired_factor`` of its life left) makes the hand-over exclusive. Every other per-call
write is a Lua script too, on keys sharing the ``{host}`` tag, so flags, caps, candidate counts,
stream appends and withdrawal from the offer list are atomic together. Each stream is read from
where its reader left off, starting at 0: nothing written before a reader arrives is lost, which
is why streams rather than pub/sub. The reads are multiplexed: each instance runs **one**
``XREAD BLOCK … STREAMS k1 k2 … id1 id2 …`` over every per-call stream it has a local reader for
(plus its read-wake stream, added to when a new stream must join the read in flight), and hands
the entries to each reader's buffer in order; a reader cancelled while it waits loses nothing.

Guarantees, and what they are not:

* **At-most-once offer delivery.** An offer popped by an instance that dies (or loses Redis)
  before handing it over is lost; its caller fails at the deadline and redials.
* **Exactly one answerer** per offer, across instances (``BLPOP`` plus the claim).
* **Per-call, per-direction order**; terminal flags are sticky and checked atomically.
* **Counts are eventually consistent**: a dead instance's answerers count until their scores
  pass (``presence_ttl``, 15 s); its callers until their deadlines. Caps are exact among live
  instances. Deadlines are wall-clock, so instances need synchronised clocks.
* **Redis down or stalled** → every operation fails within ``op_timeout`` (blocking reads within
  ``block_timeout + op_timeout``; a failed shared read fails every reader waiting on it) with
  :class:`~signaling.errors.StoreUnavailableError` (UNAVAILABLE). Established peer connections
  never touch Redis.
* Each script stays within one hash slot, but the dispatcher's multi-key ``BLPOP`` spans
  hosts, so this runs against one Redis (or a primary), not a Cluster.
* Cost: a call to completion is about nine round trips (offer, claim, init, done, two reads,
  two closes, the pop); each is ~0.1-0.3 ms of client CPU in redis-py, which bounds throughput
  per instance far below the in-memory queue's (``scripts/bench_signaling.py``).
* **Connections per instance are bounded**, however many calls are in flight: at most
  ``max_concurrent_ops`` (8) for ordinary round trips (a slot is taken within the op budget),
  one for the dispatcher's pop, one for the shared stream read: 10. The price of sharing the
  read: every round re-sends every key, so its client CPU grows with the streams in flight (at
  50 calls in flight about 1.4 rounds per call and, thanks to ``WAKE_DELAY``, almost no wakes;
  throughput ~17 % below one blocking read per reader, see docs/architecture.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import time
import uuid as uuid_mod
import weakref
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from grpclib import Status
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.maint_notifications import MaintNotificationsConfig

from .const import (
    MAX_CANDIDATES_PER_CALL,
    MAX_HOST_ANSWERERS,
    MAX_HOST_CALLERS,
    OFFER_CLOSE_TO_EXPIRED_FACTOR,
    OFFLINE_HOST_RETRY_DELAY,
)
from .errors import (
    ErrorStatus,
    HostOfflineError,
    InactiveOfferError,
    QueueClosedError,
    RemoteError,
    StoreUnavailableError,
    TooManyAnswerersError,
    TooManyCallersError,
    TooManyCandidatesError,
)
from .queue import (
    AnswerCandidate,
    AnswererEvent,
    AnswererExchange,
    AnswerFailed,
    AnswerInit,
    CallerCandidate,
    CallerDone,
    CallerEvent,
    CallerExchange,
    CallerFailed,
    CallQueue,
)
from .sdp import IceCandidate, candidate_from_init, candidate_to_init

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: goutils operators document: refreshed every second...
REFRESH_INTERVAL = 1.0
#: ...and stale 15 s after the last refresh (an instance that dies stops counting by then).
PRESENCE_TTL = 15.0
#: Bound on every ordinary Redis command: a stalled Redis fails a new Call this fast.
OP_TIMEOUT = 1.0
#: How long one blocking read waits in Redis before it is re-issued.
BLOCK_TIMEOUT = 2.0
#: How often a caller to a host without answerers looks again during the offline delay.
PRESENCE_POLL = 0.05
#: Pause before the dispatcher retries after Redis failed it.
DISPATCH_RETRY = 0.5
#: Round trips in flight at once on the ordinary client, hence its connections (the two blocking
#: loops hold one each on their own client): an instance's Redis connections stay bounded
#: however many calls it has in flight.
MAX_CONCURRENT_OPS = 8
#: Lifetime of the stream reader's wake stream after its last wake. Short, so that an idle Redis
#: soon returns to its baseline key count; a wake stream that expired and is re-created gets
#: larger ids (time-based), so the reader still sees the next wake.
WAKE_TTL = 1.0
#: How long a stream that must join the shared read waits for the read in flight to end by
#: itself before interrupting it (bench_signaling: fewer wakes and rounds under load).
WAKE_DELAY = 0.002

_ANSWERER_GONE = "answerer went away before finishing the exchange"

# --- Lua: each script touches the keys of one hash slot only -----------------------------------------

# KEYS: callers, answerers, meta, offers. ARGV: mode, now_ms, max_callers, uuid, deadline_ms, sdp, trickle,
# caller (the auth entity the call is bound to).
# mode admit: -1 over the caller cap; else the caller is counted, and with answerers present the
# call is created and queued (-> their number), without (-> 0) nothing more. mode queue: create
# and queue (-> 1), for a caller admitted earlier. One round trip in the common case.
_OFFER = """
local now, deadline = tonumber(ARGV[2]), tonumber(ARGV[5])
local present = 1
if ARGV[1] == 'admit' then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
  if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return -1 end
  redis.call('ZADD', KEYS[1], deadline, ARGV[4])
  if redis.call('PEXPIRETIME', KEYS[1]) < deadline then redis.call('PEXPIREAT', KEYS[1], deadline) end
  present = redis.call('ZCOUNT', KEYS[2], '(' .. now, '+inf')
  if present == 0 then return 0 end
end
redis.call('HSET', KEYS[3], 'sdp', ARGV[6], 'trickle', ARGV[7], 'caller', ARGV[8], 'created', now, 'deadline', deadline,
           'claimed', '0', 'caller_terminal', '0', 'answerer_terminal', '0', 'caller_cands', 0, 'answerer_cands', 0)
redis.call('PEXPIREAT', KEYS[3], deadline)
redis.call('RPUSH', KEYS[4], ARGV[4])
if redis.call('PEXPIRETIME', KEYS[4]) < deadline then redis.call('PEXPIREAT', KEYS[4], deadline) end
return present
"""

# KEYS: answerers. ARGV: now_ms, max_answerers, member, expiry_ms. -> 1 added, 0 over the cap.
_PRESENCE_ENTER = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[4], ARGV[3])
redis.call('PEXPIREAT', KEYS[1], ARGV[4])
return 1
"""

# KEYS: meta. ARGV: now_ms, close_to_expired_factor.
# -> nil (gone, claimed, or nearly expired) or {sdp, trickle, deadline_ms, caller}.
_CLAIM = """
local f = redis.call('HMGET', KEYS[1], 'sdp', 'trickle', 'created', 'deadline', 'claimed', 'caller')
if not f[1] or f[5] == '1' then return false end
local created, deadline = tonumber(f[3]), tonumber(f[4])
if deadline - tonumber(ARGV[1]) <= tonumber(ARGV[2]) * (deadline - created) then return false end
redis.call('HSET', KEYS[1], 'claimed', '1')
return {f[1], f[2], f[4], f[6]}
"""

# KEYS: meta, offers. ARGV: uuid, unclaim (1/0). Put a popped offer back at the head of its list,
# claimable again, if the call is still live. The list gets (at least) the call's expiry: a list
# emptied by the pop no longer exists, and LPUSH alone would recreate it without a TTL.
# -> 1 requeued, 0 the call is gone.
_REQUEUE = """
local expiry = redis.call('PEXPIRETIME', KEYS[1])
if expiry < 0 then return 0 end
if ARGV[2] == '1' then redis.call('HSET', KEYS[1], 'claimed', '0') end
redis.call('LPUSH', KEYS[2], ARGV[1])
if redis.call('PEXPIRETIME', KEYS[2]) < expiry then redis.call('PEXPIREAT', KEYS[2], expiry) end
return 1
"""

# The caller's writes. KEYS: meta, to_answerer, to_caller, callers, offers. ARGV: uuid, kind, a, b,
# max_candidates, caller (a call made by another caller is no call at all for this one).
# kind cand (a = candidate JSON), done, error (a = code, b = message), close (a, b: the Call
# failed; the caller also stops counting against the cap, and an unclaimed offer is withdrawn).
# -> -1 no such live call, -2 over the candidate cap, 0 no-op, 1 done.
_CALLER = """
local m = redis.call('HMGET', KEYS[1], 'deadline', 'caller_terminal', 'caller_cands', 'deadline', 'claimed',
                     'answerer_terminal', 'caller')
local kind = ARGV[2]
if kind == 'close' then redis.call('ZREM', KEYS[4], ARGV[1]) end
if not m[1] or m[7] ~= ARGV[6] then
  if kind == 'close' then redis.call('DEL', KEYS[3]) return 0 end
  return -1
end
if m[2] == '1' then
  if kind == 'cand' then return -1 end
  if kind == 'close' then
    redis.call('DEL', KEYS[1], KEYS[3])
    if m[5] ~= '1' then redis.call('LREM', KEYS[5], 1, ARGV[1]) end
  end
  return 0
end
if kind == 'cand' then
  if tonumber(m[3]) >= tonumber(ARGV[5]) then return -2 end
  redis.call('HINCRBY', KEYS[1], 'caller_cands', 1)
  redis.call('XADD', KEYS[2], '*', 'k', 'cand', 'v', ARGV[3])
  redis.call('PEXPIREAT', KEYS[2], m[4])
  return 1
end
redis.call('HSET', KEYS[1], 'caller_terminal', '1')
if kind == 'done' then
  redis.call('XADD', KEYS[2], '*', 'k', 'done')
  redis.call('PEXPIREAT', KEYS[2], m[4])
  return 1
end
if m[5] == '1' then
  redis.call('XADD', KEYS[2], '*', 'k', 'fail', 'c', ARGV[3], 'm', ARGV[4])
  redis.call('PEXPIREAT', KEYS[2], m[4])
else
  redis.call('DEL', KEYS[2])
end
if kind == 'close' then
  redis.call('DEL', KEYS[3])
elseif m[6] ~= '1' then
  redis.call('XADD', KEYS[3], '*', 'k', 'abort', 'c', ARGV[3], 'm', ARGV[4])
  redis.call('PEXPIREAT', KEYS[3], m[4])
end
redis.call('DEL', KEYS[1])
if m[5] ~= '1' then redis.call('LREM', KEYS[5], 1, ARGV[1]) end
return 1
"""

# The answerer's writes. KEYS: meta, to_answerer, to_caller. ARGV: kind, a, b, max_candidates.
# kind init (a = sdp), cand (a = candidate JSON), fail (a = code, b = message), done, close.
# -> -1 no such live call (or the answerer already finished), -2 over the candidate cap, 0 no-op, 1 ok.
_ANSWERER = """
local m = redis.call('HMGET', KEYS[1], 'answerer_terminal', 'answerer_cands', 'deadline')
local kind = ARGV[1]
if not m[3] then
  if kind == 'close' then redis.call('DEL', KEYS[2]) return 0 end
  if kind == 'done' then return 0 end
  return -1
end
if m[1] == '1' then
  if kind == 'close' then redis.call('DEL', KEYS[1], KEYS[2]) return 0 end
  if kind == 'done' then return 0 end
  return -1
end
if kind == 'cand' then
  if tonumber(m[2]) >= tonumber(ARGV[4]) then return -2 end
  redis.call('HINCRBY', KEYS[1], 'answerer_cands', 1)
  redis.call('XADD', KEYS[3], '*', 'k', 'cand', 'v', ARGV[2])
elseif kind == 'init' then
  redis.call('XADD', KEYS[3], '*', 'k', 'init', 'v', ARGV[2])
else
  redis.call('HSET', KEYS[1], 'answerer_terminal', '1')
  if kind == 'done' then
    redis.call('XADD', KEYS[3], '*', 'k', 'done')
  else
    redis.call('XADD', KEYS[3], '*', 'k', 'fail', 'c', ARGV[2], 'm', ARGV[3])
  end
end
redis.call('PEXPIREAT', KEYS[3], m[3])
if kind == 'close' then redis.call('DEL', KEYS[1], KEYS[2]) end
return 1
"""


def _ms(seconds: float) -> int:
    return int(seconds * 1000)


def _status(code: str) -> Status:
    try:
        return Status(int(code))
    except ValueError:
        return Status.UNKNOWN


def _candidate_json(candidate: IceCandidate) -> str:
    return json.dumps(candidate_to_init(candidate), separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class RedisQueueStats:
    """What Redis holds for calls (all instances) plus this instance's waiters; drains to zero when idle."""

    calls: int
    pending: int
    waiting_answerers: int
    present: dict[str, int] = field(default_factory=dict)
    callers: dict[str, int] = field(default_factory=dict)


@dataclass(eq=False, slots=True)
class _Waiter:
    hosts: tuple[str, ...]
    future: asyncio.Future[_RedisAnswererExchange]


class _Keys:
    """Every key name in one place (see the module docstring)."""

    def __init__(self, prefix: str, instance: str) -> None:
        self.prefix = prefix
        self.instance = f"{prefix}:inst:{{{instance}}}"
        self.wake = f"{prefix}:wake:{{{instance}}}"
        self.read_wake = f"{prefix}:rwake:{{{instance}}}"

    def answerers(self, host: str) -> str:
        return f"{self.prefix}:answerers:{{{host}}}"

    def callers(self, host: str) -> str:
        return f"{self.prefix}:callers:{{{host}}}"

    def offers(self, host: str) -> str:
        return f"{self.prefix}:offers:{{{host}}}"

    def call(self, host: str, uuid: str) -> list[str]:
        """meta, to_answerer, to_caller: tagged with the host, so that one script can also touch
        the host's caller set and offer list (one hash slot). A uuid under another host names
        no key at all: the uuid → host binding comes for free."""
        meta = f"{self.prefix}:call:{{{host}}}:{uuid}"
        return [meta, meta + ":a", meta + ":c"]


def _stream_id(entry_id: str) -> tuple[int, int]:
    """A stream entry id ``ms-seq`` as a comparable pair."""
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


class _StreamReader:
    """Reads one per-call stream from id 0, in order, through the instance's :class:`_StreamMux`.

    Whatever the mux reads for it lands in ``buffer`` (and ``last`` moves on) even while nobody
    waits in :meth:`next`, so a cancelled ``next`` loses nothing: the next call returns it.
    """

    def __init__(self, queue: RedisCallQueue, key: str) -> None:
        self.queue = queue
        self.key = key
        self.last = "0-0"
        self.buffer: deque[dict[str, str]] = deque()
        self.error: StoreUnavailableError | None = None
        self.ready = asyncio.Event()
        self.registered = False

    async def next(self) -> dict[str, str] | None:
        """The next entry, or None once the queue is closed locally."""
        while True:
            if self.buffer:
                return self.buffer.popleft()
            if self.queue.closed:
                return None
            if self.error is not None:
                error, self.error = self.error, None
                raise error
            self.ready.clear()
            if not self.registered:
                self.queue._mux.add(self)
            await self.ready.wait()  # set by every mux round that reads for us, fails, or closes

    def close(self) -> None:
        """The iterator finished: stop reading this stream."""
        self.queue._mux.discard(self)


class _StreamMux:
    """One blocking ``XREAD`` per instance over every per-call stream that has a local reader.

    Readers stay registered until their stream's terminal entry or their exchange's close (and
    only weakly: an iterator dropped and collected before either leaves too); between entries they
    stay covered, so each round serves every stream that has something new. A reader that
    registers a stream the read in flight does not cover wakes it by adding to this instance's
    wake stream, which the read always includes; at most one wake per round. Every round
    re-sends every key: the read's cost grows with the streams read (see bench_signaling).
    A failed round fails every registered reader with :class:`StoreUnavailableError` and forgets
    them: each registers again (and so retries) only if its owner reads again.
    """

    def __init__(self, queue: RedisCallQueue) -> None:
        self._queue = queue
        self._readers: weakref.WeakSet[_StreamReader] = weakref.WeakSet()
        #: stream -> id that the read in flight reads it from; empty while idle.
        self._reading: dict[str, str] = {}
        self._wake_sent = False
        self._wake_last = "0-0"
        #: counts rounds, so that a late wake sees that its round already ended.
        self._round = 0
        self._changed = asyncio.Event()
        self._block = str(queue._block_ms).encode()

    def __len__(self) -> int:
        return len(self._readers)

    def add(self, reader: _StreamReader) -> None:
        """Cover ``reader`` from the next round on; interrupt the round in flight if it must."""
        self._readers.add(reader)
        reader.registered = True
        if not self._reading:
            self._changed.set()
            return
        covered = self._reading.get(reader.key)
        if self._wake_sent or (covered is not None and _stream_id(covered) <= _stream_id(reader.last)):
            return
        self._wake_sent = True
        queue = self._queue
        # Not the reader's to await: cancelling it must not cancel a wake other readers rely on.
        task = asyncio.create_task(self._wake(self._round), name="signaling-redis-read-wake")
        queue._background.add(task)
        task.add_done_callback(queue._background.discard)

    async def _wake(self, round_: int) -> None:
        """Interrupt round ``round_`` unless it ends by itself within ``WAKE_DELAY``: under load
        rounds end every millisecond or two, and each wake costs a round trip plus a round."""
        await asyncio.sleep(WAKE_DELAY)
        queue = self._queue
        if self._round != round_ or queue.closed:
            return
        try:
            async with queue._redis.pipeline(transaction=False) as pipe:
                pipe.xadd(queue._keys.read_wake, {"w": "1"}, maxlen=1, approximate=False)
                pipe.pexpire(queue._keys.read_wake, _ms(WAKE_TTL))
                await queue._op(pipe.execute())
        except (StoreUnavailableError, QueueClosedError) as exc:  # the round in flight fails by itself
            logger.debug("stream read not woken: %s", exc)

    def discard(self, reader: _StreamReader) -> None:
        self._readers.discard(reader)
        reader.registered = False

    def fail(self, error: StoreUnavailableError | None) -> None:
        """Every registered reader gets ``error`` (None: the queue closed) and is forgotten."""
        for reader in list(self._readers):
            reader.error = error
            reader.registered = False
            reader.ready.set()
        self._readers.clear()
        self._changed.set()

    async def run(self) -> None:
        queue = self._queue
        wake = queue._keys.read_wake
        while not queue.closed:
            streams: dict[str, str] = {}
            for reader in self._readers:  # the lowest id of a stream's readers (there is one, normally)
                since = streams.get(reader.key)
                if since is None or (since != reader.last and _stream_id(reader.last) < _stream_id(since)):
                    streams[reader.key] = reader.last
            if not streams:
                self._reading = {}
                self._changed.clear()
                await self._changed.wait()
                continue
            streams[wake] = self._wake_last
            self._reading = streams
            self._wake_sent = False
            self._round += 1
            try:
                # Every round re-sends every key, so they go pre-encoded: redis-py's per-argument
                # encoding was the larger part of this loop's CPU with hundreds of streams.
                keys = [key.encode() for key in streams]
                reply: list[tuple[str, list[tuple[str, dict[str, str]]]]] | None = await queue._op(
                    queue._blocking.execute_command(  # type: ignore[no-untyped-call]
                        "XREAD", b"COUNT", b"64", b"BLOCK", self._block, b"STREAMS", *keys, *streams.values()
                    ),
                    queue._blocking_budget,
                    blocking=True,
                )
            except QueueClosedError:
                break
            except StoreUnavailableError as exc:
                self._reading = {}
                self.fail(exc)
                continue
            except Exception as exc:  # a bug here must not leave every reader waiting forever
                logger.exception("stream read failed")
                self._reading = {}
                self.fail(StoreUnavailableError(exc))
                continue
            self._deliver(wake, reply or ())
            # Let the readers just served run first: one that got its stream's last entry leaves
            # now, instead of being read again by the next round (whose re-issue, once the
            # next call arrives, would then cost a wake).
            await asyncio.sleep(0)
        self._reading = {}

    def _deliver(self, wake: str, reply: Sequence[tuple[str, list[tuple[str, dict[str, str]]]]]) -> None:
        by_key: dict[str, list[_StreamReader]] = {}
        for reader in self._readers:
            by_key.setdefault(reader.key, []).append(reader)
        for key, entries in reply:
            if key == wake:
                if entries:
                    self._wake_last = entries[-1][0]
                continue
            for reader in by_key.get(key, ()):
                after = _stream_id(reader.last)
                for entry_id, fields in entries:
                    if _stream_id(entry_id) > after:
                        reader.buffer.append(fields)
                        reader.last = entry_id
                reader.ready.set()


class _AnswerIterator:
    """``CallerExchange.answers()`` over the ``:c`` stream (a class: abandoning it leaves nothing behind)."""

    def __init__(self, queue: RedisCallQueue, key: str) -> None:
        self._reader = _StreamReader(queue, key)
        self._finished = False

    def __aiter__(self) -> _AnswerIterator:
        return self

    def _finish(self) -> None:
        self._finished = True
        self._reader.close()

    async def __anext__(self) -> AnswererEvent:
        if self._finished:
            raise StopAsyncIteration
        entry = await self._reader.next()
        if entry is None:
            self._finish()
            return AnswerFailed(ErrorStatus(Status.UNAVAILABLE, QueueClosedError().message))
        kind = entry.get("k")
        if kind == "init":
            return AnswerInit(entry["v"])
        if kind == "cand":
            return AnswerCandidate(candidate_from_init(json.loads(entry["v"])))
        self._finish()
        if kind == "done":
            raise StopAsyncIteration
        error = ErrorStatus(_status(entry.get("c", "")), entry.get("m", ""))
        if kind == "abort":
            raise RemoteError(f"call aborted by caller: {error.message}", status=error.code)
        return AnswerFailed(error)


class _CallerEventIterator:
    def __init__(self, queue: RedisCallQueue, key: str) -> None:
        self._reader = _StreamReader(queue, key)
        self._finished = False

    def __aiter__(self) -> _CallerEventIterator:
        return self

    def _finish(self) -> None:
        self._finished = True
        self._reader.close()

    async def __anext__(self) -> CallerEvent:
        if self._finished:
            raise StopAsyncIteration
        entry = await self._reader.next()
        if entry is None:
            self._finish()
            return CallerFailed(ErrorStatus(Status.UNAVAILABLE, QueueClosedError().message))
        kind = entry.get("k")
        if kind == "cand":
            return CallerCandidate(candidate_from_init(json.loads(entry["v"])))
        self._finish()
        if kind == "done":
            return CallerDone()
        return CallerFailed(ErrorStatus(_status(entry.get("c", "")), entry.get("m", "")))


class _RedisCallerExchange(CallerExchange):
    def __init__(self, queue: RedisCallQueue, uuid: str, host: str, caller: str, deadline: float) -> None:
        self.uuid = uuid
        self.host = host
        self.caller = caller
        self.deadline = deadline
        self._queue = queue
        self._closed = False
        self._readers: list[_StreamReader] = []

    def answers(self) -> AsyncIterator[AnswererEvent]:
        iterator = _AnswerIterator(self._queue, self._queue._keys.call(self.host, self.uuid)[2])
        self._readers.append(iterator._reader)
        return iterator

    async def close(self, error: ErrorStatus | None) -> None:
        for reader in self._readers:  # an iterator abandoned unfinished stops being read now
            reader.close()
        if self._closed:
            return
        self._closed = True
        self._queue._calling.discard(self)
        await self._queue._caller_closed(self, error)


class _RedisAnswererExchange(AnswererExchange):
    def __init__(
        self, queue: RedisCallQueue, uuid: str, host: str, caller: str, sdp: str, disable_trickle: bool, deadline: float
    ) -> None:
        self.uuid = uuid
        self.host = host
        self.caller = caller
        self.sdp = sdp
        self.disable_trickle = disable_trickle
        self.deadline = deadline
        self._queue = queue
        self._terminal = False
        self._closed = False
        self._readers: list[_StreamReader] = []

    def caller_events(self) -> AsyncIterator[CallerEvent]:
        iterator = _CallerEventIterator(self._queue, self._queue._keys.call(self.host, self.uuid)[1])
        self._readers.append(iterator._reader)
        return iterator

    async def respond(self, event: AnswererEvent) -> None:
        if isinstance(event, AnswerInit):
            await self._write("init", event.sdp)
        elif isinstance(event, AnswerCandidate):
            await self._write("cand", _candidate_json(event.candidate))
        else:
            await self._write("fail", str(event.error.code.value), event.error.message)
            self._terminal = True

    async def done(self) -> None:
        if not self._terminal:
            await self._write("done")
            self._terminal = True

    async def close(self) -> None:
        for reader in self._readers:  # an iterator abandoned unfinished stops being read now
            reader.close()
        if self._closed:
            return
        self._closed = True
        self._queue._answering.discard(self)
        if self._queue.closed:
            return
        try:
            await self._write("close", str(Status.UNAVAILABLE.value), _ANSWERER_GONE)
        except StoreUnavailableError as exc:  # the caller fails at its deadline instead
            logger.info("call(%s): cannot tell the caller the answerer left: %s", self.uuid, exc.message)

    async def _write(self, kind: str, a: str = "", b: str = "") -> None:
        queue = self._queue
        queue._check_open()
        result = await queue._op(
            queue._answerer_script(
                keys=queue._keys.call(self.host, self.uuid), args=[kind, a, b, queue._max_candidates]
            )
        )
        if result == -1:
            raise InactiveOfferError(self.uuid)
        if result == -2:
            raise TooManyCandidatesError(self.uuid, queue._max_candidates)


class RedisCallQueue(CallQueue):
    """The call queue shared by every signaling instance connected to one Redis.

    Create it with :meth:`connect`; :meth:`close` stops this instance (its answerers leave at once).
    """

    def __init__(
        self,
        redis: Redis,
        blocking: Redis,
        *,
        max_callers_per_host: int,
        max_answerers_per_host: int,
        max_candidates_per_call: int,
        offline_delay: float,
        close_to_expired_factor: float,
        refresh_interval: float,
        presence_ttl: float,
        op_timeout: float,
        block_timeout: float,
        presence_poll: float,
        prefix: str,
        max_concurrent_ops: int = MAX_CONCURRENT_OPS,
    ) -> None:
        """Use :meth:`connect`; this only wires up two already-configured clients."""
        self._redis = redis
        self._blocking = blocking
        self._max_callers = max_callers_per_host
        self._max_answerers = max_answerers_per_host
        self._max_candidates = max_candidates_per_call
        self._offline_delay = offline_delay
        self._close_to_expired = close_to_expired_factor
        self.refresh_interval = refresh_interval
        self.presence_ttl = presence_ttl
        self._op_timeout = op_timeout
        self._block_ms = max(1, _ms(block_timeout))
        #: a blocking read waits up to block_timeout inside Redis, then needs its round trip.
        self._blocking_budget = block_timeout + op_timeout
        self._presence_poll = presence_poll
        self.instance_id = uuid_mod.uuid4().hex[:16]
        self._keys = _Keys(prefix, self.instance_id)
        self._offer_script = redis.register_script(_OFFER)
        self._enter_script = redis.register_script(_PRESENCE_ENTER)
        self._claim_script = redis.register_script(_CLAIM)
        self._requeue_script = redis.register_script(_REQUEUE)
        self._caller_script = redis.register_script(_CALLER)
        self._answerer_script = redis.register_script(_ANSWERER)
        self._member_ids = itertools.count()
        #: member -> hosts: this instance's open Answer streams, refreshed in Redis.
        self._presence: dict[str, tuple[str, ...]] = {}
        self._waiters: dict[str, list[_Waiter]] = {}
        #: hosts the dispatcher's current blocking pop covers.
        self._popping: frozenset[str] = frozenset()
        self._waiters_changed = asyncio.Event()
        #: this instance's open exchanges, whose other ends are told when it closes.
        self._answering: set[_RedisAnswererExchange] = set()
        self._calling: set[_RedisCallerExchange] = set()
        self._background: set[asyncio.Task[None]] = set()
        self._store_healthy = True
        self.closed = False
        self._tasks: list[asyncio.Task[None]] = []
        self._mux = _StreamMux(self)
        self._slots = asyncio.Semaphore(max_concurrent_ops)

    @classmethod
    async def connect(
        cls,
        url: str,
        *,
        max_callers_per_host: int = MAX_HOST_CALLERS,
        max_answerers_per_host: int = MAX_HOST_ANSWERERS,
        max_candidates_per_call: int = MAX_CANDIDATES_PER_CALL,
        offline_delay: float = OFFLINE_HOST_RETRY_DELAY,
        close_to_expired_factor: float = OFFER_CLOSE_TO_EXPIRED_FACTOR,
        refresh_interval: float = REFRESH_INTERVAL,
        presence_ttl: float = PRESENCE_TTL,
        op_timeout: float = OP_TIMEOUT,
        block_timeout: float = BLOCK_TIMEOUT,
        presence_poll: float = PRESENCE_POLL,
        prefix: str = "sig",
        max_concurrent_ops: int = MAX_CONCURRENT_OPS,
    ) -> RedisCallQueue:
        """Connect to ``url`` (``redis://host:port/db``) and start this instance's refresh and dispatch tasks.

        Raises :class:`~signaling.errors.StoreUnavailableError` when Redis does not answer within
        ``op_timeout``. No command is retried: a failure is reported at once, the caller redials.
        """
        common: dict[str, Any] = {
            "decode_responses": True,
            "socket_timeout": None,  # every round trip is bounded by _op instead
            "socket_connect_timeout": op_timeout,
            "retry": Retry(NoBackoff(), 0),
            # A new connection is one round trip (no CLIENT SETINFO, no maintenance-notification
            # probe that redis-server 7 rejects): 5 ms down to 1 ms, which matters in a burst.
            "driver_info": None,
            "maint_notifications_config": MaintNotificationsConfig(enabled=False),
        }
        # At most max_concurrent_ops round trips at once (_op), so at most as many connections; the
        # pool's own cap is only a backstop (over it redis-py fails a command, it does not wait).
        redis: Redis = Redis.from_url(url, max_connections=max_concurrent_ops + 16, **common)
        # The dispatcher's BLPOP and the stream mux's XREAD hold their connection while they
        # wait in Redis: a pool of their own, one connection each.
        blocking: Redis = Redis.from_url(url, max_connections=8, **common)
        queue = cls(
            redis,
            blocking,
            max_callers_per_host=max_callers_per_host,
            max_answerers_per_host=max_answerers_per_host,
            max_candidates_per_call=max_candidates_per_call,
            offline_delay=offline_delay,
            close_to_expired_factor=close_to_expired_factor,
            refresh_interval=refresh_interval,
            presence_ttl=presence_ttl,
            op_timeout=op_timeout,
            block_timeout=block_timeout,
            presence_poll=presence_poll,
            prefix=prefix,
            max_concurrent_ops=max_concurrent_ops,
        )
        try:
            await queue._refresh()
        except BaseException:
            await redis.aclose()
            await blocking.aclose()
            raise
        queue._tasks = [
            asyncio.create_task(queue._refresh_loop(), name="signaling-redis-refresh"),
            asyncio.create_task(queue._dispatch_loop(), name="signaling-redis-dispatch"),
            asyncio.create_task(queue._mux.run(), name="signaling-redis-streams"),
        ]
        logger.info("signaling instance %s on Redis %s", queue.instance_id, url)
        return queue

    # --- caller side ------------------------------------------------------------------------------------

    async def send_offer_init(
        self, host: str, sdp: str, disable_trickle: bool, *, deadline: float, caller: str = ""
    ) -> CallerExchange:
        self._check_open()
        uuid = str(uuid_mod.uuid4())
        keys = [self._keys.callers(host), self._keys.answerers(host), *self._keys.call(host, uuid)[:1]]
        keys.append(self._keys.offers(host))
        args: list[str | int] = ["admit", _ms(time.time()), self._max_callers, uuid, _ms(deadline), sdp]
        args += ["1" if disable_trickle else "0", caller]
        answerers = await self._op(self._offer_script(keys=keys, args=args))
        if answerers == -1:
            raise TooManyCallersError(host)
        if not answerers:
            try:
                await self._wait_for_presence(host, min(self._offline_delay, deadline - time.time()))
                self._check_open()
                args[:2] = ["queue", _ms(time.time())]
                await self._op(self._offer_script(keys=keys, args=args))
            except BaseException:
                await self._quietly(self._redis.zrem(keys[0], uuid))
                raise
        logger.debug("call(%s) queued for host %r", uuid, host)
        exchange = _RedisCallerExchange(self, uuid, host, caller, deadline)
        self._calling.add(exchange)
        return exchange

    async def send_offer_update(self, host: str, uuid: str, candidate: IceCandidate, *, caller: str = "") -> None:
        result = await self._caller_write(host, uuid, caller, "cand", _candidate_json(candidate))
        if result == -2:
            raise TooManyCandidatesError(uuid, self._max_candidates)

    async def send_offer_done(self, host: str, uuid: str, *, caller: str = "") -> None:
        await self._caller_write(host, uuid, caller, "done")

    async def send_offer_error(self, host: str, uuid: str, error: ErrorStatus, *, caller: str = "") -> None:
        await self._caller_write(host, uuid, caller, "error", str(error.code.value), error.message)

    # --- answerer side ----------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def answerer_presence(self, hosts: Sequence[str]) -> AsyncIterator[None]:
        self._check_open()
        member = f"{self.instance_id}:{next(self._member_ids)}"
        entered: list[str] = []
        try:
            for host in hosts:
                expiry = _ms(time.time() + self.presence_ttl)
                added = await self._op(
                    self._enter_script(
                        keys=[self._keys.answerers(host)],
                        args=[_ms(time.time()), self._max_answerers, member, expiry],
                    )
                )
                if not added:
                    raise TooManyAnswerersError(host)
                entered.append(host)
            self._presence[member] = tuple(hosts)
        except BaseException:
            await self._leave(member, entered)
            raise
        try:
            yield
        finally:
            self._presence.pop(member, None)
            await self._leave(member, entered)

    async def recv_offer(self, hosts: Sequence[str]) -> AnswererExchange:
        if not hosts:
            raise ValueError("recv_offer needs at least one host")
        self._check_open()
        waiter = _Waiter(tuple(hosts), asyncio.get_running_loop().create_future())
        for host in waiter.hosts:
            self._waiters.setdefault(host, []).append(waiter)
        try:
            if not set(waiter.hosts) <= self._popping:
                await self._wake_dispatcher()
            exchange = await waiter.future
        except asyncio.CancelledError:
            future = waiter.future
            if future.done() and not future.cancelled() and future.exception() is None:
                # Handed an offer in the same loop iteration we were cancelled: pass it on.
                self._unregister(waiter)
                self._redispatch(future.result())
            raise
        finally:
            self._unregister(waiter)
        self._answering.add(exchange)
        logger.debug("call(%s) claimed for host %r", exchange.uuid, exchange.host)
        return exchange

    # --- lifecycle --------------------------------------------------------------------------------------

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for waiters in list(self._waiters.values()):
            for waiter in waiters:
                if not waiter.future.done():
                    waiter.future.set_exception(QueueClosedError())
        self._waiters_changed.set()
        self._mux.fail(None)  # every local stream reader ends: the queue is closed
        tasks = [*self._tasks, *self._background]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=self._op_timeout * 2)
        for task in tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                logger.warning("%s ended with %r", task.get_name(), task.exception())
        # Our answerers leave now rather than when their scores pass; our calls' callers are told.
        closed = ErrorStatus(Status.UNAVAILABLE, QueueClosedError().message)
        with contextlib.suppress(Exception):
            async with asyncio.timeout(self._op_timeout):
                async with self._redis.pipeline(transaction=False) as pipe:
                    for member, hosts in self._presence.items():
                        for host in hosts:
                            pipe.zrem(self._keys.answerers(host), member)
                    for exchange in self._answering:
                        await self._answerer_script(
                            keys=self._keys.call(exchange.host, exchange.uuid),
                            args=["fail", str(closed.code.value), closed.message, self._max_candidates],
                            client=pipe,
                        )
                    for caller in self._calling:
                        keys = self._keys.call(caller.host, caller.uuid)
                        keys += [self._keys.callers(caller.host), self._keys.offers(caller.host)]
                        args: list[str | int] = [caller.uuid, "close", str(closed.code.value), closed.message]
                        args += [self._max_candidates, caller.caller]
                        await self._caller_script(keys=keys, args=args, client=pipe)
                    pipe.delete(self._keys.instance, self._keys.wake, self._keys.read_wake)
                    await pipe.execute()
        self._presence.clear()
        self._answering.clear()
        self._calling.clear()
        await self._redis.aclose()
        await self._blocking.aclose()

    async def stats(self) -> RedisQueueStats:
        """A snapshot for tests and ``/stats``; scans the key space, so not for hot paths."""
        prefix = self._keys.prefix
        calls = pending = 0
        present: dict[str, int] = {}
        callers: dict[str, int] = {}
        now = f"({_ms(time.time())}"
        keys: list[str] = []
        cursor: int = 0
        while True:  # SCAN one page per bounded round trip (scan_iter would be unbounded)
            cursor, page = await self._op(self._redis.scan(cursor, match=f"{prefix}:*", count=1000))
            keys.extend(str(key) for key in page)  # decode_responses: already str
            if not cursor:
                break
        for key in keys:
            kind, _, rest = key[len(prefix) + 1 :].partition(":")
            name = rest[1:-1] if rest.startswith("{") and rest.endswith("}") else None
            if kind == "call" and ":" not in rest.rpartition("}:")[2]:  # the hash, not a stream
                calls += 1
            elif kind == "offers":
                pending += await self._op(self._redis.llen(key))
            elif kind in ("answerers", "callers") and name is not None:
                count = await self._op(self._redis.zcount(key, now, "+inf"))
                if count:
                    (present if kind == "answerers" else callers)[name] = count
        waiting = len({id(w) for waiters in self._waiters.values() for w in waiters})
        return RedisQueueStats(calls, pending, waiting, present, callers)

    # --- internals ----------------------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self.closed:
            raise QueueClosedError()

    async def _op(self, awaitable: Awaitable[T], timeout: float | None = None, *, blocking: bool = False) -> T:
        """Run one Redis round trip within ``timeout`` (``op_timeout`` by default); any Redis or
        socket failure, or the timeout, becomes StoreUnavailableError.

        An ordinary round trip (not ``blocking``) first takes one of ``max_concurrent_ops`` slots,
        within the same budget: that caps the ordinary client's connections, which redis-py
        otherwise opens one per concurrent command (a burst of 300 calls meant 300 connections).

        The clients have no socket timeout of their own: with one, redis-py writes through
        ``asyncio.wait_for``, which on Python 3.11 swallows a cancellation arriving as the write
        completes (fixed in 3.12), and a cancelled Call handler would sit out a blocking read.
        ``asyncio.timeout`` has no such hole; a cancel that slipped through anyway is re-raised.
        """
        task = asyncio.current_task()
        cancels = task.cancelling() if task is not None else 0
        budget = self._op_timeout if timeout is None else timeout
        started = False
        try:
            async with asyncio.timeout(budget):
                if blocking:
                    started = True
                    result = await awaitable
                else:
                    async with self._slots:
                        started = True
                        result = await awaitable
        except TimeoutError as exc:
            if self.closed:
                raise QueueClosedError() from exc
            raise StoreUnavailableError(f"no reply within {budget:g}s") from exc
        except (RedisError, OSError) as exc:
            if self.closed:
                raise QueueClosedError() from exc
            raise StoreUnavailableError(exc) from exc
        finally:
            if not started and isinstance(awaitable, Coroutine):
                awaitable.close()  # never awaited: no "was never awaited" warning
        if task is not None and task.cancelling() > cancels:
            raise asyncio.CancelledError()
        return result

    async def _quietly(self, awaitable: Awaitable[Any]) -> None:
        """Best-effort cleanup: TTLs remove whatever this fails to."""
        try:
            await self._op(awaitable)
        except (StoreUnavailableError, QueueClosedError) as exc:
            logger.debug("cleanup skipped: %s", exc)

    async def _caller_write(self, host: str, uuid: str, caller: str, kind: str, a: str = "", b: str = "") -> int:
        self._check_open()
        keys = [*self._keys.call(host, uuid), self._keys.callers(host), self._keys.offers(host)]
        result: int = await self._op(
            self._caller_script(keys=keys, args=[uuid, kind, a, b, self._max_candidates, caller])
        )
        if result == -1:
            raise InactiveOfferError(uuid)
        return result

    async def _caller_closed(self, caller: _RedisCallerExchange, error: ErrorStatus | None) -> None:
        if self.closed:
            return
        keys = self._keys
        if error is None:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.zrem(keys.callers(caller.host), caller.uuid)
                pipe.delete(keys.call(caller.host, caller.uuid)[2])  # this caller was its only reader
                await self._quietly(pipe.execute())
            return
        try:
            await self._caller_write(
                caller.host, caller.uuid, caller.caller, "close", str(error.code.value), error.message
            )
        except (StoreUnavailableError, QueueClosedError) as exc:
            logger.debug("call(%s): close not recorded: %s", caller.uuid, exc)

    async def _wait_for_presence(self, host: str, timeout: float) -> None:
        """Poll the answerer count until one shows up; NOT_FOUND once ``timeout`` has passed."""
        if timeout <= 0:
            raise HostOfflineError(host)
        give_up = time.monotonic() + timeout
        key = self._keys.answerers(host)
        while True:
            await asyncio.sleep(min(self._presence_poll, max(0.0, give_up - time.monotonic())))
            self._check_open()
            if await self._op(self._redis.zcount(key, f"({_ms(time.time())}", "+inf")):
                return
            if time.monotonic() >= give_up:
                logger.info("no answerer for host %r within %.1fs: reporting it offline", host, timeout)
                raise HostOfflineError(host)

    async def _leave(self, member: str, hosts: Sequence[str]) -> None:
        if self.closed or not hosts:
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            for host in hosts:
                pipe.zrem(self._keys.answerers(host), member)
            await self._quietly(pipe.execute())

    async def _refresh(self) -> None:
        """Keep this instance and its answerers present for another ``presence_ttl``."""
        expiry = _ms(time.time() + self.presence_ttl)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.set(self._keys.instance, "1", pxat=expiry)
            for member, hosts in self._presence.items():
                for host in hosts:
                    key = self._keys.answerers(host)
                    pipe.zadd(key, {member: expiry})
                    pipe.pexpireat(key, expiry)
            await self._op(pipe.execute())

    async def _refresh_loop(self) -> None:
        while not self.closed:
            await asyncio.sleep(self.refresh_interval)
            try:
                await self._refresh()
            except QueueClosedError:
                return
            except StoreUnavailableError as exc:
                if self._store_healthy:
                    logger.warning("cannot refresh presence: %s", exc.message)
                self._store_healthy = False
            else:
                if not self._store_healthy:
                    logger.warning("signaling store reachable again")
                self._store_healthy = True

    async def _wake_dispatcher(self) -> None:
        """The dispatcher must cover a new host: wake it if idle, or interrupt its blocking pop."""
        if not self._popping:
            self._waiters_changed.set()
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.rpush(self._keys.wake, "1")
            pipe.pexpire(self._keys.wake, _ms(self.presence_ttl))
            await self._op(pipe.execute())

    def _unregister(self, waiter: _Waiter) -> None:
        for host in waiter.hosts:
            waiters = self._waiters.get(host)
            if waiters is None:
                continue
            with contextlib.suppress(ValueError):
                waiters.remove(waiter)
            if not waiters:
                del self._waiters[host]

    def _local_waiter(self, host: str) -> _Waiter | None:
        for waiter in self._waiters.get(host, ()):
            if not waiter.future.done():
                return waiter
        return None

    async def _dispatch_loop(self) -> None:
        """This instance's one blocking pop over the offer lists of the hosts it has waiters for."""
        rotation = itertools.count()
        while not self.closed:  # not only cancellation: redis-py may swallow a cancel during a read
            hosts = frozenset(self._waiters)
            if not hosts:
                self._popping = frozenset()
                self._waiters_changed.clear()
                await self._waiters_changed.wait()
                continue
            by_key = {self._keys.offers(host): host for host in hosts}
            # BLPOP serves the first non-empty list: rotate so that no busy host starves the others.
            keys = list(by_key)
            turn = next(rotation) % len(keys)
            self._popping = hosts
            try:
                item: tuple[str, str] | list[str] | None = await self._op(
                    self._blocking.blpop(  # type: ignore[arg-type]  # decode_responses: all str
                        [self._keys.wake, *keys[turn:], *keys[:turn]], timeout=self._block_ms / 1000
                    ),
                    self._blocking_budget,
                    blocking=True,
                )
                if item is None or item[0] == self._keys.wake:
                    continue
                key, uuid = item
                await self._hand_over(by_key[key], key, uuid)
            except QueueClosedError:
                return
            except StoreUnavailableError as exc:
                logger.warning("offer dispatch paused: %s", exc.message)
                self._popping = frozenset()
                await asyncio.sleep(DISPATCH_RETRY)
            except Exception:  # a bug here must not silently stop every answerer of this instance
                logger.exception("offer dispatch failed; retrying")
                self._popping = frozenset()
                await asyncio.sleep(DISPATCH_RETRY)

    async def _hand_over(self, host: str, key: str, uuid: str) -> None:
        if self._local_waiter(host) is None:  # every waiter left while we were popping
            await self._op(self._requeue_script(keys=[self._keys.call(host, uuid)[0], key], args=[uuid, "0"]))
            return
        meta = self._keys.call(host, uuid)[0]
        claimed = await self._op(self._claim_script(keys=[meta], args=[_ms(time.time()), self._close_to_expired]))
        if claimed is None:
            logger.debug("call(%s) withdrawn or too close to its deadline: dropped", uuid)
            return
        sdp, trickle, deadline_ms, caller = claimed
        exchange = _RedisAnswererExchange(self, uuid, host, caller, sdp, trickle == "1", int(deadline_ms) / 1000)
        waiter = self._local_waiter(host)
        if waiter is None:
            await self._requeue(exchange)
        else:
            waiter.future.set_result(exchange)

    def _redispatch(self, exchange: _RedisAnswererExchange) -> None:
        """A claimed offer whose waiter was cancelled: another local waiter, or back to Redis."""
        waiter = self._local_waiter(exchange.host)
        if waiter is not None:
            waiter.future.set_result(exchange)
            return
        task = asyncio.create_task(self._requeue(exchange), name="signaling-redis-requeue")
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _requeue(self, exchange: _RedisAnswererExchange) -> None:
        try:
            keys = [self._keys.call(exchange.host, exchange.uuid)[0], self._keys.offers(exchange.host)]
            await self._op(self._requeue_script(keys=keys, args=[exchange.uuid, "1"]))
        except (StoreUnavailableError, QueueClosedError) as exc:
            logger.warning("call(%s) lost while handing it back: %s", exchange.uuid, exc.message)
