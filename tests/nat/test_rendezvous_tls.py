"""A robot answering through a rendezvous over TLS (``peerbot serve --signaling-address`` → ``peerbot
signal --tls-cert/--tls-key``).

The rendezvous runs as a child process with the throwaway test CA's certificate (tests/pki.py); the
robot runs in process (aioice kept on 127.0.0.1 by tests/webrtc/conftest.py's fixtures) and the
pure-Python dialer is the caller, signaling over TLS too. The rendezvous serves cleartext on the
same port as well, so every test that shows TLS working is paired with one where only TLS could
have failed: a CA the robot does not trust, a name the certificate does not carry, a server that
speaks no TLS at all. In each, the robot keeps retrying quietly and keeps serving its own port.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from grpclib import GRPCError, Status
from grpclib.client import Channel

from peer.gen.viam.robot.v1 import robot_grpc, robot_pb2
from peer.resource.build import build_resources
from peer.webrtc.dial import dial
from signaling.auth import CREDS_API_KEY
from signaling.const import RPC_HOST_KEY
from signaling.external import ExternalSignaling, signaling_client_context
from signaling.gen.proto.rpc.v1 import auth_pb2
from signaling.gen.proto.rpc.v1.auth_grpc import AuthServiceStub
from signaling.memory_queue import MemoryCallQueue
from tests.pki import ThrowawayPKI, make_pki
from tests.serverproc import ServerProcess
from tests.webrtc.conftest import eventually, loopback_only, no_leaked_tasks  # noqa: F401 (autouse fixtures)
from web.config import builtin_config
from web.robot import Robot
from web.signal import Rendezvous
from web.tls import server_context

RPC_TIMEOUT = 15.0
FAST = {"reconnect_wait": 0.05, "max_reconnect_wait": 0.4, "min_deadline": 1.0}
API_KEY = ("caller-key", "caller-secret")
ROBOT_SECRET = "robot-secret-over-tls"
REFUSED = "presented a certificate this robot does not trust"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> ThrowawayPKI:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def stranger(tmp_path_factory: pytest.TempPathFactory) -> ThrowawayPKI:
    """Another CA with a certificate for the same names: what an impostor on the path would present."""
    return make_pki(tmp_path_factory.mktemp("stranger"))


def signal_process(pki: ThrowawayPKI, *extra: str) -> ServerProcess:
    return ServerProcess([sys.executable, "-m", "web", "signal", "--host", "127.0.0.1", "--port", "0",
                          "--tls-cert", str(pki.cert), "--tls-key", str(pki.key), *extra])


@pytest.fixture(scope="module")
def tls_rendezvous(pki: ThrowawayPKI) -> Iterator[str]:
    """``peerbot signal`` with TLS and no auth; its ``127.0.0.1:PORT``."""
    with signal_process(pki) as server:
        (address,) = server.wait_ready(1, 30)
        yield address
        assert server.poll() is None, "the rendezvous died"


async def resource_names(address: str, host: str, ssl: Path | None, metadata: dict[str, str] | None = None) -> int:
    """Dial ``host`` through ``address`` (signaling over TLS trusting the CA file ``ssl``, else cleartext)."""
    context = signaling_client_context(ssl) if ssl is not None else None
    async with await dial(address, host=host, timeout=RPC_TIMEOUT, ssl=context, metadata=metadata) as channel:
        reply = await robot_grpc.RobotServiceStub(channel.as_channel()).ResourceNames(
            robot_pb2.ResourceNamesRequest(), timeout=RPC_TIMEOUT
        )
        return len(reply.resources)


async def robot_answering_at(address: str, *, ca_file: str | None = None, secret: str | None = None) -> Robot:
    """A started robot answering for ``robot.test`` at ``address``, with the default (TLS) settings."""
    resources = await build_resources(builtin_config().resources)
    external = ExternalSignaling(address, ("robot.test",), secret=secret, ca_file=ca_file, options=FAST)
    robot = Robot(resources, external_signaling=external)
    await robot.start("127.0.0.1", 0)
    return robot


async def test_robot_registers_over_tls_and_a_caller_dials_it_through_the_rendezvous(
    pki: ThrowawayPKI, tls_rendezvous: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="signaling")
    robot = await robot_answering_at(tls_rendezvous, ca_file=str(pki.ca))
    async with robot:
        answerer = robot.external_answerer
        assert answerer is not None
        await eventually(lambda: answerer.stats.streams > 0, timeout=20, what="the robot registered over TLS")
        assert f"signaling server at {tls_rendezvous} (TLS)" in caplog.text
        expected = await resource_names(f"127.0.0.1:{robot.port}", "anything", None)
        assert expected > 0
        # the caller signals over TLS as well, both by IP and by the certificate's DNS name
        port = tls_rendezvous.rsplit(":", 1)[1]
        for address in (tls_rendezvous, f"localhost:{port}"):
            assert await resource_names(address, "robot.test", pki.ca) == expected
        # the rendezvous still routes exactly: a name nobody answers for is unknown
        with pytest.raises(GRPCError) as unknown:
            await resource_names(tls_rendezvous, "other.test", pki.ca)
        assert unknown.value.status is Status.NOT_FOUND
        assert not [r for r in caplog.records if r.levelno >= logging.WARNING and r.name.startswith("signaling")]


async def test_a_caller_that_does_not_trust_the_rendezvous_fails_cleanly(
    stranger: ThrowawayPKI, tls_rendezvous: str,
) -> None:
    with pytest.raises(GRPCError) as refused:
        await resource_names(tls_rendezvous, "robot.test", stranger.ca)
    assert refused.value.status is Status.UNAVAILABLE
    assert refused.value.message is not None and "CERTIFICATE_VERIFY_FAILED" in refused.value.message


@pytest.mark.parametrize("trust", ["another CA", "the system trust store"])
async def test_an_untrusted_rendezvous_is_refused_with_one_clear_line_and_the_robot_keeps_serving(
    stranger: ThrowawayPKI, tls_rendezvous: str, caplog: pytest.LogCaptureFixture, trust: str,
) -> None:
    """The robot's default is the system store, which does not know the test CA either."""
    caplog.set_level(logging.DEBUG, logger="signaling")
    ca_file = str(stranger.ca) if trust == "another CA" else None
    robot = await robot_answering_at(tls_rendezvous, ca_file=ca_file, secret=ROBOT_SECRET)
    async with robot:
        answerer = robot.external_answerer
        assert answerer is not None
        waits = await record_attempts(robot, 8)
        assert answerer.stats.streams == 0 and answerer.running
        assert max(waits) > min(waits)  # backing off, not hammering
        warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
        assert len(warnings) == 1, warnings  # once per streak, for both workers
        assert REFUSED in warnings[0] and "--signaling-ca" in warnings[0]
        assert "unable to get local issuer certificate" in warnings[0]
        assert sum(REFUSED in r.getMessage() for r in caplog.records) >= 8  # the repeats, at debug
        # its own port is untouched
        assert await resource_names(f"127.0.0.1:{robot.port}", "anything", None) > 0


async def record_attempts(robot: Robot, count: int) -> list[float]:
    """Replace the external answerer's reconnect sleep with a recorder; wait for ``count`` retries."""
    answerer = robot.external_answerer
    assert answerer is not None
    waits: list[float] = []

    async def record(delay: float) -> None:
        waits.append(delay)
        await asyncio.sleep(0.01)

    answerer._sleep = record
    await eventually(lambda: len(waits) >= count, timeout=20, what=f"{count} reconnect attempts")
    return waits


async def test_a_certificate_for_other_names_is_refused(pki: ThrowawayPKI, caplog: pytest.LogCaptureFixture) -> None:
    """127.0.0.2 is loopback too, but not a name in the certificate: trusted CA, wrong host."""
    async with Rendezvous(MemoryCallQueue(), ssl_context=server_context(pki.cert, pki.key)) as rendezvous:
        await rendezvous.start("127.0.0.2", 0)
        robot = await robot_answering_at(rendezvous.addresses[0], ca_file=str(pki.ca))
        async with robot:
            await record_attempts(robot, 3)
            assert robot.external_answerer is not None and robot.external_answerer.stats.streams == 0
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING and REFUSED in r.getMessage()]
    assert "IP address mismatch" in warning and "a name the certificate was issued for" in warning, warning


async def test_a_cleartext_rendezvous_is_never_sent_the_secret_without_the_insecure_flag(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """No silent downgrade, loopback included: the robot says what to do and sends nothing in clear."""
    async with Rendezvous(MemoryCallQueue()) as rendezvous:
        await rendezvous.start("127.0.0.1", 0)
        robot = await robot_answering_at(rendezvous.addresses[0], secret=ROBOT_SECRET)
        async with robot:
            await record_attempts(robot, 4)
            assert robot.external_answerer is not None and robot.external_answerer.stats.streams == 0
        # not a single gRPC call reached it (Authenticate included): only refused TLS handshakes
        assert rendezvous.handlers.stats.snapshot()["methods"] == {}
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING
                  and r.name == "signaling.answerer"]
    assert "does not speak TLS" in warning and "--signaling-insecure" in warning


async def authenticate(address: str, ca: Path) -> str:
    name, port = address.rsplit(":", 1)
    channel = Channel(name, int(port), ssl=signaling_client_context(ca))
    try:
        request = auth_pb2.AuthenticateRequest(
            entity=API_KEY[0], credentials=auth_pb2.Credentials(type=CREDS_API_KEY, payload=API_KEY[1]))
        reply = await AuthServiceStub(channel).Authenticate(request, metadata=[(RPC_HOST_KEY, "robot.test")],
                                                            timeout=RPC_TIMEOUT)
    finally:
        channel.close()
    return reply.access_token


async def test_with_auth_the_robot_secret_and_the_api_key_travel_over_tls(
    pki: ThrowawayPKI, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="signaling")
    with signal_process(pki, "--api-key", ":".join(API_KEY), "--robot-secret", f"robot.test={ROBOT_SECRET}") as server:
        (address,) = await asyncio.to_thread(server.wait_ready, 1, 30)
        robot = await robot_answering_at(address, ca_file=str(pki.ca), secret=ROBOT_SECRET)
        async with robot:
            answerer = robot.external_answerer
            assert answerer is not None
            await eventually(lambda: answerer.stats.streams > 0, timeout=20, what="registered with its secret")
            assert "(TLS, robot secret)" in caplog.text
            token = await authenticate(address, pki.ca)
            expected = await resource_names(f"127.0.0.1:{robot.port}", "anything", None)
            assert await resource_names(address, "robot.test", pki.ca, {"authorization": f"Bearer {token}"}) == expected
            with pytest.raises(GRPCError) as anonymous:
                await resource_names(address, "robot.test", pki.ca)
            assert anonymous.value.status is Status.UNAUTHENTICATED
        assert server.poll() is None
