"""Motor: API, gRPC service and the ``fake`` model."""

from ...gen.viam.component.motor.v1 import motor_pb2
from ...resource.registration import register_api, register_model
from .api import Motor
from .fake import FakeMotor
from .service import MotorRPCService

register_api(Motor, MotorRPCService, motor_pb2.DESCRIPTOR.services_by_name["MotorService"])
register_model(Motor, "fake", FakeMotor.new, FakeMotor.validate)

__all__ = ["FakeMotor", "Motor", "MotorRPCService"]
