from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping
from typing import Any

import pytest
from grpclib import GRPCError, Status

from peer.components.movement_sensor import FakeMovementSensor, MovementSensor, Properties
from peer.errors import ValidationError
from peer.gen.viam.common.v1 import common_pb2
from peer.gen.viam.component.movementsensor.v1 import movementsensor_pb2 as pb
from peer.gen.viam.component.movementsensor.v1.movementsensor_grpc import MovementSensorServiceStub
from peer.protoutil import value_to_python
from peer.resource import Model, Registry, ResourceConfig

from .helpers import serve_resources

METRES_PER_DEG_LAT = 6_371_008.8 * math.pi / 180


class ManualClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def readings(stub: MovementSensorServiceStub, name: str) -> dict[str, Any]:
    response = await stub.GetReadings(common_pb2.GetReadingsRequest(name=name))
    return {key: value_to_python(value) for key, value in response.readings.items()}


async def test_every_getter_agrees_with_one_circular_motion() -> None:
    clock = ManualClock()
    # 10 m radius at 5 m/s: a quarter turn takes pi seconds.
    sensor = FakeMovementSensor("imu1", latitude=10.0, longitude=20.0, altitude_m=7.0, radius_m=10.0,
                                speed_mps=5.0, clock=clock)
    async with serve_resources([sensor]) as channel:
        stub = MovementSensorServiceStub(channel)
        start = await stub.GetPosition(pb.GetPositionRequest(name="imu1"))
        assert (start.coordinate.latitude, start.coordinate.longitude) == pytest.approx((10.0, 20.0))
        assert start.altitude_m == pytest.approx(7.0)
        assert (await stub.GetCompassHeading(pb.GetCompassHeadingRequest(name="imu1"))).value == pytest.approx(0.0)

        clock.now += math.pi  # a quarter turn to the left: now heading west, 10 m north and 10 m west
        quarter = await stub.GetPosition(pb.GetPositionRequest(name="imu1"))
        north = (quarter.coordinate.latitude - 10.0) * METRES_PER_DEG_LAT
        west = (20.0 - quarter.coordinate.longitude) * METRES_PER_DEG_LAT * math.cos(math.radians(10.0))
        assert (north, west) == pytest.approx((10.0, 10.0), rel=1e-6)
        heading = (await stub.GetCompassHeading(pb.GetCompassHeadingRequest(name="imu1"))).value
        assert heading == pytest.approx(270.0)
        orientation = (await stub.GetOrientation(pb.GetOrientationRequest(name="imu1"))).orientation
        assert (orientation.o_z, orientation.theta) == pytest.approx((1.0, 90.0))

        linear = (await stub.GetLinearVelocity(pb.GetLinearVelocityRequest(name="imu1"))).linear_velocity
        assert (linear.x, linear.y, linear.z) == pytest.approx((0.0, 5.0, 0.0))
        angular = (await stub.GetAngularVelocity(pb.GetAngularVelocityRequest(name="imu1"))).angular_velocity
        assert angular.z == pytest.approx(math.degrees(0.5))  # v / r rad/s, turning left
        accel = (await stub.GetLinearAcceleration(pb.GetLinearAccelerationRequest(name="imu1"))).linear_acceleration
        assert (accel.x, accel.y) == pytest.approx((-2.5, 0.0))  # v^2 / r towards the centre

        clock.now += 2 * math.pi  # three quarters in total: heading east, theta wraps to -90
        orientation = (await stub.GetOrientation(pb.GetOrientationRequest(name="imu1"))).orientation
        assert orientation.theta == pytest.approx(-90.0)
        assert (await stub.GetCompassHeading(pb.GetCompassHeadingRequest(name="imu1"))).value == pytest.approx(90.0)


async def test_position_moves_in_real_time() -> None:
    async with serve_resources([FakeMovementSensor("imu1", speed_mps=20.0)]) as channel:
        stub = MovementSensorServiceStub(channel)
        first = (await stub.GetPosition(pb.GetPositionRequest(name="imu1"))).coordinate
        await asyncio.sleep(0.05)
        second = (await stub.GetPosition(pb.GetPositionRequest(name="imu1"))).coordinate
    moved = math.hypot(second.latitude - first.latitude, second.longitude - first.longitude) * METRES_PER_DEG_LAT
    assert 0.5 < moved < 20.0  # at least 50 ms at 20 m/s, bounded for a slow box


async def test_readings_combine_every_value_tagged_like_viam_server() -> None:
    clock = ManualClock()
    sensor = FakeMovementSensor("imu1", latitude=1.0, longitude=2.0, altitude_m=3.0, clock=clock)
    async with serve_resources([sensor]) as channel:
        got = await readings(MovementSensorServiceStub(channel), "imu1")
    assert set(got) == {"position", "altitude", "linear_velocity", "angular_velocity", "linear_acceleration",
                        "compass", "orientation"}
    assert got["position"] == {"lat": pytest.approx(1.0), "lng": pytest.approx(2.0), "_type": "geopoint"}
    assert got["altitude"] == 3
    assert got["linear_velocity"]["_type"] == "vector3" and got["linear_velocity"]["y"] == 1.5
    assert got["angular_velocity"]["_type"] == "angular_velocity"
    assert got["linear_acceleration"]["_type"] == "vector3"
    assert got["compass"] == 0
    assert got["orientation"] == {"ox": 0, "oy": 0, "oz": 1, "theta": 0, "_type": "orientation_vector_degrees"}


class PositionOnly(FakeMovementSensor):
    async def get_properties(
        self, *, extra: Mapping[str, Any] | None = None, timeout: float | None = None, **kwargs: Any
    ) -> Properties:
        return Properties(position_supported=True, compass_heading_supported=True)


async def test_readings_hold_only_supported_values() -> None:
    async with serve_resources([PositionOnly("gps1")]) as channel:
        got = await readings(MovementSensorServiceStub(channel), "gps1")
    assert set(got) == {"position", "altitude", "compass"}


async def test_properties_and_accuracy() -> None:
    async with serve_resources([FakeMovementSensor("imu1")]) as channel:
        stub = MovementSensorServiceStub(channel)
        props = await stub.GetProperties(pb.GetPropertiesRequest(name="imu1"))
        accuracy = await stub.GetAccuracy(pb.GetAccuracyRequest(name="imu1"))
    assert Properties.from_proto(props) == Properties(True, True, True, True, True, True)
    assert dict(accuracy.accuracy) == pytest.approx({"hDOP": 0.8, "vDOP": 1.2})
    assert accuracy.position_hdop == pytest.approx(0.8) and accuracy.position_vdop == pytest.approx(1.2)
    assert accuracy.position_nmea_gga_fix == 4
    assert accuracy.compass_degrees_error == pytest.approx(0.5)


async def test_common_rpcs_and_unknown_name() -> None:
    async with serve_resources([FakeMovementSensor("imu1")]) as channel:
        stub = MovementSensorServiceStub(channel)
        with pytest.raises(GRPCError) as err:
            await stub.GetPosition(pb.GetPositionRequest(name="nope"))
        assert err.value.status == Status.NOT_FOUND
        with pytest.raises(GRPCError) as err:
            await stub.DoCommand(common_pb2.DoCommandRequest(name="imu1"))
        assert err.value.status == Status.UNIMPLEMENTED
        assert list((await stub.GetGeometries(common_pb2.GetGeometriesRequest(name="imu1"))).geometries) == []


@pytest.mark.parametrize(
    ("attributes", "key"),
    [
        ({"latitude": 91}, "latitude"),
        ({"longitude": -180.5}, "longitude"),
        ({"radius_m": 0}, "radius_m"),
        ({"speed_mps": -1}, "speed_mps"),
        ({"speed_mps": True}, "speed_mps"),
        ({"altitude_m": "high"}, "altitude_m"),
        ({"altitude_m": float("nan")}, "altitude_m"),
    ],
)
def test_bad_attributes_name_their_path(attributes: dict[str, object], key: str) -> None:
    config = ResourceConfig("imu1", MovementSensor.API, Model.from_string("fake"), attributes, path="components[1]")
    with pytest.raises(ValidationError) as err:
        FakeMovementSensor.validate(config)
    assert err.value.path == f"components[1].attributes.{key}"


def test_fake_model_is_registered_and_builds_from_config() -> None:
    config = ResourceConfig("imu1", MovementSensor.API, Model.from_string("fake"), {"speed_mps": 0, "latitude": 5})
    FakeMovementSensor.validate(config)
    sensor = Registry.lookup_resource_creator(MovementSensor.API, Model.from_string("fake"))(config, {})
    assert isinstance(sensor, FakeMovementSensor)
    assert (sensor.latitude, sensor.speed_mps) == (5.0, 0.0)
