"""CORS with credentials: what a browser page of another origin sees (real-clients.md §4.1)."""

from __future__ import annotations

import aiohttp
import pytest

from peer.gen.viam.robot.v1 import robot_pb2
from web.cors import CorsPolicy, host_name, parse_origin
from web.main import main

from .conftest import MakeRobot
from .wire import call

RESOURCE_NAMES = "/viam.robot.v1.RobotService/ResourceNames"
#: what connect-web asks for (plus the headers viam's clients add)
REQUESTED = "content-type,rpc-host,x-grpc-web,x-user-agent,authorization,grpc-timeout,viam_client,viam-sid,opid"


async def preflight(session: aiohttp.ClientSession, port: int, origin: str) -> aiohttp.ClientResponse:
    async with session.options(
        f"http://127.0.0.1:{port}{RESOURCE_NAMES}",
        headers={"Origin": origin, "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": REQUESTED},
    ) as resp:
        await resp.read()
        return resp


async def test_same_host_name_other_port_is_allowed(make_robot: MakeRobot, http: aiohttp.ClientSession) -> None:
    robot = await make_robot()
    origin = "http://127.0.0.1:5173"
    resp = await preflight(http, robot.port, origin)
    assert resp.status == 204
    assert resp.headers["Access-Control-Allow-Origin"] == origin
    assert resp.headers["Access-Control-Allow-Credentials"] == "true"
    assert resp.headers["Access-Control-Allow-Headers"].split(", ") == REQUESTED.split(",")
    assert "POST" in resp.headers["Access-Control-Allow-Methods"]
    assert resp.headers["Access-Control-Max-Age"] == "600"
    assert "Origin" in resp.headers["Vary"]

    answer = await call(http, robot.port, RESOURCE_NAMES, robot_pb2.ResourceNamesRequest(), headers={"Origin": origin})
    assert answer.status == 0
    assert answer.headers["access-control-allow-origin"] == origin
    assert answer.headers["access-control-allow-credentials"] == "true"
    exposed = answer.headers["access-control-expose-headers"].split(", ")
    assert {"grpc-status", "grpc-message", "grpc-status-details-bin"} <= set(exposed)


async def test_trailers_only_errors_are_readable_cross_origin(make_robot: MakeRobot,
                                                              http: aiohttp.ClientSession) -> None:
    robot = await make_robot()
    answer = await call(http, robot.port, "/viam.robot.v1.RobotService/Nope", b"",
                        headers={"Origin": "http://127.0.0.1:3000"})
    assert answer.trailers_only and answer.status == 12
    assert answer.headers["access-control-allow-origin"] == "http://127.0.0.1:3000"
    assert "grpc-status" in answer.headers["access-control-expose-headers"]


async def test_initial_metadata_is_exposed(make_robot: MakeRobot, http: aiohttp.ClientSession) -> None:
    robot = await make_robot()
    answer = await call(http, robot.port, "/tests.web.Probe/Metadata", b"\x00\x00\x00\x00\x00",
                        headers={"Origin": "http://127.0.0.1:3000"})
    assert "x-initial" in answer.headers["access-control-expose-headers"].split(", ")


async def test_disallowed_origin_gets_no_cors_headers(make_robot: MakeRobot, http: aiohttp.ClientSession) -> None:
    robot = await make_robot()
    origin = "http://evil.example:8080"
    resp = await preflight(http, robot.port, origin)
    assert resp.status == 403
    assert not [h for h in resp.headers if h.lower().startswith("access-control-")]
    answer = await call(http, robot.port, RESOURCE_NAMES, robot_pb2.ResourceNamesRequest(), headers={"Origin": origin})
    assert not [h for h in answer.headers if h.startswith("access-control-")]
    resp = await preflight(http, robot.port, "null")
    assert resp.status == 403


async def test_allow_origin_list(make_robot: MakeRobot, http: aiohttp.ClientSession) -> None:
    robot = await make_robot(allowed_origins=["http://laptop.local:5173"])
    resp = await preflight(http, robot.port, "http://laptop.local:5173")
    assert resp.status == 204
    assert resp.headers["Access-Control-Allow-Origin"] == "http://laptop.local:5173"
    resp = await preflight(http, robot.port, "http://laptop.local:5174")
    assert resp.status == 403
    async with http.get(f"http://127.0.0.1:{robot.port}/stats", headers={"Origin": "http://laptop.local:5173"}) as r:
        assert r.headers["Access-Control-Allow-Origin"] == "http://laptop.local:5173"


def test_origin_parsing_and_policy() -> None:
    assert parse_origin("HTTP://Laptop.Local:5173/") == parse_origin("http://laptop.local:5173")
    assert parse_origin("http://a") == parse_origin("http://a:80")
    for bad in ("laptop:5173", "ftp://a", "http://a/path", "http://u:p@a", "*", "null"):
        with pytest.raises(ValueError):
            parse_origin(bad)
    assert host_name("Robot.local:8080") == "robot.local"
    assert host_name("[::1]:8080") == "::1"
    assert host_name("10.0.0.2") == "10.0.0.2"
    policy = CorsPolicy(["https://panel.example"])
    assert policy.allows("https://panel.example", "robot:8080")
    assert not policy.allows("http://panel.example", "robot:8080")  # the scheme is part of the origin
    assert policy.allows("http://robot:1234", "robot:8080")
    assert not policy.allows("http://robot.evil:1234", "robot:8080")
    assert not CorsPolicy(same_host=False).allows("http://robot:1234", "robot:8080")


def test_bad_allow_origin_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["serve", "--allow-origin", "laptop:5173", "--check"])
    assert exc.value.code == 2
    assert "not an origin" in capsys.readouterr().err
    assert main(["serve", "--allow-origin", "http://laptop.local:5173", "--check"]) == 0
