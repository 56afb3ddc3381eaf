"""A robot behind NAT: it registers with a *remote* signaling server over gRPC (Answer), and a
client that only knows the signaling server reaches the robot's resources over WebRTC."""

from __future__ import annotations

from grpclib.client import Channel

from peer.gen.viam.robot.v1 import robot_pb2
from peer.gen.viam.robot.v1.robot_grpc import RobotServiceStub
from peer.grpcserver import bound_addresses, make_grpc_server
from peer.resource.build import build_resources
from peer.server import Server
from peer.webrtc import OfferAnswerer, PeerSessions, dial
from signaling.answerer import Answerer
from signaling.memory_queue import MemoryCallQueue
from signaling.service import SignalingService
from web.config import builtin_config

from .conftest import WAIT, eventually

ROBOT_HOST = "robot-a.example"


async def test_robot_answers_through_a_remote_signaling_server() -> None:
    queue = MemoryCallQueue(offline_delay=0.5)
    signaling = SignalingService(queue, offer_deadline=5.0)
    rendezvous = make_grpc_server(signaling)  # the "public" signaling server: signaling only
    await rendezvous.start("127.0.0.1", 0)
    port = int(bound_addresses(rendezvous)[0].rsplit(":", 1)[1])

    robot = Server(await build_resources(builtin_config().resources))  # serves nothing itself
    sessions = PeerSessions()
    to_rendezvous = Channel("127.0.0.1", port)
    answerer = Answerer(to_rendezvous, [ROBOT_HOST], OfferAnswerer(robot.handlers, sessions),
                        reconnect_wait=0.05, min_deadline=1.0)
    try:
        async with answerer:
            client = await dial(f"127.0.0.1:{port}", host=ROBOT_HOST, timeout=WAIT)
            try:
                reply = await RobotServiceStub(client.as_channel()).ResourceNames(
                    robot_pb2.ResourceNamesRequest(), timeout=WAIT)
            finally:
                await client.close()
            assert len(reply.resources) == len(builtin_config().resources)
            assert robot.handlers.stats.by_method["/viam.robot.v1.RobotService/ResourceNames"]["webrtc"] == 1
            await eventually(lambda: len(sessions) == 0, what="the robot's session of the closed client gone")
    finally:
        await sessions.close_all()
        to_rendezvous.close()
        rendezvous.close()
        await rendezvous.wait_closed()
        await robot.close()
        await signaling.close()
        await queue.close()
