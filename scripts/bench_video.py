"""Live video costs: server-side capture → wire latency and CPU per viewer, and AddStream → first
frame in Chromium.

    .venv/bin/python scripts/bench_video.py [--seconds 10] [--warmup 3] [--reps 5] [--no-browser]

Runs inside a private network namespace (``../shared/tools/netns.sh``, re-executed automatically):
aiortc gathers candidates on every interface, and media must never reach an address outside this
machine.

**Server side.** This process is the robot (the fake cameras ``cam480`` 640x480 and ``cam720``
1280x720, both 30 fps, with the StreamService, signaling and the WebRTC answerer, as ``peerbot
serve`` composes them); the viewers are aiortc peers in a child process (this script with
``--viewer``), so their decoding is not counted against the robot. For each case (camera, 1 or 4
viewers of that one camera, VP8, and the encoding mode: *shared*, one encoder per camera as the
robot runs by default, or *per-viewer*, aiortc's encoder in every sender, ``PEERBOT_ENCODE_ONCE=0``,
the baseline): the viewers connect and AddStream, the robot's DTLS transports
are tapped (:func:`peer.webrtc.media_internals.tap_sent_rtp`), and after ``--warmup`` seconds,
for ``--seconds``:

* *capture → wire*: for every frame, the time from its capture (``CameraTrack.last_captured_at``,
  the event-loop time at which the capture loop published it) to the moment the frame's last RTP
  packet (marker bit) was handed to the transport and sent. aiortc's sender loop is sequential
  (recv → encode → send every packet → recv), so the frame being sent is the one its track returned
  last. Per-viewer: includes the wait in the viewer's one-frame mailbox, the copy, the VP8 encode
  (executor thread), packetization and SRTP; shared: the encode (the encoder's thread), the wait in
  the viewer's packet queue, packetization and SRTP. p50/p99 over every frame of every viewer.
* *CPU*: this process's user+system time over wall time (``getrusage``: all threads, so the
  encoders too), in % of one core, in total and per viewer; the capture and the fake camera's
  rendering (once per camera) are included.
* the encoded frame rate per viewer (``/stats``' ``encoded_fps`` / viewers) and the viewers' own
  received frame rate, to show the figures were taken at full rate.

**Browser.** ``tests/browser/run_in_netns.py firstframe`` (``peerbot serve``, Debian Chromium,
the SDK's ``StreamClient``): ``getStream('cam1')`` → the first frame the ``<video>`` presents
(``requestVideoFrameCallback`` ``presentationTime``), ``--reps`` times (each followed by
``remove``); the first is the connection's first AddStream (new transceiver), the others re-adds.

Targets (issue 4): 480p30 ≤ 6 ms p50 capture → wire; 4 viewers of one camera ≤ 1 core; first frame
≤ 300 ms. The table gives each figure's ratio to its target.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
NETNS = REPO.parent / "shared" / "tools" / "netns.sh"
sys.path.insert(0, str(REPO))

CAMERAS = {"cam480": (640, 480), "cam720": (1280, 720)}
FPS = 30
VIEWER_COUNTS = (1, 4)
READY_TIMEOUT_S = 60.0
CALL_TIMEOUT_S = 10.0
BROWSER_TIMEOUT_S = 120.0
TARGET_P50_480_MS = 6.0
TARGET_CORES_4 = 1.0
TARGET_FIRST_FRAME_MS = 300.0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))]


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# -- the viewers (child process) --------------------------------------------------------------------

async def viewers_main(address: str, camera: str, count: int) -> None:
    """``count`` aiortc viewers of ``camera``: print ``ready`` once all get frames, read frames until
    stdin closes, then print one JSON line with each viewer's received frame rate."""
    from peer.gen.proto.stream.v1 import stream_pb2 as pb
    from peer.gen.proto.stream.v1.stream_grpc import StreamServiceStub
    from peer.webrtc import dial

    channels = [await dial(address, timeout=CALL_TIMEOUT_S) for _ in range(count)]
    tracks = []
    for channel in channels:
        await StreamServiceStub(channel.as_channel()).AddStream(pb.AddStreamRequest(name=camera),
                                                                timeout=CALL_TIMEOUT_S)
        await channel.wait_remote_track(camera, timeout=CALL_TIMEOUT_S)
        tracks.append(channel.remote_tracks[camera])
    for track in tracks:
        for _ in range(3):
            await asyncio.wait_for(track.recv(), CALL_TIMEOUT_S)
    counts = [0] * count
    reading = True

    async def read(i: int) -> None:
        while reading:
            await asyncio.wait_for(tracks[i].recv(), CALL_TIMEOUT_S)
            counts[i] += 1

    readers = [asyncio.ensure_future(read(i)) for i in range(count)]
    t0 = time.monotonic()
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until the parent closes it
    elapsed = time.monotonic() - t0
    reading = False
    for reader in readers:
        reader.cancel()
    await asyncio.gather(*readers, return_exceptions=True)
    for channel in channels:
        await asyncio.wait_for(channel.close(), CALL_TIMEOUT_S)
    print(json.dumps({"fps": [c / elapsed for c in counts]}), flush=True)


# -- the robot (this process) -------------------------------------------------------------------------

@dataclass
class Case:
    camera: str
    viewers: int
    latencies_ms: list[float] = field(default_factory=list)
    encode_once: bool = True
    cpu_pct: float = 0.0
    encoded_fps: float = 0.0
    encoders: int = 0
    received_fps: list[float] = field(default_factory=list)


async def run_case(case: Case, seconds: float, warmup: float) -> None:
    from peer.components.camera import FakeCamera
    from peer.media.encoder import ENCODE_ONCE_ENV
    from peer.server import Server
    from peer.stream import StreamService
    from peer.webrtc import OfferAnswerer, PeerSessions, set_udp_receive_buffer
    from peer.webrtc.media_internals import tap_sent_rtp
    from signaling.internal import internal_answerer
    from signaling.memory_queue import MemoryCallQueue
    from signaling.service import SignalingService

    set_udp_receive_buffer()
    os.environ[ENCODE_ONCE_ENV] = "1" if case.encode_once else "0"
    cameras = [FakeCamera(name, width=w, height=h, fps=FPS) for name, (w, h) in CAMERAS.items()]
    server = Server(cameras)
    streams = StreamService(server.manager)
    queue = MemoryCallQueue()
    signaling = SignalingService(queue)
    server.handlers.add([signaling, streams])
    await server.start("0.0.0.0", 0)
    address = f"198.18.0.1:{server.port}"
    sessions = PeerSessions()
    loop = asyncio.get_running_loop()
    measuring = False
    tapped: set[object] = set()

    def tap(session: Any) -> None:
        sender = session.video.sender(case.camera)
        if sender is None or session in tapped:
            return
        tapped.add(session)
        last_timestamp = [-1]

        def on_sent(packet: bytes) -> None:
            if not measuring or len(packet) < 12 or not packet[1] & 0x80:  # the frame's last packet only
                return
            timestamp = int.from_bytes(packet[4:8], "big")
            if timestamp == last_timestamp[0]:
                return  # a retransmission of the frame just sent
            last_timestamp[0] = timestamp
            source = session.video.source(case.camera)
            captured_at = getattr(source, "last_captured_at", None)  # CameraTrack or EncodedCameraTrack
            if captured_at is not None:
                case.latencies_ms.append((loop.time() - captured_at) * 1000)

        tap_sent_rtp(sender.transport, on_sent)

    try:
        async with internal_answerer(signaling, [address], OfferAnswerer(server.handlers, sessions)):
            child = await asyncio.create_subprocess_exec(
                sys.executable, __file__, "--viewer", address, case.camera, str(case.viewers),
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, cwd=REPO,
            )
            assert child.stdout is not None and child.stdin is not None
            try:
                line = await asyncio.wait_for(child.stdout.readline(), READY_TIMEOUT_S)
                if line.strip() != b"ready":
                    raise RuntimeError(f"viewers did not start: {line!r}")
                for session in sessions:
                    tap(session)
                if len(tapped) != case.viewers:
                    raise RuntimeError(f"{len(tapped)} of {case.viewers} viewer sessions streaming")
                await asyncio.sleep(warmup)
                measuring = True
                cpu0, t0 = cpu_seconds(), time.monotonic()
                await asyncio.sleep(seconds)
                cpu1, t1 = cpu_seconds(), time.monotonic()
                measuring = False
                case.cpu_pct = 100 * (cpu1 - cpu0) / (t1 - t0)
                stats = streams.stats()[case.camera]
                case.encoded_fps = stats["encoded_fps"] / case.viewers
                case.encoders = stats["encoders"]
                child.stdin.close()
                out = await asyncio.wait_for(child.stdout.readline(), READY_TIMEOUT_S)
                case.received_fps = json.loads(out)["fps"]
                await asyncio.wait_for(child.wait(), READY_TIMEOUT_S)
            finally:
                if child.returncode is None:
                    child.kill()
                    await child.wait()
    finally:
        await sessions.close_all()
        await streams.close()
        await server.close()
        await queue.close()


# -- the browser ------------------------------------------------------------------------------------

def browser_first_frames(reps: int) -> dict[str, Any]:
    env = dict(os.environ, PEERBOT_FIRSTFRAME_REPS=str(reps), PEERBOT_ENCODE_ONCE="1")  # the default robot
    proc = subprocess.run([sys.executable, "-m", "tests.browser.run_in_netns", "firstframe"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=BROWSER_TIMEOUT_S)
    try:
        report: dict[str, Any] = json.loads(proc.stdout)
    except json.JSONDecodeError:
        return {"error": f"exit {proc.returncode}: {proc.stderr[-2000:]}"}
    return report


# -- the table --------------------------------------------------------------------------------------

def print_tables(cases: list[Case], browser: dict[str, Any] | None, seconds: float) -> None:
    print(f"## Server side, VP8, {seconds:.0f} s per case (robot in this process, aiortc viewers in a child)\n")
    print("| camera | viewers | encoding | encoders | frames | capture→wire p50 ms | p99 ms | p50 / 6 ms | "
          "CPU % of a core | CPU % per viewer | CPU % per viewer at 30 fps | cores / 1 core | "
          "sent fps per viewer | received fps per viewer |")
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for c in cases:
        w, h = CAMERAS[c.camera]
        p50 = percentile(c.latencies_ms, 50) if c.latencies_ms else float("nan")
        p99 = percentile(c.latencies_ms, 99) if c.latencies_ms else float("nan")
        received = statistics.mean(c.received_fps) if c.received_fps else float("nan")
        at30 = c.cpu_pct / c.viewers * FPS / c.encoded_fps if c.encoded_fps else float("nan")
        mode = "shared" if c.encode_once else "per-viewer"
        print(f"| {w}x{h}@{FPS} | {c.viewers} | {mode} | {c.encoders} | {len(c.latencies_ms)} | {p50:.2f} | "
              f"{p99:.2f} | "
              f"{p50 / TARGET_P50_480_MS:.2f} | {c.cpu_pct:.0f} | {c.cpu_pct / c.viewers:.0f} | {at30:.0f} | "
              f"{c.cpu_pct / 100 / TARGET_CORES_4:.2f} | {c.encoded_fps:.1f} | {received:.1f} |")
    print("\n*CPU % per viewer at 30 fps* scales the measured CPU per viewer by 30 / sent fps: when the "
          "machine is busy the encoders fall behind (latest frame wins) and encode fewer frames. "
          "*shared*: one encoder per camera (the default); *per-viewer*: PEERBOT_ENCODE_ONCE=0 (aiortc "
          "encodes in every sender), the baseline.")
    by_key = {(c.camera, c.viewers, c.encode_once): c for c in cases}
    ratios = []
    for (camera, viewers, once), c in by_key.items():
        base = by_key.get((camera, viewers, False))
        if once and base is not None and c.cpu_pct and base.latencies_ms and c.latencies_ms:
            w, h = CAMERAS[camera]
            ratios.append(f"| {w}x{h}@{FPS} | {viewers} | {c.cpu_pct / base.cpu_pct:.2f} | "
                          f"{percentile(c.latencies_ms, 50) / percentile(base.latencies_ms, 50):.2f} |")
    if ratios:
        print("\n| camera | viewers | CPU shared / per-viewer | p50 shared / per-viewer |")
        print("|---|---:|---:|---:|")
        print("\n".join(ratios))
    if browser is None:
        return
    print("\n## Chromium: StreamClient.getStream('cam1') → first presented frame (640x480@30)\n")
    if "error" in browser or "runs" not in (browser.get("result") or {}):
        print(f"failed: {browser.get('error')} {json.dumps((browser.get('result') or {}).get('steps'))[:2000]}")
        return
    runs = browser["result"]["runs"]
    print("| run | getStream resolved ms | first frame ms | first frame / 300 ms |")
    print("|---|---:|---:|---:|")
    for i, run in enumerate(runs):
        label = "first AddStream" if i == 0 else f"re-add {i}"
        print(f"| {label} | {run['trackMs']:.0f} | {run['firstFrameMs']:.0f} | "
              f"{run['firstFrameMs'] / TARGET_FIRST_FRAME_MS:.2f} |")
    if len(runs) > 1:
        readds = [r["firstFrameMs"] for r in runs[1:]]
        print(f"| re-add median | | {statistics.median(readds):.0f} | "
              f"{statistics.median(readds) / TARGET_FIRST_FRAME_MS:.2f} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per case")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of streaming before each case is measured")
    parser.add_argument("--reps", type=int, default=5, help="AddStream → first frame repetitions in Chromium")
    parser.add_argument("--no-browser", action="store_true", help="server-side cases only")
    parser.add_argument("--modes", default="shared,per-viewer",
                        help="encoding modes to measure: shared (one encoder per camera), per-viewer (baseline)")
    parser.add_argument("--viewer", nargs=3, metavar=("ADDRESS", "CAMERA", "COUNT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not os.environ.get("PEERBOT_NETNS"):
        os.execv(str(NETNS), [str(NETNS), sys.executable, *sys.argv])
    if args.viewer:
        os.nice(19)  # the viewers' decoding must not take the robot's CPU on a small machine
        address, camera, count = args.viewer
        asyncio.run(viewers_main(address, camera, int(count)))
        return 0
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if not modes or set(modes) - {"shared", "per-viewer"}:
        parser.error(f"--modes takes shared and/or per-viewer, not {args.modes!r}")
    cases = [Case(camera, viewers, encode_once=mode == "shared")
             for camera in CAMERAS for viewers in VIEWER_COUNTS for mode in modes]
    for case in cases:
        asyncio.run(run_case(case, args.seconds, args.warmup))
        print(f"measured {case.camera} x{case.viewers} {'shared' if case.encode_once else 'per-viewer'}",
              file=sys.stderr)
    browser = None if args.no_browser else browser_first_frames(args.reps)
    print_tables(cases, browser, args.seconds)
    print(f"\nmachine: nproc={os.cpu_count()}, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} "
          f"(at the end), Python {sys.version.split()[0]}, asyncio event loop", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
