"""Sensor: API, gRPC service and the ``fake`` model."""

from ...gen.viam.component.sensor.v1 import sensor_pb2
from ...resource.registration import register_api, register_model
from .api import Sensor
from .fake import FakeSensor
from .service import SensorRPCService

register_api(Sensor, SensorRPCService, sensor_pb2.DESCRIPTOR.services_by_name["SensorService"])
register_model(Sensor, "fake", FakeSensor.new, FakeSensor.validate)

__all__ = ["FakeSensor", "Sensor", "SensorRPCService"]
