"""Robot configuration in Viam's JSON shape, checked completely before anything starts.

Every problem is reported with its path (``components[2].model``) and all of them at once,
so a user fixes a config in one round instead of one error per restart.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from peer.errors import ResourceNotFoundError, ValidationError
from peer.resource import API, Model, Registry, ResourceConfig
from signaling.auth import CREDS_API_KEY, ApiKey

_ENTRY_KEYS = {"name", "api", "type", "namespace", "model", "attributes", "depends_on"}
#: Keys of Viam's config that peerbot accepts and does not act on.
_IGNORED_ENTRY_KEYS = {"frame", "service_configs", "log_configuration", "notes"}
_TOP_KEYS = {"components", "services", "network", "auth", "cloud"}
_IGNORED_TOP_KEYS = {"modules", "remotes", "processes", "packages", "agent", "debug", "jobs",
                     "revision", "log", "disable_partial_start", "enable_web_profile", "maintenance"}


class ConfigError(ValidationError):
    """All problems of one config file."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("invalid robot config:\n  " + "\n  ".join(problems))
        self.problems = list(problems)


@dataclass(frozen=True)
class NetworkConfig:
    bind_address: str | None = None


@dataclass(frozen=True)
class AuthConfig:
    """Viam's ``auth`` section: ``{"handlers": [{"type": "api-key", "config": {KEY_ID: SECRET, …}}]}``.

    RDK's legacy ``key``/``keys`` entries (bare secrets, no key id) are not supported: viam-sdk
    authenticates with ``auth_entity`` = the key id. No keys: auth is off.
    """

    api_keys: tuple[ApiKey, ...] = ()


@dataclass(frozen=True)
class CloudConfig:
    """The parts of Viam's ``cloud`` section peerbot acts on: where to signal and under which names.

    The robot answers calls for ``fqdn`` and ``local_fqdn`` at ``signaling_address`` (``HOST:PORT``),
    as viam-server does, authenticating there with ``secret`` (the robot secret) when given, over
    TLS unless ``signaling_insecure``; the rest of the section (``id``, ``app_address`` …) is ignored.
    """

    fqdn: str | None = None
    local_fqdn: str | None = None
    signaling_address: str | None = None
    secret: str | None = field(default=None, repr=False)
    #: connect to ``signaling_address`` in cleartext instead of TLS (Viam's meaning of the name).
    signaling_insecure: bool = False


@dataclass(frozen=True)
class RobotConfig:
    components: tuple[ResourceConfig, ...] = ()
    services: tuple[ResourceConfig, ...] = ()
    network: NetworkConfig = field(default_factory=NetworkConfig)
    auth: AuthConfig = field(default_factory=AuthConfig)
    cloud: CloudConfig = field(default_factory=CloudConfig)

    @property
    def resources(self) -> tuple[ResourceConfig, ...]:
        return self.components + self.services


def _entry_api(entry: Mapping[str, Any], kind: str, path: str) -> API:
    if "api" in entry:
        if not isinstance(entry["api"], str):
            raise ValidationError("must be a string like rdk:component:camera", f"{path}.api")
        return API.from_string(entry["api"])
    if "type" in entry:
        subtype, namespace = entry["type"], entry.get("namespace", "rdk")
        if not isinstance(subtype, str) or not subtype:
            raise ValidationError("must be a non-empty string like camera", f"{path}.type")
        if not isinstance(namespace, str) or not namespace:
            raise ValidationError("must be a non-empty string", f"{path}.namespace")
        return API.from_string(f"{namespace}:{kind}:{subtype}")
    raise ValidationError('needs "api" (e.g. rdk:component:camera) or "type" (e.g. camera)', f"{path}.api")


def _parse_entry(entry: Any, kind: str, path: str, problems: list[str]) -> ResourceConfig | None:
    if not isinstance(entry, Mapping):
        problems.append(f"{path}: must be an object")
        return None
    before = len(problems)
    for key in entry:
        if key not in _ENTRY_KEYS | _IGNORED_ENTRY_KEYS:
            problems.append(f"{path}.{key}: unknown key (expected one of {', '.join(sorted(_ENTRY_KEYS))})")
    name = entry.get("name")
    if not isinstance(name, str) or not name:
        problems.append(f"{path}.name: must be a non-empty string")
    elif ":" in name or "/" in name:
        problems.append(f"{path}.name: {name!r} may not contain ':' or '/'")
    api = model = None
    try:
        api = _entry_api(entry, kind, path)
        Registry.lookup_api(api)
    except ValidationError as exc:
        problems.append(exc.message if exc.path else f"{path}.api: {exc.message}")
    except ResourceNotFoundError:
        known = ", ".join(sorted(str(a) for a in Registry.REGISTERED_APIS()))
        problems.append(f"{path}.api: unknown API {api} (known: {known})")
        api = None
    raw_model = entry.get("model")
    if not isinstance(raw_model, str) or not raw_model:
        problems.append(f"{path}.model: must be a non-empty string like fake or acme:demo:mymodel")
    else:
        try:
            model = Model.from_string(raw_model)
        except ValidationError as exc:
            problems.append(f"{path}.model: {exc.message}")
        if model is not None and api is not None:
            try:
                Registry.lookup_resource_creator(api, model)
            except ResourceNotFoundError:
                known = ", ".join(str(m) for m in Registry.models_for(api)) or "none"
                problems.append(f"{path}.model: no model {raw_model!r} for {api} (known: {known})")
                model = None
    attributes = entry.get("attributes", {})
    if not isinstance(attributes, Mapping):
        problems.append(f"{path}.attributes: must be an object")
    depends_on = entry.get("depends_on", [])
    if not isinstance(depends_on, list) or not all(isinstance(d, str) for d in depends_on):
        problems.append(f"{path}.depends_on: must be a list of resource names")
    if len(problems) > before or api is None or model is None or not isinstance(name, str):
        return None
    return ResourceConfig(name, api, model, dict(attributes), tuple(depends_on), path)


_LEGACY_KEY_ENTRIES = {"key", "keys"}


def _parse_auth(raw: Any, problems: list[str]) -> AuthConfig:
    if not isinstance(raw, Mapping):
        problems.append("auth: must be an object")
        return AuthConfig()
    handlers = raw.get("handlers", [])
    if not isinstance(handlers, list):
        problems.append("auth.handlers: must be a list")
        return AuthConfig()
    keys: dict[str, ApiKey] = {}
    for index, handler in enumerate(handlers):
        path = f"auth.handlers[{index}]"
        if not isinstance(handler, Mapping):
            problems.append(f"{path}: must be an object")
            continue
        if handler.get("type") != CREDS_API_KEY:
            problems.append(f"{path}.type: unsupported auth handler {handler.get('type')!r} (only {CREDS_API_KEY!r})")
            continue
        entries = handler.get("config", {})
        if not isinstance(entries, Mapping):
            problems.append(f"{path}.config: must be an object of KEY_ID: SECRET")
            continue
        found = 0
        for key_id, secret in entries.items():
            if key_id in _LEGACY_KEY_ENTRIES:
                continue
            if not isinstance(secret, str) or not secret or not key_id or ":" in key_id:
                problems.append(f"{path}.config.{key_id}: must be a non-empty secret string (and the id has no ':')")
            elif key_id in keys:
                problems.append(f"{path}.config.{key_id}: API key id given twice")
            else:
                keys[key_id] = ApiKey(key_id, secret)
                found += 1
        if not found:
            problems.append(f"{path}.config: no API keys (entries KEY_ID: SECRET; legacy key/keys are not supported)")
    return AuthConfig(tuple(keys.values()))


def parse_config(raw: Any) -> RobotConfig:
    """Parse a decoded JSON document; raises :class:`ConfigError` listing every problem."""
    problems: list[str] = []
    if not isinstance(raw, Mapping):
        raise ConfigError(["(top level): must be a JSON object"])
    for key in raw:
        if key not in _TOP_KEYS | _IGNORED_TOP_KEYS:
            problems.append(f"{key}: unknown key (expected components, services, network, auth, cloud)")
    parsed: dict[str, list[ResourceConfig]] = {"components": [], "services": []}
    entry_paths: dict[str, str] = {}
    for section, kind in (("components", "component"), ("services", "service")):
        entries = raw.get(section, [])
        if not isinstance(entries, list):
            problems.append(f"{section}: must be a list")
            continue
        for index, entry in enumerate(entries):
            path = f"{section}[{index}]"
            if isinstance(entry, Mapping) and isinstance(entry.get("name"), str):
                name = entry["name"]
                if name in entry_paths:
                    problems.append(f'{path}.name: duplicate name "{name}" (also {entry_paths[name]})')
                    continue
                entry_paths[name] = path
            config = _parse_entry(entry, kind, path, problems)
            if config is not None:
                parsed[section].append(config)
    for section in ("components", "services"):
        entries = raw.get(section, [])
        for index, entry in enumerate(entries if isinstance(entries, list) else []):
            depends_on = entry.get("depends_on") if isinstance(entry, Mapping) else None
            for i, dep in enumerate(depends_on if isinstance(depends_on, list) else []):
                where = f"{section}[{index}].depends_on[{i}]"
                if dep == entry.get("name"):
                    problems.append(f"{where}: a resource cannot depend on itself")
                elif isinstance(dep, str) and dep not in entry_paths:
                    problems.append(f'{where}: unknown resource "{dep}"')
    network = raw.get("network", {})
    bind = None
    if not isinstance(network, Mapping):
        problems.append("network: must be an object")
    else:
        bind = network.get("bind_address")
        if bind is not None and (not isinstance(bind, str) or ":" not in bind):
            problems.append('network.bind_address: must be "host:port"')
            bind = None
    auth = _parse_auth(raw["auth"], problems) if "auth" in raw else AuthConfig()
    cloud = _parse_cloud(raw.get("cloud", {}), problems)
    if problems:
        raise ConfigError(problems)
    return RobotConfig(
        tuple(parsed["components"]), tuple(parsed["services"]), NetworkConfig(bind), auth=auth, cloud=cloud
    )


def _parse_cloud(cloud: Any, problems: list[str]) -> CloudConfig:
    if not isinstance(cloud, Mapping):
        problems.append("cloud: must be an object")
        return CloudConfig()
    values: dict[str, str | None] = {}
    for key in ("fqdn", "local_fqdn", "signaling_address", "secret"):
        value = cloud.get(key)
        if value is not None and not isinstance(value, str):
            problems.append(f"cloud.{key}: must be a string")
            value = None
        values[key] = value or None
    address = values["signaling_address"]
    if address is not None:
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) <= 0xFFFF:
            problems.append(f'cloud.signaling_address: must be "host:port", got {address!r}')
            values["signaling_address"] = None
    insecure = cloud.get("signaling_insecure", False)
    if not isinstance(insecure, bool):
        problems.append("cloud.signaling_insecure: must be true or false")
        insecure = False
    return CloudConfig(**values, signaling_insecure=insecure)


def load_config(path: str | Path) -> RobotConfig:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror}"]) from None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError([f"{path}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}"]) from None
    return parse_config(raw)


def builtin_config() -> RobotConfig:
    """The fake robot served when no config is given (also an example config)."""
    return load_config(Path(__file__).with_name("fake_robot.json"))
