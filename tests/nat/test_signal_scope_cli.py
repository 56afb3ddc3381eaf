"""Scoped API keys as command-line flags: ``peerbot signal --api-key ID:SECRET@HOSTS`` and
``--api-keys-file`` (a real process), the refusals at startup, and what ``peerbot serve --api-key``
makes of the ``@`` form. Signaling RPCs only, on loopback.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from grpclib import GRPCError, Status

from signaling.auth import ANY_HOST, CREDS_API_KEY, ApiKey
from tests.nat.test_rendezvous_auth import authenticate
from tests.nat.test_signal_auth_cli import READY_TIMEOUT, call_status, signal_process
from web.main import _parser, main

pytestmark = pytest.mark.timeout(120)


async def test_keys_file_scopes_keys_in_a_real_process(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.write_text("# who may reach what\nlab:lab-pass@a.test\n\nops:ops-pass@*\n")
    with signal_process("--api-keys-file", str(keys), "--robot-secret", "a.test=ra",
                        "--robot-secret", "b.test=rb") as process:
        (address,) = await asyncio.to_thread(process.wait_ready, 1, READY_TIMEOUT)
        lab = await authenticate(address, "a.test", "lab", CREDS_API_KEY, "lab-pass")
        with pytest.raises(GRPCError) as denied:
            await authenticate(address, "b.test", "lab", CREDS_API_KEY, "lab-pass")
        assert denied.value.status is Status.PERMISSION_DENIED
        assert "may not reach host 'b.test'" in (denied.value.message or "")
        ops = await authenticate(address, "b.test", "ops", CREDS_API_KEY, "ops-pass")
        # nobody answers: a permitted Call reaches the queue and is NOT_FOUND; A's token for B never does
        assert await call_status(address, "a.test", lab) is Status.NOT_FOUND
        assert await call_status(address, "b.test", ops) is Status.NOT_FOUND
        assert await call_status(address, "b.test", lab) is Status.PERMISSION_DENIED
        assert process.poll() is None
        assert await asyncio.to_thread(process.terminate, 10) == 0
    assert any("API key 'lab' -> a.test" in line for line in process.lines)
    assert any("API key 'ops' -> every host" in line for line in process.lines)
    assert not any("lab-pass" in line or "ops-pass" in line for line in process.lines)


@pytest.mark.parametrize(("args", "message"), [
    (["--api-key", "k:s", "--robot-secret", "a=s", "--robot-secret", "b=t"],
     "API key 'k' has no scope, but this rendezvous serves 2 robots"),
    (["--api-key", "k:s@a", "--api-key", "k2:s", "--robot-secret", "a=s", "--robot-secrets-file", "ROBOTS"],
     "API key 'k2' has no scope, but this rendezvous serves 2 robots"),
    (["--api-key", "k:s@a,ghost", "--robot-secret", "a=s"],
     "scoped to ghost, which this server does not serve (it serves a;"),
    (["--api-key", "k:p@ss", "--robot-secret", "a=s"], "a secret containing '@' needs a scope after it"),
    (["--api-key", "k:s@", "--robot-secret", "a=s"], "argument --api-key: API key 'k': the scope after '@'"),
    (["--api-key", "k:s@*,a", "--robot-secret", "a=s"], "'@*' already means every host"),
    (["--api-keys-file", "KEYS", "--robot-secret", "a=s"], "KEYS:3: API key 'bad'"),
    (["--api-keys-file", "MISSING", "--robot-secret", "a=s"], "cannot read"),
    (["--api-keys-file", "GOODKEYS"], "auth needs both --api-key or --api-keys-file"),
])
def test_signal_refuses_unclear_key_scopes(
    args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "ROBOTS").write_text("b=t\n")
    (tmp_path / "KEYS").write_text("ok:s@a\n# next is wrong\nbad:s@a,,b\n")
    (tmp_path / "GOODKEYS").write_text("ok:s@a\n")
    argv = [str(tmp_path / a) if a in ("ROBOTS", "KEYS", "GOODKEYS", "MISSING") else a for a in args]
    with pytest.raises(SystemExit) as exited:
        main(["signal", "--port", "0", *argv])
    assert exited.value.code == 2
    assert message.replace("KEYS", str(tmp_path / "KEYS")) in capsys.readouterr().err


def test_serve_accepts_the_same_syntax_but_no_host_names(capsys: pytest.CaptureFixture[str]) -> None:
    """A robot's own keys reach only the robot: ``@*`` (how a secret containing '@' is written) is
    fine, named hosts would promise a limit that means nothing there and are refused."""
    args = _parser().parse_args(["serve", "--api-key", "k:p@ss@*", "--api-key", "plain:s"])
    assert args.api_key == [ApiKey("k", "p@ss", (ANY_HOST,)), ApiKey("plain", "s")]
    with pytest.raises(SystemExit) as exited:
        _parser().parse_args(["serve", "--api-key", "k:s@robot.test"])
    assert exited.value.code == 2
    assert "a robot's own keys reach only this robot" in capsys.readouterr().err
