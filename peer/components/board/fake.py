"""A board with configurable analog readers and digital interrupts, and GPIO pins made on first use.

Analog readers follow slow sine waves, interrupts tick as square waves at ``tick_hz``; both are
derived from the board clock, so nothing runs in the background. ``stream_ticks`` sleeps until
each next edge, so a stream lives exactly as long as its consumer keeps iterating.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import timedelta
from typing import Any

from ...errors import ResourceNotFoundError, ValidationError
from ...gen.viam.component.board.v1 import board_pb2
from ...resource import ResourceBase, ResourceConfig, ResourceName
from .api import Board
from .pins import FakeAnalog, FakeDigitalInterrupt, FakeGPIOPin

DEFAULT_ANALOGS = ("a1", "a2")
DEFAULT_INTERRUPTS = ("di1", "di2")
DEFAULT_TICK_HZ = 10.0
DEFAULT_ANALOG_PERIOD_S = 5.0


def _names(config: ResourceConfig, key: str, default: Sequence[str]) -> list[str]:
    value = config.attributes.get(key, list(default))
    path = f"{config.path}.attributes.{key}"
    if not isinstance(value, list) or not all(isinstance(n, str) and n for n in value):
        raise ValidationError("must be a list of non-empty names", path)
    if len(set(value)) != len(value):
        raise ValidationError("names must be unique", path)
    return value


def _positive(config: ResourceConfig, key: str, default: float) -> float:
    value = config.attributes.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < math.inf:
        raise ValidationError("must be a positive number", f"{config.path}.attributes.{key}")
    return float(value)


class FakeBoard(Board):
    """Attributes: ``analogs`` and ``digital_interrupts`` (lists of names), ``tick_hz`` and
    ``analog_period_s``. Any non-empty GPIO pin name is accepted, as on a breakout header."""

    def __init__(
        self,
        name: str,
        *,
        analogs: Sequence[str] = DEFAULT_ANALOGS,
        digital_interrupts: Sequence[str] = DEFAULT_INTERRUPTS,
        tick_hz: float = DEFAULT_TICK_HZ,
        analog_period_s: float = DEFAULT_ANALOG_PERIOD_S,
    ) -> None:
        super().__init__(name)
        self.t0 = time.monotonic()
        self.analogs = {
            n: FakeAnalog(n, t0=self.t0, period_s=analog_period_s, phase=i * math.pi / 2)
            for i, n in enumerate(analogs)
        }
        self.interrupts = {n: FakeDigitalInterrupt(n, t0=self.t0, hz=tick_hz) for n in digital_interrupts}
        self.pins: dict[str, FakeGPIOPin] = {}
        self.power_mode: board_pb2.PowerMode.ValueType = board_pb2.POWER_MODE_NORMAL
        self._power_mode_until: float | None = None

    @staticmethod
    def validate(config: ResourceConfig) -> list[str]:
        _names(config, "analogs", DEFAULT_ANALOGS)
        _names(config, "digital_interrupts", DEFAULT_INTERRUPTS)
        _positive(config, "tick_hz", DEFAULT_TICK_HZ)
        _positive(config, "analog_period_s", DEFAULT_ANALOG_PERIOD_S)
        return []

    @classmethod
    def new(cls, config: ResourceConfig, dependencies: Mapping[ResourceName, ResourceBase]) -> FakeBoard:
        return cls(
            config.name,
            analogs=_names(config, "analogs", DEFAULT_ANALOGS),
            digital_interrupts=_names(config, "digital_interrupts", DEFAULT_INTERRUPTS),
            tick_hz=_positive(config, "tick_hz", DEFAULT_TICK_HZ),
            analog_period_s=_positive(config, "analog_period_s", DEFAULT_ANALOG_PERIOD_S),
        )

    async def analog_by_name(self, name: str) -> FakeAnalog:
        try:
            return self.analogs[name]
        except KeyError:
            raise ResourceNotFoundError("analog", name) from None

    async def digital_interrupt_by_name(self, name: str) -> FakeDigitalInterrupt:
        try:
            return self.interrupts[name]
        except KeyError:
            raise ResourceNotFoundError("digital interrupt", name) from None

    async def gpio_pin_by_name(self, name: str) -> FakeGPIOPin:
        if not name:
            raise ValidationError("a GPIO pin name is required")
        pin = self.pins.get(name)
        if pin is None:
            pin = self.pins[name] = FakeGPIOPin(name, t0=self.t0)
        return pin

    def current_power_mode(self) -> board_pb2.PowerMode.ValueType:
        if self._power_mode_until is not None and time.monotonic() >= self._power_mode_until:
            self.power_mode, self._power_mode_until = board_pb2.POWER_MODE_NORMAL, None
        return self.power_mode

    async def set_power_mode(
        self,
        mode: board_pb2.PowerMode.ValueType,
        duration: timedelta | None = None,
        *,
        extra: Mapping[str, Any] | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> None:
        if mode not in (board_pb2.POWER_MODE_NORMAL, board_pb2.POWER_MODE_OFFLINE_DEEP):
            raise ValidationError(f"power mode must be POWER_MODE_NORMAL or POWER_MODE_OFFLINE_DEEP, got {mode}")
        if duration is not None and duration <= timedelta(0):
            raise ValidationError(f"power mode duration must be positive, got {duration}")
        self.power_mode = mode
        self._power_mode_until = None if duration is None else time.monotonic() + duration.total_seconds()

    async def stream_ticks(
        self,
        interrupts: Sequence[Board.DigitalInterrupt],
        *,
        extra: Mapping[str, Any] | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[Board.Tick]:
        if not interrupts:
            raise ValidationError("name at least one digital interrupt to stream ticks from")
        ours = [await self.digital_interrupt_by_name(di.name) for di in interrupts]
        return self._ticks(ours)

    async def _ticks(self, interrupts: list[FakeDigitalInterrupt]) -> AsyncIterator[Board.Tick]:
        """Every edge after the stream starts, in time order; simultaneous edges in request order."""
        now = time.monotonic()
        next_edge = [di.next_edge(now) for di in interrupts]
        while True:
            i = min(range(len(interrupts)), key=lambda k: (interrupts[k].edge_time(next_edge[k]), k))
            di, edge = interrupts[i], next_edge[i]
            at = di.edge_time(edge)
            delay = at - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            next_edge[i] = edge + 1
            yield Board.Tick(pin_name=di.name, time=round((at - self.t0) * 1e9), high=edge % 2 == 0)

    async def get_status(self, *, timeout: float | None = None, **kwargs: Any) -> Mapping[str, Any]:
        now = time.monotonic()
        return {
            "analogs": {name: analog.sample() for name, analog in self.analogs.items()},
            "digital_interrupts": {name: di.count_at(now) for name, di in self.interrupts.items()},
            "power_mode": board_pb2.PowerMode.Name(self.current_power_mode()),
        }
