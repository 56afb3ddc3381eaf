"""gRPC service of the movement sensor API."""

from __future__ import annotations

from typing import Any

from grpclib.server import Stream

from ...gen.viam.common.v1 import common_pb2
from ...gen.viam.component.movementsensor.v1 import movementsensor_pb2 as pb
from ...gen.viam.component.movementsensor.v1.movementsensor_grpc import MovementSensorServiceBase
from ...protoutil import dict_to_value_map, struct_to_dict
from ...resource.rpc import CommonRPCMixin, call_timeout, recv_request
from .api import MovementSensor


class MovementSensorRPCService(CommonRPCMixin, MovementSensorServiceBase):
    RESOURCE_TYPE = MovementSensor

    async def _resolve(self, stream: Stream[Any, Any]) -> tuple[MovementSensor, dict[str, Any]]:
        """The sensor named in the request, and the keyword arguments every getter takes."""
        request = await recv_request(stream)
        sensor: MovementSensor = self.get_resource(request.name)
        return sensor, {"extra": struct_to_dict(request.extra), "timeout": call_timeout(stream)}

    async def GetPosition(self, stream: Stream[Any, Any]) -> None:
        sensor, kwargs = await self._resolve(stream)
        point, altitude = await sensor.get_position(**kwargs)
        await stream.send_message(pb.GetPositionResponse(coordinate=point, altitude_m=altitude))

    async def GetLinearVelocity(self, stream: Stream[Any, Any]) -> None:
        sensor, kwargs = await self._resolve(stream)
        velocity = await sensor.get_linear_velocity(**kwargs)
        await stream.send_message(pb.GetLinearVelocityResponse(linear_velocity=velocity))

    async def GetAngularVelocity(self, stream: Stream[Any, Any]) -> None:
        sensor, kwargs = await self._resolve(stream)
        velocity = await sensor.get_angular_velocity(**kwargs)
        await stream.send_message(pb.GetAngularVelocityResponse(angular_velocity=velocity))

    async def GetLinearAcceleration(self, stream: Stream[Any, Any]) -> None:
        sensor, kwargs = await self._resolve(stream)
        acceleration = await sensor.get_linear_acceleration(**kwargs)
        await stream.send_message(pb.GetLinearAccelerationResponse(linear_acceleration=acceleration))

    async def GetCompassHeading(self, stream: Stream[Any, Any]) -> None:
        sensor, kwargs = await self._resolve(stream)
        await stream.send_message(pb.GetCompassHeadingResponse(value=await sensor.get_compass_heading(**kwargs)))

    async def GetOrientation(self, stream: Stream[Any, Any]) -> None:
        sensor, kwargs = await self._resolve(stream)
        await stream.send_message(pb.GetOrientationResponse(orientation=await sensor.get_orientation(**kwargs)))

    async def GetProperties(self, stream: Stream[Any, Any]) -> None:
        sensor, kwargs = await self._resolve(stream)
        await stream.send_message((await sensor.get_properties(**kwargs)).proto)

    async def GetAccuracy(self, stream: Stream[Any, Any]) -> None:
        sensor, kwargs = await self._resolve(stream)
        await stream.send_message(await sensor.get_accuracy(**kwargs))

    async def GetReadings(self, stream: Stream[Any, Any]) -> None:
        sensor, kwargs = await self._resolve(stream)
        readings = await sensor.get_readings(**kwargs)
        await stream.send_message(common_pb2.GetReadingsResponse(readings=dict_to_value_map(readings)))
