"""Value types that name things: APIs, models and resources.

They are frozen dataclasses (hashable, usable as dict keys) rather than protobuf messages,
which are unhashable; conversion to the wire form lives in :mod:`peer.resource.proto`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import ValidationError

_PART = re.compile(r"^[\w-]+$")

RESOURCE_NAMESPACE_RDK = "rdk"
RESOURCE_TYPE_COMPONENT = "component"
RESOURCE_TYPE_SERVICE = "service"


def _check_part(value: str, what: str, text: str) -> None:
    if not _PART.match(value):
        raise ValidationError(f"{what} {value!r} in {text!r} must be letters, digits, '_' or '-'")


@dataclass(frozen=True, slots=True)
class API:
    """``namespace:type:subtype``, e.g. ``rdk:component:camera``."""

    namespace: str
    resource_type: str
    resource_subtype: str

    def __str__(self) -> str:
        return f"{self.namespace}:{self.resource_type}:{self.resource_subtype}"

    @classmethod
    def from_string(cls, text: str) -> API:
        parts = text.split(":")
        if len(parts) != 3:
            raise ValidationError(f"API {text!r} must have the form namespace:type:subtype")
        for what, part in zip(("namespace", "type", "subtype"), parts, strict=True):
            _check_part(part, what, text)
        return cls(*parts)

    @classmethod
    def component(cls, subtype: str) -> API:
        return cls(RESOURCE_NAMESPACE_RDK, RESOURCE_TYPE_COMPONENT, subtype)

    @classmethod
    def service(cls, subtype: str) -> API:
        return cls(RESOURCE_NAMESPACE_RDK, RESOURCE_TYPE_SERVICE, subtype)


@dataclass(frozen=True, slots=True)
class ModelFamily:
    namespace: str
    family: str

    def __str__(self) -> str:
        return f"{self.namespace}:{self.family}"


BUILTIN_FAMILY = ModelFamily(RESOURCE_NAMESPACE_RDK, "builtin")


@dataclass(frozen=True, slots=True)
class Model:
    """``namespace:family:name``; a bare ``name`` means ``rdk:builtin:name``."""

    model_family: ModelFamily
    name: str

    def __str__(self) -> str:
        return f"{self.model_family}:{self.name}"

    @classmethod
    def builtin(cls, name: str) -> Model:
        return cls(BUILTIN_FAMILY, name)

    @classmethod
    def from_string(cls, text: str) -> Model:
        parts = text.split(":")
        if len(parts) == 1:
            _check_part(parts[0], "model name", text)
            return cls.builtin(parts[0])
        if len(parts) != 3:
            raise ValidationError(f"model {text!r} must be a name or namespace:family:name")
        for what, part in zip(("namespace", "family", "name"), parts, strict=True):
            _check_part(part, what, text)
        return cls(ModelFamily(parts[0], parts[1]), parts[2])


@dataclass(frozen=True, slots=True)
class ResourceName:
    """A resource's full name; ``name`` may carry remote prefixes (``remote1:cam``)."""

    namespace: str
    type: str
    subtype: str
    name: str

    @property
    def api(self) -> API:
        return API(self.namespace, self.type, self.subtype)

    @property
    def short_name(self) -> str:
        """The name without remote prefixes."""
        return self.name.rsplit(":", 1)[-1]

    @property
    def is_remote(self) -> bool:
        return ":" in self.name

    @classmethod
    def of(cls, api: API, name: str) -> ResourceName:
        return cls(api.namespace, api.resource_type, api.resource_subtype, name)

    @classmethod
    def from_string(cls, text: str) -> ResourceName:
        """Parse ``namespace:type:subtype/name``."""
        api_text, sep, name = text.partition("/")
        if not sep or not name:
            raise ValidationError(f"resource name {text!r} must have the form namespace:type:subtype/name")
        return cls.of(API.from_string(api_text), name)

    def __str__(self) -> str:
        return f"{self.api}/{self.name}"
