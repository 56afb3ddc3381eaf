"""gRPC service of the generic component API: only the RPCs every API shares."""

from __future__ import annotations

from ...gen.viam.component.generic.v1.generic_grpc import GenericServiceBase
from ...resource.rpc import CommonRPCMixin
from .api import Generic


class GenericRPCService(CommonRPCMixin, GenericServiceBase):
    RESOURCE_TYPE = Generic
