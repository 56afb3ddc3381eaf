"""``/stats`` → ``cameras``: per camera, its viewers and captured fps (StreamService's captures).

``encoded_fps`` and ``bitrate_kbps`` with real senders are tested in tests/stream (aiortc viewers).
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from peer.media import EncodedCameraTrack
from peer.media.capture import FPS_WINDOW
from web.robot import Robot


async def _cameras(http: aiohttp.ClientSession, robot: Robot) -> dict[str, Any]:
    async with http.get(f"http://127.0.0.1:{robot.port}/stats") as resp:
        assert resp.status == 200
        body: dict[str, Any] = await resp.json()
    cameras: dict[str, Any] = body["cameras"]
    return cameras


async def test_stats_cameras_viewers_and_fps(robot: Robot, http: aiohttp.ClientSession) -> None:
    assert await _cameras(http, robot) == {}  # nothing streamed yet
    name, camera = "cam1", robot.streams.cameras()["cam1"]
    capture = robot.streams.capture(name, camera)  # what AddStream uses: one capture per camera
    tracks = [EncodedCameraTrack(capture), EncodedCameraTrack(capture)]  # what AddStream gives a viewer
    try:
        await asyncio.sleep(FPS_WINDOW + 0.2)
        cam = (await _cameras(http, robot))[name]
        assert set(cam) == {"viewers", "encoders", "fps", "encoded_fps", "bitrate_kbps", "frames_captured",
                            "capture_loops_started", "running", "target_kbps", "keyframes_only"}
        # these viewers have no RTP sender: nothing is sent, though their one shared encoder runs
        assert cam["encoded_fps"] == 0.0 and cam["bitrate_kbps"] == 0.0, cam
        assert cam["viewers"] == 2 and cam["encoders"] == 1, cam
        # no receiver estimates (no RTP): the one encoder runs at its size's cap, nobody on keyframes only
        (encoder,) = capture.encoders.values()
        assert encoder.governor is not None and cam["target_kbps"] == [round(encoder.governor.cap / 1000, 1)], cam
        assert cam["keyframes_only"] == 0, cam
        assert cam["capture_loops_started"] == 1 and cam["running"] is True, cam
        assert 25.0 <= cam["fps"] <= 35.0, cam  # the built-in cam1 runs at 30 fps
        assert cam["frames_captured"] >= cam["fps"], cam
        await tracks[0].aclose()
        assert (await _cameras(http, robot))[name]["viewers"] == 1
    finally:
        for track in tracks:
            await track.aclose()
    cam = (await _cameras(http, robot))[name]
    assert cam["viewers"] == 0 and cam["running"] is False, cam
    await asyncio.sleep(FPS_WINDOW + 0.1)
    assert (await _cameras(http, robot))[name]["fps"] == 0.0


async def test_stats_fps_is_right_in_the_first_second(robot: Robot, http: aiohttp.ClientSession) -> None:
    capture = robot.streams.capture("cam1", robot.streams.cameras()["cam1"])
    sub = capture.subscribe()
    try:
        await asyncio.sleep(0.8)  # well inside FPS_WINDOW
        cam = (await _cameras(http, robot))["cam1"]
        assert 22.0 <= cam["fps"] <= 35.0, cam
    finally:
        await sub.aclose()
