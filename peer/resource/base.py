"""The base every component and service derives from."""

from __future__ import annotations

import functools
import logging
from abc import ABC
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, Self, runtime_checkable

from ..errors import NotSupportedError
from ..operations import OPERATION_ARG_NAME, Operation, current_operation
from . import types
from .types import API, ResourceName

if TYPE_CHECKING:
    from ..gen.viam.common.v1 import common_pb2

logger = logging.getLogger(__name__)


class _ResolvesResources(Protocol):
    def get_resource_by_name(self, api: API, name: str) -> ResourceBase: ...


def _idempotent(close: Callable[[Any], Awaitable[None]]) -> Callable[[Any], Awaitable[None]]:
    @functools.wraps(close)
    async def wrapper(self: ResourceBase) -> None:
        if self.__dict__.get("_peerbot_closed"):
            return
        self.__dict__["_peerbot_closed"] = True
        await close(self)

    wrapper.__peerbot_idempotent__ = True  # type: ignore[attr-defined]
    return wrapper


class ResourceBase(ABC):
    """A named thing on the robot, reachable through the gRPC service of its API.

    ``close`` is idempotent for every subclass (an override is wrapped once at class creation),
    because the manager, the server and user code may all close the same resource.
    """

    API: ClassVar[types.API]
    SUBTYPE: ClassVar[types.API]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        own = cls.__dict__
        if "API" in own and "SUBTYPE" not in own:
            cls.SUBTYPE = own["API"]
        elif "SUBTYPE" in own and "API" not in own:
            cls.API = own["SUBTYPE"]
        close = own.get("close")
        if close is not None and not getattr(close, "__peerbot_idempotent__", False):
            cls.close = _idempotent(close)  # type: ignore[method-assign,assignment]

    def __init__(self, name: str) -> None:
        self.name = name

    @classmethod
    def get_resource_name(cls, name: str) -> ResourceName:
        return ResourceName.of(cls.API, name)

    @classmethod
    def from_robot(cls, robot: _ResolvesResources, name: str) -> Self:
        """Look this resource up on a robot (anything with ``get_resource_by_name``)."""
        resource = robot.get_resource_by_name(cls.API, name)
        if not isinstance(resource, cls):
            raise NotSupportedError(f"{cls.API}/{name} is a {type(resource).__name__}, not a {cls.__name__}")
        return resource

    async def do_command(
        self, command: Mapping[str, Any], *, timeout: float | None = None, **kwargs: Any
    ) -> Mapping[str, Any]:
        raise NotSupportedError(f"{type(self).__name__} {self.name!r} does not support do_command")

    async def get_geometries(
        self, *, extra: Mapping[str, Any] | None = None, timeout: float | None = None, **kwargs: Any
    ) -> Sequence[common_pb2.Geometry]:
        return []

    async def get_status(self, *, timeout: float | None = None, **kwargs: Any) -> Mapping[str, Any]:
        """A JSON-like snapshot for RobotService.GetStatus; empty unless a model says more."""
        return {}

    def get_operation(self, kwargs: Mapping[str, Any]) -> Operation:
        """The operation of the call being served (or a no-op one outside any call)."""
        op = kwargs.get(OPERATION_ARG_NAME)
        if isinstance(op, Operation):
            return op
        return current_operation.get() or Operation.noop()

    async def close(self) -> None:  # noqa: B027 - optional hook, not abstract
        """Release what the resource holds; safe to call more than once."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.API}/{self.name}>"


@runtime_checkable
class Actuator(Protocol):
    """Something that moves and can be stopped: StopAll and session expiry call ``stop``."""

    async def stop(self, *, extra: Mapping[str, Any] | None = None, timeout: float | None = None,
                   **kwargs: Any) -> None: ...

    async def is_moving(self) -> bool: ...


class ComponentBase(ResourceBase):
    """A physical part of the robot."""


class ServiceBase(ResourceBase):
    """A software capability of the robot."""
