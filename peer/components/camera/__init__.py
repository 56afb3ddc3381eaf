"""Camera: API, gRPC service, the ``fake`` and ``webcam`` models and the test pattern it films."""

from ...gen.viam.component.camera.v1 import camera_pb2
from ...resource.registration import register_api, register_model
from .api import Camera, CameraProperties, NamedImage
from .fake import FakeCamera
from .service import CameraRPCService
from .webcam import WebcamCamera

register_api(Camera, CameraRPCService, camera_pb2.DESCRIPTOR.services_by_name["CameraService"])
register_model(Camera, "fake", FakeCamera.new, FakeCamera.validate)
register_model(Camera, "webcam", WebcamCamera.new, WebcamCamera.validate)

__all__ = ["Camera", "CameraProperties", "CameraRPCService", "FakeCamera", "NamedImage", "WebcamCamera"]
