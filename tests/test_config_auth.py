"""The ``auth`` section of the robot config and ``--api-key``: parsing, and a served robot honouring them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from grpclib import GRPCError, Status
from grpclib.client import Channel

from peer.gen.viam.robot.v1 import robot_pb2
from peer.gen.viam.robot.v1.robot_grpc import RobotServiceStub
from signaling.auth import CREDS_API_KEY, ApiKey
from signaling.gen.proto.rpc.v1 import auth_pb2
from signaling.gen.proto.rpc.v1.auth_grpc import AuthServiceStub
from web.config import ConfigError, parse_config
from web.main import main

from .serverproc import REPO, ServerProcess

READY_TIMEOUT_S = 30
CALL_TIMEOUT_S = 10
STOP_TIMEOUT_S = 10


def auth_section(*handlers: object) -> dict[str, object]:
    return {"components": [], "auth": {"handlers": list(handlers)}}


def test_api_key_handlers_are_read() -> None:
    config = parse_config(auth_section(
        {"type": "api-key", "config": {"key-a": "secret-a", "key": "legacy-secret", "keys": ["legacy"]}},
        {"type": "api-key", "config": {"key-b": "secret-b"}},
    ))
    assert [(k.id, k.secret) for k in config.auth.api_keys] == [("key-a", "secret-a"), ("key-b", "secret-b")]
    assert parse_config({"components": []}).auth.api_keys == ()


@pytest.mark.parametrize(("auth", "expected"), [
    ("nope", "auth: must be an object"),
    ({"handlers": {}}, "auth.handlers: must be a list"),
    ({"handlers": [{"type": "oauth", "config": {}}]}, "auth.handlers[0].type: unsupported auth handler 'oauth'"),
    ({"handlers": [{"type": "api-key", "config": {"keys": ["only-legacy"]}}]}, "auth.handlers[0].config: no API keys"),
    ({"handlers": [{"type": "api-key", "config": {"k": 5}}]}, "auth.handlers[0].config.k: must be a non-empty secret"),
    ({"handlers": [{"type": "api-key", "config": {"k": "a"}}, {"type": "api-key", "config": {"k": "b"}}]},
     "auth.handlers[1].config.k: API key id given twice"),
])
def test_bad_auth_sections_are_reported(auth: object, expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config({"components": [], "auth": auth})
    assert any(p.startswith(expected) for p in err.value.problems), err.value.problems


def test_cli_rejects_a_malformed_api_key(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["serve", "--check", "--api-key", "no-colon-here"])
    assert exited.value.code == 2
    assert "KEY_ID:SECRET" in capsys.readouterr().err


@pytest.fixture
def config_with_auth(tmp_path: Path) -> Path:
    config = json.loads((REPO / "web" / "fake_robot.json").read_text())
    config["auth"] = {"handlers": [{"type": "api-key", "config": {"from-config": "config-secret"}}]}
    path = tmp_path / "robot.json"
    path.write_text(json.dumps(config))
    return path


async def test_served_robot_requires_the_configured_and_cli_keys(config_with_auth: Path) -> None:
    args = ["--host", "127.0.0.1", "--port", "0", "--config", str(config_with_auth),
            "--api-key", "from-cli:cli-secret"]
    with ServerProcess.peerbot(args) as server:
        host, port = server.wait_ready(1, READY_TIMEOUT_S)[0].rsplit(":", 1)
        channel = Channel(host, int(port))
        try:
            robot = RobotServiceStub(channel)
            with pytest.raises(GRPCError) as caught:
                await robot.ResourceNames(robot_pb2.ResourceNamesRequest(), timeout=CALL_TIMEOUT_S)
            assert caught.value.status is Status.UNAUTHENTICATED
            for key in (ApiKey("from-config", "config-secret"), ApiKey("from-cli", "cli-secret")):
                reply = await AuthServiceStub(channel).Authenticate(auth_pb2.AuthenticateRequest(
                    entity=key.id, credentials=auth_pb2.Credentials(type=CREDS_API_KEY, payload=key.secret)),
                    timeout=CALL_TIMEOUT_S)
                names = await robot.ResourceNames(robot_pb2.ResourceNamesRequest(), timeout=CALL_TIMEOUT_S,
                                                  metadata={"authorization": f"Bearer {reply.access_token}"})
                assert names.resources
        finally:
            channel.close()
        assert server.terminate(STOP_TIMEOUT_S) == 0
