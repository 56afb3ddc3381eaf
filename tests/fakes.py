"""Small test resources registered under a test-only API (inside the isolated registry)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from peer.resource import API, ComponentBase, Registry, ResourceRegistration

WIDGET_API = API("acme", "component", "widget")


class _NoService:
    def __init__(self, manager: object) -> None:
        self.manager = manager

    def __mapping__(self) -> dict[str, Any]:
        return {}


class Widget(ComponentBase):
    """An actuator that records what happened to it."""

    API = WIDGET_API

    def __init__(self, name: str, *, fail_close: bool = False, fail_stop: bool = False) -> None:
        super().__init__(name)
        self.closed = 0
        self.stops: list[Mapping[str, Any]] = []
        self.moving = False
        self.fail_close = fail_close
        self.fail_stop = fail_stop

    async def stop(self, *, extra: Mapping[str, Any] | None = None, timeout: float | None = None,
                   **kwargs: Any) -> None:
        if self.fail_stop:
            raise RuntimeError(f"{self.name} is jammed")
        self.stops.append(dict(extra or {}))
        self.moving = False

    async def is_moving(self) -> bool:
        return self.moving

    async def close(self) -> None:
        self.closed += 1
        await asyncio.sleep(0)
        if self.fail_close:
            raise RuntimeError(f"{self.name} refuses to close")


def register_widget_api() -> None:
    Registry.register_api(ResourceRegistration(Widget, _NoService, "acme.widget.v1.WidgetService"))
