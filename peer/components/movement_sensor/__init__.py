"""Movement sensor (GPS / IMU / odometry): API, gRPC service and the ``fake`` model."""

from ...gen.viam.component.movementsensor.v1 import movementsensor_pb2
from ...resource.registration import register_api, register_model
from .api import Accuracy, MovementSensor, Properties
from .fake import FakeMovementSensor
from .service import MovementSensorRPCService

register_api(
    MovementSensor, MovementSensorRPCService, movementsensor_pb2.DESCRIPTOR.services_by_name["MovementSensorService"]
)
register_model(MovementSensor, "fake", FakeMovementSensor.new, FakeMovementSensor.validate)

__all__ = ["Accuracy", "FakeMovementSensor", "MovementSensor", "MovementSensorRPCService", "Properties"]
