"""gRPC service of the board API."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

from grpclib.server import Stream

from ...gen.viam.component.board.v1 import board_pb2
from ...gen.viam.component.board.v1.board_grpc import BoardServiceBase
from ...protoutil import struct_to_dict
from ...resource.rpc import CommonRPCMixin, call_timeout, recv_request
from .api import Board


class BoardRPCService(CommonRPCMixin, BoardServiceBase):
    RESOURCE_TYPE = Board

    async def _pin(self, stream: Stream[Any, Any]) -> tuple[Any, Board.GPIOPin]:
        request = await recv_request(stream)
        board: Board = self.get_resource(request.name)
        return request, await board.gpio_pin_by_name(request.pin)

    async def SetGPIO(self, stream: Stream[Any, Any]) -> None:
        request, pin = await self._pin(stream)
        await pin.set(request.high, extra=struct_to_dict(request.extra), timeout=call_timeout(stream))
        await stream.send_message(board_pb2.SetGPIOResponse())

    async def GetGPIO(self, stream: Stream[Any, Any]) -> None:
        request, pin = await self._pin(stream)
        high = await pin.get(extra=struct_to_dict(request.extra), timeout=call_timeout(stream))
        await stream.send_message(board_pb2.GetGPIOResponse(high=high))

    async def PWM(self, stream: Stream[Any, Any]) -> None:
        request, pin = await self._pin(stream)
        duty = await pin.get_pwm(extra=struct_to_dict(request.extra), timeout=call_timeout(stream))
        await stream.send_message(board_pb2.PWMResponse(duty_cycle_pct=duty))

    async def SetPWM(self, stream: Stream[Any, Any]) -> None:
        request, pin = await self._pin(stream)
        await pin.set_pwm(request.duty_cycle_pct, extra=struct_to_dict(request.extra), timeout=call_timeout(stream))
        await stream.send_message(board_pb2.SetPWMResponse())

    async def PWMFrequency(self, stream: Stream[Any, Any]) -> None:
        request, pin = await self._pin(stream)
        frequency = await pin.get_pwm_frequency(extra=struct_to_dict(request.extra), timeout=call_timeout(stream))
        await stream.send_message(board_pb2.PWMFrequencyResponse(frequency_hz=frequency))

    async def SetPWMFrequency(self, stream: Stream[Any, Any]) -> None:
        request, pin = await self._pin(stream)
        await pin.set_pwm_frequency(
            request.frequency_hz, extra=struct_to_dict(request.extra), timeout=call_timeout(stream)
        )
        await stream.send_message(board_pb2.SetPWMFrequencyResponse())

    async def ReadAnalogReader(self, stream: Stream[Any, Any]) -> None:
        request = await recv_request(stream)
        board: Board = self.get_resource(request.board_name)
        analog = await board.analog_by_name(request.analog_reader_name)
        await stream.send_message(await analog.read(extra=struct_to_dict(request.extra), timeout=call_timeout(stream)))

    async def WriteAnalog(self, stream: Stream[Any, Any]) -> None:
        request = await recv_request(stream)
        board: Board = self.get_resource(request.name)
        analog = await board.analog_by_name(request.pin)
        await analog.write(request.value, extra=struct_to_dict(request.extra), timeout=call_timeout(stream))
        await stream.send_message(board_pb2.WriteAnalogResponse())

    async def GetDigitalInterruptValue(self, stream: Stream[Any, Any]) -> None:
        request = await recv_request(stream)
        board: Board = self.get_resource(request.board_name)
        interrupt = await board.digital_interrupt_by_name(request.digital_interrupt_name)
        value = await interrupt.value(extra=struct_to_dict(request.extra), timeout=call_timeout(stream))
        await stream.send_message(board_pb2.GetDigitalInterruptValueResponse(value=value))

    async def StreamTicks(self, stream: Stream[Any, Any]) -> None:
        """Server streaming: runs until the board ends the stream or the client cancels the call."""
        request = await recv_request(stream)
        board: Board = self.get_resource(request.name)
        interrupts = [await board.digital_interrupt_by_name(name) for name in request.pin_names]
        ticks = await board.stream_ticks(interrupts, extra=struct_to_dict(request.extra), timeout=call_timeout(stream))
        try:
            async for tick in ticks:
                await stream.send_message(tick)
        finally:
            if isinstance(ticks, AsyncGenerator):
                await ticks.aclose()

    async def SetPowerMode(self, stream: Stream[Any, Any]) -> None:
        request = await recv_request(stream)
        board: Board = self.get_resource(request.name)
        duration = request.duration.ToTimedelta() if request.HasField("duration") else None
        await board.set_power_mode(
            request.power_mode, duration, extra=struct_to_dict(request.extra), timeout=call_timeout(stream)
        )
        await stream.send_message(board_pb2.SetPowerModeResponse())
