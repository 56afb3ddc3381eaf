"""``peerbot serve --tls-cert/--tls-key`` as a process, on both event loops, and its refusals."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest
from grpclib.client import Channel

from peer.gen.viam.robot.v1 import robot_pb2
from peer.gen.viam.robot.v1.robot_grpc import RobotServiceStub

from ...pki import ThrowawayPKI, make_pki
from ...serverproc import REPO, ServerProcess

WAIT = 5.0
READY_TIMEOUT_S = 30
EXIT_TIMEOUT_S = 10
#: The server's descriptor limit in the exhaustion test: it needs about 15 to start.
FD_LIMIT = 40


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> ThrowawayPKI:
    return make_pki(tmp_path_factory.mktemp("pki"))


async def resource_count(port: int, tls: object = None) -> int:
    channel = Channel("127.0.0.1", port, ssl=tls)  # type: ignore[arg-type]
    try:
        reply = await asyncio.wait_for(RobotServiceStub(channel).ResourceNames(robot_pb2.ResourceNamesRequest()), WAIT)
        return len(reply.resources)
    finally:
        channel.close()


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_serve_with_tls_on_each_loop(pki: ThrowawayPKI, loop: str) -> None:
    args = ["--host", "127.0.0.1", "--port", "0", "--loop", loop,
            "--tls-cert", str(pki.cert), "--tls-key", str(pki.key)]
    with ServerProcess.peerbot(args) as proc:
        port = int(proc.wait_ready(1, READY_TIMEOUT_S)[0].rsplit(":", 1)[1])

        async def client() -> None:
            assert await resource_count(port, pki.client_context("h2")) == 11
            assert await resource_count(port) == 11  # h2c on the same port
            async with aiohttp.ClientSession() as session:
                async with session.get(f"https://localhost:{port}/stats", ssl=pki.client_context()) as resp:
                    assert resp.status == 200
                    stats = await resp.json()
                assert stats["rpcs"] == {"webrtc": 0, "grpc": 2, "grpc-web": 0}
                async with session.get(f"http://127.0.0.1:{port}/") as resp:
                    assert resp.status == 200 and "peerbot" in await resp.text()

        asyncio.run(client())
        assert any("event loop: uvloop" in line for line in proc.lines) == (loop == "uvloop")
        assert proc.terminate(EXIT_TIMEOUT_S) == 0, proc.log()


def serve_fails(args: list[str]) -> str:
    done = subprocess.run([sys.executable, "-m", "web", "serve", "--port", "0", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 2, (done.returncode, done.stderr)
    return done.stderr


def test_cert_without_key_is_a_usage_error(pki: ThrowawayPKI) -> None:
    assert "--tls-cert and --tls-key go together" in serve_fails(["--tls-cert", str(pki.cert)])


def test_missing_or_mismatched_files_are_named(pki: ThrowawayPKI, tmp_path: Path) -> None:
    missing = tmp_path / "nope.pem"
    error = serve_fails(["--tls-cert", str(missing), "--tls-key", str(pki.key)])
    assert f"peerbot: TLS: cannot read the certificate {missing}: no such file" in error
    error = serve_fails(["--tls-cert", str(pki.cert), "--tls-key", str(missing)])
    assert f"peerbot: TLS: cannot read the key {missing}: no such file" in error
    other = make_pki(tmp_path)
    error = serve_fails(["--tls-cert", str(pki.cert), "--tls-key", str(other.key)])
    assert f"peerbot: TLS: cannot use certificate {pki.cert} with key {other.key}" in error
    assert "Traceback" not in error


def test_out_of_descriptors_the_port_recovers(pki: ThrowawayPKI) -> None:
    """Idle connections exhaust the server's descriptors: accept fails, is retried, not spun on,
    and once they go the port serves TLS again."""
    args = ["prlimit", f"--nofile={FD_LIMIT}", "--", sys.executable, "-m", "web", "serve", "--host", "127.0.0.1",
            "--port", "0", "--tls-cert", str(pki.cert), "--tls-key", str(pki.key)]
    with ServerProcess(args) as proc:
        port = int(proc.wait_ready(1, READY_TIMEOUT_S)[0].rsplit(":", 1)[1])
        idle = [socket.create_connection(("127.0.0.1", port), timeout=WAIT) for _ in range(FD_LIMIT + 20)]
        try:
            deadline = time.monotonic() + WAIT
            while not any("cannot accept" in line for line in proc.lines) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert any("Too many open files" in line for line in proc.lines if "cannot accept" in line), proc.log()
        finally:
            for sock in idle:
                sock.close()
        assert asyncio.run(resource_count(port, pki.client_context("h2"))) == 11
        assert proc.poll() is None
        warnings = sum("cannot accept" in line for line in proc.lines)
        assert warnings < 10 * WAIT / 0.1, f"{warnings} accept warnings: the loop spun"
        assert proc.terminate(EXIT_TIMEOUT_S) == 0, proc.log()
