"""Generic component: API, gRPC service and the ``fake`` model."""

from ...gen.viam.component.generic.v1 import generic_pb2
from ...resource.registration import register_api, register_model
from .api import Generic
from .fake import FakeGeneric
from .service import GenericRPCService

register_api(Generic, GenericRPCService, generic_pb2.DESCRIPTOR.services_by_name["GenericService"])
register_model(Generic, "fake", FakeGeneric.new, FakeGeneric.validate)

__all__ = ["FakeGeneric", "Generic", "GenericRPCService"]
