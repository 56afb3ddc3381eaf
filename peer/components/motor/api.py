"""The motor API: a rotating actuator driven by power, speed or target position."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ...resource import API, ComponentBase


class Motor(ComponentBase):
    """Positions are in revolutions from the zero position, speeds in revolutions per minute."""

    API = API.component("motor")

    @dataclass(frozen=True)
    class Properties:
        position_reporting: bool

    @abstractmethod
    async def set_power(
        self,
        power: float,
        *,
        extra: Mapping[str, Any] | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> None:
        """Drive at ``power`` in [-1, 1] (negative is backwards) until told otherwise."""

    @abstractmethod
    async def go_for(
        self,
        rpm: float,
        revolutions: float,
        *,
        extra: Mapping[str, Any] | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> None:
        """Turn ``revolutions`` at ``rpm`` and return when done; the direction is the product of the signs."""

    @abstractmethod
    async def go_to(
        self,
        rpm: float,
        position_revolutions: float,
        *,
        extra: Mapping[str, Any] | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> None:
        """Turn towards ``position_revolutions`` at ``|rpm|`` and return on arrival."""

    @abstractmethod
    async def set_rpm(
        self,
        rpm: float,
        *,
        extra: Mapping[str, Any] | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> None:
        """Turn at ``rpm`` indefinitely (negative is backwards)."""

    @abstractmethod
    async def reset_zero_position(
        self,
        offset: float,
        *,
        extra: Mapping[str, Any] | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> None:
        """Redefine the zero position so that the current position reads ``offset``."""

    @abstractmethod
    async def get_position(
        self, *, extra: Mapping[str, Any] | None = None, timeout: float | None = None, **kwargs: Any
    ) -> float:
        """Revolutions from the zero position."""

    @abstractmethod
    async def get_properties(
        self, *, extra: Mapping[str, Any] | None = None, timeout: float | None = None, **kwargs: Any
    ) -> Motor.Properties: ...

    @abstractmethod
    async def stop(
        self, *, extra: Mapping[str, Any] | None = None, timeout: float | None = None, **kwargs: Any
    ) -> None:
        """Cut power; a blocking motion in progress returns early."""

    @abstractmethod
    async def is_powered(
        self, *, extra: Mapping[str, Any] | None = None, timeout: float | None = None, **kwargs: Any
    ) -> tuple[bool, float]:
        """Whether power is applied, and the signed power in [-1, 1]."""

    @abstractmethod
    async def is_moving(self) -> bool: ...
