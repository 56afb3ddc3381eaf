"""Run ``python -m web serve`` as a child process, with every wait bounded.

The server logs ``serving gRPC on 127.0.0.1:PORT`` / ``serving gRPC on unix:/path`` to stderr when
it is ready; a reader thread drains stderr (so the pipe never fills) and collects those addresses.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
_SERVING = re.compile(r"serving gRPC on (\S+)")


class ServerProcess:
    """``with ServerProcess.peerbot([...]) as srv: srv.wait_ready(2, 30)`` - killed on any failure.

    Any child that logs ``serving gRPC on ADDRESS`` lines to stderr works (``ServerProcess(argv)``).
    """

    def __init__(self, argv: Sequence[str]) -> None:
        self.argv = list(argv)
        self.lines: list[str] = []
        self.addresses: list[str] = []
        self._cond = threading.Condition()
        self._proc: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None

    @classmethod
    def peerbot(cls, serve_args: Sequence[str], *, python: str = sys.executable) -> ServerProcess:
        """``python -m web serve SERVE_ARGS`` (``python`` defaults to the running interpreter)."""
        return cls([python, "-m", "web", "serve", *serve_args])

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> ServerProcess:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self._proc = subprocess.Popen(
            self.argv, cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, text=True, bufsize=1,
        )
        self._reader = threading.Thread(target=self._read, name="server-stderr", daemon=True)
        self._reader.start()
        return self

    def _read(self) -> None:
        assert self._proc is not None and self._proc.stderr is not None
        for line in self._proc.stderr:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                match = _SERVING.search(line)
                if match:
                    self.addresses.append(match.group(1))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.kill()

    @property
    def pid(self) -> int:
        assert self._proc is not None
        return self._proc.pid

    def poll(self) -> int | None:
        assert self._proc is not None
        return self._proc.poll()

    def wait_ready(self, count: int, timeout: float) -> list[str]:
        """Wait until ``count`` "serving gRPC on" lines arrived; RuntimeError with the log if not."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.addresses) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self.poll() is not None:
                    break
                self._cond.wait(min(remaining, 0.5))
            if len(self.addresses) >= count:
                return list(self.addresses[:count])
        state = f"exited with {self.poll()}" if self.poll() is not None else f"not ready after {timeout}s"
        raise RuntimeError(f"server {state}; stderr:\n" + self.log())

    def wait(self, timeout: float) -> int | None:
        """Wait for the process to exit by itself (its log read to the end); None if it did not."""
        assert self._proc is not None
        try:
            code: int = self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        if self._reader is not None:
            self._reader.join(5)
        return code

    def wait_for_line(self, text: str, timeout: float) -> bool:
        """Whether a stderr line containing ``text`` arrives within ``timeout`` (False once the process exits)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not any(text in line for line in self.lines):
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self.poll() is not None:
                    return any(text in line for line in self.lines)
                self._cond.wait(min(remaining, 0.5))
            return True

    def log(self) -> str:
        with self._cond:
            return "\n".join(self.lines[-60:])

    def terminate(self, timeout: float) -> int | None:
        """SIGTERM, then wait up to ``timeout``; returns the exit code or None (then it is killed)."""
        assert self._proc is not None
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
        try:
            code: int | None = self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            code = None
        self.kill()
        return code

    def kill(self) -> None:
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.kill()
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                pass
        if self._reader is not None:
            self._reader.join(5)
        if self._proc.stderr is not None and (self._reader is None or not self._reader.is_alive()):
            self._proc.stderr.close()


def tcp_and_unix(addresses: Sequence[str]) -> tuple[str, str]:
    """Split the logged addresses into (``host:port``, ``/socket/path``)."""
    tcp = [a for a in addresses if not a.startswith("unix:")]
    unix = [a.removeprefix("unix:") for a in addresses if a.startswith("unix:")]
    if len(tcp) != 1 or len(unix) != 1:
        raise RuntimeError(f"expected one TCP and one Unix address, got {addresses}")
    return tcp[0], unix[0]
