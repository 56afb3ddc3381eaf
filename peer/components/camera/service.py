"""gRPC service of the camera API."""

from __future__ import annotations

from typing import Any

from grpclib.server import Stream

from ...errors import ValidationError
from ...gen.viam.component.camera.v1 import camera_pb2
from ...gen.viam.component.camera.v1.camera_grpc import CameraServiceBase
from ...protoutil import struct_to_dict
from ...resource.rpc import CommonRPCMixin, call_timeout, recv_request
from .api import Camera
from .encoding import MIME_PCD


class CameraRPCService(CommonRPCMixin, CameraServiceBase):
    RESOURCE_TYPE = Camera

    async def GetImages(self, stream: Stream[Any, Any]) -> None:
        request = await recv_request(stream)
        camera: Camera = self.get_resource(request.name)
        images, metadata = await camera.get_images(
            filter_source_names=list(request.filter_source_names),
            extra=struct_to_dict(request.extra),
            timeout=call_timeout(stream),
        )
        await stream.send_message(
            camera_pb2.GetImagesResponse(
                images=[camera_pb2.Image(source_name=i.name, image=i.data, mime_type=i.mime_type) for i in images],
                response_metadata=metadata,
            )
        )

    async def GetPointCloud(self, stream: Stream[Any, Any]) -> None:
        request = await recv_request(stream)
        camera: Camera = self.get_resource(request.name)
        # Clients ask for PCD (the only point-cloud format there is); anything else is a mistake.
        if request.mime_type not in ("", MIME_PCD):
            raise ValidationError(
                f"point clouds are only available as {MIME_PCD}, not {request.mime_type!r}", "mime_type"
            )
        data, mime_type = await camera.get_point_cloud(
            extra=struct_to_dict(request.extra), timeout=call_timeout(stream)
        )
        await stream.send_message(camera_pb2.GetPointCloudResponse(mime_type=mime_type, point_cloud=data))

    async def GetProperties(self, stream: Stream[Any, Any]) -> None:
        request = await recv_request(stream)
        camera: Camera = self.get_resource(request.name)
        await stream.send_message(await camera.get_properties(timeout=call_timeout(stream)))
