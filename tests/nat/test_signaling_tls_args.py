"""How ``peerbot serve`` secures its connection to a rendezvous: flags, config, and the guards
(no network; tests/nat/test_rendezvous_tls.py connects for real)."""

from __future__ import annotations

import argparse
import ssl
from pathlib import Path

import pytest

from signaling.external import ExternalSignaling, external_answerer, is_loopback, secret_in_clear
from tests.pki import ThrowawayPKI, make_pki
from web.config import ConfigError, parse_config
from web.external_args import external_signaling
from web.main import _parser, main

CLOUD = {"cloud": {"fqdn": "bot.example.org", "signaling_address": "rv.example.org:443", "secret": "s"}}


def _serve_args(*argv: str) -> argparse.Namespace:
    return _parser().parse_args(["serve", *argv])


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> ThrowawayPKI:
    return make_pki(tmp_path_factory.mktemp("pki"))


def test_tls_with_verification_is_the_default() -> None:
    external = external_signaling(_serve_args(), parse_config(CLOUD))
    assert external is not None and not external.insecure
    context = external.tls
    assert context is not None
    assert context.verify_mode is ssl.CERT_REQUIRED and context.check_hostname
    assert context.minimum_version is ssl.TLSVersion.TLSv1_2


def test_the_ca_file_is_what_the_context_trusts(pki: ThrowawayPKI) -> None:
    external = external_signaling(_serve_args("--signaling-ca", str(pki.ca)), parse_config(CLOUD))
    assert external is not None and external.tls is not None
    assert [c["subject"] for c in external.tls.get_ca_certs()] == [((("commonName", "peerbot test CA"),),)]


@pytest.mark.parametrize("how", ["flag", "config"])
def test_cleartext_only_when_asked_for(how: str) -> None:
    raw = {"cloud": {**CLOUD["cloud"], "signaling_insecure": True}} if how == "config" else CLOUD
    argv = ["--signaling-insecure"] if how == "flag" else []
    external = external_signaling(_serve_args(*argv), parse_config(raw))
    assert external is not None and external.insecure and external.tls is None


@pytest.mark.parametrize(("argv", "message"), [
    (["--signaling-ca", "/nonexistent/ca.pem"], "cannot read the signaling CA file /nonexistent/ca.pem: no such file"),
    (["--signaling-ca", "CA", "--signaling-insecure"], "--signaling-ca means TLS"),
])
def test_bad_tls_settings_are_config_errors(argv: list[str], message: str, pki: ThrowawayPKI) -> None:
    argv = [str(pki.ca) if arg == "CA" else arg for arg in argv]
    with pytest.raises(ConfigError, match=message):
        external_signaling(_serve_args(*argv), parse_config(CLOUD))


def test_a_ca_file_that_is_not_a_certificate_is_named(tmp_path: Path) -> None:
    bogus = tmp_path / "ca.pem"
    bogus.write_text("not a certificate\n")
    with pytest.raises(ConfigError) as raised:
        external_signaling(_serve_args("--signaling-ca", str(bogus)), parse_config(CLOUD))
    assert f"cannot use the signaling CA file {bogus}" in raised.value.message


@pytest.mark.parametrize("flag", [["--signaling-ca", "ca.pem"], ["--signaling-insecure"]])
def test_tls_flags_need_an_address(flag: list[str]) -> None:
    with pytest.raises(ConfigError, match=f"{flag[0]} needs --signaling-address"):
        external_signaling(_serve_args(*flag), parse_config({}))


def test_signaling_insecure_must_be_a_boolean() -> None:
    with pytest.raises(ConfigError) as raised:
        parse_config({"cloud": {**CLOUD["cloud"], "signaling_insecure": "yes"}})
    assert "cloud.signaling_insecure: must be true or false" in raised.value.problems


def test_check_reports_a_missing_ca_file(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["serve", "--check", "--signaling-address", "rv.example.org:443", "--fqdn", "a.test",
            "--signaling-ca", "/nonexistent/ca.pem"]
    assert main(argv) == 2
    assert "/nonexistent/ca.pem: no such file" in capsys.readouterr().err


def test_the_dataclass_refuses_contradictions(pki: ThrowawayPKI) -> None:
    with pytest.raises(ValueError, match="contradicts insecure"):
        ExternalSignaling("rv.example.org:443", ("a.test",), insecure=True, ca_file=str(pki.ca))


async def test_external_answerer_takes_a_context_or_insecure_not_both() -> None:
    context = ssl.create_default_context()
    with pytest.raises(ValueError, match="takes no TLS context"):
        async with external_answerer("127.0.0.1:9", ["a.test"], _never_called, tls=context, insecure=True):
            raise AssertionError("entered")


async def _never_called(*args: object) -> None:
    raise AssertionError("no offer is expected")


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("127.9.9.9", True), ("::1", True), ("localhost", True), ("LOCALHOST", True),
    ("10.0.0.1", False), ("rv.example.org", False), ("localhost.example.org", False), ("::", False),
])
def test_loopback_is_decided_without_resolving(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_a_secret_is_in_clear_only_over_cleartext_to_another_machine() -> None:
    context = ssl.create_default_context()
    assert secret_in_clear("rv.example.org", "s", None)
    assert not secret_in_clear("rv.example.org", "s", context)
    assert not secret_in_clear("127.0.0.1", "s", None)
    assert not secret_in_clear("rv.example.org", None, None)
