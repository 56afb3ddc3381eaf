"""Test doubles and helpers for signaling tests."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from typing import Any

from signaling.answerer import Offer, SendAnswer, SendCandidate
from signaling.gen.proto.rpc.webrtc.v1 import signaling_pb2 as pb
from signaling.sdp import IceCandidate, SessionDescription, encode_sdp

HOST = "127.0.0.1:8080"
_M_LINE = "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n"
OFFER = SessionDescription("offer", "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n" + _M_LINE)
ANSWER = SessionDescription("answer", "v=0\r\no=- 3 4 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n" + _M_LINE)
OFFER_B64 = encode_sdp(OFFER)


def cand(n: int, *, mid: str | None = "0") -> IceCandidate:
    return IceCandidate(f"candidate:{n} 1 udp 2130706431 127.0.0.1 {5000 + n} typ host", sdp_mid=mid)


def md(*hosts: str, **extra: str) -> list[tuple[str, str]]:
    """Request metadata: one ``rpc-host`` per host (default HOST) plus extra keys (``_`` becomes ``-``)."""
    pairs = [("rpc-host", h) for h in (hosts or (HOST,))]
    pairs.extend((k.replace("_", "-"), v) for k, v in extra.items())
    return pairs


class FakePeer:
    """Implements the OfferHandler protocol the way the aiortc side will, without aiortc.

    Sends the answer, then its local candidates, optionally ends gathering early, collects the
    caller's candidates until the caller is done, then (unless ``block``; after ``ready_after``
    is set, if given) reports ready.
    """

    def __init__(
        self,
        *,
        local: tuple[IceCandidate, ...] = (),
        early_done: bool = False,
        block: bool = False,
        fail_with: Exception | None = None,
        answer: SessionDescription = ANSWER,
        ready_after: asyncio.Event | None = None,
    ) -> None:
        self.local = local
        self.early_done = early_done
        self.block = block
        self.fail_with = fail_with
        self.answer = answer
        self.ready_after = ready_after  # "the data channel opened": set by the test
        self.offers: list[Offer] = []
        self.received: defaultdict[str, list[IceCandidate]] = defaultdict(list)
        self.ready: list[str] = []
        self.cancelled: list[str] = []
        self.answered = asyncio.Event()
        self.cancel_seen = asyncio.Event()

    async def __call__(
        self,
        offer: Offer,
        candidates_in: AsyncIterator[IceCandidate],
        send_candidate: SendCandidate,
        send_answer: SendAnswer,
        /,
    ) -> None:
        self.offers.append(offer)
        try:
            if self.fail_with is not None:
                raise self.fail_with
            await send_answer(self.answer)
            self.answered.set()
            for candidate in self.local:
                await send_candidate(candidate)
            if self.early_done:
                await send_candidate(None)
            async for candidate in candidates_in:
                self.received[offer.uuid].append(candidate)
            if self.block:
                await asyncio.Event().wait()
            if self.ready_after is not None:
                await self.ready_after.wait()
            self.ready.append(offer.uuid)
        except asyncio.CancelledError:
            self.cancelled.append(offer.uuid)
            self.cancel_seen.set()
            raise


async def eventually(predicate: Callable[[], Any], timeout: float = 1.0) -> None:
    """Poll ``predicate`` until true, failing after ``timeout`` seconds."""
    give_up = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > give_up:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.005)


def update(uuid: str, candidate: IceCandidate | None = None, *, done: bool = False) -> pb.CallUpdateRequest:
    from signaling.sdp import candidate_to_proto

    if candidate is not None:
        return pb.CallUpdateRequest(uuid=uuid, candidate=candidate_to_proto(candidate))
    return pb.CallUpdateRequest(uuid=uuid, done=done)
