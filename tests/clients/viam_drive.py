"""Drive a peerbot server with the real, unmodified viam-sdk client and report what it saw.

Run with the viam-sdk venv (never the project venv)::

    .venv-viam/bin/python tests/clients/viam_drive.py 127.0.0.1:PORT
    .venv-viam/bin/python tests/clients/viam_drive.py /tmp/robot.sock

viam-sdk 0.85.1 dials a Unix socket when ``pathlib.Path(address).is_socket()`` holds
(``viam/rpc/dial.py::_dial_direct`` -> ``grpclib.client.Channel(path=address)``), so a bare
socket path is the address; ``unix:`` prefixes are stripped here for convenience.

Prints ONE JSON object on stdout: step name -> {"ok": bool, "value": ..., "error": "..."}, plus a
``_meta`` entry (transport, every RPC the client sent with its final status). Each step is caught
separately and bounded by a timeout, so one broken method never hides the others.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import dataclasses
import json
import struct
import sys
import time
import traceback
from collections.abc import Awaitable, Callable
from typing import Any

from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message
from grpclib import GRPCError
from grpclib.events import RecvTrailingMetadata, SendRequest, listen
from viam.components.arm import Arm
from viam.components.base import Base
from viam.components.board import Board
from viam.components.camera import Camera
from viam.components.generic import Generic as GenericComponent
from viam.components.gripper import Gripper
from viam.components.motor import Motor
from viam.components.movement_sensor import MovementSensor
from viam.components.sensor import Sensor
from viam.components.sensor.client import SensorClient
from viam.components.servo import Servo
from viam.media.video import ViamImage
from viam.proto.common import Pose
from viam.robot.client import RobotClient
from viam.rpc.dial import DialOptions
from viam.services.generic import Generic as GenericService

STEP_TIMEOUT_S = 20.0
CONNECT_TIMEOUT_S = 30.0
NESTED = {"a": {"b": [1, 2, {"c": "d"}]}, "n": 3.5}
TARGET_POSE = {"x": 100.0, "y": 200.0, "z": 300.0, "o_x": 0.0, "o_y": 0.0, "o_z": 1.0, "theta": 45.0}


def jsonable(value: Any) -> Any:
    """Best-effort conversion of SDK return values (protos, dataclasses, bytes, enums) to JSON."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else repr(value)
    if isinstance(value, bytes | bytearray):
        return {"bytes_len": len(value), "b64_head": base64.b64encode(bytes(value[:16])).decode()}
    if isinstance(value, Message):
        return MessageToDict(value, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [jsonable(v) for v in value]
    return repr(value)


def describe_error(exc: BaseException) -> str:
    if isinstance(exc, GRPCError):
        return f"GRPCError: {exc.message} / {exc.status.name}"
    if isinstance(exc, TimeoutError):
        return f"TimeoutError: step exceeded {STEP_TIMEOUT_S}s"
    return f"{type(exc).__name__}: {exc}"


def rn(name: Any) -> str:
    return f"{name.namespace}:{name.type}:{name.subtype}/{name.name}"


def image_header_size(data: bytes, mime: str) -> tuple[int, int] | None:
    """Width/height parsed independently of the SDK (PNG IHDR or the JPEG SOFn segment)."""
    if mime.startswith("image/png") and data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR":
        width, height = struct.unpack(">II", data[16:24])
        return width, height
    if mime.startswith("image/jpeg") and data[:2] == b"\xff\xd8":
        offset = 2
        while offset + 4 <= len(data):
            if data[offset] != 0xFF:
                return None
            marker = data[offset + 1]
            if marker == 0xFF:  # fill byte
                offset += 1
                continue
            if marker in (0x01, *range(0xD0, 0xD8)):  # stand-alone markers
                offset += 2
                continue
            (length,) = struct.unpack(">H", data[offset + 2 : offset + 4])
            if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF):
                height, width = struct.unpack(">HH", data[offset + 5 : offset + 9])
                return width, height
            if marker in (0xD9, 0xDA):  # EOI / SOS before any SOF
                return None
            offset += 2 + length
    return None


class Recorder:
    """Client-side record of every RPC: method, whether it carried a session id, final status."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    async def on_send(self, event: SendRequest) -> None:
        metadata = dict(event.metadata or {})
        self.calls.append(
            {"method": event.method_name, "session_id": metadata.get("viam-sid"), "status": None}
        )

    async def on_trailers(self, event: RecvTrailingMetadata) -> None:
        for call in reversed(self.calls):
            if call["status"] is None:
                call["status"] = event.status.name
                break


async def run(address: str, *, webrtc: bool = False, big_camera: str | None = None,
              secure: bool = False) -> dict[str, Any]:
    results: dict[str, Any] = {}
    recorder = Recorder()

    async def step(name: str, body: Callable[[], Awaitable[Any]]) -> Any:
        started = time.monotonic()
        try:
            value = await asyncio.wait_for(body(), STEP_TIMEOUT_S)
        except Exception as exc:
            results[name] = {"ok": False, "value": None, "error": describe_error(exc),
                             "traceback": traceback.format_exc(limit=4)}
            return None
        results[name] = {"ok": True, "value": jsonable(value), "error": None,
                         "ms": round((time.monotonic() - started) * 1000, 1)}
        return value

    options = RobotClient.Options(
        refresh_interval=0,
        check_connection_interval=0,
        # check_connection_interval=0 alone still polls ResourceNames every attempt_reconnect_interval
        # (default 1 s; RobotClient._check_connection uses it as the check period): turn both off.
        attempt_reconnect_interval=0,
        # secure: TLS only, no downgrade (the SDK raises InsecureConnectionError on a cleartext port)
        dial_options=DialOptions(disable_webrtc=not webrtc, insecure=not secure),
    )
    try:
        robot = await asyncio.wait_for(RobotClient.at_address(address, options), CONNECT_TIMEOUT_S)
    except Exception as exc:
        results["connect"] = {"ok": False, "value": None, "error": describe_error(exc)}
        return results
    results["connect"] = {"ok": True, "value": {"channel_path": robot._channel._path,
                                                "channel_host": robot._channel._host,
                                                "channel_port": robot._channel._port}, "error": None}
    listen(robot._channel, SendRequest, recorder.on_send)
    listen(robot._channel, RecvTrailingMetadata, recorder.on_trailers)
    try:
        await drive(robot, step, big_camera)
    finally:
        sessions = robot._sessions_client
        results["sessions"] = {
            "ok": True,
            "value": {
                "supported": sessions._supported.name,
                "session_id_set": bool(sessions._current_id),
                "heartbeat_interval_s": (sessions._heartbeat_interval.total_seconds()
                                         if sessions._heartbeat_interval is not None else None),
                "start_session_calls": [c for c in recorder.calls if c["method"].endswith("/StartSession")],
                "calls_with_session_id": sorted({c["method"] for c in recorder.calls if c["session_id"]}),
            },
            "error": None,
        }
        try:
            await asyncio.wait_for(robot.close(), 10)
        except Exception as exc:
            results["close"] = {"ok": False, "value": None, "error": describe_error(exc)}
        else:
            results["close"] = {"ok": True, "value": None, "error": None}
    results["_meta"] = {"address": address, "rpcs": recorder.calls}
    return results


async def camera_images(robot: RobotClient, name: str) -> list[dict[str, Any]]:
    images, metadata = await Camera.from_robot(robot, name).get_images()
    out = []
    for img in images:
        mime = str(img.mime_type)
        sdk = ViamImage(img.data, img.mime_type)
        out.append({
            "source_name": img.name,
            "mime_type": mime,
            "bytes_len": len(img.data),
            "sdk_width": img.width, "sdk_height": img.height,
            "viamimage_width": sdk.width, "viamimage_height": sdk.height,
            "header_size": image_header_size(img.data, mime),
            "captured_at_set": metadata.HasField("captured_at"),
        })
    return out


async def drive(robot: RobotClient, step: Callable[[str, Callable[[], Awaitable[Any]]], Awaitable[Any]],
                big_camera: str | None = None) -> None:
    async def resource_names() -> list[str]:
        return [rn(n) for n in robot.resource_names]

    await step("resource_names", resource_names)

    async def sensor_readings() -> Any:
        return await Sensor.from_robot(robot, "sensor1").get_readings()

    await step("sensor_get_readings", sensor_readings)

    await step("camera_get_images", lambda: camera_images(robot, "cam1"))
    if big_camera:
        await step("big_camera_get_images", lambda: camera_images(robot, big_camera))

    async def camera_properties() -> Any:
        props = await Camera.from_robot(robot, "cam1").get_properties()
        out = jsonable(props)
        out["_width"] = props.intrinsic_parameters.width_px
        out["_height"] = props.intrinsic_parameters.height_px
        return out

    await step("camera_get_properties", camera_properties)

    async def motor() -> dict[str, Any]:
        m = Motor.from_robot(robot, "motor1")
        await m.set_power(0.5)
        powered = await m.is_powered()
        await m.stop()
        stopped = await m.is_powered()
        return {"after_set_power": list(powered), "after_stop": list(stopped)}

    await step("motor", motor)

    async def session_keepalive() -> dict[str, Any]:
        """A powered motor must stay powered while the client's heartbeat thread runs, for longer
        than the heartbeat window (the server stops what an expired session moved)."""
        sessions = robot._sessions_client
        window = sessions._heartbeat_interval.total_seconds() if sessions._heartbeat_interval else None
        m = Motor.from_robot(robot, "motor1")
        await m.set_power(0.3)
        waited = min(1.5 * window + 0.5, 10.0) if window else 0.0
        await asyncio.sleep(waited)
        powered = await m.is_powered()
        session_after = sessions._current_id
        await m.stop()
        return {"heartbeat_window_s": window, "waited_s": waited, "is_powered_after_wait": list(powered),
                "same_session": bool(session_after) and session_after == sessions._current_id}

    await step("session_keepalive", session_keepalive)

    async def base() -> dict[str, Any]:
        b = Base.from_robot(robot, "base1")
        started = time.monotonic()
        await b.move_straight(distance=50, velocity=500)
        move_s = time.monotonic() - started
        await b.stop()
        return {"move_straight_s": round(move_s, 3), "is_moving_after_stop": await b.is_moving()}

    await step("base", base)

    async def servo() -> dict[str, Any]:
        s = Servo.from_robot(robot, "servo1")
        await s.move(90)
        return {"position": await s.get_position()}

    await step("servo", servo)

    async def board() -> dict[str, Any]:
        pin = await Board.from_robot(robot, "board1").gpio_pin_by_name("11")
        await pin.set(True)
        high = await pin.get()
        await pin.set(False)
        low = await pin.get()
        return {"after_set_true": high, "after_set_false": low}

    await step("board_gpio", board)

    async def movement_sensor() -> dict[str, Any]:
        point, altitude = await MovementSensor.from_robot(robot, "imu1").get_position()
        return {"lat": point.latitude, "lng": point.longitude, "alt": altitude}

    await step("movement_sensor_get_position", movement_sensor)

    async def gripper() -> dict[str, Any]:
        g = Gripper.from_robot(robot, "gripper1")
        opened = await g.open()
        grabbed = await g.grab()
        return {"open_returned": opened, "grab": grabbed, "grab_type": type(grabbed).__name__}

    await step("gripper", gripper)

    async def arm() -> dict[str, Any]:
        a = Arm.from_robot(robot, "arm1")
        before = await a.get_end_position()
        await a.move_to_position(Pose(**TARGET_POSE))
        after = await a.get_end_position()
        return {"before": jsonable(before), "after": jsonable(after), "target": TARGET_POSE}

    await step("arm", arm)

    async def generic_component() -> Any:
        return await GenericComponent.from_robot(robot, "generic1").do_command(NESTED)

    await step("generic_component_do_command", generic_component)

    async def generic_service() -> Any:
        return await GenericService.from_robot(robot, "echo1").do_command(NESTED)

    await step("generic_service_do_command", generic_service)

    async def get_operations() -> Any:
        return await robot.get_operations()

    await step("get_operations", get_operations)

    async def stop_all() -> Any:
        await robot.stop_all()
        m = Motor.from_robot(robot, "motor1")
        return {"motor_is_powered_after": list(await m.is_powered())}

    await step("stop_all", stop_all)

    async def unknown_resource() -> dict[str, Any]:
        out: dict[str, Any] = {}
        try:
            Sensor.from_robot(robot, "nope")
            out["from_robot"] = "no error"
        except Exception as exc:
            out["from_robot"] = describe_error(exc)
        try:
            await SensorClient("nope", robot._channel).get_readings()
        except GRPCError as exc:
            out["status"] = exc.status.name
            out["message"] = exc.message
        else:
            out["status"] = "OK"
        return out

    await step("unknown_resource", unknown_resource)

    async def method_not_served() -> dict[str, Any]:
        """A RobotService method the client has but the server may not serve (GetPose)."""
        try:
            await robot.get_pose("arm1", "world")
        except GRPCError as exc:
            return {"status": exc.status.name, "message": exc.message}
        return {"status": "OK", "message": None}

    await step("method_not_served", method_not_served)


def main() -> int:
    parser = argparse.ArgumentParser(description="drive a robot with the real viam-sdk client")
    parser.add_argument("address", help="127.0.0.1:PORT or /path/to/unix.sock")
    parser.add_argument("--webrtc", action="store_true", help="dial over WebRTC (signaling at the address)")
    parser.add_argument("--big-camera", metavar="NAME", help="also get_images from this (large-image) camera")
    parser.add_argument("--secure", action="store_true", help="dial with TLS (the SDK's default), never cleartext; "
                        "the server's CA comes from SSL_CERT_FILE")
    args = parser.parse_args()
    results = asyncio.run(run(args.address.removeprefix("unix:"), webrtc=args.webrtc, big_camera=args.big_camera,
                              secure=args.secure))
    print(json.dumps(results, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
