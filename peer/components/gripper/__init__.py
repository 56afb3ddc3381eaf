"""Gripper: API, gRPC service and the ``fake`` model."""

from ...gen.viam.component.gripper.v1 import gripper_pb2
from ...resource.registration import register_api, register_model
from .api import Gripper, HoldingStatus, KinematicsReturn
from .fake import FakeGripper
from .service import GripperRPCService

register_api(Gripper, GripperRPCService, gripper_pb2.DESCRIPTOR.services_by_name["GripperService"])
register_model(Gripper, "fake", FakeGripper.new, FakeGripper.validate)

__all__ = ["FakeGripper", "Gripper", "GripperRPCService", "HoldingStatus", "KinematicsReturn"]
