"""The auth flags of ``peerbot signal`` and ``peerbot serve --robot-secret``, as real commands.

Two ``peerbot signal`` processes given the same ``--signing-key-file`` accept each other's tokens
(a third with its own key does not): what lets several instances share one Redis queue later.
Only signaling RPCs travel here (no WebRTC), on loopback.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

import pytest
from grpclib import GRPCError, Status
from grpclib.client import Channel

from signaling.auth import CREDS_API_KEY, CREDS_ROBOT_SECRET, RobotSecret, load_robot_secrets
from signaling.const import RPC_HOST_KEY
from signaling.gen.proto.rpc.webrtc.v1 import signaling_pb2 as pb
from signaling.gen.proto.rpc.webrtc.v1.signaling_grpc import SignalingServiceStub
from tests.nat.test_rendezvous_auth import OFFER, authenticate
from tests.serverproc import ServerProcess
from web.config import ConfigError, RobotConfig, load_config
from web.external_args import add_external_signaling_arguments, external_signaling
from web.main import main

pytestmark = pytest.mark.timeout(120)

RPC_TIMEOUT = 15.0
READY_TIMEOUT = 30.0


def signal_process(*args: str) -> ServerProcess:
    return ServerProcess([sys.executable, "-m", "web", "signal", "--host", "127.0.0.1", "--port", "0", *args])


async def config_status(address: str, host: str, token: str) -> Status:
    """OptionalWebRTCConfig with ``token``: OK, or the refusal's status."""
    name, port = address.rsplit(":", 1)
    channel = Channel(name, int(port))
    try:
        await SignalingServiceStub(channel).OptionalWebRTCConfig(
            pb.OptionalWebRTCConfigRequest(),
            metadata=[(RPC_HOST_KEY, host), ("authorization", f"Bearer {token}")], timeout=RPC_TIMEOUT)
    except GRPCError as exc:
        return exc.status
    finally:
        channel.close()
    return Status.OK


async def call_status(address: str, host: str, token: str) -> Status:
    name, port = address.rsplit(":", 1)
    channel = Channel(name, int(port))
    try:
        stub = SignalingServiceStub(channel)
        async with stub.Call.open(metadata=[(RPC_HOST_KEY, host), ("authorization", f"Bearer {token}")],
                                  timeout=RPC_TIMEOUT) as call:
            await call.send_message(pb.CallRequest(sdp=OFFER), end=True)
            await call.recv_message()
    except GRPCError as exc:
        return exc.status
    finally:
        channel.close()
    return Status.OK


async def test_instances_sharing_a_signing_key_accept_each_others_tokens(tmp_path: Path) -> None:
    shared = tmp_path / "shared.key"
    shared.write_text("0123456789abcdef" * 3 + "\n")
    own = tmp_path / "own.key"
    own.write_text("fedcba9876543210" * 3)
    secrets = tmp_path / "robots"
    secrets.write_text("# robots of this rendezvous\n\nrobot.test = r0b0t-pass\n")
    common = ["--api-key", "caller:caller-secret", "--robot-secrets-file", str(secrets)]
    with signal_process(*common, "--signing-key-file", str(shared)) as a, \
            signal_process(*common, "--signing-key-file", str(shared)) as b, \
            signal_process(*common, "--signing-key-file", str(own)) as c:
        (addr_a,), (addr_b,), (addr_c,) = await asyncio.gather(
            *(asyncio.to_thread(p.wait_ready, 1, READY_TIMEOUT) for p in (a, b, c)))
        caller = await authenticate(addr_a, "robot.test", "caller", CREDS_API_KEY, "caller-secret")
        robot = await authenticate(addr_b, "robot.test", "robot.test", CREDS_ROBOT_SECRET, "r0b0t-pass")
        assert await config_status(addr_b, "robot.test", caller) is Status.OK
        assert await config_status(addr_a, "robot.test", robot) is Status.OK
        assert await config_status(addr_c, "robot.test", caller) is Status.UNAUTHENTICATED
        # B takes A's token for a Call (and, with no robot there, answers offline), C refuses it
        assert await call_status(addr_b, "robot.test", caller) is Status.NOT_FOUND
        assert await call_status(addr_c, "robot.test", caller) is Status.UNAUTHENTICATED
        assert any("auth required: 1 API key(s); robots may answer for robot.test" in line for line in a.lines)
        for process in (a, b, c):
            assert process.poll() is None
            assert await asyncio.to_thread(process.terminate, 10) == 0
        assert not any("r0b0t-pass" in line or "caller-secret" in line for line in a.lines + b.lines + c.lines)


@pytest.mark.parametrize(("args", "message"), [
    (["--api-key", "k:s"], "auth needs both --api-key"),
    (["--robot-secret", "robot.test=s"], "auth needs both --api-key"),
    (["--robot-secret", "robot.test"], "HOST[,HOST...]=SECRET"),
    (["--api-key", "k:s", "--robot-secret", "a=s", "--robot-secret", "a,b=t"], "host 'a' has two robot secrets"),
    (["--api-key", "k:s", "--robot-secret", "a=s", "--signing-key-file", "KEYFILE"], "at least 32 bytes"),
    (["--api-key", "k:s", "--robot-secret", "a=s", "--signing-key-file", "MISSING"], "cannot read"),
    (["--api-key", "k:s", "--robot-secrets-file", "BADFILE"], "BADFILE:2: a robot secret is"),
])
def test_signal_refuses_incomplete_auth_flags(
    args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "KEYFILE").write_text("too short\n")
    (tmp_path / "BADFILE").write_text("ok.test=s\nno-secret-here\n")
    argv = [str(tmp_path / a) if a in ("KEYFILE", "MISSING", "BADFILE") else a for a in args]
    with pytest.raises(SystemExit) as exited:
        main(["signal", "--port", "0", *argv])
    assert exited.value.code == 2
    assert message.replace("BADFILE", str(tmp_path / "BADFILE")) in capsys.readouterr().err


def test_robot_secrets_file_lines(tmp_path: Path) -> None:
    path = tmp_path / "robots"
    path.write_text("# comment\n a.test , a.local = s1 \n\nb.test=s=2\n")
    assert load_robot_secrets(str(path)) == [RobotSecret(("a.test", "a.local"), "s1"), RobotSecret(("b.test",), "s=2")]
    assert "s1" not in repr(load_robot_secrets(str(path)))


def serve_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_external_signaling_arguments(parser)
    return parser.parse_args(argv)


def test_serve_robot_secret_from_flag_or_cloud_secret(tmp_path: Path) -> None:
    path = tmp_path / "robot.json"
    path.write_text('{"cloud": {"fqdn": "robot.test", "signaling_address": "127.0.0.1:9", "secret": "from-config"}}')
    config = load_config(path)
    from_config = external_signaling(serve_args(), config)
    from_flag = external_signaling(serve_args("--robot-secret", "from-flag"), config)
    assert from_config is not None and from_config.secret == "from-config"
    assert from_flag is not None and from_flag.secret == "from-flag" and "from-flag" not in repr(from_flag)
    with pytest.raises(ConfigError, match="--robot-secret needs --signaling-address"):
        external_signaling(serve_args("--robot-secret", "s"), RobotConfig())
