"""gRPC service of the motor API."""

from __future__ import annotations

from typing import Any

from grpclib.server import Stream

from ...gen.viam.component.motor.v1 import motor_pb2
from ...gen.viam.component.motor.v1.motor_grpc import MotorServiceBase
from ...protoutil import struct_to_dict
from ...resource.rpc import CommonRPCMixin, call_timeout, recv_request
from .api import Motor


class MotorRPCService(CommonRPCMixin, MotorServiceBase):
    RESOURCE_TYPE = Motor

    async def SetPower(self, stream: Stream[Any, Any]) -> None:
        request = await recv_request(stream)
        motor: Motor = self.get_resource(request.name)
        await motor.set_power(request.power_pct, extra=struct_to_dict(request.extra), timeout=call_timeout(stream))
        await stream.send_message(motor_pb2.SetPowerResponse())

    async def GoFor(self, stream: Stream[Any, Any]) -> None:
        request = await recv_request(stream)
        motor: Motor = self.get_resource(request.name)
        await motor.go_for(
            request.rpm, request.revolutions, extra=struct_to_dict(request.extra), timeout=call_timeout(stream)
        )
        await stream.send_message(motor_pb2.GoForResponse())

    async def GoTo(self, stream: Stream[Any, Any]) -> None:
        request = await recv_request(stream)
        motor: Motor = self.get_resource(request.name)
        await motor.go_to(
            request.rpm,
            request.position_revolutions,
            extra=struct_to_dict(request.extra),
            timeout=call_timeout(stream),
        )
        await stream.send_message(motor_pb2.GoToResponse())

    async def SetRPM(self, stream: Stream[Any, Any]) -> None:
        request = await recv_request(stream)
        motor: Motor = self.get_resource(request.name)
        await motor.set_rpm(request.rpm, extra=struct_to_dict(request.extra), timeout=call_timeout(stream))
        await stream.send_message(motor_pb2.SetRPMResponse())

    async def ResetZeroPosition(self, stream: Stream[Any, Any]) -> None:
        request = await recv_request(stream)
        motor: Motor = self.get_resource(request.name)
        await motor.reset_zero_position(
            request.offset, extra=struct_to_dict(request.extra), timeout=call_timeout(stream)
        )
        await stream.send_message(motor_pb2.ResetZeroPositionResponse())

    async def GetPosition(self, stream: Stream[Any, Any]) -> None:
        request = await recv_request(stream)
        motor: Motor = self.get_resource(request.name)
        position = await motor.get_position(extra=struct_to_dict(request.extra), timeout=call_timeout(stream))
        await stream.send_message(motor_pb2.GetPositionResponse(position=position))

    async def GetProperties(self, stream: Stream[Any, Any]) -> None:
        request = await recv_request(stream)
        motor: Motor = self.get_resource(request.name)
        props = await motor.get_properties(extra=struct_to_dict(request.extra), timeout=call_timeout(stream))
        await stream.send_message(motor_pb2.GetPropertiesResponse(position_reporting=props.position_reporting))

    async def Stop(self, stream: Stream[Any, Any]) -> None:
        request = await recv_request(stream)
        motor: Motor = self.get_resource(request.name)
        await motor.stop(extra=struct_to_dict(request.extra), timeout=call_timeout(stream))
        await stream.send_message(motor_pb2.StopResponse())

    async def IsPowered(self, stream: Stream[Any, Any]) -> None:
        request = await recv_request(stream)
        motor: Motor = self.get_resource(request.name)
        is_on, power = await motor.is_powered(extra=struct_to_dict(request.extra), timeout=call_timeout(stream))
        await stream.send_message(motor_pb2.IsPoweredResponse(is_on=is_on, power_pct=power))

    async def IsMoving(self, stream: Stream[Any, Any]) -> None:
        request = await recv_request(stream)
        motor: Motor = self.get_resource(request.name)
        await stream.send_message(motor_pb2.IsMovingResponse(is_moving=await motor.is_moving()))
