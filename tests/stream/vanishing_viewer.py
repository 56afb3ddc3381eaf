"""A viewer in its own process, for tests that kill it: dials the robot over loopback, adds a stream,
prints ``watching`` once frames arrive, then keeps decoding until it is killed.

    python -m tests.stream.vanishing_viewer 127.0.0.1:PORT cam1

Loopback only, as in tests/webrtc/conftest.py: aioice gathers 127.0.0.1 and no STUN server is set.
"""

from __future__ import annotations

import asyncio
import sys

import aioice.ice

from peer.gen.proto.stream.v1 import stream_pb2 as pb
from peer.gen.proto.stream.v1.stream_grpc import StreamServiceStub
from peer.webrtc import dial

WAIT = 10.0


async def main(address: str, name: str) -> None:
    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]  # type: ignore[assignment]
    channel = await dial(address, timeout=WAIT)
    await StreamServiceStub(channel.as_channel()).AddStream(pb.AddStreamRequest(name=name), timeout=WAIT)
    await channel.wait_remote_track(name, timeout=WAIT)
    track = channel.remote_tracks[name]
    for _ in range(5):
        await asyncio.wait_for(track.recv(), WAIT)
    print("watching", flush=True)
    while True:  # until killed: no goodbye of any kind reaches the robot
        await asyncio.wait_for(track.recv(), WAIT)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
