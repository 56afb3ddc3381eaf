"""The rpc layer of ``proto.rpc.webrtc.v1``: signaling server, call queue and answerer.

This package imports nothing from ``peer`` or ``web``. The peer connection itself is plugged in
through :class:`~signaling.answerer.OfferHandler`. The Redis call queue is imported from
:mod:`signaling.redis_queue` by whoever needs it: redis-py costs ~90 ms of start-up, which no
robot (in-memory or remote signaling) should pay.
"""

import logging

from .answerer import Answerer, AnswererStats, Offer, OfferHandler, SendAnswer, SendCandidate
from .config import IceServer, WebRTCConfig
from .errors import ErrorStatus, SignalingError, StoreUnavailableError
from .internal import internal_answerer
from .memory_queue import MemoryCallQueue
from .queue import AnswererExchange, CallerExchange, CallQueue
from .sdp import (
    IceCandidate,
    SessionDescription,
    candidate_from_init,
    candidate_from_proto,
    candidate_to_init,
    candidate_to_proto,
    decode_sdp,
    encode_sdp,
)
from .service import SignalingService

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
    "Answerer",
    "AnswererExchange",
    "AnswererStats",
    "CallQueue",
    "CallerExchange",
    "ErrorStatus",
    "IceCandidate",
    "IceServer",
    "MemoryCallQueue",
    "Offer",
    "OfferHandler",
    "SendAnswer",
    "SendCandidate",
    "SessionDescription",
    "SignalingError",
    "SignalingService",
    "StoreUnavailableError",
    "WebRTCConfig",
    "candidate_from_init",
    "candidate_from_proto",
    "candidate_to_init",
    "candidate_to_proto",
    "decode_sdp",
    "encode_sdp",
    "internal_answerer",
]
