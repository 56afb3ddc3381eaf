"""The caller in the NAT topology: dial the robot by name through the rendezvous, call it, report JSON.

Run inside the client namespace by tests/nat/test_nat_turn.py::

    python tests/nat/nat_client.py RENDEZVOUS_HOST:PORT ROBOT_NAME [--ice-servers JSON] [--timeout S]

It uses our pure-Python dialer (aiortc). ICE servers come from ``OptionalWebRTCConfig`` (the
rendezvous) plus any given with ``--ice-servers`` (a JSON list of {urls, username, credential}).
Prints one JSON object: ``ok``, the error status and message if the dial failed, the seconds the
dial took, the ICE servers the rendezvous handed out, the candidate types of the selected ICE pair
(read from aioice: the only public signal of "connected via the relay"), ResourceNames and a
sensor's readings.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from google.protobuf import json_format
from grpclib import GRPCError
from grpclib.client import Channel

from peer.gen.viam.common.v1 import common_pb2
from peer.gen.viam.component.sensor.v1 import sensor_grpc
from peer.gen.viam.robot.v1 import robot_grpc, robot_pb2
from peer.webrtc.dial import dial, split_address
from signaling.config import IceServer
from signaling.const import RPC_HOST_KEY
from signaling.gen.proto.rpc.webrtc.v1 import signaling_pb2
from signaling.gen.proto.rpc.webrtc.v1.signaling_grpc import SignalingServiceStub


def selected_pair(channel: Any) -> dict[str, str] | None:
    """Local and remote candidate types of the nominated pair (aioice internals; test-only read)."""
    connection = channel.pc.sctp.transport.transport._connection
    for pair in connection._nominated.values():
        return {"local": pair.local_candidate.type, "remote": pair.remote_candidate.type,
                "local_addr": f"{pair.local_candidate.host}:{pair.local_candidate.port}",
                "remote_addr": f"{pair.remote_candidate.host}:{pair.remote_candidate.port}"}
    return None


async def handed_out(address: str, host: str) -> list[dict[str, Any]]:
    """What the rendezvous's OptionalWebRTCConfig returns right now."""
    channel = Channel(*split_address(address))
    try:
        reply = await SignalingServiceStub(channel).OptionalWebRTCConfig(
            signaling_pb2.OptionalWebRTCConfigRequest(), metadata=[(RPC_HOST_KEY, host)], timeout=5
        )
    finally:
        channel.close()
    return [json_format.MessageToDict(s) for s in reply.config.additional_ice_servers]


async def main() -> dict[str, Any]:
    parser = argparse.ArgumentParser()
    parser.add_argument("rendezvous")
    parser.add_argument("host")
    parser.add_argument("--ice-servers", default="[]")
    parser.add_argument("--timeout", type=float, default=20.0)
    args = parser.parse_args()
    extra = [IceServer(tuple(s["urls"]), s.get("username", ""), s.get("credential", ""))
             for s in json.loads(args.ice_servers)]
    report: dict[str, Any] = {"ok": False, "handed_out": await handed_out(args.rendezvous, args.host)}
    started = time.monotonic()
    try:
        channel = await dial(args.rendezvous, host=args.host, ice_servers=extra, timeout=args.timeout)
    except GRPCError as exc:
        report.update(seconds=time.monotonic() - started, status=exc.status.name, message=exc.message)
        return report
    report["seconds"] = time.monotonic() - started
    try:
        report["pair"] = selected_pair(channel)
        robot = robot_grpc.RobotServiceStub(channel.as_channel())
        names = await robot.ResourceNames(robot_pb2.ResourceNamesRequest(), timeout=10)
        report["resource_names"] = [f"{n.namespace}:{n.type}:{n.subtype}/{n.name}" for n in names.resources]
        sensor = sensor_grpc.SensorServiceStub(channel.as_channel())
        readings = await sensor.GetReadings(common_pb2.GetReadingsRequest(name="sensor1"), timeout=10)
        report["readings"] = sorted(readings.readings)
        report["ok"] = True
    finally:
        await channel.close()
    return report


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main())))
