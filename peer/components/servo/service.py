"""gRPC service of the servo API."""

from __future__ import annotations

from typing import Any

from grpclib.server import Stream

from ...gen.viam.component.servo.v1 import servo_pb2
from ...gen.viam.component.servo.v1.servo_grpc import ServoServiceBase
from ...protoutil import struct_to_dict
from ...resource.rpc import CommonRPCMixin, call_timeout, recv_request
from .api import Servo


class ServoRPCService(CommonRPCMixin, ServoServiceBase):
    RESOURCE_TYPE = Servo

    async def Move(self, stream: Stream[Any, Any]) -> None:
        request = await recv_request(stream)
        servo: Servo = self.get_resource(request.name)
        await servo.move(request.angle_deg, extra=struct_to_dict(request.extra), timeout=call_timeout(stream))
        await stream.send_message(servo_pb2.MoveResponse())

    async def GetPosition(self, stream: Stream[Any, Any]) -> None:
        request = await recv_request(stream)
        servo: Servo = self.get_resource(request.name)
        angle = await servo.get_position(extra=struct_to_dict(request.extra), timeout=call_timeout(stream))
        await stream.send_message(servo_pb2.GetPositionResponse(position_deg=angle))

    async def Stop(self, stream: Stream[Any, Any]) -> None:
        request = await recv_request(stream)
        servo: Servo = self.get_resource(request.name)
        await servo.stop(extra=struct_to_dict(request.extra), timeout=call_timeout(stream))
        await stream.send_message(servo_pb2.StopResponse())

    async def IsMoving(self, stream: Stream[Any, Any]) -> None:
        request = await recv_request(stream)
        servo: Servo = self.get_resource(request.name)
        await stream.send_message(servo_pb2.IsMovingResponse(is_moving=await servo.is_moving()))
