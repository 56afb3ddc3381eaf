"""A camera that films a moving test pattern: real JPEG/PNG stills, a PCD plane, raw video frames."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import av
import numpy as np

from ...errors import ValidationError
from ...gen.viam.common.v1 import common_pb2
from ...gen.viam.component.camera.v1 import camera_pb2
from ...protoutil import timestamp_from_epoch
from ...resource import ResourceBase, ResourceConfig, ResourceName
from .api import Camera, CameraProperties, NamedImage, requested_mime_type
from .encoding import IMAGE_MIME_TYPES, MIME_JPEG, MIME_PCD, encode_image
from .pattern import PatternFrame, TestPattern

#: Horizontal field of view of the simulated lens, for the intrinsics.
FOV_X_DEG = 70.0
#: Distance of the simulated wall the point cloud shows, in metres (PCD is in metres, as in RDK).
PLANE_DEPTH_M = 1.0
#: One point per PCD_STEP x PCD_STEP pixels keeps the cloud small (1200 points at 640x480).
PCD_STEP = 16

_MIN_SIZE, _MAX_SIZE, _MAX_FPS = 32, 4096, 120.0
_MAX_NOISE = 64


def _even_size(config: ResourceConfig, key: str, default: int) -> int:
    value = config.attributes.get(key, default)
    if (
        not isinstance(value, int | float)
        or isinstance(value, bool)
        or value != int(value)
        or not _MIN_SIZE <= value <= _MAX_SIZE
        or int(value) % 2
    ):
        raise ValidationError(
            f"must be an even whole number of pixels from {_MIN_SIZE} to {_MAX_SIZE}, not {value!r}",
            f"{config.path}.attributes.{key}",
        )
    return int(value)


class FakeCamera(Camera):
    """Renders :class:`TestPattern` at the time of each call; the frame number advances at ``fps``.

    Every still and every video frame of the same instant show the same picture, frame number and
    UTC clock, so a viewer can tell stale frames from live ones.
    """

    def __init__(
        self,
        name: str,
        *,
        width: int = 640,
        height: int = 480,
        fps: float = 30.0,
        mime_type: str = MIME_JPEG,
        noise: int = 0,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(name)
        if mime_type not in IMAGE_MIME_TYPES:
            raise ValueError(f"mime_type must be one of {IMAGE_MIME_TYPES}, not {mime_type!r}")
        self.pattern = TestPattern(width, height, fps, label=name, noise=noise)
        self.mime_type = mime_type
        self._clock = clock
        self._t0 = clock()
        self._wall0 = wall_clock()

    @property
    def width(self) -> int:
        return self.pattern.width

    @property
    def height(self) -> int:
        return self.pattern.height

    @property
    def fps(self) -> float:
        return self.pattern.fps

    @staticmethod
    def validate(config: ResourceConfig) -> list[str]:
        _even_size(config, "width", 640)
        _even_size(config, "height", 480)
        fps = config.attributes.get("fps", 30.0)
        if not isinstance(fps, int | float) or isinstance(fps, bool) or not 0 < fps <= _MAX_FPS:
            raise ValidationError(
                f"must be a number of frames per second above 0 and at most {_MAX_FPS:g}, not {fps!r}",
                f"{config.path}.attributes.fps",
            )
        noise = config.attributes.get("noise", 0)
        if not isinstance(noise, int) or isinstance(noise, bool) or not 0 <= noise <= _MAX_NOISE:
            raise ValidationError(f"must be a whole number from 0 to {_MAX_NOISE}, not {noise!r}",
                                  f"{config.path}.attributes.noise")
        mime = config.attributes.get("mime_type", MIME_JPEG)
        if mime not in IMAGE_MIME_TYPES:
            raise ValidationError(
                f"must be one of {', '.join(IMAGE_MIME_TYPES)}, not {mime!r}", f"{config.path}.attributes.mime_type"
            )
        return []

    @classmethod
    def new(cls, config: ResourceConfig, dependencies: Mapping[ResourceName, ResourceBase]) -> FakeCamera:
        attrs = config.attributes
        return cls(
            config.name,
            width=int(attrs.get("width", 640)),
            height=int(attrs.get("height", 480)),
            fps=float(attrs.get("fps", 30.0)),
            mime_type=str(attrs.get("mime_type", MIME_JPEG)),
            noise=int(attrs.get("noise", 0)),
        )

    # -- frames ---------------------------------------------------------------------------------

    def elapsed(self) -> float:
        """Seconds since the camera started: the pattern's time axis."""
        return self._clock() - self._t0

    def frame_at(self, t: float) -> PatternFrame:
        """The frame shown ``t`` seconds after the start (deterministic: same ``t``, same pixels)."""
        return self.pattern.render(t, wall_time=self._wall0 + self.pattern.index_at(t) / self.fps)

    def capture(self) -> PatternFrame:
        return self.frame_at(self.elapsed())

    async def get_frame(self) -> av.VideoFrame:
        return self.capture().to_video_frame()

    # -- API --------------------------------------------------------------------------------------

    async def get_image(self, mime_type: str | None = None) -> tuple[NamedImage, common_pb2.ResponseMetadata]:
        """One still in ``mime_type`` (default: the configured one); not an RPC of its own."""
        mime = mime_type or self.mime_type
        if mime not in IMAGE_MIME_TYPES:
            raise ValidationError(f"unsupported image MIME type {mime!r}; use one of {', '.join(IMAGE_MIME_TYPES)}")
        t = self.elapsed()
        frame, data = await asyncio.to_thread(self._render_encoded, t, mime)
        metadata = common_pb2.ResponseMetadata(captured_at=timestamp_from_epoch(frame.wall_time))
        return NamedImage(self.name, data, mime), metadata

    def _render_encoded(self, t: float, mime: str) -> tuple[PatternFrame, bytes]:
        frame = self.frame_at(t)
        return frame, encode_image(frame.i420, mime)

    async def get_images(
        self,
        *,
        filter_source_names: Sequence[str] | None = None,
        extra: Mapping[str, Any] | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> tuple[Sequence[NamedImage], common_pb2.ResponseMetadata]:
        """The one source is named after the camera; ``extra.mime_type`` picks JPEG or PNG."""
        mime = requested_mime_type(extra, self.mime_type, IMAGE_MIME_TYPES)
        if filter_source_names and self.name not in filter_source_names:
            captured = self._wall0 + self.elapsed()
            return [], common_pb2.ResponseMetadata(captured_at=timestamp_from_epoch(captured))
        image, metadata = await self.get_image(mime)
        return [image], metadata

    async def get_point_cloud(
        self, *, extra: Mapping[str, Any] | None = None, timeout: float | None = None, **kwargs: Any
    ) -> tuple[bytes, str]:
        """A flat wall ``PLANE_DEPTH_M`` ahead, coloured by the current picture."""
        frame = self.capture()
        return await asyncio.to_thread(self._plane_pcd, frame), MIME_PCD

    def _plane_pcd(self, frame: PatternFrame) -> bytes:
        fx, fy, cx, cy = self._intrinsics()
        ys, xs = np.mgrid[PCD_STEP // 2 : self.height : PCD_STEP, PCD_STEP // 2 : self.width : PCD_STEP]
        xs, ys = xs.ravel(), ys.ravel()
        luma = frame.y[ys, xs].astype(np.float32) - 16.0
        cb = frame.u[ys // 2, xs // 2].astype(np.float32) - 128.0
        cr = frame.v[ys // 2, xs // 2].astype(np.float32) - 128.0
        rgb = np.stack(
            [1.164 * luma + 1.596 * cr, 1.164 * luma - 0.392 * cb - 0.813 * cr, 1.164 * luma + 2.017 * cb]
        )
        r, g, b = np.clip(np.round(rgb), 0, 255).astype(np.uint32)
        points = np.empty(xs.size, dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("rgb", "<u4")])
        points["x"] = (xs - cx) / fx * PLANE_DEPTH_M
        points["y"] = (ys - cy) / fy * PLANE_DEPTH_M
        points["z"] = PLANE_DEPTH_M
        points["rgb"] = (r << 16) | (g << 8) | b
        header = (
            "VERSION .7\nFIELDS x y z rgb\nSIZE 4 4 4 4\nTYPE F F F I\nCOUNT 1 1 1 1\n"
            f"WIDTH {xs.size}\nHEIGHT 1\nVIEWPOINT 0 0 0 1 0 0 0\nPOINTS {xs.size}\nDATA binary\n"
        )
        return header.encode("ascii") + points.tobytes()

    def _intrinsics(self) -> tuple[float, float, float, float]:
        focal = (self.width / 2) / math.tan(math.radians(FOV_X_DEG / 2))
        return focal, focal, self.width / 2, self.height / 2

    async def get_properties(self, *, timeout: float | None = None, **kwargs: Any) -> CameraProperties:
        fx, fy, cx, cy = self._intrinsics()
        return camera_pb2.GetPropertiesResponse(
            supports_pcd=True,
            intrinsic_parameters=camera_pb2.IntrinsicParameters(
                width_px=self.width, height_px=self.height, focal_x_px=fx, focal_y_px=fy, center_x_px=cx, center_y_px=cy
            ),
            mime_types=list(IMAGE_MIME_TYPES),
            frame_rate=self.fps,
        )

    async def get_status(self, *, timeout: float | None = None, **kwargs: Any) -> Mapping[str, Any]:
        return {
            "width": self.width,
            "height": self.height,
            "fps": self.fps,
            "frame": self.pattern.index_at(self.elapsed()),
        }
