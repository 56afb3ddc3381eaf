"""Servo: API, gRPC service and the ``fake`` model."""

from ...gen.viam.component.servo.v1 import servo_pb2
from ...resource.registration import register_api, register_model
from .api import Servo
from .fake import FakeServo
from .service import ServoRPCService

register_api(Servo, ServoRPCService, servo_pb2.DESCRIPTOR.services_by_name["ServoService"])
register_model(Servo, "fake", FakeServo.new, FakeServo.validate)

__all__ = ["FakeServo", "Servo", "ServoRPCService"]
