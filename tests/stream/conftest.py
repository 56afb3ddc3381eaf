"""aiortc ↔ aiortc live video on loopback: a robot with two fake cameras and the StreamService.

Reuses the WebRTC tests' loopback-only ICE and leaked-task check; the robot is the one of
tests/webrtc/conftest.py, with cameras instead of the built-in fake robot.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from peer.components.camera import FakeCamera
from peer.server import Server
from peer.stream import StreamService
from peer.webrtc import OfferAnswerer, PeerSessions
from signaling.internal import internal_answerer
from signaling.memory_queue import MemoryCallQueue
from signaling.service import SignalingService
from tests.webrtc.conftest import eventually, loopback_only, no_leaked_tasks

__all__ = ["CAM1", "CAM2", "VideoRobot", "eventually", "loopback_only", "no_leaked_tasks"]

CAM1 = (320, 240)
CAM2 = (160, 120)


@dataclass
class VideoRobot:
    server: Server
    streams: StreamService
    sessions: PeerSessions
    address: str
    port: int


@pytest.fixture
async def video_robot() -> AsyncIterator[VideoRobot]:
    cameras = [
        FakeCamera("cam1", width=CAM1[0], height=CAM1[1], fps=30),
        FakeCamera("cam2", width=CAM2[0], height=CAM2[1], fps=30),
    ]
    server = Server(cameras)
    streams = StreamService(server.manager)
    queue = MemoryCallQueue(offline_delay=0.2)
    signaling = SignalingService(queue, offer_deadline=5.0)
    server.handlers.add([signaling, streams])
    await server.start("127.0.0.1", 0)
    assert server.port is not None
    address = f"127.0.0.1:{server.port}"
    sessions = PeerSessions()
    try:
        async with internal_answerer(
            signaling, [address], OfferAnswerer(server.handlers, sessions), reconnect_wait=0.05, min_deadline=1.0
        ):
            yield VideoRobot(server, streams, sessions, address, server.port)
            await eventually(lambda: len(sessions) == 0, timeout=5.0, what="server sessions of closed clients gone")
    finally:
        await sessions.close_all()
        await streams.close()
        await server.close()
        await queue.close()
