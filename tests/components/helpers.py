"""Serve resources through the real handler table on an in-memory grpclib channel."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager

from grpclib.client import Channel
from grpclib.testing import ChannelFor

from peer.handlers import HandlerTable
from peer.operations import OperationManager
from peer.resource import Registry, ResourceBase, ResourceManager
from peer.sessions import SessionManager


async def _no_stop(name: object) -> None:
    return None


@asynccontextmanager
async def serve_resources(resources: Iterable[ResourceBase]) -> AsyncIterator[Channel]:
    """A channel to every registered API's service, with ``resources`` registered."""
    manager = ResourceManager(resources)
    services = [reg.rpc_service(manager) for reg in Registry.REGISTERED_APIS().values()]
    table = HandlerTable(services, operations=OperationManager(), sessions=SessionManager(_no_stop))
    async with ChannelFor([table]) as channel:
        yield channel
    await manager.close()
