"""``viam.robot.v1.RobotService`` over the resource manager, operations and sessions."""

from __future__ import annotations

import asyncio
import importlib.metadata
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from grpclib import GRPCError, Status
from grpclib.server import Stream

from ..errors import ResourceNotFoundError
from ..gen.viam.common.v1 import common_pb2
from ..gen.viam.robot.v1 import robot_pb2
from ..gen.viam.robot.v1.robot_grpc import RobotServiceBase
from ..operations import OperationManager
from ..protoutil import dict_to_struct, duration_from_seconds, struct_to_dict, timestamp_from_epoch
from ..resource import Actuator, Registry, ResourceBase, ResourceManager, ResourceName
from ..resource.proto import resource_name_from_proto, resource_name_to_proto
from ..resource.rpc import call_timeout, recv_request
from ..sessions import SessionManager

logger = logging.getLogger(__name__)
remote_log = logging.getLogger("peer.robot.client_log")

#: StreamStatus refuses to poll faster than this; a faster loop would only burn the robot's CPU.
MIN_STATUS_INTERVAL_S = 0.01
API_VERSION = "peerbot-api-1"


async def stop_resource(resource: ResourceBase, extra: Mapping[str, Any] | None = None,
                        timeout: float | None = None) -> bool:
    """Stop ``resource`` if it is an actuator; returns whether it was one."""
    if not isinstance(resource, Actuator):
        return False
    await resource.stop(extra=dict(extra or {}), timeout=timeout)
    return True


class RobotService(RobotServiceBase):
    def __init__(
        self,
        manager: ResourceManager,
        operations: OperationManager,
        sessions: SessionManager,
        *,
        on_shutdown: Callable[[], None] | None = None,
    ) -> None:
        self.manager = manager
        self.operations = operations
        self.sessions = sessions
        self.on_shutdown = on_shutdown
        self.started_at = time.time()

    # -- resources -----------------------------------------------------------------------------
    async def ResourceNames(self, stream: Stream[Any, Any]) -> None:
        await recv_request(stream)
        names = [resource_name_to_proto(rn) for rn in self.manager.resource_names()]
        await stream.send_message(robot_pb2.ResourceNamesResponse(resources=names))

    async def ResourceRPCSubtypes(self, stream: Stream[Any, Any]) -> None:
        await recv_request(stream)
        subtypes = [
            robot_pb2.ResourceRPCSubtype(
                subtype=common_pb2.ResourceName(namespace=api.namespace, type=api.resource_type,
                                                subtype=api.resource_subtype),
                proto_service=registration.proto_service,
            )
            for api, registration in Registry.REGISTERED_APIS().items()
        ]
        await stream.send_message(robot_pb2.ResourceRPCSubtypesResponse(resource_rpc_subtypes=subtypes))

    def _resources_for(self, names: Any) -> list[tuple[ResourceName, ResourceBase]]:
        if not names:
            return list(self.manager.resources.items())
        selected = []
        for msg in names:
            rn = resource_name_from_proto(msg)
            try:
                selected.append((rn, self.manager.get_resource(ResourceBase, rn)))
            except ResourceNotFoundError as exc:
                raise GRPCError(Status.NOT_FOUND, exc.message) from None
        return selected

    async def _statuses(self, names: Any, timeout: float | None) -> list[robot_pb2.Status]:
        selected = self._resources_for(names)
        results = await asyncio.gather(*(res.get_status(timeout=timeout) for _, res in selected))
        return [
            robot_pb2.Status(name=resource_name_to_proto(rn), status=dict_to_struct(result),
                             last_reconfigured=timestamp_from_epoch(self.started_at))
            for (rn, _), result in zip(selected, results, strict=True)
        ]

    async def GetStatus(self, stream: Stream[Any, Any]) -> None:
        request = await recv_request(stream)
        statuses = await self._statuses(request.resource_names, call_timeout(stream))
        await stream.send_message(robot_pb2.GetStatusResponse(status=statuses))

    async def StreamStatus(self, stream: Stream[Any, Any]) -> None:
        request = await recv_request(stream)
        every = request.every.ToTimedelta().total_seconds() if request.HasField("every") else 0.0
        if every < MIN_STATUS_INTERVAL_S:
            raise GRPCError(Status.INVALID_ARGUMENT,
                            f"every must be at least {MIN_STATUS_INTERVAL_S * 1000:.0f} ms, got {every * 1000:.1f} ms")
        self._resources_for(request.resource_names)  # unknown names fail before the first message
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:  # ends when the client cancels or its deadline passes (grpclib cancels us)
            statuses = await self._statuses(request.resource_names, call_timeout(stream))
            await stream.send_message(robot_pb2.StreamStatusResponse(status=statuses))
            next_at += every
            await asyncio.sleep(max(0.0, next_at - loop.time()))

    async def GetMachineStatus(self, stream: Stream[Any, Any]) -> None:
        await recv_request(stream)
        started = timestamp_from_epoch(self.started_at)
        resources = [
            robot_pb2.ResourceStatus(
                name=resource_name_to_proto(rn),
                state=robot_pb2.ResourceStatus.STATE_READY,
                last_updated=started,
                reachability=robot_pb2.ResourceStatus.REACHABILITY_REACHABLE,
            )
            for rn in self.manager.resource_names()
        ]
        await stream.send_message(robot_pb2.GetMachineStatusResponse(
            resources=resources,
            config=robot_pb2.ConfigStatus(revision="local", last_updated=started),
            state=robot_pb2.GetMachineStatusResponse.STATE_RUNNING,
        ))

    async def GetVersion(self, stream: Stream[Any, Any]) -> None:
        await recv_request(stream)
        try:
            version = importlib.metadata.version("peerbot")
        except importlib.metadata.PackageNotFoundError:
            version = "dev"
        await stream.send_message(robot_pb2.GetVersionResponse(
            platform="peerbot", version=version, api_version=API_VERSION))

    # -- stopping ------------------------------------------------------------------------------
    async def StopAll(self, stream: Stream[Any, Any]) -> None:
        request = await recv_request(stream)
        extras = {resource_name_from_proto(p.name): struct_to_dict(p.params) for p in request.extra}
        timeout = call_timeout(stream)
        items = list(self.manager.resources.items())
        results = await asyncio.gather(
            *(stop_resource(res, extras.get(rn), timeout) for rn, res in items), return_exceptions=True
        )
        failures = [f"{rn}: {result}" for (rn, _), result in zip(items, results, strict=True)
                    if isinstance(result, BaseException)]
        if failures:
            logger.error("StopAll could not stop: %s", "; ".join(failures))
            raise GRPCError(Status.UNKNOWN, "failed to stop " + "; ".join(failures))
        await stream.send_message(robot_pb2.StopAllResponse())

    # -- operations ----------------------------------------------------------------------------
    async def GetOperations(self, stream: Stream[Any, Any]) -> None:
        await recv_request(stream)
        ops = []
        for op in self.operations.list():
            msg = robot_pb2.Operation(id=str(op.id), method=op.method, arguments=dict_to_struct(op.arguments),
                                      started=timestamp_from_epoch(op.time_started))
            if op.session_id:
                msg.session_id = op.session_id
            ops.append(msg)
        await stream.send_message(robot_pb2.GetOperationsResponse(operations=ops))

    def _operation(self, opid: str) -> Any:
        op = self.operations.find(opid)
        if op is None:
            raise GRPCError(Status.NOT_FOUND, f'operation "{opid}" not found')
        return op

    async def CancelOperation(self, stream: Stream[Any, Any]) -> None:
        request = await recv_request(stream)
        self._operation(request.id).cancel()
        await stream.send_message(robot_pb2.CancelOperationResponse())

    async def BlockForOperation(self, stream: Stream[Any, Any]) -> None:
        request = await recv_request(stream)
        await self._operation(request.id).wait()  # bounded by the caller's deadline
        await stream.send_message(robot_pb2.BlockForOperationResponse())

    # -- sessions ------------------------------------------------------------------------------
    async def StartSession(self, stream: Stream[Any, Any]) -> None:
        request = await recv_request(stream)
        peer = stream.peer.addr() if stream.peer is not None else None
        session = self.sessions.start(request.resume, peer=str(peer) if peer else "")
        await stream.send_message(robot_pb2.StartSessionResponse(
            id=session.id, heartbeat_window=duration_from_seconds(session.heartbeat_window)))

    async def SendSessionHeartbeat(self, stream: Stream[Any, Any]) -> None:
        request = await recv_request(stream)
        self.sessions.heartbeat(request.id)
        await stream.send_message(robot_pb2.SendSessionHeartbeatResponse())

    async def GetSessions(self, stream: Stream[Any, Any]) -> None:
        await recv_request(stream)
        sessions = [
            robot_pb2.Session(id=s.id, peer_connection_info=robot_pb2.PeerConnectionInfo(remote_address=s.peer))
            for s in self.sessions.list()
        ]
        await stream.send_message(robot_pb2.GetSessionsResponse(sessions=sessions))

    # -- the rest ------------------------------------------------------------------------------
    async def Log(self, stream: Stream[Any, Any]) -> None:
        request = await recv_request(stream)
        for entry in request.logs:
            level = logging.getLevelName(entry.level.upper()) if entry.level else logging.INFO
            level = level if isinstance(level, int) else logging.INFO
            remote_log.log(level, "%s: %s", entry.logger_name, entry.message)
        await stream.send_message(robot_pb2.LogResponse())

    async def GetCloudMetadata(self, stream: Stream[Any, Any]) -> None:
        await recv_request(stream)
        raise GRPCError(Status.FAILED_PRECONDITION, "this robot is not managed by a cloud; it has no cloud metadata")

    async def Shutdown(self, stream: Stream[Any, Any]) -> None:
        await recv_request(stream)
        if self.on_shutdown is None:
            raise GRPCError(Status.FAILED_PRECONDITION, "this server cannot be shut down remotely")
        await stream.send_message(robot_pb2.ShutdownResponse())
        asyncio.get_running_loop().call_soon(self.on_shutdown)

    async def GetModelsFromModules(self, stream: Stream[Any, Any]) -> None:
        await recv_request(stream)
        await stream.send_message(robot_pb2.GetModelsFromModulesResponse())  # peerbot loads no modules

    async def FrameSystemConfig(self, stream: Stream[Any, Any]) -> None:
        await recv_request(stream)
        await stream.send_message(robot_pb2.FrameSystemConfigResponse())  # no frames are configured

    async def TransformPose(self, stream: Stream[Any, Any]) -> None:
        request = await recv_request(stream)
        if request.source.reference_frame != request.destination:
            raise GRPCError(Status.UNIMPLEMENTED,
                            f"no frame system is configured: cannot transform from "
                            f"{request.source.reference_frame!r} to {request.destination!r}")
        await stream.send_message(robot_pb2.TransformPoseResponse(pose=request.source))
