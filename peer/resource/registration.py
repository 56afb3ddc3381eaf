"""One-call registration of a built-in API and its models."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from google.protobuf.descriptor import ServiceDescriptor

from .base import ResourceBase
from .registry import (
    Registry,
    ResourceCreator,
    ResourceCreatorRegistration,
    ResourceRegistration,
    Validator,
    no_validation,
)
from .types import Model


def register_api(
    resource_type: type[ResourceBase], rpc_service: Callable[..., Any], proto_service: ServiceDescriptor
) -> None:
    Registry.register_api(ResourceRegistration(resource_type, rpc_service, proto_service.full_name))


def register_model(
    resource_type: type[ResourceBase],
    model: str,
    creator: ResourceCreator,
    validator: Validator = no_validation,
) -> None:
    Registry.register_resource_creator(
        resource_type.API, Model.from_string(model), ResourceCreatorRegistration(creator, validator)
    )
