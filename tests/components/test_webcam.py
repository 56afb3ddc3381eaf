"""The ``webcam`` camera model, fed by a small video file generated here (no device needed)."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from grpclib import GRPCError, Status

from peer.components.camera import Camera, WebcamCamera
from peer.errors import ValidationError
from peer.gen.viam.component.camera.v1 import camera_pb2
from peer.gen.viam.component.camera.v1.camera_grpc import CameraServiceStub
from peer.protoutil import dict_to_struct
from peer.resource import Model, Registry, ResourceConfig
from peer.resource.build import build_resources

from .helpers import serve_resources

WIDTH, HEIGHT, FPS, FRAMES = 320, 240, 15, 15  # a 1 s clip


def luma_of(index: int) -> int:
    """Frame ``index`` of the clip is a flat grey this bright (steps of 12 survive mpeg4)."""
    return 30 + 12 * index


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("webcam") / "clip.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        for i in range(FRAMES):
            i420 = np.full((HEIGHT * 3 // 2, WIDTH), 128, dtype=np.uint8)
            i420[:HEIGHT] = luma_of(i)
            frame = av.VideoFrame.from_ndarray(i420, format="yuv420p")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def config(attributes: dict[str, Any], path: str = "components[2]") -> ResourceConfig:
    return ResourceConfig("cam1", Camera.API, Model.from_string("webcam"), attributes, path=path)


async def create(attributes: dict[str, Any]) -> WebcamCamera:
    [camera] = await build_resources([config(attributes)])
    assert isinstance(camera, WebcamCamera)
    return camera


def index_of(frame: av.VideoFrame) -> int:
    """Which clip frame this is, from its mean brightness."""
    mean = float(frame.to_ndarray()[:HEIGHT].mean())
    return round((mean - 30) / 12)


def reader_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("webcam-")]


async def test_get_images_serves_a_jpeg_of_the_clip_size(clip: Path) -> None:
    camera = await create({"video_path": str(clip)})
    async with serve_resources([camera]) as channel:
        stub = CameraServiceStub(channel)
        response = await stub.GetImages(camera_pb2.GetImagesRequest(name="cam1"))
        png = await stub.GetImages(
            camera_pb2.GetImagesRequest(name="cam1", extra=dict_to_struct({"mime_type": "image/png"}))
        )
        props = await stub.GetProperties(camera_pb2.GetPropertiesRequest(name="cam1"))
    [image] = response.images
    assert (image.source_name, image.mime_type) == ("cam1", "image/jpeg")
    assert image.image[:4] == b"\xff\xd8\xff\xc0"  # SOF first, as the Python SDK needs
    [decoded] = av.CodecContext.create("mjpeg", "r").decode(av.Packet(image.image))
    assert (decoded.width, decoded.height) == (WIDTH, HEIGHT)
    assert response.response_metadata.HasField("captured_at")
    assert png.images[0].mime_type == "image/png" and png.images[0].image[:4] == b"\x89PNG"
    assert (props.intrinsic_parameters.width_px, props.intrinsic_parameters.height_px) == (WIDTH, HEIGHT)
    assert props.frame_rate == pytest.approx(FPS)
    assert not props.supports_pcd
    assert reader_threads() == []  # serve_resources closed the camera


async def test_frames_advance_and_the_file_loops_past_its_end(clip: Path) -> None:
    camera = await create({"video_path": str(clip)})
    try:
        seen: list[int] = []
        frame = await camera.get_frame()
        assert (frame.width, frame.height, frame.format.name) == (WIDTH, HEIGHT, "yuv420p")
        for _ in range(14):  # 1.4 s of a 1 s clip at 15 fps
            seen.append(index_of(await camera.get_frame()))
            await asyncio.sleep(0.1)
        assert len(set(seen)) >= 8, seen  # the picture changes between calls
        wraps = [i for i in range(1, len(seen)) if seen[i] < seen[i - 1]]
        assert wraps, f"never went back to the start: {seen}"
        assert seen[-1] > seen[wraps[0]] or len(seen) - wraps[0] == 1  # and keeps playing after it
        assert camera.frames_decoded > FRAMES
    finally:
        await camera.close()


async def test_a_dead_stream_is_unavailable_until_the_reader_reopens_it(clip: Path) -> None:
    """Without ``loop`` the end of the file is a dead stream: an error, then a retry after a backoff."""
    camera = await create({"video_path": str(clip), "loop": False})
    try:
        await camera.get_frame()
        async with asyncio.timeout(3):
            while True:
                try:
                    await camera.get_frame()
                except GRPCError as exc:
                    assert exc.status == Status.UNAVAILABLE
                    assert "ended" in str(exc.message) and str(clip) in str(exc.message)
                    break
                await asyncio.sleep(0.05)
        with pytest.raises(GRPCError) as info:
            await camera.get_images()
        assert info.value.status == Status.UNAVAILABLE
        decoded = camera.frames_decoded
        async with asyncio.timeout(3):  # the reader reopens the source after its backoff
            while True:
                await asyncio.sleep(0.02)
                if camera.frames_decoded > decoded:
                    break
        assert index_of(await camera.get_frame()) <= 2  # playing from the start again
    finally:
        await camera.close()


async def test_a_missing_file_fails_creation_naming_the_config_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.mp4"
    with pytest.raises(ValidationError) as info:
        await create({"video_path": str(missing)})
    assert info.value.path == "components[2].attributes.video_path"
    assert str(missing) in str(info.value) and "cannot open" in str(info.value)
    assert reader_threads() == []


async def test_close_leaves_no_threads_or_tasks(clip: Path) -> None:
    tasks_before = asyncio.all_tasks()
    camera = await create({"video_path": str(clip)})
    await camera.get_frame()
    assert len(reader_threads()) == 1
    await camera.close()
    await camera.close()  # idempotent
    assert reader_threads() == []
    assert asyncio.all_tasks() == tasks_before
    with pytest.raises(GRPCError) as info:
        await camera.get_frame()
    assert info.value.status == Status.UNAVAILABLE


async def test_close_before_first_use_releases_the_probe(clip: Path) -> None:
    camera = await create({"video_path": str(clip)})
    await camera.close()
    assert reader_threads() == []


@pytest.mark.parametrize(
    ("attributes", "key"),
    [
        ({}, "video_path"),
        ({"video_path": ""}, "video_path"),
        ({"video_path": 3}, "video_path"),
        ({"video_path": "/dev/video0", "format": ""}, "format"),
        ({"video_path": "/dev/video0", "width": 640}, "height"),
        ({"video_path": "/dev/video0", "width": -2, "height": 480}, "width"),
        ({"video_path": "/dev/video0", "width": 640, "height": 4.5}, "height"),
        ({"video_path": "/dev/video0", "fps": 0}, "fps"),
        ({"video_path": "/dev/video0", "fps": True}, "fps"),
        ({"video_path": "/dev/video0", "loop": "yes"}, "loop"),
        ({"video_path": "/dev/video0", "mime_type": "image/gif"}, "mime_type"),
    ],
)
def test_bad_attributes_are_rejected_with_their_path(attributes: dict[str, Any], key: str) -> None:
    validator = Registry.lookup_validator(Camera.API, Model.from_string("webcam"))
    with pytest.raises(ValidationError) as info:
        validator(config(attributes))
    assert info.value.path == f"components[2].attributes.{key}"


def test_validation_does_not_open_the_source(tmp_path: Path) -> None:
    validator = Registry.lookup_validator(Camera.API, Model.from_string("webcam"))
    attributes = {"video_path": str(tmp_path / "absent.mp4"), "format": "v4l2", "width": 640, "height": 480, "fps": 30}
    assert list(validator(config(attributes))) == []
