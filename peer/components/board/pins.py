"""The fake board's pins; each derives its state from the board clock, so none needs a task."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Any

from ...errors import ValidationError
from .api import Board

#: A 10-bit ADC/DAC over 0 to 3.3 V.
ANALOG_MAX = 1023
ANALOG_VOLTS = 3.3
DEFAULT_PWM_HZ = 800


class FakeAnalog(Board.Analog):
    """Reads a slow sine wave over the full range until written; a written value reads back."""

    def __init__(self, name: str, *, t0: float, period_s: float, phase: float) -> None:
        super().__init__(name)
        self._t0 = t0
        self._period_s = period_s
        self._phase = phase
        self._written: int | None = None

    def sample(self) -> int:
        if self._written is not None:
            return self._written
        angle = 2 * math.pi * (time.monotonic() - self._t0) / self._period_s + self._phase
        return round(ANALOG_MAX / 2 * (1 + math.sin(angle)))

    async def read(
        self, *, extra: Mapping[str, Any] | None = None, timeout: float | None = None, **kwargs: Any
    ) -> Board.AnalogValue:
        return Board.AnalogValue(
            value=self.sample(), min_range=0.0, max_range=ANALOG_VOLTS, step_size=ANALOG_VOLTS / (ANALOG_MAX + 1)
        )

    async def write(
        self, value: int, *, extra: Mapping[str, Any] | None = None, timeout: float | None = None, **kwargs: Any
    ) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= ANALOG_MAX:
            raise ValidationError(f"analog {self.name!r}: value must be an integer in [0, {ANALOG_MAX}], got {value!r}")
        self._written = value


class FakeDigitalInterrupt(Board.DigitalInterrupt):
    """A square wave at ``hz``: rising edge n at ``t0 + n/hz``, falling edge half a period later.

    Edges are numbered from 2 (the first rising edge): edge ``e`` happens at ``t0 + e / (2 hz)``
    and is rising when ``e`` is even. ``value`` counts rising edges, as RDK's basic interrupt does.
    """

    def __init__(self, name: str, *, t0: float, hz: float) -> None:
        super().__init__(name)
        self.t0 = t0
        self.hz = hz

    def count_at(self, now: float) -> int:
        return max(0, math.floor((now - self.t0) * self.hz))

    def edge_time(self, edge: int) -> float:
        return self.t0 + edge / (2 * self.hz)

    def next_edge(self, now: float) -> int:
        return max(2, math.floor((now - self.t0) * 2 * self.hz) + 1)

    async def value(
        self, *, extra: Mapping[str, Any] | None = None, timeout: float | None = None, **kwargs: Any
    ) -> int:
        return self.count_at(time.monotonic())


class FakeGPIOPin(Board.GPIOPin):
    """A level is a PWM signal at 0 % or 100 %; ``get`` samples the waveform at the current time."""

    def __init__(self, name: str, *, t0: float) -> None:
        super().__init__(name)
        self._t0 = t0
        self.duty_cycle = 0.0
        self.frequency_hz = DEFAULT_PWM_HZ

    def level(self) -> bool:
        if self.duty_cycle >= 1.0 or self.duty_cycle <= 0.0:
            return self.duty_cycle >= 1.0
        phase = ((time.monotonic() - self._t0) * self.frequency_hz) % 1.0
        return phase < self.duty_cycle

    async def set(
        self, high: bool, *, extra: Mapping[str, Any] | None = None, timeout: float | None = None, **kwargs: Any
    ) -> None:
        self.duty_cycle = 1.0 if high else 0.0

    async def get(
        self, *, extra: Mapping[str, Any] | None = None, timeout: float | None = None, **kwargs: Any
    ) -> bool:
        return self.level()

    async def get_pwm(
        self, *, extra: Mapping[str, Any] | None = None, timeout: float | None = None, **kwargs: Any
    ) -> float:
        return self.duty_cycle

    async def set_pwm(
        self, duty_cycle: float, *, extra: Mapping[str, Any] | None = None, timeout: float | None = None, **kwargs: Any
    ) -> None:
        if not (isinstance(duty_cycle, int | float) and 0.0 <= duty_cycle <= 1.0):
            raise ValidationError(f"pin {self.name!r}: duty cycle must be within [0, 1], got {duty_cycle!r}")
        self.duty_cycle = float(duty_cycle)

    async def get_pwm_frequency(
        self, *, extra: Mapping[str, Any] | None = None, timeout: float | None = None, **kwargs: Any
    ) -> int:
        return self.frequency_hz

    async def set_pwm_frequency(
        self, frequency: int, *, extra: Mapping[str, Any] | None = None, timeout: float | None = None, **kwargs: Any
    ) -> None:
        """0 restores the default frequency, as on RDK boards."""
        if isinstance(frequency, bool) or not isinstance(frequency, int) or frequency < 0:
            raise ValidationError(f"pin {self.name!r}: frequency must be a non-negative integer, got {frequency!r}")
        self.frequency_hz = frequency or DEFAULT_PWM_HZ
