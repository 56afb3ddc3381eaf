"""A generic service that echoes commands back, for exercising DoCommand end to end."""

from __future__ import annotations

from collections.abc import Mapping

from ...resource import ResourceBase, ResourceConfig, ResourceName
from ...resource.echo import EchoCommands
from .api import Generic


class FakeGenericService(EchoCommands, Generic):
    """Echoes commands (see :class:`~peer.resource.echo.EchoCommands`)."""

    @staticmethod
    def validate(config: ResourceConfig) -> list[str]:
        return []

    @classmethod
    def new(cls, config: ResourceConfig, dependencies: Mapping[ResourceName, ResourceBase]) -> FakeGenericService:
        return cls(config.name)
