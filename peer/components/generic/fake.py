"""A generic component that echoes commands back, for exercising DoCommand end to end."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...resource import ResourceBase, ResourceConfig, ResourceName
from .api import Generic


class FakeGeneric(Generic):
    """``{"command": "count"}`` answers how many commands it has handled; any other command is
    returned unchanged (nested maps and lists intact), so a client can check a round trip."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.commands = 0

    @staticmethod
    def validate(config: ResourceConfig) -> list[str]:
        return []

    @classmethod
    def new(cls, config: ResourceConfig, dependencies: Mapping[ResourceName, ResourceBase]) -> FakeGeneric:
        return cls(config.name)

    async def do_command(
        self, command: Mapping[str, Any], *, timeout: float | None = None, **kwargs: Any
    ) -> Mapping[str, Any]:
        self.commands += 1
        if command.get("command") == "count":
            return {"count": self.commands}
        return dict(command)

    async def get_status(self, *, timeout: float | None = None, **kwargs: Any) -> Mapping[str, Any]:
        return {"commands": self.commands}
