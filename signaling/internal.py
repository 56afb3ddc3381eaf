"""Internal signaling: the robot answers its own SignalingService in-process (wire-protocol.md §11).

viam-server dials its own signaling service over a loopback listener; here the answerer talks to
the same :class:`~signaling.service.SignalingService` object (and so the same queue) through
grpclib's in-memory transport, which needs no socket and no port.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from grpclib.testing import ChannelFor

from .answerer import Answerer, OfferHandler
from .service import SignalingService


@asynccontextmanager
async def internal_answerer(
    service: SignalingService,
    hosts: Sequence[str],
    handle_offer: OfferHandler,
    **options: Any,
) -> AsyncIterator[Answerer]:
    """Run an :class:`~signaling.answerer.Answerer` for ``hosts`` against ``service`` until the block exits.

    ``options`` are :class:`~signaling.answerer.Answerer` keyword arguments. On exit the answerer
    stops first (its handlers are cancelled), then the in-memory channel and its server close.
    """
    async with ChannelFor([service]) as channel, Answerer(channel, hosts, handle_offer, **options) as answerer:
        yield answerer
