"""gRPC service of the generic service API: DoCommand and GetStatus."""

from __future__ import annotations

from ...gen.viam.service.generic.v1.generic_grpc import GenericServiceBase
from ...resource.rpc import CommonRPCMixin
from .api import Generic


class GenericRPCService(CommonRPCMixin, GenericServiceBase):
    # The proto has no GetGeometries; the mixin's handler is simply never mapped.
    RESOURCE_TYPE = Generic
