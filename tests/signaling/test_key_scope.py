"""API keys scoped to host names: the ``ID:SECRET@HOST,…`` syntax, the keys file, and the rules
the :class:`~signaling.auth.Authenticator` applies (Authenticate and every call), without a network.

The in-process rendezvous with two robots is tests/nat/test_rendezvous_scope.py; the flags as a
real command are tests/nat/test_signal_auth_cli.py.
"""

from __future__ import annotations

import time
from pathlib import Path

import jwt
import pytest
from grpclib import Status

from signaling.auth import (
    ANY_HOST,
    CREDS_API_KEY,
    CREDS_ROBOT_SECRET,
    ApiKey,
    Authenticator,
    PermissionDeniedError,
    RobotSecret,
    load_api_keys,
)
from web.signal import check_key_scopes

A = RobotSecret(("a.test", "a.alias"), "a-secret")
B = RobotSecret(("b.test",), "b-secret")
HOSTS = [*A.hosts, *B.hosts]
SIGNING_KEY = b"k" * 48


def rendezvous(*keys: ApiKey) -> Authenticator:
    return Authenticator(keys, robot_secrets=[A, B], hosts=HOSTS, signing_key=SIGNING_KEY)


def audience(token: str) -> list[str]:
    claims = jwt.decode(token, options={"verify_signature": False})
    aud = claims["aud"]
    assert isinstance(aud, list)
    return aud


# --- syntax ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("k:S3CR3T", ("k", "S3CR3T", None)),
    ("k:S3CR3T@a.test", ("k", "S3CR3T", ("a.test",))),
    ("k:S3CR3T@ a.test , b.test ,a.test", ("k", "S3CR3T", ("a.test", "b.test"))),
    ("k:S3CR3T@*", ("k", "S3CR3T", (ANY_HOST,))),
    ("k:S3:CR@ET@rv.example.org:8081", ("k", "S3:CR@ET", ("rv.example.org:8081",))),  # last @, host with port
    ("k:p@ss@*", ("k", "p@ss", (ANY_HOST,))),
])
def test_parse(text: str, expected: tuple[str, str, tuple[str, ...] | None]) -> None:
    key = ApiKey.parse(text)
    assert (key.id, key.secret, key.hosts) == expected
    assert key.secret not in repr(key) and key.secret not in key.describe()


@pytest.mark.parametrize(("text", "message"), [
    ("k:s@", "no empty names"),
    ("k:s@a.test,", "no empty names"),
    ("k:s@*,a.test", "already means every host"),
    ("k:@a.test", "id and secret non-empty"),
    (":s@a.test", "id and secret non-empty"),
])
def test_parse_refuses(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ApiKey.parse(text)


def test_reach() -> None:
    named = ApiKey.parse("k:s@a.test")
    assert named.scoped and named.named_hosts == {"a.test"}
    assert named.reaches("a.test") and not named.reaches("a.alias") and not named.reaches("b.test")
    for unlimited in (ApiKey.parse("k:s"), ApiKey.parse("k:s@*")):
        assert unlimited.named_hosts is None and unlimited.reaches("anything")
    assert ApiKey.parse("k:s@*").scoped and not ApiKey.parse("k:s").scoped


def test_keys_file(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text("# operators\n\n ops:o-secret@* \nlab:l-secret@a.test,a.alias\n")
    assert load_api_keys(str(path)) == [ApiKey("ops", "o-secret", (ANY_HOST,)),
                                        ApiKey("lab", "l-secret", ("a.test", "a.alias"))]
    path.write_text("ops:o-secret@*\n# fine\nlab:l-secret@\n")
    with pytest.raises(ValueError, match=f"^{path}:3: ") as caught:
        load_api_keys(str(path))
    assert "l-secret" not in str(caught.value)


# --- the rendezvous's startup rule ---------------------------------------------------------------------


def test_a_bare_key_is_refused_once_a_rendezvous_has_several_robots() -> None:
    check_key_scopes([ApiKey("k", "s")], [A])  # one robot: nothing to confuse
    with pytest.raises(ValueError, match="'k' has no scope, but this rendezvous serves 2 robots"):
        check_key_scopes([ApiKey("k", "s")], [A, B])
    check_key_scopes([ApiKey.parse("k:s@*"), ApiKey.parse("l:s@b.test")], [A, B])


def test_a_scope_naming_no_robot_is_refused() -> None:
    with pytest.raises(ValueError, match=r"scoped to ghost\.test, which this server does not serve"):
        rendezvous(ApiKey.parse("k:s@a.test,ghost.test"))


# --- Authenticate and per-call checks ------------------------------------------------------------------


def test_authenticate_for_a_host_outside_the_scope_is_denied_and_mints_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    auth = rendezvous(ApiKey.parse("lab:l@a.test"))
    minted: list[str | None] = []
    issue = auth.issue

    def recording_issue(entity: str, creds_type: str, host: str | None, *, now: float | None = None) -> str:
        minted.append(host)
        return issue(entity, creds_type, host, now=now)

    monkeypatch.setattr(auth, "issue", recording_issue)
    for host in ("b.test", "a.alias"):  # another robot; and another name of the same robot (exact names)
        with pytest.raises(PermissionDeniedError, match=f"API key 'lab' may not reach host '{host}'") as caught:
            auth.authenticate("lab", CREDS_API_KEY, "l", host)
        assert caught.value.status is Status.PERMISSION_DENIED
    assert minted == []
    with pytest.raises(PermissionDeniedError, match="failed to authenticate"):  # a wrong secret says nothing more
        auth.authenticate("lab", CREDS_API_KEY, "guess", "b.test")
    assert audience(auth.authenticate("lab", CREDS_API_KEY, "l", "a.test")) == ["a.test"]
    assert minted == ["a.test"]


def test_authenticate_without_rpc_host_names_only_the_scope() -> None:
    auth = rendezvous(ApiKey.parse("lab:l@b.test,a.alias"), ApiKey.parse("ops:o@*"), ApiKey("bare", "x"))
    assert audience(auth.authenticate("lab", CREDS_API_KEY, "l", None)) == ["a.alias", "b.test"]
    assert audience(auth.authenticate("ops", CREDS_API_KEY, "o", None)) == sorted(HOSTS)
    assert audience(auth.authenticate("bare", CREDS_API_KEY, "x", None)) == sorted(HOSTS)
    robot = auth.authenticate("b.test", CREDS_ROBOT_SECRET, "b-secret", None)  # robots are not keys
    assert audience(robot) == ["b.test"]


def test_every_call_rechecks_the_scope_configured_now() -> None:
    """A token minted while the key reached every robot (same signing key: a restart with
    ``--signing-key-file``) stops reaching the robots the key was narrowed away from."""
    before = rendezvous(ApiKey("lab", "l"))
    old_token = before.authenticate("lab", CREDS_API_KEY, "l", None)
    assert set(audience(old_token)) == set(HOSTS)
    for host in HOSTS:
        before.check_audience(before.verify(old_token), host)
    after = rendezvous(ApiKey.parse("lab:l@a.test"))
    principal = after.verify(old_token)
    after.check_audience(principal, "a.test")
    for host in ("a.alias", "b.test"):
        with pytest.raises(PermissionDeniedError, match=f"API key 'lab' may not reach host '{host}'"):
            after.check_audience(principal, host)


def test_a_token_naming_more_hosts_than_the_scope_reaches_only_the_scope() -> None:
    """A genuine token (another instance sharing the signing key, configured otherwise) naming a
    host outside this instance's scope for the key is denied per call."""
    auth = rendezvous(ApiKey.parse("lab:l@a.test"))
    now = int(time.time())
    wide = jwt.encode({"sub": "lab", "aud": HOSTS, "iss": "peerbot", "iat": now, "exp": now + 60,
                       "rpc_creds_type": CREDS_API_KEY}, SIGNING_KEY, algorithm="HS256")
    with pytest.raises(PermissionDeniedError):
        auth.check_audience(auth.verify(wide), "b.test")
