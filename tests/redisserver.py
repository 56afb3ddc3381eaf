"""A real Debian ``redis-server`` for tests, on a free loopback port, with every wait bounded.

``with RedisServer() as server: server.url`` starts it (no persistence, bound to 127.0.0.1 only)
and always stops it. :meth:`RedisServer.pause`/:meth:`RedisServer.resume` (SIGSTOP/SIGCONT) and
:meth:`RedisServer.kill` (SIGKILL) are the chaos cases. The fixtures ``redis_server`` (one per
session; every user must FLUSHDB, see :func:`flushed`) and ``private_redis`` (one per test, for
tests that stop or kill it) are re-exported by the conftests that need them.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from types import TracebackType

import pytest

START_TIMEOUT = 5.0
STOP_TIMEOUT = 5.0
BINARY = shutil.which("redis-server") or "/usr/bin/redis-server"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def command(port: int, *args: str, timeout: float = 1.0) -> bytes:
    """One inline command over a raw socket (no client library): a simple, integer or error
    reply's line, or a bulk string's payload (``b""`` for nil)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall((" ".join(args) + "\r\n").encode())
        reply = b""
        while b"\r\n" not in reply:
            chunk = sock.recv(4096)
            if not chunk:
                raise ConnectionError(f"redis closed the connection after {reply!r}")
            reply += chunk
        line, _, rest = reply.partition(b"\r\n")
        if not line.startswith(b"$"):
            return line
        size = int(line[1:])
        if size < 0:
            return b""
        while len(rest) < size + 2:
            chunk = sock.recv(4096)
            if not chunk:
                raise ConnectionError("redis closed the connection mid-reply")
            rest += chunk
        return rest[:size]


class RedisServer:
    def __init__(self) -> None:
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int:
        assert self._proc is not None
        return self._proc.pid

    def start(self) -> RedisServer:
        last = ""
        for _ in range(3):  # the free port may be taken between probing and binding it
            self.port = _free_port()
            if self._launch():
                return self
            last = self._output()
            self.stop()
        raise RuntimeError(f"redis-server did not start: {last}")

    def restart(self) -> None:
        """Start again, empty, on the same port (after :meth:`kill`): Redis coming back."""
        assert self._proc is None or self._proc.poll() is not None, "still running"
        self.stop()
        if not self._launch():
            output = self._output()
            self.stop()
            raise RuntimeError(f"redis-server did not restart on port {self.port}: {output}")

    def _launch(self) -> bool:
        argv = [BINARY, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        argv += ["--loglevel", "warning", "--protected-mode", "yes"]
        self._proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        give_up = time.monotonic() + START_TIMEOUT
        while time.monotonic() < give_up and self._proc.poll() is None:
            try:
                if command(self.port, "PING", timeout=0.5) == b"+PONG":
                    return True
            except OSError:
                pass
            time.sleep(0.02)
        return False

    def _output(self) -> str:
        proc = self._proc
        if proc is None or proc.stdout is None or proc.poll() is None:
            return "(still running)"
        return proc.stdout.read().decode(errors="replace")[-2000:]

    def pause(self) -> None:
        """SIGSTOP: connections are still accepted by the kernel, nothing is answered."""
        assert self._proc is not None
        self._proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self._proc is not None
        self._proc.send_signal(signal.SIGCONT)

    def kill(self) -> None:
        assert self._proc is not None
        self._proc.kill()
        self._proc.wait(STOP_TIMEOUT)

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGCONT)  # a paused server cannot act on SIGTERM
            proc.terminate()
            try:
                proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(STOP_TIMEOUT)
        if proc.stdout is not None:
            proc.stdout.close()

    def flushdb(self) -> None:
        assert command(self.port, "FLUSHDB") == b"+OK"

    def dbsize(self) -> int:
        reply = command(self.port, "DBSIZE")
        assert reply.startswith(b":"), reply
        return int(reply[1:])

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.stop()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


@pytest.fixture
def private_redis() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


def flushed(server: RedisServer) -> RedisServer:
    server.flushdb()
    return server
