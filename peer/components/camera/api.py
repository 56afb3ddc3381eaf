"""The camera API: still images, point clouds, intrinsics, and raw frames for live video."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ...errors import NotSupportedError, ValidationError
from ...gen.viam.common.v1 import common_pb2
from ...gen.viam.component.camera.v1 import camera_pb2
from ...resource import API, ComponentBase

if TYPE_CHECKING:
    import av

#: What :meth:`Camera.get_properties` returns (the wire message itself, as in the Viam SDK).
CameraProperties = camera_pb2.GetPropertiesResponse


@dataclass(frozen=True)
class NamedImage:
    """One encoded image and the source (imager) that produced it."""

    name: str
    data: bytes
    mime_type: str


def requested_mime_type(extra: Mapping[str, Any] | None, default: str, supported: Sequence[str]) -> str:
    """``GetImages``' ``extra.mime_type`` (else ``default``), refused unless ``supported``: the
    Viam SDKs ask for a format that way, and a camera answers in it or says which it can do."""
    mime = (extra or {}).get("mime_type") or default
    if mime not in supported:
        raise ValidationError(f"must be one of {', '.join(supported)}, not {mime!r}", "extra.mime_type")
    return str(mime)


class Camera(ComponentBase):
    API = API.component("camera")

    @abstractmethod
    async def get_images(
        self,
        *,
        filter_source_names: Sequence[str] | None = None,
        extra: Mapping[str, Any] | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> tuple[Sequence[NamedImage], common_pb2.ResponseMetadata]:
        """Images taken at the same instant, one per source; an empty filter means every source.

        The metadata's ``captured_at`` says when. Both real clients (Python and browser SDKs)
        read images only through this call.
        """

    @abstractmethod
    async def get_point_cloud(
        self, *, extra: Mapping[str, Any] | None = None, timeout: float | None = None, **kwargs: Any
    ) -> tuple[bytes, str]:
        """The point cloud bytes and their MIME type (``pointcloud/pcd``)."""

    @abstractmethod
    async def get_properties(self, *, timeout: float | None = None, **kwargs: Any) -> CameraProperties:
        """Intrinsics, distortion, supported MIME types, frame rate and point-cloud support."""

    async def get_frame(self) -> av.VideoFrame:
        """The current picture as a raw (unencoded) frame, for the live video pipeline.

        Not an RPC: video tracks pull frames through this so they never decode JPEGs. Cameras that
        can only produce encoded stills leave it unsupported.
        """
        raise NotSupportedError(f"camera {self.name!r} does not provide raw video frames")
