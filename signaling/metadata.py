"""Reading the signaling metadata: ``rpc-host`` routing and ``heartbeats-allowed`` (wire-protocol.md §3).

Host strings are taken verbatim (``127.0.0.1:8080``, ``localhost:8080``, ``foo.local``, a cloud
name): clients disagree on whether the port is included, so the only check is the optional
allow-list. Values may also arrive comma-joined in one header (HTTP/1.1 proxies fold repeated
headers), so they are split on commas.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import Any

from .const import HEARTBEATS_ALLOWED_KEY, MAX_HOSTS_IN_METADATA, RPC_HOST_KEY
from .errors import HostMetadataError, HostNotAllowedError, MissingHostError

#: What grpclib gives a handler as ``stream.metadata`` (a ``multidict.MultiDict``), or ``None``;
#: a plain mapping (one value per key) also works.
MetadataLike = Mapping[str, Any] | None


def _values(metadata: MetadataLike, key: str) -> list[str]:
    if metadata is None:
        return []
    getall = getattr(metadata, "getall", None)
    raw: list[Any] = list(getall(key, ())) if getall is not None else [metadata.get(key)]
    return [value for value in raw if isinstance(value, str)]


def hosts_from_metadata(metadata: MetadataLike) -> tuple[str, ...]:
    """1..5 non-empty hosts, de-duplicated in order (goutils ``HostsFromCtx``); errors are UNKNOWN."""
    values = _values(metadata, RPC_HOST_KEY)
    if not values:
        raise MissingHostError()
    hosts = [part.strip() for value in values for part in value.split(",")]
    if len(hosts) > MAX_HOSTS_IN_METADATA:
        raise HostMetadataError(f"too many {RPC_HOST_KEY}")
    if any(not host for host in hosts):
        raise HostMetadataError(f"expected non-empty {RPC_HOST_KEY}")
    return tuple(dict.fromkeys(hosts))


def host_from_metadata(metadata: MetadataLike) -> str:
    """Exactly one host (goutils ``HostFromCtx``), as Call and CallUpdate require."""
    hosts = hosts_from_metadata(metadata)
    if len(hosts) != 1:
        raise HostMetadataError(f"expected 1 {RPC_HOST_KEY}")
    return hosts[0]


def heartbeats_allowed(metadata: MetadataLike) -> bool:
    """Only the exact value ``"true"`` in the first position turns heartbeats on, as in Go."""
    values = _values(metadata, HEARTBEATS_ALLOWED_KEY)
    return bool(values) and values[0] == "true"


class HostAllowList:
    """goutils ``forHosts``: empty means every host is accepted (the recommended default, §3)."""

    def __init__(self, hosts: Iterable[str] | None = None) -> None:
        self._hosts: frozenset[str] = frozenset(hosts or ())

    def __bool__(self) -> bool:
        return bool(self._hosts)

    @property
    def hosts(self) -> Collection[str]:
        return self._hosts

    def check(self, hosts: Iterable[str]) -> None:
        if not self._hosts:
            return
        for host in hosts:
            if host not in self._hosts:
                raise HostNotAllowedError(host)
