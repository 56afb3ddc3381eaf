from __future__ import annotations

import asyncio
import time

import av
import numpy as np
import pytest
from grpclib import GRPCError, Status

from peer.components.camera import Camera, FakeCamera
from peer.components.camera.encoding import encode_jpeg, sof_first
from peer.components.camera.pattern import TestPattern, read_frame_code, text_mask
from peer.errors import ValidationError
from peer.gen.viam.common.v1 import common_pb2
from peer.gen.viam.component.camera.v1 import camera_pb2
from peer.gen.viam.component.camera.v1.camera_grpc import CameraServiceStub
from peer.protoutil import dict_to_struct, struct_to_dict
from peer.resource import Model, Registry, ResourceConfig

from .helpers import serve_resources


def decode(data: bytes, codec: str) -> av.VideoFrame:
    frames = av.CodecContext.create(codec, "r").decode(av.Packet(data))
    assert len(frames) == 1
    return frames[0]


def sdk_jpeg_size(data: bytes) -> tuple[int, int]:
    """What the Python SDK's header walk finds: it needs the SOF0 segment right after SOI."""
    assert data[:4] == b"\xff\xd8\xff\xc0"
    return int.from_bytes(data[9:11], "big"), int.from_bytes(data[7:9], "big")


async def get_images(stub: CameraServiceStub, **kwargs: object) -> camera_pb2.GetImagesResponse:
    return await stub.GetImages(camera_pb2.GetImagesRequest(**kwargs))  # type: ignore[arg-type]


async def test_get_images_returns_a_real_jpeg_of_the_advertised_size() -> None:
    async with serve_resources([FakeCamera("cam1")]) as channel:
        before = time.time()
        response = await get_images(CameraServiceStub(channel), name="cam1")
    assert len(response.images) == 1
    image = response.images[0]
    assert (image.source_name, image.mime_type) == ("cam1", "image/jpeg")
    frame = decode(image.image, "mjpeg")
    assert (frame.width, frame.height) == (640, 480)
    assert sdk_jpeg_size(image.image) == (640, 480)
    assert response.response_metadata.HasField("captured_at")
    assert abs(response.response_metadata.captured_at.ToNanoseconds() / 1e9 - before) < 2.0


async def test_png_on_request_and_configured_size() -> None:
    async with serve_resources([FakeCamera("cam1", width=320, height=240)]) as channel:
        stub = CameraServiceStub(channel)
        response = await get_images(stub, name="cam1", extra=dict_to_struct({"mime_type": "image/png"}))
        assert response.images[0].mime_type == "image/png"
        assert response.images[0].image[:8] == b"\x89PNG\r\n\x1a\n"
        frame = decode(response.images[0].image, "png")
        assert (frame.width, frame.height) == (320, 240)
        assert int.from_bytes(response.images[0].image[16:20], "big") == 320  # IHDR, as the SDK reads it

        with pytest.raises(GRPCError) as err:
            await get_images(stub, name="cam1", extra=dict_to_struct({"mime_type": "image/gif"}))
        assert err.value.status == Status.INVALID_ARGUMENT


async def test_png_is_the_default_when_configured() -> None:
    async with serve_resources([FakeCamera("cam1", width=64, height=48, mime_type="image/png")]) as channel:
        response = await get_images(CameraServiceStub(channel), name="cam1")
    assert response.images[0].mime_type == "image/png"
    frame = decode(response.images[0].image, "png")
    assert (frame.width, frame.height) == (64, 48)


async def test_filter_source_names() -> None:
    async with serve_resources([FakeCamera("cam1")]) as channel:
        stub = CameraServiceStub(channel)
        assert len((await get_images(stub, name="cam1", filter_source_names=["cam1"])).images) == 1
        assert len((await get_images(stub, name="cam1", filter_source_names=["depth"])).images) == 0


async def test_frames_move_and_count_up_at_the_frame_rate() -> None:
    async with serve_resources([FakeCamera("cam1", fps=30)]) as channel:
        stub = CameraServiceStub(channel)
        first = await get_images(stub, name="cam1")
        await asyncio.sleep(0.2)
        second = await get_images(stub, name="cam1")
    luma = [decode(r.images[0].image, "mjpeg").to_ndarray(format="gray") for r in (first, second)]
    frames = [read_frame_code(y) for y in luma]
    assert 4 <= frames[1] - frames[0] <= 30  # ~6 frames in 0.2 s at 30 fps, slack for a slow box
    assert np.abs(luma[0].astype(int) - luma[1].astype(int)).mean() > 5  # bars, ramp and box moved
    t0, t1 = (r.response_metadata.captured_at.ToNanoseconds() for r in (first, second))
    assert t1 > t0


def test_frame_at_is_deterministic_and_draws_the_counter() -> None:
    camera = FakeCamera("cam1", fps=10)
    a, b = camera.frame_at(4.25), camera.frame_at(4.25)
    assert a.index == 42 and a.time_s == pytest.approx(4.2)
    assert np.array_equal(a.i420, b.i420)
    assert read_frame_code(a.y) == 42
    # Second text line, drawn at 3x scale for 480 rows: "FRAME 000042" in white on black.
    s = camera.pattern.scale
    mask = text_mask("FRAME 000042", s)
    top, left = 2 * s + 9 * s, 2 * s
    region = a.y[top : top + mask.shape[0], left : left + mask.shape[1]]
    assert np.array_equal(region == 235, mask)
    assert not np.array_equal(camera.frame_at(4.35).y, a.y)


def test_pattern_planes_and_video_frame() -> None:
    frame = TestPattern(1280, 720, 30, label="x").render(1.0, wall_time=0.0)
    assert frame.y.shape == (720, 1280) and frame.u.shape == frame.v.shape == (360, 640)
    video = frame.to_video_frame()
    assert (video.width, video.height, video.format.name) == (1280, 720, "yuv420p")
    assert video.pts == 90000 and video.time_base == frame.to_video_frame().time_base
    assert np.array_equal(video.to_ndarray(), frame.i420)
    with pytest.raises(ValueError):
        TestPattern(641, 480, 30)


def test_sof_first_keeps_the_image_intact() -> None:
    jpeg = encode_jpeg(TestPattern(96, 64, 30).render(0.0).i420)
    assert sof_first(jpeg) == jpeg
    frame = decode(jpeg, "mjpeg")
    assert (frame.width, frame.height) == (96, 64)
    with pytest.raises(ValueError):
        sof_first(b"GIF89a")


async def test_get_frame_gives_raw_video() -> None:
    camera: Camera = FakeCamera("cam1", width=320, height=240)
    frame = await camera.get_frame()
    assert (frame.width, frame.height, frame.format.name) == (320, 240, "yuv420p")


async def test_point_cloud_is_a_pcd_plane() -> None:
    async with serve_resources([FakeCamera("cam1")]) as channel:
        stub = CameraServiceStub(channel)
        response = await stub.GetPointCloud(camera_pb2.GetPointCloudRequest(name="cam1", mime_type="pointcloud/pcd"))
        with pytest.raises(GRPCError) as err:
            await stub.GetPointCloud(camera_pb2.GetPointCloudRequest(name="cam1", mime_type="image/jpeg"))
        assert err.value.status == Status.INVALID_ARGUMENT
    assert response.mime_type == "pointcloud/pcd"
    header, _, body = response.point_cloud.partition(b"DATA binary\n")
    fields = dict(line.split(" ", 1) for line in header.decode().splitlines())
    assert fields["FIELDS"] == "x y z rgb" and fields["POINTS"] == "1200"
    points = np.frombuffer(body, dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("rgb", "<u4")])
    assert len(points) == 1200
    assert np.all(points["z"] == 1.0)
    assert points["x"].min() < 0 < points["x"].max()
    assert len(np.unique(points["rgb"])) > 5  # coloured by the picture


async def test_properties() -> None:
    async with serve_resources([FakeCamera("cam1", width=800, height=600, fps=15)]) as channel:
        props = await CameraServiceStub(channel).GetProperties(camera_pb2.GetPropertiesRequest(name="cam1"))
    assert props.supports_pcd
    assert (props.intrinsic_parameters.width_px, props.intrinsic_parameters.height_px) == (800, 600)
    assert props.intrinsic_parameters.center_x_px == 400 and props.intrinsic_parameters.focal_x_px > 0
    assert props.frame_rate == 15
    assert list(props.mime_types) == ["image/jpeg", "image/png"]


async def test_common_rpcs_and_unknown_name() -> None:
    async with serve_resources([FakeCamera("cam1")]) as channel:
        stub = CameraServiceStub(channel)
        with pytest.raises(GRPCError) as err:
            await get_images(stub, name="nope")
        assert err.value.status == Status.NOT_FOUND
        with pytest.raises(GRPCError) as err:
            await stub.DoCommand(common_pb2.DoCommandRequest(name="cam1"))
        assert err.value.status == Status.UNIMPLEMENTED
        geometries = await stub.GetGeometries(common_pb2.GetGeometriesRequest(name="cam1"))
        assert list(geometries.geometries) == []
        status = struct_to_dict((await stub.GetStatus(common_pb2.GetStatusRequest(name="cam1"))).result)
    assert status["width"] == 640 and status["height"] == 480 and status["fps"] == 30
    assert status["frame"] >= 0


@pytest.mark.parametrize(
    ("attributes", "key"),
    [
        ({"width": 641}, "width"),
        ({"height": 8}, "height"),
        ({"width": True}, "width"),
        ({"width": "640"}, "width"),
        ({"fps": 0}, "fps"),
        ({"fps": 500}, "fps"),
        ({"mime_type": "image/bmp"}, "mime_type"),
    ],
)
def test_bad_attributes_name_their_path(attributes: dict[str, object], key: str) -> None:
    config = ResourceConfig("cam1", Camera.API, Model.from_string("fake"), attributes, path="components[3]")
    with pytest.raises(ValidationError) as err:
        FakeCamera.validate(config)
    assert err.value.path == f"components[3].attributes.{key}"


def test_fake_model_is_registered_and_builds_from_config() -> None:
    config = ResourceConfig("cam1", Camera.API, Model.from_string("fake"), {"width": 320.0, "height": 240, "fps": 5})
    FakeCamera.validate(config)
    camera = Registry.lookup_resource_creator(Camera.API, Model.from_string("fake"))(config, {})
    assert isinstance(camera, FakeCamera)
    assert (camera.width, camera.height, camera.fps) == (320, 240, 5.0)


async def test_sensor_noise_makes_large_stills_and_keeps_the_frame_code() -> None:
    clean = FakeCamera("c", width=1024, height=768, mime_type="image/png")
    noisy = FakeCamera("c", width=1024, height=768, mime_type="image/png", noise=32)
    (clean_img,), _ = await clean.get_images()
    (noisy_img,), _ = await noisy.get_images()
    assert len(noisy_img.data) > 5 * len(clean_img.data)
    a, b = noisy.frame_at(1.0), noisy.frame_at(1.0)
    assert np.array_equal(a.i420, b.i420)  # still deterministic
    assert read_frame_code(a.y) == a.index


def test_noise_attribute_is_validated() -> None:
    config = ResourceConfig("cam1", Camera.API, Model.from_string("fake"), {"noise": 65}, path="components[0]")
    with pytest.raises(ValidationError, match=r"components\[0\]\.attributes\.noise"):
        FakeCamera.validate(config)
