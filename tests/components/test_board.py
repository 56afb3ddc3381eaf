from __future__ import annotations

import asyncio

import pytest
from google.protobuf import duration_pb2
from grpclib import GRPCError, Status

from peer.components.board import FakeBoard
from peer.errors import ValidationError
from peer.gen.viam.common.v1 import common_pb2
from peer.gen.viam.component.board.v1 import board_pb2
from peer.gen.viam.component.board.v1.board_grpc import BoardServiceStub
from peer.protoutil import struct_to_dict
from peer.resource import API, Model, ResourceConfig

from .helpers import serve_resources


async def test_gpio_levels_and_pwm() -> None:
    async with serve_resources([FakeBoard("b")]) as channel:
        stub = BoardServiceStub(channel)
        assert not (await stub.GetGPIO(board_pb2.GetGPIORequest(name="b", pin="11"))).high
        await stub.SetGPIO(board_pb2.SetGPIORequest(name="b", pin="11", high=True))
        assert (await stub.GetGPIO(board_pb2.GetGPIORequest(name="b", pin="11"))).high
        assert (await stub.PWM(board_pb2.PWMRequest(name="b", pin="11"))).duty_cycle_pct == 1.0
        assert not (await stub.GetGPIO(board_pb2.GetGPIORequest(name="b", pin="12"))).high  # pins are independent

        await stub.SetPWM(board_pb2.SetPWMRequest(name="b", pin="12", duty_cycle_pct=0.25))
        assert (await stub.PWM(board_pb2.PWMRequest(name="b", pin="12"))).duty_cycle_pct == 0.25
        assert (await stub.PWMFrequency(board_pb2.PWMFrequencyRequest(name="b", pin="12"))).frequency_hz == 800
        await stub.SetPWMFrequency(board_pb2.SetPWMFrequencyRequest(name="b", pin="12", frequency_hz=1000))
        assert (await stub.PWMFrequency(board_pb2.PWMFrequencyRequest(name="b", pin="12"))).frequency_hz == 1000
        await stub.SetPWMFrequency(board_pb2.SetPWMFrequencyRequest(name="b", pin="12", frequency_hz=0))
        assert (await stub.PWMFrequency(board_pb2.PWMFrequencyRequest(name="b", pin="12"))).frequency_hz == 800

        await stub.SetGPIO(board_pb2.SetGPIORequest(name="b", pin="11", high=False))
        assert not (await stub.GetGPIO(board_pb2.GetGPIORequest(name="b", pin="11"))).high
        assert (await stub.PWM(board_pb2.PWMRequest(name="b", pin="11"))).duty_cycle_pct == 0.0


async def test_pwm_level_follows_the_waveform() -> None:
    board = FakeBoard("b")
    pin = await board.gpio_pin_by_name("7")
    await pin.set_pwm_frequency(20)  # 50 ms period, high for the first half
    await pin.set_pwm(0.5)
    levels = set()
    for _ in range(10):
        levels.add(await pin.get())
        await asyncio.sleep(0.011)
    assert levels == {True, False}


@pytest.mark.parametrize("duty", [1.5, -0.1])
async def test_duty_cycle_out_of_range_is_invalid(duty: float) -> None:
    async with serve_resources([FakeBoard("b")]) as channel:
        with pytest.raises(GRPCError) as err:
            await BoardServiceStub(channel).SetPWM(board_pb2.SetPWMRequest(name="b", pin="3", duty_cycle_pct=duty))
    assert err.value.status == Status.INVALID_ARGUMENT


async def test_empty_pin_name_is_invalid() -> None:
    async with serve_resources([FakeBoard("b")]) as channel:
        with pytest.raises(GRPCError) as err:
            await BoardServiceStub(channel).GetGPIO(board_pb2.GetGPIORequest(name="b", pin=""))
    assert err.value.status == Status.INVALID_ARGUMENT


async def test_analog_values_change_and_writes_read_back() -> None:
    async with serve_resources([FakeBoard("b", analog_period_s=0.2)]) as channel:
        stub = BoardServiceStub(channel)
        request = board_pb2.ReadAnalogReaderRequest(board_name="b", analog_reader_name="a1")
        first = await stub.ReadAnalogReader(request)
        await asyncio.sleep(0.05)  # a quarter of the wave
        second = await stub.ReadAnalogReader(request)
        assert 0 <= first.value <= 1023 and 0 <= second.value <= 1023
        assert first.value != second.value
        assert first.max_range == pytest.approx(3.3)
        assert first.step_size == pytest.approx(3.3 / 1024)

        await stub.WriteAnalog(board_pb2.WriteAnalogRequest(name="b", pin="a2", value=300))
        read = board_pb2.ReadAnalogReaderRequest(board_name="b", analog_reader_name="a2")
        assert (await stub.ReadAnalogReader(read)).value == 300
        with pytest.raises(GRPCError) as err:
            await stub.WriteAnalog(board_pb2.WriteAnalogRequest(name="b", pin="a2", value=4096))
        assert err.value.status == Status.INVALID_ARGUMENT


async def test_unknown_analog_and_interrupt_are_not_found() -> None:
    async with serve_resources([FakeBoard("b")]) as channel:
        stub = BoardServiceStub(channel)
        with pytest.raises(GRPCError) as err:
            await stub.ReadAnalogReader(board_pb2.ReadAnalogReaderRequest(board_name="b", analog_reader_name="a9"))
        assert err.value.status == Status.NOT_FOUND
        assert "a9" in (err.value.message or "")
        with pytest.raises(GRPCError) as err:
            await stub.WriteAnalog(board_pb2.WriteAnalogRequest(name="b", pin="zz", value=1))
        assert err.value.status == Status.NOT_FOUND
        with pytest.raises(GRPCError) as err:
            await stub.GetDigitalInterruptValue(
                board_pb2.GetDigitalInterruptValueRequest(board_name="b", digital_interrupt_name="di9")
            )
        assert err.value.status == Status.NOT_FOUND
        with pytest.raises(GRPCError) as err:
            await stub.GetGPIO(board_pb2.GetGPIORequest(name="nope", pin="1"))
        assert err.value.status == Status.NOT_FOUND


async def test_interrupt_counts_grow() -> None:
    async with serve_resources([FakeBoard("b", tick_hz=200)]) as channel:
        stub = BoardServiceStub(channel)
        request = board_pb2.GetDigitalInterruptValueRequest(board_name="b", digital_interrupt_name="di1")
        first = (await stub.GetDigitalInterruptValue(request)).value
        await asyncio.sleep(0.05)
        second = (await stub.GetDigitalInterruptValue(request)).value
    assert second - first >= 5  # 10 expected


async def test_stream_ticks_until_cancelled() -> None:
    async with serve_resources([FakeBoard("b", tick_hz=50)]) as channel:
        stub = BoardServiceStub(channel)
        async with stub.StreamTicks.open() as stream:
            await stream.send_message(board_pb2.StreamTicksRequest(name="b", pin_names=["di1", "di2"]), end=True)
            ticks = [await asyncio.wait_for(stream.recv_message(), 1.0) for _ in range(6)]
            await stream.cancel()
        # The stream is gone; the board keeps answering.
        value = await stub.GetDigitalInterruptValue(
            board_pb2.GetDigitalInterruptValueRequest(board_name="b", digital_interrupt_name="di1")
        )
    assert all(t is not None for t in ticks)
    assert {t.pin_name for t in ticks if t} == {"di1", "di2"}
    times = [t.time for t in ticks if t]
    assert times == sorted(times)
    di1 = [t for t in ticks if t and t.pin_name == "di1"]
    assert [t.high for t in di1] in ([True, False, True], [False, True, False])  # edges alternate
    assert di1[1].time - di1[0].time == pytest.approx(1e9 / 100, rel=1e-6)  # half a 50 Hz period
    assert value.value >= 1


async def test_stream_ticks_rejects_unknown_or_no_interrupts() -> None:
    async with serve_resources([FakeBoard("b")]) as channel:
        stub = BoardServiceStub(channel)
        for pins, status in ((["di1", "nope"], Status.NOT_FOUND), ([], Status.INVALID_ARGUMENT)):
            async with stub.StreamTicks.open() as stream:
                await stream.send_message(board_pb2.StreamTicksRequest(name="b", pin_names=pins), end=True)
                with pytest.raises(GRPCError) as err:
                    await asyncio.wait_for(stream.recv_message(), 1.0)
            assert err.value.status == status


async def test_power_mode_with_duration_reverts() -> None:
    async with serve_resources([FakeBoard("b")]) as channel:
        stub = BoardServiceStub(channel)
        await stub.SetPowerMode(board_pb2.SetPowerModeRequest(
            name="b", power_mode=board_pb2.POWER_MODE_OFFLINE_DEEP,
            duration=duration_pb2.Duration(nanos=50_000_000),
        ))
        status = struct_to_dict((await stub.GetStatus(common_pb2.GetStatusRequest(name="b"))).result)
        assert status["power_mode"] == "POWER_MODE_OFFLINE_DEEP"
        assert set(status["analogs"]) == {"a1", "a2"}
        assert set(status["digital_interrupts"]) == {"di1", "di2"}
        await asyncio.sleep(0.07)
        status = struct_to_dict((await stub.GetStatus(common_pb2.GetStatusRequest(name="b"))).result)
        assert status["power_mode"] == "POWER_MODE_NORMAL"

        await stub.SetPowerMode(board_pb2.SetPowerModeRequest(name="b", power_mode=board_pb2.POWER_MODE_OFFLINE_DEEP))
        await asyncio.sleep(0.01)
        status = struct_to_dict((await stub.GetStatus(common_pb2.GetStatusRequest(name="b"))).result)
        assert status["power_mode"] == "POWER_MODE_OFFLINE_DEEP"

        with pytest.raises(GRPCError) as err:
            await stub.SetPowerMode(board_pb2.SetPowerModeRequest(name="b"))
        assert err.value.status == Status.INVALID_ARGUMENT


def _config(**attributes: object) -> ResourceConfig:
    return ResourceConfig("b", API.component("board"), Model.builtin("fake"), attributes, path="components[2]")


def test_config_validation_and_creation() -> None:
    with pytest.raises(ValidationError) as err:
        FakeBoard.validate(_config(analogs="a1"))
    assert err.value.path == "components[2].attributes.analogs"
    with pytest.raises(ValidationError) as err:
        FakeBoard.validate(_config(digital_interrupts=["x", "x"]))
    assert err.value.path == "components[2].attributes.digital_interrupts"
    with pytest.raises(ValidationError) as err:
        FakeBoard.validate(_config(tick_hz=0))
    assert err.value.path == "components[2].attributes.tick_hz"
    board = FakeBoard.new(_config(analogs=["v"], digital_interrupts=["enc"]), {})
    assert list(board.analogs) == ["v"] and list(board.interrupts) == ["enc"]
    assert list(FakeBoard.new(_config(), {}).analogs) == ["a1", "a2"]
