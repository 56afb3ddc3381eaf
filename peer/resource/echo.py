"""``do_command`` that echoes: the fake generic component and service share it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class EchoCommands:
    """``{"command": "count"}`` answers how many commands were handled; any other command is
    returned unchanged (nested maps and lists intact), so a client can check a round trip."""

    commands = 0

    async def do_command(
        self, command: Mapping[str, Any], *, timeout: float | None = None, **kwargs: Any
    ) -> Mapping[str, Any]:
        self.commands += 1
        if command.get("command") == "count":
            return {"count": self.commands}
        return dict(command)

    async def get_status(self, *, timeout: float | None = None, **kwargs: Any) -> Mapping[str, Any]:
        return {"commands": self.commands}
