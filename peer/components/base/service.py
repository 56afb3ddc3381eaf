"""gRPC service of the base API."""

from __future__ import annotations

from typing import Any

from grpclib.server import Stream

from ...gen.viam.component.base.v1 import base_pb2
from ...gen.viam.component.base.v1.base_grpc import BaseServiceBase
from ...protoutil import struct_to_dict
from ...resource.rpc import CommonRPCMixin, call_timeout, recv_request
from .api import Base


class BaseRPCService(CommonRPCMixin, BaseServiceBase):
    RESOURCE_TYPE = Base

    async def MoveStraight(self, stream: Stream[Any, Any]) -> None:
        request = await recv_request(stream)
        base: Base = self.get_resource(request.name)
        await base.move_straight(
            request.distance_mm, request.mm_per_sec, extra=struct_to_dict(request.extra), timeout=call_timeout(stream)
        )
        await stream.send_message(base_pb2.MoveStraightResponse())

    async def Spin(self, stream: Stream[Any, Any]) -> None:
        request = await recv_request(stream)
        base: Base = self.get_resource(request.name)
        await base.spin(
            request.angle_deg, request.degs_per_sec, extra=struct_to_dict(request.extra), timeout=call_timeout(stream)
        )
        await stream.send_message(base_pb2.SpinResponse())

    async def SetPower(self, stream: Stream[Any, Any]) -> None:
        request = await recv_request(stream)
        base: Base = self.get_resource(request.name)
        await base.set_power(
            request.linear, request.angular, extra=struct_to_dict(request.extra), timeout=call_timeout(stream)
        )
        await stream.send_message(base_pb2.SetPowerResponse())

    async def SetVelocity(self, stream: Stream[Any, Any]) -> None:
        request = await recv_request(stream)
        base: Base = self.get_resource(request.name)
        await base.set_velocity(
            request.linear, request.angular, extra=struct_to_dict(request.extra), timeout=call_timeout(stream)
        )
        await stream.send_message(base_pb2.SetVelocityResponse())

    async def Stop(self, stream: Stream[Any, Any]) -> None:
        request = await recv_request(stream)
        base: Base = self.get_resource(request.name)
        await base.stop(extra=struct_to_dict(request.extra), timeout=call_timeout(stream))
        await stream.send_message(base_pb2.StopResponse())

    async def IsMoving(self, stream: Stream[Any, Any]) -> None:
        request = await recv_request(stream)
        base: Base = self.get_resource(request.name)
        await stream.send_message(base_pb2.IsMovingResponse(is_moving=await base.is_moving()))

    async def GetProperties(self, stream: Stream[Any, Any]) -> None:
        request = await recv_request(stream)
        base: Base = self.get_resource(request.name)
        props = await base.get_properties(extra=struct_to_dict(request.extra), timeout=call_timeout(stream))
        await stream.send_message(
            base_pb2.GetPropertiesResponse(
                width_meters=props.width_meters,
                turning_radius_meters=props.turning_radius_meters,
                wheel_circumference_meters=props.wheel_circumference_meters,
            )
        )
