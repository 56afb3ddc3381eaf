"""gRPC service of the arm API."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

from grpclib.server import Stream

from ...errors import ValidationError
from ...gen.viam.common.v1 import common_pb2
from ...gen.viam.component.arm.v1 import arm_pb2
from ...gen.viam.component.arm.v1.arm_grpc import ArmServiceBase
from ...protoutil import struct_to_dict
from ...resource.rpc import CommonRPCMixin, call_timeout, recv_request
from .api import Arm, TrajectoryStreamValidator


class ArmRPCService(CommonRPCMixin, ArmServiceBase):
    RESOURCE_TYPE = Arm

    async def GetEndPosition(self, stream: Stream[Any, Any]) -> None:
        request = await recv_request(stream)
        arm: Arm = self.get_resource(request.name)
        pose = await arm.get_end_position(extra=struct_to_dict(request.extra), timeout=call_timeout(stream))
        await stream.send_message(arm_pb2.GetEndPositionResponse(pose=pose))

    async def MoveToPosition(self, stream: Stream[Any, Any]) -> None:
        request = await recv_request(stream)
        arm: Arm = self.get_resource(request.name)
        await arm.move_to_position(request.to, extra=struct_to_dict(request.extra), timeout=call_timeout(stream))
        await stream.send_message(arm_pb2.MoveToPositionResponse())

    async def GetJointPositions(self, stream: Stream[Any, Any]) -> None:
        request = await recv_request(stream)
        arm: Arm = self.get_resource(request.name)
        positions = await arm.get_joint_positions(extra=struct_to_dict(request.extra), timeout=call_timeout(stream))
        await stream.send_message(arm_pb2.GetJointPositionsResponse(positions=positions))

    async def MoveToJointPositions(self, stream: Stream[Any, Any]) -> None:
        request = await recv_request(stream)
        arm: Arm = self.get_resource(request.name)
        await arm.move_to_joint_positions(
            request.positions, extra=struct_to_dict(request.extra), timeout=call_timeout(stream)
        )
        await stream.send_message(arm_pb2.MoveToJointPositionsResponse())

    async def MoveThroughJointPositions(self, stream: Stream[Any, Any]) -> None:
        request = await recv_request(stream)
        arm: Arm = self.get_resource(request.name)
        # ``options`` has explicit presence: an absent message must not read as all-zero limits.
        options = request.options if request.HasField("options") else None
        await arm.move_through_joint_positions(
            list(request.positions), options, extra=struct_to_dict(request.extra), timeout=call_timeout(stream)
        )
        await stream.send_message(arm_pb2.MoveThroughJointPositionsResponse())

    async def MoveThroughJointPositionsStreamed(self, stream: Stream[Any, Any]) -> None:
        """Bidirectional: one ``init`` naming the arm, then trajectory batches until the client half-closes."""
        first = await recv_request(stream)
        if first.WhichOneof("message") != "init":
            raise ValidationError("the first message of the stream must be init")
        arm: Arm = self.get_resource(first.name)
        validator = TrajectoryStreamValidator()

        async def batches() -> AsyncGenerator[list[Arm.TrajectoryPoint], None]:
            while (request := await stream.recv_message()) is not None:
                kind = request.WhichOneof("message")
                if kind == "init":
                    raise ValidationError("init may only be the first message of the stream")
                if kind != "batch":
                    raise ValidationError("expected a trajectory batch")
                points = [Arm.TrajectoryPoint.from_proto(p) for p in request.batch.points]
                for point in points:
                    validator.check(point)
                if points:  # an empty batch is a no-op on the wire
                    yield points

        source = batches()
        updates = arm.move_through_joint_positions_streamed(
            source, extra=struct_to_dict(first.init.extra), timeout=call_timeout(stream)
        )
        try:
            async for _update in updates:
                await stream.send_message(arm_pb2.MoveThroughJointPositionsStreamedResponse())
        finally:
            if isinstance(updates, AsyncGenerator):
                await updates.aclose()
            await source.aclose()

    async def Stop(self, stream: Stream[Any, Any]) -> None:
        request = await recv_request(stream)
        arm: Arm = self.get_resource(request.name)
        await arm.stop(extra=struct_to_dict(request.extra), timeout=call_timeout(stream))
        await stream.send_message(arm_pb2.StopResponse())

    async def IsMoving(self, stream: Stream[Any, Any]) -> None:
        request = await recv_request(stream)
        arm: Arm = self.get_resource(request.name)
        await stream.send_message(arm_pb2.IsMovingResponse(is_moving=await arm.is_moving()))

    async def GetKinematics(self, stream: Stream[Any, Any]) -> None:
        request = await recv_request(stream)
        arm: Arm = self.get_resource(request.name)
        fmt, data, meshes, model = await arm.get_kinematics(
            include_collision_meshes=request.include_collision_meshes,
            include_visual_meshes=request.include_visual_meshes,
            extra=struct_to_dict(request.extra),
            timeout=call_timeout(stream),
        )
        await stream.send_message(
            common_pb2.GetKinematicsResponse(
                format=fmt, kinematics_data=data, meshes_by_urdf_filepath=dict(meshes), model=model
            )
        )

    async def Get3DModels(self, stream: Stream[Any, Any]) -> None:
        request = await recv_request(stream)
        arm: Arm = self.get_resource(request.name)
        models = await arm.get_3d_models(extra=struct_to_dict(request.extra), timeout=call_timeout(stream))
        await stream.send_message(common_pb2.Get3DModelsResponse(models=dict(models)))

    async def SetManualMode(self, stream: Stream[Any, Any]) -> None:
        request = await recv_request(stream)
        arm: Arm = self.get_resource(request.name)
        await arm.set_manual_mode(
            request.manual_mode, request.enabled_for, extra=struct_to_dict(request.extra), timeout=call_timeout(stream)
        )
        await stream.send_message(arm_pb2.SetManualModeResponse())

    async def GetManualMode(self, stream: Stream[Any, Any]) -> None:
        request = await recv_request(stream)
        arm: Arm = self.get_resource(request.name)
        manual = await arm.get_manual_mode(extra=struct_to_dict(request.extra), timeout=call_timeout(stream))
        await stream.send_message(arm_pb2.GetManualModeResponse(manual_mode=manual))

    async def GetProperties(self, stream: Stream[Any, Any]) -> None:
        request = await recv_request(stream)
        arm: Arm = self.get_resource(request.name)
        await stream.send_message(
            await arm.get_properties(extra=struct_to_dict(request.extra), timeout=call_timeout(stream))
        )
