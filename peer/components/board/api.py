"""The board API: a compute board's GPIO pins, analog readers/writers and digital interrupts.

As in the Viam SDK, pins are objects looked up by name (``gpio_pin_by_name`` and friends) whose
methods do the I/O; an unknown analog or interrupt name is a NOT_FOUND error.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import timedelta
from typing import Any, TypeAlias

from ...gen.viam.component.board.v1 import board_pb2
from ...resource import API, ComponentBase


class Board(ComponentBase):
    API = API.component("board")

    #: An analog reading: the raw value plus the reader's range and resolution.
    AnalogValue: TypeAlias = board_pb2.ReadAnalogReaderResponse
    #: One edge of a digital interrupt: pin name, board-clock nanoseconds and the new level.
    Tick: TypeAlias = board_pb2.StreamTicksResponse

    class Analog(ABC):
        """An analog pin that can be read (ADC) and, where the hardware allows, written (DAC)."""

        def __init__(self, name: str) -> None:
            self.name = name

        @abstractmethod
        async def read(
            self, *, extra: Mapping[str, Any] | None = None, timeout: float | None = None, **kwargs: Any
        ) -> Board.AnalogValue: ...

        @abstractmethod
        async def write(
            self, value: int, *, extra: Mapping[str, Any] | None = None, timeout: float | None = None, **kwargs: Any
        ) -> None: ...

    class DigitalInterrupt(ABC):
        """A pin whose edges are counted."""

        def __init__(self, name: str) -> None:
            self.name = name

        @abstractmethod
        async def value(
            self, *, extra: Mapping[str, Any] | None = None, timeout: float | None = None, **kwargs: Any
        ) -> int:
            """How many ticks the interrupt has counted."""

    class GPIOPin(ABC):
        """A digital pin: a level, or a PWM signal (duty cycle in [0, 1] at a frequency in Hz)."""

        def __init__(self, name: str) -> None:
            self.name = name

        @abstractmethod
        async def set(
            self, high: bool, *, extra: Mapping[str, Any] | None = None, timeout: float | None = None, **kwargs: Any
        ) -> None: ...

        @abstractmethod
        async def get(
            self, *, extra: Mapping[str, Any] | None = None, timeout: float | None = None, **kwargs: Any
        ) -> bool: ...

        @abstractmethod
        async def get_pwm(
            self, *, extra: Mapping[str, Any] | None = None, timeout: float | None = None, **kwargs: Any
        ) -> float: ...

        @abstractmethod
        async def set_pwm(
            self,
            duty_cycle: float,
            *,
            extra: Mapping[str, Any] | None = None,
            timeout: float | None = None,
            **kwargs: Any,
        ) -> None: ...

        @abstractmethod
        async def get_pwm_frequency(
            self, *, extra: Mapping[str, Any] | None = None, timeout: float | None = None, **kwargs: Any
        ) -> int: ...

        @abstractmethod
        async def set_pwm_frequency(
            self,
            frequency: int,
            *,
            extra: Mapping[str, Any] | None = None,
            timeout: float | None = None,
            **kwargs: Any,
        ) -> None: ...

    @abstractmethod
    async def analog_by_name(self, name: str) -> Board.Analog: ...

    @abstractmethod
    async def digital_interrupt_by_name(self, name: str) -> Board.DigitalInterrupt: ...

    @abstractmethod
    async def gpio_pin_by_name(self, name: str) -> Board.GPIOPin: ...

    @abstractmethod
    async def set_power_mode(
        self,
        mode: board_pb2.PowerMode.ValueType,
        duration: timedelta | None = None,
        *,
        extra: Mapping[str, Any] | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> None:
        """Enter ``mode``, for ``duration`` if given, else until told otherwise."""

    @abstractmethod
    async def stream_ticks(
        self,
        interrupts: Sequence[Board.DigitalInterrupt],
        *,
        extra: Mapping[str, Any] | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[Board.Tick]:
        """The ticks of ``interrupts`` as they happen, until the consumer stops iterating."""
