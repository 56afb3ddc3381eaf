"""TURN REST credentials, ICE settings, and the flags and config that configure them (no network)."""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import subprocess
from pathlib import Path

import pytest

from signaling.config import IceServer
from signaling.ice import IceSettings, TurnRest, check_ice_url, merge_ice_servers, turn_rest_credential
from web.config import ConfigError, parse_config
from web.external_args import external_signaling
from web.main import _parser, main


def openssl_rest_password(secret: str, username: str) -> str:
    """The REST password computed by a different implementation (openssl), as coturn would."""
    digest = subprocess.run(["openssl", "dgst", "-sha1", "-hmac", secret, "-binary"], input=username.encode(),
                            capture_output=True, timeout=10, check=True).stdout
    return base64.b64encode(digest).decode()


# -- credentials ---------------------------------------------------------------------------------
def test_rest_credential_matches_an_independent_hmac() -> None:
    username, credential = turn_rest_credential(b"s3cret", "alice", ttl=300, now=1_700_000_000.9)
    assert username == "1700000300:alice"
    assert credential == openssl_rest_password("s3cret", "1700000300:alice")
    expected = base64.b64encode(hmac.new(b"s3cret", username.encode(), hashlib.sha1).digest()).decode()
    assert credential == expected


@pytest.mark.parametrize(("secret", "user", "message"), [
    (b"", "alice", "secret is empty"),
    (b"x", "a:b", "may not contain ':'"),
])
def test_rest_credential_refuses_bad_input(secret: bytes, user: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        turn_rest_credential(secret, user, ttl=60, now=0)


def test_settings_mint_a_fresh_credential_per_request() -> None:
    clock = [1_000.0]
    settings = IceSettings([IceServer(("stun:stun.test:3478",))],
                           rest=TurnRest(("turn:turn.test:3478",), b"k", "bot", ttl=120), clock=lambda: clock[0])
    first = settings.webrtc_config().ice_servers
    clock[0] += 7
    second = settings.webrtc_config().ice_servers
    assert first[0] == second[0] == IceServer(("stun:stun.test:3478",))
    assert (first[1].username, second[1].username) == ("1120:bot", "1127:bot")
    assert second[1].credential == openssl_rest_password("k", "1127:bot")
    assert "k" not in repr(settings.rest) and "REST credentials, ttl 120 s" in settings.describe()


@pytest.mark.parametrize("ttl", [0, 301, -5])
def test_rest_ttl_is_bounded(ttl: int) -> None:
    with pytest.raises(ValueError, match="TTL must be 1 to 300"):
        TurnRest(("turn:t:3478",), b"k", ttl=ttl)


@pytest.mark.parametrize(("url", "message"), [
    ("http://x", "not a STUN/TURN URL"),
    ("stuns:x:5349", "not a STUN/TURN URL"),
    ("turn:x:70000", "out of range"),
    ("stun:x?transport=udp", "takes no transport"),
    ("turns:x?transport=udp", "TCP only"),
    ("turn:x?transport=sctp", "not a STUN/TURN URL"),
])
def test_bad_ice_urls_are_refused(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_ice_url(url)


def test_turn_needs_credentials_and_rest_needs_turn_urls() -> None:
    with pytest.raises(ValueError, match="needs a username and a credential"):
        IceSettings([IceServer(("turn:t:3478",))])
    with pytest.raises(ValueError, match="turn:/turns: URLs only"):
        TurnRest(("stun:t:3478",), b"k")


def test_merge_keeps_the_first_group_first_and_drops_repeated_urls() -> None:
    rendezvous = [IceServer(("turn:a:3478",), "1:x", "p")]
    own = [IceServer(("stun:s:3478",)), IceServer(("turn:a:3478",), "2:x", "q")]
    assert merge_ice_servers(rendezvous, own) == [rendezvous[0], own[0]]


# -- flags ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(("argv", "message"), [
    (["--turn", "turn:t:3478"], "--turn needs credentials"),
    (["--turn", "turn:t:3478", "--turn-user", "u"], "--turn needs credentials"),
    (["--turn-user", "u", "--turn-password", "p"], "without any --turn URL"),
    (["--turn", "turn:t:3478", "--turn-user", "u", "--turn-password", "p", "--turn-secret-file", "f"],
     "exclude each other"),
    (["--turn", "turn:t:3478", "--turn-secret-file", "/nonexistent/secret"], "cannot read"),
    (["--turn", "turn:t:3478", "--turn-user", "u", "--turn-password", "p", "--turn-ttl", "60"],
     "only with --turn-secret-file"),
    (["--stun", "turn:t:3478"], "must start with stun:"),
    (["--turn", "turn:t:99999", "--turn-user", "u", "--turn-password", "p"], "out of range"),
])
@pytest.mark.parametrize("command", ["serve", "signal"])
def test_bad_ice_flags_exit_2_with_a_reason(
    command: str, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main([command, *argv])
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


def test_rest_flags_build_rest_settings(tmp_path: Path) -> None:
    from web.ice_args import ice_settings

    secret = tmp_path / "secret"
    secret.write_text("  shared-secret\n")
    parser = _parser()
    args = parser.parse_args(["signal", "--turn", "turn:t:3478?transport=tcp", "--turn-secret-file", str(secret),
                              "--turn-ttl", "60", "--stun", "stun:s:3478"])
    settings = ice_settings(parser, args)
    assert settings.rest is not None and settings.rest.secret == b"shared-secret" and settings.rest.ttl == 60
    assert [s.urls for s in settings.servers()] == [("stun:s:3478",), ("turn:t:3478?transport=tcp",)]


def test_empty_secret_file_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    secret = tmp_path / "secret"
    secret.write_text("\n")
    with pytest.raises(SystemExit):
        main(["signal", "--turn", "turn:t:3478", "--turn-secret-file", str(secret)])
    assert "is empty" in capsys.readouterr().err


# -- external signaling: flags and Viam's cloud section -------------------------------------------
def _serve_args(*argv: str) -> argparse.Namespace:
    return _parser().parse_args(["serve", *argv])


def test_cloud_section_gives_address_and_both_names() -> None:
    config = parse_config({"cloud": {"id": "x", "secret": "y", "fqdn": "bot.example.org",
                                     "local_fqdn": "bot.local.example.org", "signaling_address": "rv.example.org:443"}})
    external = external_signaling(_serve_args(), config)
    assert external is not None
    assert external.address == "rv.example.org:443"
    assert external.hosts == ("bot.example.org", "bot.local.example.org")


def test_flags_override_the_cloud_section() -> None:
    config = parse_config({"cloud": {"fqdn": "a.test", "signaling_address": "rv:1"}})
    external = external_signaling(_serve_args("--signaling-address", "other:2", "--fqdn", "b.test"), config)
    assert external is not None and (external.address, external.hosts) == ("other:2", ("b.test",))


def test_no_external_signaling_by_default() -> None:
    assert external_signaling(_serve_args(), parse_config({})) is None


@pytest.mark.parametrize(("raw", "message"), [
    ({"cloud": {"signaling_address": "nope"}}, 'cloud.signaling_address: must be "host:port"'),
    ({"cloud": {"fqdn": 5}}, "cloud.fqdn: must be a string"),
    ({"cloud": []}, "cloud: must be an object"),
])
def test_bad_cloud_section_is_a_config_error(raw: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_config(raw)
    assert any(message in problem for problem in raised.value.problems), raised.value.problems


@pytest.mark.parametrize(("argv", "message"), [
    (["--fqdn", "a.test"], "--fqdn needs --signaling-address"),
    (["--signaling-address", "rv:1"], "needs a host name"),
    (["--signaling-address", "rv:1", *[arg for i in range(6) for arg in ("--fqdn", f"h{i}")]], "1 to 5"),
])
def test_incomplete_external_signaling_is_a_config_error(argv: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        external_signaling(_serve_args(*argv), parse_config({}))


def test_bad_signaling_address_flag_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["serve", "--signaling-address", "no-port", "--fqdn", "a"])
    assert "expected HOST:PORT" in capsys.readouterr().err


def test_check_reports_incomplete_external_signaling(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--check", "--fqdn", "a.test"]) == 2
    assert "--fqdn needs --signaling-address" in capsys.readouterr().err
