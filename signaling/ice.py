"""ICE servers configured once: STUN, TURN with static credentials, TURN with REST credentials.

The signaling server hands these to every caller (``OptionalWebRTCConfig``) and every answerer
(the init stage's ``optional_config``); the robot also adds them to its own peer connections.

TURN REST credentials are what coturn's ``use-auth-secret`` / ``static-auth-secret`` mode checks
(and LiveKit mints the same way): ``username = "<expiry unix seconds>:<user>"`` and
``credential = base64(HMAC-SHA1(secret, username))``. coturn recomputes the HMAC from its own copy
of the secret and refuses the allocation (401) once the expiry has passed, so nobody stores
per-user TURN passwords and a leaked credential is worthless after ``ttl`` seconds. They are minted
**per request**: every ``OptionalWebRTCConfig`` and every offer gets a fresh pair.

Only ``stun:``/``turn:``/``turns:`` URLs are accepted (what aiortc can use; ``stuns:`` is not).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from .config import IceServer, WebRTCConfig

#: Upper bound on a REST credential's lifetime (reliability.md §4: TURN credentials expire in ≤ 300 s).
MAX_REST_TTL = 300
DEFAULT_REST_TTL = 300
#: The ``<user>`` half of a REST username when none is configured.
DEFAULT_REST_USER = "peerbot"

_URL = re.compile(r"(?P<scheme>stun|turn|turns):(?P<host>[^?:/\s]+|\[[0-9A-Fa-f:.]+\])(:(?P<port>\d{1,5}))?"
                  r"(\?transport=(?P<transport>udp|tcp))?")


def check_ice_url(url: str) -> str:
    """``url`` if it is a STUN/TURN URL aiortc can use; ``ValueError`` saying why not otherwise."""
    match = _URL.fullmatch(url)
    if match is None:
        raise ValueError(
            f"{url!r} is not a STUN/TURN URL (expected stun:HOST[:PORT], turn:HOST[:PORT][?transport=udp|tcp] "
            "or turns:HOST[:PORT]?transport=tcp)"
        )
    port = match["port"]
    if port is not None and not 0 < int(port) <= 0xFFFF:
        raise ValueError(f"{url!r}: port {port} out of range")
    if match["scheme"] == "stun" and match["transport"] is not None:
        raise ValueError(f"{url!r}: a stun: URL takes no transport")
    if match["scheme"] == "turns" and match["transport"] == "udp":
        raise ValueError(f"{url!r}: turns: runs over TCP only (aiortc has no DTLS to TURN servers)")
    return url


def is_turn_url(url: str) -> bool:
    return url.startswith(("turn:", "turns:"))


def turn_rest_credential(secret: bytes, user: str, *, ttl: int, now: float) -> tuple[str, str]:
    """``(username, credential)`` valid until ``now + ttl`` for a coturn sharing ``secret``."""
    if not secret:
        raise ValueError("the TURN shared secret is empty")
    if ":" in user:
        raise ValueError(f"the TURN REST user {user!r} may not contain ':' (it separates the expiry)")
    username = f"{int(now) + ttl}:{user}"
    digest = hmac.new(secret, username.encode("utf-8"), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode("ascii")


@dataclass(frozen=True, slots=True)
class TurnRest:
    """TURN servers whose credentials are minted from a secret shared with coturn."""

    urls: tuple[str, ...]
    secret: bytes = field(repr=False)
    user: str = DEFAULT_REST_USER
    ttl: int = DEFAULT_REST_TTL

    def __post_init__(self) -> None:
        if not self.urls:
            raise ValueError("TURN REST credentials need at least one turn: URL")
        for url in self.urls:
            if not is_turn_url(check_ice_url(url)):
                raise ValueError(f"{url!r}: REST credentials are for turn:/turns: URLs only")
        if not 1 <= self.ttl <= MAX_REST_TTL:
            raise ValueError(f"TURN credential TTL must be 1 to {MAX_REST_TTL} s, got {self.ttl}")
        turn_rest_credential(self.secret, self.user, ttl=self.ttl, now=0)  # same checks as minting

    def server(self, now: float) -> IceServer:
        username, credential = turn_rest_credential(self.secret, self.user, ttl=self.ttl, now=now)
        return IceServer(self.urls, username, credential)


class IceSettings:
    """The ICE servers of one process: fixed ones (STUN, TURN with static credentials) plus, if
    configured, TURN servers with freshly minted REST credentials.

    :meth:`servers` / :meth:`webrtc_config` mint on every call, so pass the bound method (not its
    result) wherever a config is needed per request.
    """

    def __init__(
        self,
        servers: Iterable[IceServer] = (),
        *,
        rest: TurnRest | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.fixed = tuple(servers)
        for server in self.fixed:
            for url in server.urls:
                check_ice_url(url)
                if is_turn_url(url) and not (server.username and server.credential):
                    raise ValueError(f"{url!r}: a TURN server needs a username and a credential")
        self.rest = rest
        self._clock = clock

    def __bool__(self) -> bool:
        return bool(self.fixed) or self.rest is not None

    def servers(self) -> tuple[IceServer, ...]:
        if self.rest is None:
            return self.fixed
        return (*self.fixed, self.rest.server(self._clock()))

    def webrtc_config(self) -> WebRTCConfig:
        return WebRTCConfig(self.servers())

    def describe(self) -> str:
        """For the start-up log: the URLs and how TURN authenticates, never a secret."""
        parts = [f"{'/'.join(s.urls)}{' (static credentials)' if s.username else ''}" for s in self.fixed]
        if self.rest is not None:
            parts.append(f"{'/'.join(self.rest.urls)} (REST credentials, ttl {self.rest.ttl} s)")
        return ", ".join(parts) or "none"


def merge_ice_servers(*groups: Sequence[IceServer]) -> list[IceServer]:
    """The groups in order, dropping a server whose URL set came earlier.

    Order matters: aiortc uses only the *first* STUN URL and the *first* usable TURN URL it finds
    (see docs/architecture.md "NAT traversal"), so put the preferred group first.
    """
    seen: set[tuple[str, ...]] = set()
    merged: list[IceServer] = []
    for group in groups:
        for server in group:
            if server.urls not in seen:
                seen.add(server.urls)
                merged.append(server)
    return merged
