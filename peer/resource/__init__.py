"""The resource model: names, the base class, the registry and the manager."""

from .base import Actuator, ComponentBase, ResourceBase, ServiceBase
from .config import ResourceConfig
from .manager import ResourceManager
from .registry import Registry, ResourceCreatorRegistration, ResourceRegistration
from .types import API, Model, ModelFamily, ResourceName

__all__ = [
    "API",
    "Actuator",
    "ComponentBase",
    "Model",
    "ModelFamily",
    "Registry",
    "ResourceBase",
    "ResourceConfig",
    "ResourceCreatorRegistration",
    "ResourceManager",
    "ResourceName",
    "ResourceRegistration",
    "ServiceBase",
]
