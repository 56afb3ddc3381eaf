"""gRPC service of the sensor API."""

from __future__ import annotations

from typing import Any

from grpclib.server import Stream

from ...gen.viam.common.v1 import common_pb2
from ...gen.viam.component.sensor.v1.sensor_grpc import SensorServiceBase
from ...protoutil import dict_to_value_map, struct_to_dict
from ...resource.rpc import CommonRPCMixin, call_timeout, recv_request
from .api import Sensor


class SensorRPCService(CommonRPCMixin, SensorServiceBase):
    RESOURCE_TYPE = Sensor

    async def GetReadings(self, stream: Stream[Any, Any]) -> None:
        request = await recv_request(stream)
        sensor: Sensor = self.get_resource(request.name)
        readings = await sensor.get_readings(extra=struct_to_dict(request.extra), timeout=call_timeout(stream))
        await stream.send_message(common_pb2.GetReadingsResponse(readings=dict_to_value_map(readings)))
