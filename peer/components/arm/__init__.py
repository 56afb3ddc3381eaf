"""Arm: API, gRPC service and the ``fake`` model."""

from ...gen.viam.component.arm.v1 import arm_pb2
from ...resource.registration import register_api, register_model
from .api import Arm
from .fake import FakeArm
from .service import ArmRPCService

register_api(Arm, ArmRPCService, arm_pb2.DESCRIPTOR.services_by_name["ArmService"])
register_model(Arm, "fake", FakeArm.new, FakeArm.validate)

__all__ = ["Arm", "ArmRPCService", "FakeArm"]
