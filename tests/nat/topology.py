"""A NAT test topology in network namespaces, built and torn down by the test (reliability.md §3.6).

::

    robot 10.10.1.2 --veth-- natr [10.10.1.1 | 198.51.100.10] --veth--+
                                                                       br0 in wan: 198.51.100.1
    client 10.10.2.2 --veth-- natc [10.10.2.1 | 198.51.100.20] --veth--+  (coturn, peerbot signal)

* ``natr``/``natc`` are symmetric NATs (``MASQUERADE --random-fully``) that forward only towards
  198.51.100.1, so the two peers can meet only through the TURN relay there.
* ``wan`` has a default route into a dead-end veth: coturn relaying towards a peer's private host
  candidate would otherwise fail with ENETUNREACH and break the relay-relay check (§0). coturn is
  also started with ``--denied-peer-ip`` for the private range (the hardening one wants anyway).
* No namespace has a link to the root namespace; addresses are TEST-NET-2 and RFC 1918 ones that
  exist only inside. Namespace names carry a per-run suffix so parallel runs do not collide.

Use as a context manager; :meth:`close` (also on any failure while building) kills every process
it started and deletes every namespace. Every subprocess wait is bounded. Needs root, ``ip``,
``iptables`` and ``turnserver`` (coturn): missing tools fail the test, never skip it.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from tests.serverproc import ServerProcess

WAN_IP = "198.51.100.1"
ROBOT_IP = "10.10.1.2"
CLIENT_IP = "10.10.2.2"
TURN_PORT = 3478
SIGNAL_PORT = 8080
ROBOT_PORT = 8080
TURN_REALM = "peerbot.test"
#: Relay ports coturn may allocate (a small range: the test makes a handful of allocations).
RELAY_PORTS = (49152, 49300)
CMD_TIMEOUT_S = 10.0
READY_TIMEOUT_S = 30.0
REPO = Path(__file__).resolve().parents[2]


def require_tools() -> None:
    """Fail (not skip) when the topology cannot be built: CI runs as root with these installed."""
    missing = [tool for tool in ("ip", "iptables", "turnserver") if shutil.which(tool) is None]
    assert not missing, f"missing {', '.join(missing)}: scripts/setup.sh installs iproute2, iptables and coturn"
    assert os.geteuid() == 0, "the NAT topology needs root (network namespaces, iptables)"


def run(argv: Sequence[str], *, timeout: float = CMD_TIMEOUT_S) -> str:
    done = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


class NatTopology:
    """The five namespaces above, coturn in ``wan``, and helpers to run processes in each."""

    def __init__(self, *, turn_secret: str | None = None) -> None:
        require_tools()
        suffix = f"{os.getpid() % 100000}{secrets.token_hex(2)}"
        self.ns = {role: f"pb{role}{suffix}" for role in ("wan", "natr", "natc", "robot", "client")}
        self.turn_secret = turn_secret or secrets.token_hex(16)
        self.tmp = Path(tempfile.mkdtemp(prefix="peerbot-nat-"))
        self.secret_file = self.tmp / "turn-secret"
        self.secret_file.write_text(self.turn_secret)
        self.processes: list[ServerProcess] = []
        self._created: list[str] = []

    # -- building --------------------------------------------------------------------------------
    def __enter__(self) -> NatTopology:
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def exec_argv(self, role: str, argv: Sequence[str]) -> list[str]:
        return ["ip", "netns", "exec", self.ns[role], *argv]

    def _ip(self, role: str, *args: str) -> None:
        run(["ip", "-n", self.ns[role], *args])

    def _in(self, role: str, *argv: str) -> None:
        run(self.exec_argv(role, argv))

    def _build(self) -> None:
        for name in self.ns.values():
            run(["ip", "netns", "add", name])
            self._created.append(name)
        for role in self.ns:
            self._ip(role, "link", "set", "lo", "up")
        # wan: the bridge everyone public meets on, and a dead-end default route
        self._ip("wan", "link", "add", "br0", "type", "bridge")
        self._ip("wan", "addr", "add", f"{WAN_IP}/24", "dev", "br0")
        self._ip("wan", "link", "set", "br0", "up")
        self._ip("wan", "link", "add", "sink", "type", "veth", "peer", "name", "sink2")
        self._ip("wan", "link", "set", "sink", "up")
        self._ip("wan", "link", "set", "sink2", "up")
        self._ip("wan", "route", "add", "default", "dev", "sink")
        self._nat("natr", "robot", "198.51.100.10", "10.10.1")
        self._nat("natc", "client", "198.51.100.20", "10.10.2")

    def _nat(self, nat: str, inside: str, public_ip: str, lan: str) -> None:
        # public side: "up0" in the NAT namespace, its peer enslaved to the wan bridge
        self._ip(nat, "link", "add", "up0", "type", "veth", "peer", "name", f"to{nat}", "netns", self.ns["wan"])
        self._ip("wan", "link", "set", f"to{nat}", "master", "br0")
        self._ip("wan", "link", "set", f"to{nat}", "up")
        self._ip(nat, "addr", "add", f"{public_ip}/24", "dev", "up0")
        self._ip(nat, "link", "set", "up0", "up")
        # private side: "lan0" in the NAT namespace, "eth0" in the host behind it
        self._ip(nat, "link", "add", "lan0", "type", "veth", "peer", "name", "eth0", "netns", self.ns[inside])
        self._ip(nat, "addr", "add", f"{lan}.1/24", "dev", "lan0")
        self._ip(nat, "link", "set", "lan0", "up")
        self._ip(inside, "addr", "add", f"{lan}.2/24", "dev", "eth0")
        self._ip(inside, "link", "set", "eth0", "up")
        self._ip(inside, "route", "add", "default", "via", f"{lan}.1")
        self._in(nat, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        self._in(nat, "iptables", "-t", "nat", "-A", "POSTROUTING", "-o", "up0", "-j", "MASQUERADE", "--random-fully")
        # only the public meeting point is reachable: peers can meet only through the relay
        self._in(nat, "iptables", "-A", "FORWARD", "-i", "lan0", "-o", "up0", "!", "-d", WAN_IP, "-j", "DROP")

    # -- processes -------------------------------------------------------------------------------
    def start(self, role: str, argv: Sequence[str]) -> ServerProcess:
        """Start ``argv`` in ``role``'s namespace; killed by :meth:`close`."""
        process = ServerProcess(self.exec_argv(role, argv))
        self.processes.append(process)
        return process.start()

    def start_turn(self) -> ServerProcess:
        """coturn on WAN_IP:3478 with TURN REST authentication (``use-auth-secret``)."""
        low, high = RELAY_PORTS
        process = self.start("wan", [
            "turnserver", "-n", f"--listening-ip={WAN_IP}", f"--relay-ip={WAN_IP}", f"--listening-port={TURN_PORT}",
            f"--min-port={low}", f"--max-port={high}", "--use-auth-secret", f"--static-auth-secret={self.turn_secret}",
            f"--realm={TURN_REALM}", "--no-tls", "--no-dtls", "--no-cli", "--fingerprint", "--simple-log",
            "--log-file=stdout", "--denied-peer-ip=10.0.0.0-10.255.255.255", f"--pidfile={self.tmp / 'turn.pid'}",
            f"--userdb={self.tmp / 'turndb'}", "--no-tcp-relay",
        ])
        return process

    def python(self, role: str, args: Sequence[str]) -> list[str]:
        return self.exec_argv(role, [sys.executable, *args])

    def run_python(self, role: str, args: Sequence[str], *, timeout: float) -> subprocess.CompletedProcess[str]:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        return subprocess.run(self.python(role, args), cwd=REPO, env=env, capture_output=True, text=True,
                              timeout=timeout, check=False)

    # -- teardown --------------------------------------------------------------------------------
    def close(self) -> None:
        """Kill every process, delete every namespace (bounded; never raises)."""
        for process in reversed(self.processes):
            try:
                process.kill()
            except Exception as exc:  # keep tearing down
                print(f"topology: killing {process.argv[:6]} raised {exc!r}", file=sys.stderr)
        self.processes.clear()
        for name in reversed(self._created):
            try:
                run(["ip", "netns", "del", name])
            except Exception as exc:
                print(f"topology: deleting netns {name} failed: {exc}", file=sys.stderr)
        self._created.clear()
        shutil.rmtree(self.tmp, ignore_errors=True)
