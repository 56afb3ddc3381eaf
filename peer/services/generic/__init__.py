"""Generic service: API, gRPC service and the ``fake`` model."""

from ...gen.viam.service.generic.v1 import generic_pb2
from ...resource.registration import register_api, register_model
from .api import Generic
from .fake import FakeGenericService
from .service import GenericRPCService

register_api(Generic, GenericRPCService, generic_pb2.DESCRIPTOR.services_by_name["GenericService"])
register_model(Generic, "fake", FakeGenericService.new, FakeGenericService.validate)

__all__ = ["FakeGenericService", "Generic", "GenericRPCService"]
