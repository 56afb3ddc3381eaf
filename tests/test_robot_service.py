from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from google.protobuf import duration_pb2
from grpclib import GRPCError, Status
from grpclib.client import Channel
from grpclib.testing import ChannelFor

from peer.components.sensor import FakeSensor
from peer.gen.viam.common.v1 import common_pb2
from peer.gen.viam.robot.v1 import robot_pb2
from peer.gen.viam.robot.v1.robot_grpc import RobotServiceStub
from peer.protoutil import dict_to_struct
from peer.server import Server
from peer.sessions import SessionManager

from .fakes import Widget, register_widget_api

WAIT = 5.0


@pytest.fixture
async def robot() -> AsyncIterator[tuple[Server, Channel, list[Widget]]]:
    register_widget_api()
    widgets = [Widget("w1"), Widget("w2")]
    server = Server([FakeSensor("sensor1"), *widgets])
    async with ChannelFor([server.handlers]) as channel:
        yield server, channel, widgets
    await server.close()


def sensor_name(name: str) -> common_pb2.ResourceName:
    return common_pb2.ResourceName(namespace="rdk", type="component", subtype="sensor", name=name)


async def test_resource_names_and_subtypes(robot: tuple[Server, Channel, list[Widget]]) -> None:
    _, channel, _ = robot
    stub = RobotServiceStub(channel)
    names = await stub.ResourceNames(robot_pb2.ResourceNamesRequest())
    assert sorted(f"{r.subtype}/{r.name}" for r in names.resources) == ["sensor/sensor1", "widget/w1", "widget/w2"]
    subtypes = await stub.ResourceRPCSubtypes(robot_pb2.ResourceRPCSubtypesRequest())
    services = {s.proto_service for s in subtypes.resource_rpc_subtypes}
    assert "viam.component.sensor.v1.SensorService" in services


async def test_stop_all_passes_extras_and_reports_failures(robot: tuple[Server, Channel, list[Widget]]) -> None:
    _, channel, (w1, w2) = robot
    stub = RobotServiceStub(channel)
    w1.moving = True
    extra = robot_pb2.StopExtraParameters(
        name=common_pb2.ResourceName(namespace="acme", type="component", subtype="widget", name="w1"),
        params=dict_to_struct({"brake": "hard"}),
    )
    await stub.StopAll(robot_pb2.StopAllRequest(extra=[extra]))
    assert w1.stops == [{"brake": "hard"}] and w2.stops == [{}]
    assert not w1.moving
    w2.fail_stop = True
    with pytest.raises(GRPCError) as err:
        await stub.StopAll(robot_pb2.StopAllRequest())
    assert err.value.status == Status.UNKNOWN and "w2 is jammed" in (err.value.message or "")
    assert len(w1.stops) == 2  # the healthy actuator was still stopped


async def test_get_status_and_unknown_names(robot: tuple[Server, Channel, list[Widget]]) -> None:
    _, channel, _ = robot
    stub = RobotServiceStub(channel)
    status = await stub.GetStatus(robot_pb2.GetStatusRequest(resource_names=[sensor_name("sensor1")]))
    assert [s.name.name for s in status.status] == ["sensor1"]
    with pytest.raises(GRPCError) as err:
        await stub.GetStatus(robot_pb2.GetStatusRequest(resource_names=[sensor_name("ghost")]))
    assert err.value.status == Status.NOT_FOUND


async def test_stream_status_is_bounded(robot: tuple[Server, Channel, list[Widget]]) -> None:
    _, channel, _ = robot
    stub = RobotServiceStub(channel)
    with pytest.raises(GRPCError) as err:
        async with stub.StreamStatus.open() as stream:
            await stream.send_message(robot_pb2.StreamStatusRequest(), end=True)
            await stream.recv_message()
    assert err.value.status == Status.INVALID_ARGUMENT
    async with stub.StreamStatus.open() as stream:
        await stream.send_message(robot_pb2.StreamStatusRequest(every=duration_pb2.Duration(nanos=20_000_000)),
                                  end=True)
        first = await asyncio.wait_for(stream.recv_message(), WAIT)
        second = await asyncio.wait_for(stream.recv_message(), WAIT)
        await stream.cancel()
    assert first is not None and second is not None and len(first.status) == 3


async def test_operations_can_be_listed_blocked_on_and_cancelled(
    robot: tuple[Server, Channel, list[Widget]],
) -> None:
    server, channel, _ = robot
    stub = RobotServiceStub(channel)

    async def long_call() -> None:
        async with stub.StreamStatus.open() as stream:
            await stream.send_message(robot_pb2.StreamStatusRequest(every=duration_pb2.Duration(seconds=1)), end=True)
            while await stream.recv_message() is not None:
                pass

    call = asyncio.create_task(long_call())
    for _ in range(100):
        ops = await stub.GetOperations(robot_pb2.GetOperationsRequest())
        streaming = [op for op in ops.operations if op.method.endswith("/StreamStatus")]
        if streaming:
            break
        await asyncio.sleep(0.01)
    assert len(streaming) == 1
    assert streaming[0].started.seconds > 0
    opid = streaming[0].id
    blocker = asyncio.create_task(stub.BlockForOperation(robot_pb2.BlockForOperationRequest(id=opid)))
    await asyncio.sleep(0.05)
    assert not blocker.done()
    await stub.CancelOperation(robot_pb2.CancelOperationRequest(id=opid))
    with pytest.raises(GRPCError) as err:
        await asyncio.wait_for(call, WAIT)
    assert err.value.status == Status.CANCELLED
    await asyncio.wait_for(blocker, WAIT)
    assert len(server.operations) == 0
    with pytest.raises(GRPCError) as err:
        await stub.CancelOperation(robot_pb2.CancelOperationRequest(id=opid))
    assert err.value.status == Status.NOT_FOUND


async def test_client_chosen_operation_id_is_used(robot: tuple[Server, Channel, list[Widget]]) -> None:
    _, channel, _ = robot
    stub = RobotServiceStub(channel)
    opid = "6f1c3a52-8a7e-4e0b-9f0a-0d3c1c1b2a11"
    async with stub.StreamStatus.open(metadata={"opid": opid}) as stream:
        await stream.send_message(robot_pb2.StreamStatusRequest(every=duration_pb2.Duration(seconds=1)), end=True)
        await asyncio.wait_for(stream.recv_message(), WAIT)
        ops = await stub.GetOperations(robot_pb2.GetOperationsRequest())
        await stream.cancel()
    assert opid in [op.id for op in ops.operations]


async def test_sessions_start_heartbeat_and_expire(robot: tuple[Server, Channel, list[Widget]]) -> None:
    _, channel, _ = robot
    stub = RobotServiceStub(channel)
    started = await stub.StartSession(robot_pb2.StartSessionRequest())
    assert started.heartbeat_window.ToTimedelta().total_seconds() == pytest.approx(2.0)
    await stub.SendSessionHeartbeat(robot_pb2.SendSessionHeartbeatRequest(id=started.id))
    listed = await stub.GetSessions(robot_pb2.GetSessionsRequest())
    assert [s.id for s in listed.sessions] == [started.id]
    with pytest.raises(GRPCError) as err:
        await stub.SendSessionHeartbeat(robot_pb2.SendSessionHeartbeatRequest(id="not-a-session"))
    assert err.value.status == Status.INVALID_ARGUMENT and err.value.message == "SESSION_EXPIRED"
    with pytest.raises(GRPCError) as err:  # a call carrying an unknown session id is refused the same way
        await stub.ResourceNames(robot_pb2.ResourceNamesRequest(), metadata={"viam-sid": "not-a-session"})
    assert err.value.message == "SESSION_EXPIRED"


async def test_session_expiry_stops_what_it_moved() -> None:
    register_widget_api()
    widget, other = Widget("w"), Widget("other")
    stopped: list[str] = []

    async def stop(name: object) -> None:
        stopped.append(str(name))

    sessions = SessionManager(stop, heartbeat_window=0.05)
    session = sessions.start()
    keeper = sessions.start()
    sessions.associate(session.id, widget.get_resource_name("w"))
    sessions.associate(keeper.id, other.get_resource_name("other"))
    for _ in range(6):  # the keeper heartbeats, the first session does not
        await asyncio.sleep(0.02)
        sessions.heartbeat(keeper.id)
    assert stopped == ["acme:component:widget/w"]
    assert [s.id for s in sessions.list()] == [keeper.id]
    await sessions.close()


async def test_shutdown_asks_the_server_to_stop(robot: tuple[Server, Channel, list[Widget]]) -> None:
    server, channel, _ = robot
    server._stop_requested = asyncio.Event()
    await RobotServiceStub(channel).Shutdown(robot_pb2.ShutdownRequest())
    await asyncio.wait_for(server._stop_requested.wait(), WAIT)


async def test_lapsed_session_stops_the_motor_it_drove() -> None:
    """The safety behaviour: a client that dies mid-move must not leave the motor running."""
    from peer.components.motor import FakeMotor
    from peer.gen.viam.component.motor.v1 import motor_pb2
    from peer.gen.viam.component.motor.v1.motor_grpc import MotorServiceStub

    driven, bystander = FakeMotor("left"), FakeMotor("right")
    server = Server([driven, bystander], heartbeat_window=0.2)
    try:
        async with ChannelFor([server.handlers]) as channel:
            robot_stub, motors = RobotServiceStub(channel), MotorServiceStub(channel)
            session = await robot_stub.StartSession(robot_pb2.StartSessionRequest())
            sid = {"viam-sid": session.id}
            await motors.SetPower(motor_pb2.SetPowerRequest(name="left", power_pct=0.5), metadata=sid)
            await motors.SetPower(motor_pb2.SetPowerRequest(name="right", power_pct=0.3))  # no session
            for _ in range(3):  # heartbeats keep it alive past one window
                await asyncio.sleep(0.1)
                await robot_stub.SendSessionHeartbeat(robot_pb2.SendSessionHeartbeatRequest(id=session.id))
            assert (await driven.is_powered())[0]
            for _ in range(100):  # then the client goes silent
                if not (await driven.is_powered())[0]:
                    break
                await asyncio.sleep(0.02)
            assert not (await driven.is_powered())[0]
            assert (await bystander.is_powered()) == (True, 0.3)
            with pytest.raises(GRPCError) as err:
                await motors.SetPower(motor_pb2.SetPowerRequest(name="left", power_pct=0.5), metadata=sid)
            assert err.value.message == "SESSION_EXPIRED"
    finally:
        await server.close()
