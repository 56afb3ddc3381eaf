"""Several ``peerbot signal --redis URL`` processes on one real redis-server act as one rendezvous.

The rendezvous instances run as child processes (they do no ICE); the robot runs in process with
aioice kept on 127.0.0.1 (tests/webrtc/conftest.py) and registers at instance B only, while the
caller signals through instance A: the offer can only reach the robot through Redis.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from grpclib import GRPCError, Status

from peer.resource.build import build_resources
from signaling.external import ExternalSignaling
from tests.nat.test_rendezvous import call_error, free_port, resource_count
from tests.pki import make_pki
from tests.redisserver import RedisServer
from tests.serverproc import ServerProcess
from tests.webrtc.conftest import eventually, loopback_only, no_leaked_tasks  # noqa: F401 (autouse fixtures)
from web.config import builtin_config
from web.robot import Robot

START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0


def signal_process(*args: str) -> ServerProcess:
    return ServerProcess([sys.executable, "-m", "web", "signal", "--host", "127.0.0.1", "--port", "0", *args])


@pytest.fixture
def redis() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


@pytest.fixture
async def two_instances(redis: RedisServer) -> AsyncIterator[tuple[str, str]]:
    """``peerbot signal`` A and B sharing ``redis``; their addresses."""
    with signal_process("--redis", redis.url) as a, signal_process("--redis", redis.url) as b:
        (address_a,) = await asyncio.to_thread(a.wait_ready, 1, START_TIMEOUT)
        (address_b,) = await asyncio.to_thread(b.wait_ready, 1, START_TIMEOUT)
        yield address_a, address_b
        assert a.poll() is None and b.poll() is None, "a rendezvous instance died"
        assert await asyncio.to_thread(a.terminate, STOP_TIMEOUT) == 0
        assert await asyncio.to_thread(b.terminate, STOP_TIMEOUT) == 0


async def test_a_caller_on_one_instance_reaches_a_robot_registered_on_another(
    two_instances: tuple[str, str], redis: RedisServer
) -> None:
    address_a, address_b = two_instances
    resources = await build_resources(builtin_config().resources)
    external = ExternalSignaling(address_b, ("robot.test",), insecure=True,
                                 options={"reconnect_wait": 0.05, "min_deadline": 1.0})
    async with Robot(resources, external_signaling=external) as robot:
        await robot.start("127.0.0.1", 0)
        expected = await resource_count(f"127.0.0.1:{robot.port}", "anything")
        answerer = robot.external_answerer
        assert answerer is not None
        await eventually(lambda: answerer.stats.streams > 0, timeout=10, what="robot registered at B")
        # through A (the offer crosses Redis to B's Answer stream), then through B itself
        assert await resource_count(address_a, "robot.test") == expected
        assert await resource_count(address_b, "robot.test") == expected
        # exact routing holds across instances: nobody answers for another name
        error = await call_error(address_a, "other.test")
        assert error.status is Status.NOT_FOUND
    # the robot has gone: its presence expires, and A reports the host offline, not a hang
    with pytest.raises(GRPCError) as offline:
        await asyncio.wait_for(resource_count(address_a, "robot.test"), 40)
    assert offline.value.status in (Status.NOT_FOUND, Status.DEADLINE_EXCEEDED)


def test_signal_exits_when_redis_is_unreachable() -> None:
    with signal_process("--redis", f"redis://127.0.0.1:{free_port()}/0") as proc:
        code = proc.wait(STOP_TIMEOUT * 2)
        assert code == 1, proc.log()
        assert "signaling store unavailable" in proc.log()


async def test_signal_serves_tls_and_cleartext_on_one_port(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    with signal_process("--tls-cert", str(pki.cert), "--tls-key", str(pki.key)) as proc:
        (address,) = await asyncio.to_thread(proc.wait_ready, 1, START_TIMEOUT)
        for ssl in (pki.client_context("h2"), None):
            error = await call_error(address, "nobody.test", ssl=ssl)
            assert error.status is Status.NOT_FOUND, error
        assert await asyncio.to_thread(proc.terminate, STOP_TIMEOUT) == 0
