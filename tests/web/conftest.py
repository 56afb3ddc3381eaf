"""A real robot (the built-in fake robot plus the probe service) on 127.0.0.1, port 0."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from peer.resource.build import build_resources
from web.config import builtin_config
from web.robot import Robot

from .probe import Probe

MakeRobot = Callable[..., Awaitable[Robot]]


@pytest.fixture
def probe() -> Probe:
    return Probe()


@pytest.fixture
async def make_robot(probe: Probe) -> AsyncIterator[MakeRobot]:
    """Start robots (``Robot`` keyword arguments), each closed at the end of the test."""
    robots: list[Robot] = []

    async def make(**kwargs: Any) -> Robot:
        resources = await build_resources(builtin_config().resources)
        robot = Robot(resources, **kwargs)
        robots.append(robot)
        robot.server.handlers.add([probe])
        await robot.start("127.0.0.1", 0)
        return robot

    yield make
    for robot in robots:
        await robot.close()


@pytest.fixture
async def robot(make_robot: MakeRobot) -> Robot:
    return await make_robot()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def eventually(predicate: Callable[[], bool], timeout: float = 3.0, what: str = "condition") -> None:
    """Poll ``predicate`` (bounded): server-side effects of a client action land asynchronously."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"{what} not reached within {timeout} s")
        await asyncio.sleep(0.01)
