"""gRPC service of the gripper API."""

from __future__ import annotations

from typing import Any

from grpclib.server import Stream

from ...gen.viam.common.v1 import common_pb2
from ...gen.viam.component.gripper.v1 import gripper_pb2 as pb
from ...gen.viam.component.gripper.v1.gripper_grpc import GripperServiceBase
from ...protoutil import dict_to_struct, struct_to_dict
from ...resource.rpc import CommonRPCMixin, call_timeout, recv_request
from .api import Gripper


class GripperRPCService(CommonRPCMixin, GripperServiceBase):
    RESOURCE_TYPE = Gripper

    async def Open(self, stream: Stream[Any, Any]) -> None:
        request = await recv_request(stream)
        gripper: Gripper = self.get_resource(request.name)
        await gripper.open(extra=struct_to_dict(request.extra), timeout=call_timeout(stream))
        await stream.send_message(pb.OpenResponse())

    async def Grab(self, stream: Stream[Any, Any]) -> None:
        request = await recv_request(stream)
        gripper: Gripper = self.get_resource(request.name)
        success = await gripper.grab(extra=struct_to_dict(request.extra), timeout=call_timeout(stream))
        await stream.send_message(pb.GrabResponse(success=success))

    async def Stop(self, stream: Stream[Any, Any]) -> None:
        request = await recv_request(stream)
        gripper: Gripper = self.get_resource(request.name)
        await gripper.stop(extra=struct_to_dict(request.extra), timeout=call_timeout(stream))
        await stream.send_message(pb.StopResponse())

    async def IsMoving(self, stream: Stream[Any, Any]) -> None:
        request = await recv_request(stream)
        gripper: Gripper = self.get_resource(request.name)
        await stream.send_message(pb.IsMovingResponse(is_moving=await gripper.is_moving()))

    async def IsHoldingSomething(self, stream: Stream[Any, Any]) -> None:
        request = await recv_request(stream)
        gripper: Gripper = self.get_resource(request.name)
        status = await gripper.is_holding_something(extra=struct_to_dict(request.extra), timeout=call_timeout(stream))
        await stream.send_message(
            pb.IsHoldingSomethingResponse(
                is_holding_something=status.is_holding_something, meta=dict_to_struct(status.meta)
            )
        )

    async def GetCurrentInputs(self, stream: Stream[Any, Any]) -> None:
        request = await recv_request(stream)
        gripper: Gripper = self.get_resource(request.name)
        values = await gripper.get_current_inputs(extra=struct_to_dict(request.extra), timeout=call_timeout(stream))
        await stream.send_message(pb.GetCurrentInputsResponse(values=list(values)))

    async def GoToInputs(self, stream: Stream[Any, Any]) -> None:
        request = await recv_request(stream)
        gripper: Gripper = self.get_resource(request.name)
        await gripper.go_to_inputs(
            list(request.values), extra=struct_to_dict(request.extra), timeout=call_timeout(stream)
        )
        await stream.send_message(pb.GoToInputsResponse())

    async def GetKinematics(self, stream: Stream[Any, Any]) -> None:
        request = await recv_request(stream)
        gripper: Gripper = self.get_resource(request.name)
        kinematics = await gripper.get_kinematics(
            include_collision_meshes=request.include_collision_meshes,
            include_visual_meshes=request.include_visual_meshes,
            extra=struct_to_dict(request.extra),
            timeout=call_timeout(stream),
        )
        response = common_pb2.GetKinematicsResponse(format=kinematics[0], kinematics_data=kinematics[1])
        if len(kinematics) >= 3:
            for path, mesh in kinematics[2].items():
                response.meshes_by_urdf_filepath[path].CopyFrom(mesh)
        if len(kinematics) == 4:
            response.model.CopyFrom(kinematics[3])
        await stream.send_message(response)
