"""Base: API, gRPC service and the ``fake`` model."""

from ...gen.viam.component.base.v1 import base_pb2
from ...resource.registration import register_api, register_model
from .api import Base
from .fake import FakeBase
from .service import BaseRPCService

register_api(Base, BaseRPCService, base_pb2.DESCRIPTOR.services_by_name["BaseService"])
register_model(Base, "fake", FakeBase.new, FakeBase.validate)

__all__ = ["Base", "BaseRPCService", "FakeBase"]
