"""The registry of APIs (how a resource type is served) and models (how it is built).

State sits in one swappable object so tests can run against an isolated copy
(:meth:`Registry.isolated`) and never leak registrations into each other.
"""

from __future__ import annotations

import copy
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from ..errors import DuplicateResourceError, ResourceNotFoundError, ValidationError
from .base import ResourceBase
from .types import API, Model, ResourceName

if TYPE_CHECKING:
    from .config import ResourceConfig
    from .manager import ResourceManager

R = TypeVar("R", bound=ResourceBase)

#: Builds a resource; may be async (``build_resources`` awaits it), e.g. to open a device off the loop.
ResourceCreator = Callable[
    ["ResourceConfig", Mapping[ResourceName, ResourceBase]], ResourceBase | Awaitable[ResourceBase]
]
Validator = Callable[["ResourceConfig"], Sequence[str]]


def no_validation(config: ResourceConfig) -> Sequence[str]:
    """The default validator: accept anything, no implicit dependencies."""
    return []


@dataclass(frozen=True)
class ResourceRegistration(Generic[R]):
    """How an API is served: its Python class and the factory of its gRPC service.

    ``proto_service`` is the full protobuf service name reported by ResourceRPCSubtypes.
    """

    resource_type: type[R]
    rpc_service: Callable[[ResourceManager], Any]
    proto_service: str = ""


@dataclass(frozen=True)
class ResourceCreatorRegistration:
    """How a model is built: ``creator(config, dependencies)``; ``validator(config)`` raises
    :class:`ValidationError` for a bad config and returns the names it depends on implicitly."""

    creator: ResourceCreator
    validator: Validator = no_validation


@dataclass
class _RegistryState:
    apis: dict[API, ResourceRegistration[Any]] = field(default_factory=dict)
    creators: dict[str, ResourceCreatorRegistration] = field(default_factory=dict)


def _creator_key(api: API, model: Model) -> str:
    return f"{api}/{model}"


class Registry:
    """Class-level registry, as resource modules register at import time."""

    _state: ClassVar[_RegistryState] = _RegistryState()

    @classmethod
    def register_api(cls, registration: ResourceRegistration[Any]) -> None:
        api = registration.resource_type.API
        if api in cls._state.apis:
            raise DuplicateResourceError(str(api))
        cls._state.apis[api] = registration

    register_subtype = register_api

    @classmethod
    def register_resource_creator(
        cls, api: API, model: Model, registration: ResourceCreatorRegistration
    ) -> None:
        if api not in cls._state.apis:
            raise ValidationError(f"cannot register model {model} for unknown API {api}")
        key = _creator_key(api, model)
        if key in cls._state.creators:
            raise DuplicateResourceError(key)
        cls._state.creators[key] = registration

    @classmethod
    def lookup_api(cls, api: API) -> ResourceRegistration[Any]:
        try:
            return cls._state.apis[api]
        except KeyError:
            raise ResourceNotFoundError("API", str(api)) from None

    lookup_subtype = lookup_api

    @classmethod
    def lookup_resource_creator(cls, api: API, model: Model) -> ResourceCreator:
        return cls._lookup_model(api, model).creator

    @classmethod
    def lookup_validator(cls, api: API, model: Model) -> Validator:
        return cls._lookup_model(api, model).validator

    @classmethod
    def _lookup_model(cls, api: API, model: Model) -> ResourceCreatorRegistration:
        try:
            return cls._state.creators[_creator_key(api, model)]
        except KeyError:
            raise ResourceNotFoundError("model", _creator_key(api, model)) from None

    @classmethod
    def REGISTERED_APIS(cls) -> Mapping[API, ResourceRegistration[Any]]:
        return dict(cls._state.apis)

    REGISTERED_SUBTYPES = REGISTERED_APIS

    @classmethod
    def REGISTERED_RESOURCE_CREATORS(cls) -> Mapping[str, ResourceCreatorRegistration]:
        return dict(cls._state.creators)

    @classmethod
    def models_for(cls, api: API) -> list[Model]:
        prefix = f"{api}/"
        return [Model.from_string(key[len(prefix):]) for key in cls._state.creators if key.startswith(prefix)]

    @classmethod
    @contextmanager
    def isolated(cls) -> Iterator[None]:
        """Run a block against a copy of the current registrations, restored afterwards."""
        saved = cls._state
        cls._state = copy.copy(saved)
        cls._state.apis = dict(saved.apis)
        cls._state.creators = dict(saved.creators)
        try:
            yield
        finally:
            cls._state = saved
