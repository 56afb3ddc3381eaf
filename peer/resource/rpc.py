"""The base of every per-API gRPC service, and the handlers all APIs share."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from grpclib import GRPCError, Status
from grpclib.server import Stream

from ..errors import ResourceNotFoundError
from ..gen.viam.common.v1 import common_pb2
from ..operations import current_operation
from ..protoutil import dict_to_struct, struct_to_dict
from .base import ResourceBase
from .types import ResourceName

if TYPE_CHECKING:
    from .manager import ResourceManager

R = TypeVar("R", bound=ResourceBase)


def call_timeout(stream: Stream[Any, Any]) -> float | None:
    """Seconds left before the caller's deadline, passed to resources as ``timeout``."""
    deadline = stream.deadline
    return None if deadline is None else max(deadline.time_remaining(), 0.0)


async def recv_request(stream: Stream[Any, Any]) -> Any:
    """The single request of a unary call (grpclib returns ``None`` only for an empty stream)."""
    request = await stream.recv_message()
    if request is None:
        raise GRPCError(Status.INVALID_ARGUMENT, "the request message is missing")
    return request


class ResourceRPCServiceBase(Generic[R]):
    """Resolves the ``name`` of a request to a resource of this service's API.

    Concrete services list this class first, then :class:`CommonRPCMixin`, then the generated
    ``…ServiceBase``, and implement the API-specific handlers.
    """

    RESOURCE_TYPE: ClassVar[type[ResourceBase]]

    def __init__(self, manager: ResourceManager) -> None:
        self.manager = manager

    def get_resource(self, name: str) -> R:
        rn = ResourceName.of(self.RESOURCE_TYPE.API, name)
        try:
            resource = self.manager.get_resource(self.RESOURCE_TYPE, rn)
        except ResourceNotFoundError as exc:
            raise GRPCError(Status.NOT_FOUND, exc.message) from None
        op = current_operation.get()
        if op is not None:
            op.note_resource(resource.get_resource_name(resource.name))
        return resource  # type: ignore[return-value]


class CommonRPCMixin(ResourceRPCServiceBase[Any]):
    """DoCommand, GetStatus and GetGeometries: the same for every API."""

    async def DoCommand(self, stream: Stream[Any, Any]) -> None:
        request = await recv_request(stream)
        resource = self.get_resource(request.name)
        result = await resource.do_command(struct_to_dict(request.command), timeout=call_timeout(stream))
        await stream.send_message(common_pb2.DoCommandResponse(result=dict_to_struct(result)))

    async def GetStatus(self, stream: Stream[Any, Any]) -> None:
        request = await recv_request(stream)
        resource = self.get_resource(request.name)
        status = await resource.get_status(timeout=call_timeout(stream))
        await stream.send_message(common_pb2.GetStatusResponse(result=dict_to_struct(status)))

    async def GetGeometries(self, stream: Stream[Any, Any]) -> None:
        request = await recv_request(stream)
        resource = self.get_resource(request.name)
        geometries = await resource.get_geometries(extra=struct_to_dict(request.extra), timeout=call_timeout(stream))
        await stream.send_message(common_pb2.GetGeometriesResponse(geometries=list(geometries)))
