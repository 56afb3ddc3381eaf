"""Authentication: credentials → signed JWT (``proto.rpc.v1.AuthService``) → principal per call (wire-protocol.md §10).

Who may do what, in one place, so every transport (h2c, Unix, gRPC-web, the data channel) applies
the same rules through ``peer.handlers.HandlerTable``:

* **Credentials.** ``api-key``: entity = key id, payload = secret (what viam-sdk and the TS SDK send).
  ``robot-secret``: entity = the robot's host, payload = the robot secret; only these may Answer.
  A robot's own server has one robot secret for whatever host it answers for; a rendezvous has
  one per robot (:class:`RobotSecret`: the robot's host names and its secret), so a secret for one
  robot proves nothing about another, and a robot's token is valid for all of its names.
  Bad credentials → PERMISSION_DENIED "failed to authenticate" and an unknown type → INVALID_ARGUMENT,
  as goutils answers.
* **Scopes.** An API key may be limited to host names (:class:`ApiKey`, ``ID:SECRET@HOST[,HOST…]``;
  ``@*``: every host). Authenticate for a host outside the scope → PERMISSION_DENIED and no token;
  without ``rpc-host`` the token names only the scope's hosts; and every call re-checks the scope
  of the key as configured now, so an older token of a since-narrowed key is refused too.
* **Tokens.** HS256 only (the verifier's allow-list: ``none`` and every other algorithm are
  rejected), claims ``sub`` (entity), ``aud``, ``iss``, ``iat``, ``exp``, ``jti`` and
  ``rpc_creds_type``. ``aud`` is the host asked for (``rpc-host``), all of a robot's names for a
  robot, or every host a rendezvous serves when no ``rpc-host`` was sent. The signing key is random
  per process unless given (several signaling processes behind one Redis must share it:
  :func:`load_signing_key`).
* **Per call** (:class:`RequestAuthorizer`): no ``authorization: Bearer`` → UNAUTHENTICATED
  "authentication required"; a bad, expired, ``alg: none`` or foreign-signed token → UNAUTHENTICATED.
  A token whose audience is none of this server's hosts → UNAUTHENTICATED "invalid audience"
  (goutils: the token is not meant for this server at all). A valid token for *another* host this
  server serves → PERMISSION_DENIED: the caller is known, just not allowed there.
* **Data channel.** A WebRTC session runs its calls as the principal of the Call that created it
  (the answerer learns it from ``AnswerRequestInitStage.caller_auth_entity``); a call there needs
  no token, but one that carries a Bearer token has it checked.

The principal of the running call is in :data:`current_principal` (set by the handler table), so
``SignalingService`` can bind a call's uuid to the principal that created it.
"""

from __future__ import annotations

import asyncio
import contextvars
import hmac
import logging
import secrets
import time
import uuid as uuid_mod
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, TypeVar

import jwt
from grpclib import GRPCError, Status

from .const import AUTHORIZATION_KEY, RPC_HOST_KEY, SIGNALING_SERVICE
from .errors import SignalingError
from .gen.proto.rpc.v1 import auth_pb2
from .gen.proto.rpc.v1.auth_grpc import AuthServiceBase, AuthServiceStub
from .metadata import MetadataLike, hosts_from_metadata

if TYPE_CHECKING:
    from grpclib.client import Channel
    from grpclib.server import Stream

logger = logging.getLogger(__name__)

_T = TypeVar("_T")

CREDS_API_KEY: Final = "api-key"
CREDS_ROBOT_SECRET: Final = "robot-secret"
#: The one method callable without a token.
AUTHENTICATE_METHOD: Final = "/proto.rpc.v1.AuthService/Authenticate"
#: The verifier's algorithm allow-list: exactly what we sign with.
ALGORITHM: Final = "HS256"
DEFAULT_ISSUER: Final = "peerbot"
#: viam-sdk and the TS SDK never refresh a token, so it must outlive a typical session.
DEFAULT_TOKEN_TTL_S: Final = 24 * 3600.0
#: Verified tokens remembered (a direct client sends the same token on every call; an HS256 check
#: costs ~70 µs, a hit ~1 µs). Bounded: the cache is emptied when full.
VERIFIED_CACHE_SIZE: Final = 1024
BEARER_PREFIX: Final = "Bearer "
_ANSWER_METHOD: Final = f"/{SIGNALING_SERVICE}/Answer"
_CREDS_TYPE_CLAIM: Final = "rpc_creds_type"

#: The principal the current call runs as (``None``: auth is off, or the call is exempt).
current_principal: contextvars.ContextVar[Principal | None] = contextvars.ContextVar(
    "peerbot_principal", default=None
)


class UnauthenticatedError(SignalingError):
    """No usable proof of identity: missing, malformed, expired or foreign token (goutils' status)."""

    status = Status.UNAUTHENTICATED


class PermissionDeniedError(SignalingError):
    """The caller is known but not allowed to do this (wrong host, not the robot, bad secret)."""

    status = Status.PERMISSION_DENIED


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a call runs as: the token's subject and the credential type it was issued for."""

    entity: str
    creds_type: str
    #: the hosts the token was issued for (empty for a principal carried by a WebRTC session).
    audience: tuple[str, ...] = ()

    @property
    def is_robot(self) -> bool:
        return self.creds_type == CREDS_ROBOT_SECRET


#: The scope of an API key that may reach every host its server serves (``ID:SECRET@*``).
ANY_HOST: Final = "*"


@dataclass(frozen=True, slots=True)
class ApiKey:
    """One API key and the hosts it may reach; the secret never appears in ``repr`` (configs and
    keys end up in logs).

    ``hosts`` is ``None`` when no scope was written (every host the server serves: on a robot
    that is the robot itself; a rendezvous accepts that only while it serves one robot), or the
    host names after ``@``, or ``(ANY_HOST,)`` for an explicit ``@*``.
    """

    id: str
    secret: str = field(repr=False)
    hosts: tuple[str, ...] | None = None

    @classmethod
    def parse(cls, text: str) -> ApiKey:
        """``ID:SECRET[@HOST[,HOST...] | @*]`` as given to ``--api-key`` (one line of a keys file).

        The id ends at the first ``:`` and the scope starts at the last ``@``, so a host may
        carry a port; a secret containing ``@`` must therefore be followed by a scope.
        """
        key_id, sep, rest = text.partition(":")
        secret, at, scope = rest.rpartition("@") if "@" in rest else (rest, "", "")
        if not sep or not key_id.strip() or not secret:
            raise ValueError("an API key is KEY_ID:SECRET[@HOST[,HOST...] | @*], id and secret non-empty")
        if not at:
            return cls(key_id.strip(), secret)
        hosts = tuple(dict.fromkeys(name.strip() for name in scope.split(",")))
        if not all(hosts):
            raise ValueError(f"API key {key_id.strip()!r}: the scope after '@' is HOST[,HOST...] or *, "
                             "no empty names (a secret containing '@' needs a scope after it, e.g. @*)")
        if ANY_HOST in hosts and len(hosts) > 1:
            raise ValueError(f"API key {key_id.strip()!r}: '@*' already means every host; do not add names to it")
        return cls(key_id.strip(), secret, hosts)

    @property
    def scoped(self) -> bool:
        """A scope was written (``@…``), even ``@*``."""
        return self.hosts is not None

    @property
    def named_hosts(self) -> frozenset[str] | None:
        """The host names the key is limited to; ``None``: no limit (unscoped or ``@*``)."""
        if self.hosts is None or ANY_HOST in self.hosts:
            return None
        return frozenset(self.hosts)

    def reaches(self, host: str) -> bool:
        named = self.named_hosts
        return named is None or host in named

    def describe(self) -> str:
        """The key's id and scope for logs (never the secret)."""
        named = self.named_hosts
        return f"{self.id!r} -> {', '.join(sorted(named)) if named is not None else 'every host'}"


@dataclass(frozen=True, slots=True)
class RobotSecret:
    """One robot a rendezvous knows: the host names it may answer for and its secret (never in ``repr``)."""

    hosts: tuple[str, ...]
    secret: str = field(repr=False)

    @classmethod
    def parse(cls, text: str) -> RobotSecret:
        """``HOST[,HOST…]=SECRET`` as given to ``peerbot signal --robot-secret`` (one line of a secrets file)."""
        names, sep, secret = text.partition("=")
        hosts = tuple(dict.fromkeys(name.strip() for name in names.split(",")))
        if not sep or not secret.strip() or not all(hosts):
            raise ValueError("a robot secret is HOST[,HOST...]=SECRET, all non-empty")
        return cls(hosts, secret.strip())


def load_robot_secrets(path: str) -> list[RobotSecret]:
    """A secrets file: one ``HOST[,HOST…]=SECRET`` per line; blank lines and ``#`` comments skipped.

    ``ValueError`` names the file and line (the secret itself is never echoed).
    """
    return _load_lines(path, RobotSecret.parse)


def load_api_keys(path: str) -> list[ApiKey]:
    """A keys file (``peerbot signal --api-keys-file``): one ``ID:SECRET[@HOSTS]`` per line, as
    :meth:`ApiKey.parse`; blank lines and ``#`` comments skipped; ``ValueError`` names file and line."""
    return _load_lines(path, ApiKey.parse)


def _load_lines(path: str, parse: Callable[[str], _T]) -> list[_T]:
    found: list[_T] = []
    with open(path, encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            text = line.strip()
            if not text or text.startswith("#"):
                continue
            try:
                found.append(parse(text))
            except ValueError as exc:
                raise ValueError(f"{path}:{number}: {exc}") from None
    return found


#: An HS256 key shorter than the hash gives less security than it claims (RFC 7518 §3.2).
MIN_SIGNING_KEY_BYTES: Final = 32


def load_signing_key(path: str) -> bytes:
    """The shared HS256 key in ``path`` (its bytes, surrounding whitespace stripped; e.g. made by
    ``head -c 48 /dev/urandom | base64 > FILE``). Every ``peerbot signal`` given the same file
    accepts the others' tokens. ``ValueError`` when it is shorter than 32 bytes."""
    with open(path, "rb") as handle:
        key = handle.read().strip()
    if len(key) < MIN_SIGNING_KEY_BYTES:
        raise ValueError(f"{path}: a signing key needs at least {MIN_SIGNING_KEY_BYTES} bytes, found {len(key)}")
    return key


class Authenticator:
    """Checks credentials, signs tokens and verifies them.

    :param api_keys: the API keys callers may authenticate with.
    :param robot_secret: the secret answerers authenticate with (``robot-secret`` credentials) for
        any host; ``None``: only ``robot_secrets`` (or no network answerer at all).
    :param robot_secrets: per-robot secrets (a rendezvous): a robot proves one of its own host
        names and gets a token for all of them.
    :param hosts: the hosts this server issues tokens for (its audience). ``None``: any host.
    :param signing_key: HMAC key; random per process when omitted (tokens then die with the process).
    """

    def __init__(
        self,
        api_keys: Iterable[ApiKey] = (),
        *,
        robot_secret: str | None = None,
        robot_secrets: Iterable[RobotSecret] = (),
        hosts: Iterable[str] | None = None,
        signing_key: bytes | None = None,
        issuer: str = DEFAULT_ISSUER,
        token_ttl: float = DEFAULT_TOKEN_TTL_S,
    ) -> None:
        self.hosts: frozenset[str] | None = frozenset(hosts) if hosts is not None else None
        self._keys: dict[str, ApiKey] = {}
        for key in api_keys:
            if key.id in self._keys:
                raise ValueError(f"API key id {key.id!r} is given twice")
            named = key.named_hosts
            if named is not None and self.hosts is not None and not named <= self.hosts:
                raise ValueError(f"API key {key.id!r} is scoped to {', '.join(sorted(named - self.hosts))}, which "
                                 f"this server does not serve (it serves {', '.join(sorted(self.hosts))}; a secret "
                                 "containing '@' needs a scope after it)")
            self._keys[key.id] = key
        if robot_secret == "":
            raise ValueError("the robot secret may not be empty")
        self._robot_secret = robot_secret
        self._robots: dict[str, RobotSecret] = {}
        for robot in robot_secrets:
            for host in robot.hosts:
                if host in self._robots:
                    raise ValueError(f"host {host!r} has two robot secrets")
                self._robots[host] = robot
        self._signing_key = signing_key if signing_key is not None else secrets.token_bytes(32)
        self.issuer = issuer
        self.token_ttl = token_ttl
        self._verified: dict[str, tuple[Principal, float]] = {}

    @property
    def key_ids(self) -> frozenset[str]:
        return frozenset(self._keys)

    @property
    def api_keys(self) -> tuple[ApiKey, ...]:
        return tuple(self._keys.values())

    def check_credentials(self, entity: str, creds_type: str, payload: str, host: str | None) -> None:
        """Raise unless ``payload`` proves ``entity`` for ``creds_type`` (constant-time compares)."""
        if creds_type == CREDS_API_KEY:
            key = self._keys.get(entity)
            if key is None or not hmac.compare_digest(key.secret.encode(), payload.encode()):
                raise PermissionDeniedError("failed to authenticate: invalid API key id or secret")
            if host is not None and not key.reaches(host):
                raise PermissionDeniedError(f"API key {entity!r} may not reach host {host!r}")
        elif creds_type == CREDS_ROBOT_SECRET:
            robot = self._robots.get(entity)
            expected = robot.secret if robot is not None else self._robot_secret
            if expected is None or not hmac.compare_digest(expected.encode(), payload.encode()):
                raise PermissionDeniedError("failed to authenticate: invalid robot secret")
            if entity != host:
                raise PermissionDeniedError(f"failed to authenticate: robot entity {entity!r} is not host {host!r}")
        else:
            raise SignalingError(f"do not know how to handle credential type {creds_type!r}",
                                 status=Status.INVALID_ARGUMENT)

    def issue(self, entity: str, creds_type: str, host: str | None, *, now: float | None = None) -> str:
        """A token for ``entity`` valid at ``host`` only (a robot with several names: at all of
        them, so one token registers its one Answer stream for every name). ``host=None``: every
        host this server serves (viam-sdk's Rust dialer authenticates without ``rpc-host``).
        An API key scoped to some hosts gets only those of them. Callers check the credentials first."""
        if host is None:
            if self.hosts is None:
                raise SignalingError("expected rpc-host to be set in metadata", status=Status.INVALID_ARGUMENT)
            key = self._keys.get(entity) if creds_type == CREDS_API_KEY else None
            named = key.named_hosts if key is not None else None
            audience = sorted(self.hosts if named is None else self.hosts & named)
        elif self.hosts is not None and host not in self.hosts:
            raise PermissionDeniedError(f"this server issues no tokens for host {host!r}")
        else:
            robot = self._robots.get(host) if creds_type == CREDS_ROBOT_SECRET else None
            audience = list(robot.hosts) if robot is not None else [host]
        issued = int(time.time() if now is None else now)
        claims: dict[str, Any] = {
            "sub": entity,
            "aud": audience,
            "iss": self.issuer,
            "iat": issued,
            "exp": issued + int(self.token_ttl),
            "jti": str(uuid_mod.uuid4()),
            _CREDS_TYPE_CLAIM: creds_type,
        }
        return jwt.encode(claims, self._signing_key, algorithm=ALGORITHM)

    def authenticate(self, entity: str, creds_type: str, payload: str, host: str | None) -> str:
        """Check the credentials, then :meth:`issue`. A robot that names no host is authenticating
        for its own entity (its host)."""
        if host is None and creds_type == CREDS_ROBOT_SECRET:
            host = entity
        self.check_credentials(entity, creds_type, payload, host)
        return self.issue(entity, creds_type, host)

    def verify(self, token: str) -> Principal:
        """The token's principal; UNAUTHENTICATED for anything but our own, unexpired HS256 token."""
        cached = self._verified.get(token)
        if cached is not None:
            principal, expires = cached
            if time.time() < expires:
                return principal
            del self._verified[token]
        principal, expires = self._decode(token)
        if len(self._verified) >= VERIFIED_CACHE_SIZE:
            self._verified.clear()
        self._verified[token] = (principal, expires)
        return principal

    def _decode(self, token: str) -> tuple[Principal, float]:
        try:
            claims = jwt.decode(
                token,
                self._signing_key,
                algorithms=[ALGORITHM],
                issuer=self.issuer,
                options={"require": ["sub", "aud", "iss", "iat", "exp"], "verify_aud": False},
            )
        except jwt.InvalidTokenError as exc:
            raise UnauthenticatedError(f"unauthenticated: {exc}") from None
        entity = claims.get("sub")
        raw_aud = claims.get("aud")
        audience = (raw_aud,) if isinstance(raw_aud, str) else raw_aud
        creds_type = claims.get(_CREDS_TYPE_CLAIM, "")
        if not isinstance(entity, str) or not entity:
            raise UnauthenticatedError("expected entity (sub) in claims")
        if not isinstance(audience, list | tuple) or not all(isinstance(a, str) for a in audience):
            raise UnauthenticatedError("invalid audience")
        if not isinstance(creds_type, str):
            raise UnauthenticatedError(f"invalid {_CREDS_TYPE_CLAIM} claim")
        return Principal(entity, creds_type, tuple(audience)), float(claims["exp"])

    def check_audience(self, principal: Principal, host: str) -> None:
        """The two audience failures (see the module docstring), then the API key's scope as
        configured now: a token minted before its key was narrowed (a restart with the same
        ``--signing-key-file``) or by an instance configured otherwise reaches no host the key
        may not reach here."""
        if host not in principal.audience:
            if self.hosts is not None and not self.hosts.intersection(principal.audience):
                raise UnauthenticatedError("invalid audience")
            raise PermissionDeniedError(f"{principal.entity!r} is not allowed on host {host!r}")
        if principal.creds_type == CREDS_API_KEY:
            key = self._keys.get(principal.entity)
            if key is not None and not key.reaches(host):
                raise PermissionDeniedError(f"API key {principal.entity!r} may not reach host {host!r}")


def bearer_token(metadata: MetadataLike) -> str | None:
    """The Bearer token, ``None`` without an ``authorization`` header; anything else is UNAUTHENTICATED."""
    values = _authorization(metadata)
    if not values:
        return None
    if len(values) != 1:
        raise UnauthenticatedError("authentication required")
    if not values[0].startswith(BEARER_PREFIX):
        raise UnauthenticatedError(f"expected Authorization: {BEARER_PREFIX}")
    return values[0][len(BEARER_PREFIX):].strip()


def _authorization(metadata: MetadataLike) -> list[str]:
    if metadata is None:
        return []
    getall = getattr(metadata, "getall", None)
    raw: list[Any] = list(getall(AUTHORIZATION_KEY, ())) if getall is not None else [metadata.get(AUTHORIZATION_KEY)]
    return [value for value in raw if isinstance(value, str)]


class RequestAuthorizer:
    """The per-call rule the handler table applies when auth is configured.

    :param authenticator: checks tokens.
    :param host: the host every non-signaling call is for (a robot's own name); ``None`` on a
        server that serves only signaling.
    :param route_host: maps a signaling call's ``rpc-host`` to the host it is for, as
        ``SignalingService(route_host=…)`` does (a robot answers for any name it is reached by).
    """

    def __init__(
        self,
        authenticator: Authenticator,
        *,
        host: str | None = None,
        route_host: Callable[[str], str] | None = None,
    ) -> None:
        self.authenticator = authenticator
        self.host = host
        self._route_host = route_host or (lambda name: name)

    @staticmethod
    def exempt(path: str) -> bool:
        return path == AUTHENTICATE_METHOD

    def token_host(self, metadata: MetadataLike) -> str | None:
        """The host an Authenticate call gets its token for: its ``rpc-host``, else this server's
        host; ``None`` on a rendezvous when the caller names none (then: all the hosts it serves)."""
        hosts = _rpc_hosts(metadata)
        if hosts:
            if len(hosts) != 1:
                raise SignalingError("expected 1 rpc-host to authenticate for", status=Status.INVALID_ARGUMENT)
            return self._route_host(hosts[0])
        return self.host

    def authorize(self, path: str, metadata: MetadataLike, carried: Principal | None = None) -> Principal:
        """The principal ``path`` runs as, or UNAUTHENTICATED / PERMISSION_DENIED.

        ``carried`` is the principal of the WebRTC session the call arrived on, if any.
        """
        token = bearer_token(metadata) if carried is None else _bearer_or_none(metadata)
        if token is None:
            if carried is not None:
                return carried
            raise UnauthenticatedError("authentication required")
        principal = self.authenticator.verify(token)
        for host in self._target_hosts(path, metadata):
            self.authenticator.check_audience(principal, host)
        if path == _ANSWER_METHOD and not principal.is_robot:
            raise PermissionDeniedError("only the robot's credentials (robot-secret) may answer calls")
        return principal

    def _target_hosts(self, path: str, metadata: MetadataLike) -> tuple[str, ...]:
        """Signaling calls are for their ``rpc-host`` (routed); everything else for this server's host.

        A signaling call without a usable ``rpc-host`` is checked against this server's host; its
        handler then reports the metadata problem itself, with the status it always uses.
        """
        hosts = _rpc_hosts(metadata) if path.startswith(f"/{SIGNALING_SERVICE}/") else ()
        if hosts:
            return tuple(dict.fromkeys(self._route_host(host) for host in hosts))
        if self.host is None:
            raise PermissionDeniedError(f"{path} needs an rpc-host this server serves")
        return (self.host,)


def _bearer_or_none(metadata: MetadataLike) -> str | None:
    """On a WebRTC session a non-Bearer ``authorization`` (e.g. a dialer's fake Basic) is ignored."""
    values = [value for value in _authorization(metadata) if value.startswith(BEARER_PREFIX)]
    if not values:
        return None
    if len(values) != 1:
        raise UnauthenticatedError("authentication required")
    return values[0][len(BEARER_PREFIX):].strip()


def _rpc_hosts(metadata: MetadataLike) -> tuple[str, ...]:
    try:
        return hosts_from_metadata(metadata)
    except SignalingError:
        return ()


class AuthService(AuthServiceBase):
    """``proto.rpc.v1.AuthService/Authenticate``: credentials for a token (exempt from auth itself)."""

    def __init__(self, authorizer: RequestAuthorizer) -> None:
        self._authorizer = authorizer

    async def Authenticate(
        self, stream: Stream[auth_pb2.AuthenticateRequest, auth_pb2.AuthenticateResponse]
    ) -> None:
        try:
            request = await stream.recv_message()
            if request is None:
                raise SignalingError("missing AuthenticateRequest", status=Status.INVALID_ARGUMENT)
            if _bearer_or_none(stream.metadata) is not None:
                raise SignalingError("already authenticated; cannot re-authenticate", status=Status.INVALID_ARGUMENT)
            if not request.HasField("credentials") or not request.credentials.type:
                raise SignalingError("expected credentials", status=Status.INVALID_ARGUMENT)
            host = self._authorizer.token_host(stream.metadata)
            token = self._authorizer.authenticator.authenticate(
                request.entity, request.credentials.type, request.credentials.payload, host
            )
        except SignalingError as exc:
            logger.info("authenticate %r (%s) failed: %s", request.entity if request else "",
                        request.credentials.type if request else "", exc.message)
            raise exc.grpc_error() from None
        logger.info("authenticated %r (%s) for %s", request.entity, request.credentials.type,
                    repr(host) if host is not None else "every host it may reach")
        await stream.send_message(auth_pb2.AuthenticateResponse(access_token=token))


class RobotCredentials:
    """``metadata`` for an :class:`~signaling.answerer.Answerer` at an authenticating signaling server.

    Each call returns ``{"authorization": "Bearer …"}`` for ``robot-secret`` credentials, calling
    Authenticate again when the token is missing or within ``renew_before`` seconds of expiry.
    Failures propagate (GRPCError): the answerer logs them and retries its stream later. The
    answer workers share one token: concurrent calls wait for one Authenticate.

    :param host: the entity the robot authenticates as: one of its host names (a rendezvous's
        token for it covers all the names that robot's secret is configured for).
    """

    def __init__(self, channel: Channel, host: str, secret: str, *, renew_before: float = 60.0) -> None:
        if not secret:
            raise ValueError("the robot secret may not be empty")
        self._stub = AuthServiceStub(channel)
        self._host = host
        self._secret = secret
        self._renew_before = renew_before
        self._token: str | None = None
        self._expires = 0.0
        self._lock = asyncio.Lock()

    def forget(self) -> None:
        """Drop the token (the server refused it, e.g. it restarted with a new signing key): the
        next call authenticates again. The answerer calls this when its stream is refused."""
        self._token = None

    async def __call__(self) -> dict[str, str]:
        async with self._lock:
            if self._token is None or time.time() > self._expires - self._renew_before:
                request = auth_pb2.AuthenticateRequest(
                    entity=self._host, credentials=auth_pb2.Credentials(type=CREDS_ROBOT_SECRET, payload=self._secret)
                )
                try:
                    reply = await self._stub.Authenticate(request, metadata={RPC_HOST_KEY: self._host})
                except GRPCError as exc:
                    if exc.status is not Status.UNIMPLEMENTED:
                        raise
                    # goutils: a client with credentials fails against a server without auth too
                    raise GRPCError(Status.FAILED_PRECONDITION, "the signaling server has no auth (Authenticate "
                                    "is unimplemented): drop the robot secret, or configure auth there") from None
                claims = jwt.decode(reply.access_token, options={"verify_signature": False})
                self._token = reply.access_token
                self._expires = float(claims.get("exp", 0))
                logger.info("authenticated with the signaling server as robot %r", self._host)
            return {AUTHORIZATION_KEY: f"{BEARER_PREFIX}{self._token}"}


def principal_from_offer(entity: str) -> Principal | None:
    """The caller's principal as an answerer learns it from the offer (``None``: the caller had none).

    Only the entity travels (``caller_auth_entity``); the session's calls run as it.
    """
    return Principal(entity, "") if entity else None
