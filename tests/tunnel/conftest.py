"""Fixtures: a TunnelServer serving the echo service through a real HandlerTable, and its clients."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from peer.handlers import HandlerTable
from peer.operations import OperationManager
from peer.resource import ResourceName
from peer.sessions import SessionManager
from peer.tunnel import TunnelChannel, TunnelServer

from .echo import EchoService, EchoStub
from .fakes import FakeChannel, RawClient, channel_pair, settle


async def _no_stop(name: ResourceName) -> None:
    return None


def echo_table(service: EchoService) -> HandlerTable:
    return HandlerTable([service], operations=OperationManager(), sessions=SessionManager(_no_stop))


@dataclass
class Tunnel:
    service: EchoService
    server: TunnelServer
    client_end: FakeChannel
    server_end: FakeChannel


@dataclass
class Client(Tunnel):
    channel: TunnelChannel
    stub: EchoStub


@dataclass
class Raw(Tunnel):
    raw: RawClient


@pytest.fixture
async def client() -> AsyncIterator[Client]:
    service = EchoService()
    client_end, server_end = channel_pair()
    server = TunnelServer(server_end, echo_table(service), tag="test")
    channel = TunnelChannel(client_end, tag="test-client")
    yield Client(service, server, client_end, server_end, channel, EchoStub(channel))
    channel.close()
    await server.close()
    await settle()


@pytest.fixture
async def raw() -> AsyncIterator[Raw]:
    service = EchoService()
    client_end, server_end = channel_pair()
    server = TunnelServer(server_end, echo_table(service), tag="raw")
    yield Raw(service, server, client_end, server_end, RawClient(client_end))
    await server.close()
    await settle()
