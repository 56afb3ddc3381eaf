"""A parallel two-finger gripper, with an optional object between its fingers.

The opening (mm) moves at a constant speed (``max_width_mm / travel_time_s``) and is evaluated
lazily from the start of the current motion, as in the fake servo: nothing runs in the background.
When an object of ``object_width_mm`` sits between open-enough fingers, closing stops on it and
the gripper holds it (``grab`` returns True); with no object, ``grab`` closes fully and returns
False. ``stop``, a newer command, or cancelling the call halts the fingers where they are.
DoCommand ``{"object_width_mm": w}`` places an object (``null`` or 0 removes it), so a client can
script both outcomes.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

from ...errors import NotSupportedError, ValidationError
from ...gen.viam.common.v1 import common_pb2
from ...operations import Operation
from ...resource import ResourceBase, ResourceConfig, ResourceName
from ...resource.motion import wait_for_motion
from .api import Gripper, HoldingStatus

logger = logging.getLogger(__name__)

#: How often a motion checks for cancellation (seconds).
#: Finger and body size for GetGeometries (mm).
FINGER_MM, BODY_DEPTH_MM, BODY_HEIGHT_MM = 10.0, 30.0, 80.0

_MAX_WIDTH_LIMIT_MM, _MAX_TRAVEL_S = 1000.0, 10.0


def _positive(config: ResourceConfig, key: str, default: float, high: float) -> float:
    value = config.attributes.get(key, default)
    if not isinstance(value, int | float) or isinstance(value, bool) or not 0 < value <= high:
        raise ValidationError(f"must be a number in (0, {high:g}], not {value!r}", f"{config.path}.attributes.{key}")
    return float(value)


class FakeGripper(Gripper):
    """Opens and closes in ``travel_time_s`` (default 0.5 s) over ``max_width_mm`` (default 100)."""

    def __init__(
        self,
        name: str,
        *,
        max_width_mm: float = 100.0,
        travel_time_s: float = 0.5,
        object_width_mm: float | None = 40.0,
        start_open: bool = True,
    ) -> None:
        super().__init__(name)
        self.max_width_mm = max_width_mm
        self.speed_mm_per_s = max_width_mm / travel_time_s
        self.object_width_mm = object_width_mm or None
        start = max_width_mm if start_open else 0.0
        self._from = self._to = start
        self._t0 = self._t_end = time.monotonic()
        self._generation = 0
        self._holding = False

    @staticmethod
    def validate(config: ResourceConfig) -> list[str]:
        max_width = _positive(config, "max_width_mm", 100.0, _MAX_WIDTH_LIMIT_MM)
        _positive(config, "travel_time_s", 0.5, _MAX_TRAVEL_S)
        obj = config.attributes.get("object_width_mm", 40.0)
        if obj is not None and (
            not isinstance(obj, int | float) or isinstance(obj, bool) or not 0 <= obj < max_width
        ):
            raise ValidationError(
                f"must be null or a number in [0, max_width_mm={max_width:g}), not {obj!r}",
                f"{config.path}.attributes.object_width_mm",
            )
        if not isinstance(config.attributes.get("start_open", True), bool):
            raise ValidationError("must be true or false", f"{config.path}.attributes.start_open")
        return []

    @classmethod
    def new(cls, config: ResourceConfig, dependencies: Mapping[ResourceName, ResourceBase]) -> FakeGripper:
        attrs = config.attributes
        obj = attrs.get("object_width_mm", 40.0)
        return cls(
            config.name,
            max_width_mm=float(attrs.get("max_width_mm", 100.0)),
            travel_time_s=float(attrs.get("travel_time_s", 0.5)),
            object_width_mm=None if obj is None else float(obj),
            start_open=bool(attrs.get("start_open", True)),
        )

    # -- the fingers ------------------------------------------------------------------------------

    def width_mm(self, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        if now >= self._t_end:
            return self._to
        fraction = (now - self._t0) / (self._t_end - self._t0)
        return self._from + (self._to - self._from) * fraction

    def _move(self, target: float) -> int:
        now = time.monotonic()
        self._from = self.width_mm(now)
        self._to = target
        self._t0 = now
        self._t_end = now + abs(target - self._from) / self.speed_mm_per_s
        self._generation += 1
        return self._generation

    def _hold(self) -> None:
        self._move(self.width_mm())

    def _closing_target(self, wanted: float) -> float:
        """Where closing towards ``wanted`` ends: on the object, if one fits between the fingers."""
        obj = self.object_width_mm
        if obj is not None and obj <= self.width_mm() + 1e-9 and wanted < obj:
            return obj
        return wanted

    async def _run(self, generation: int, op: Operation, what: str) -> bool:
        """Wait for motion ``generation`` to end: True when it arrived, False when superseded."""
        return await wait_for_motion(op, is_current=lambda: self._generation == generation,
                                     ends_at=lambda: self._t_end, halt=self._hold,
                                     what=f"gripper {self.name!r}: {what}")

    # -- API --------------------------------------------------------------------------------------

    async def open(self, *, extra: Mapping[str, Any] | None = None, timeout: float | None = None,
                   **kwargs: Any) -> None:
        self._holding = False
        await self._run(self._move(self.max_width_mm), self.get_operation(kwargs), "open")

    async def grab(self, *, extra: Mapping[str, Any] | None = None, timeout: float | None = None,
                   **kwargs: Any) -> bool:
        target = self._closing_target(0.0)
        self._holding = False
        arrived = await self._run(self._move(target), self.get_operation(kwargs), "grab")
        self._holding = arrived and target > 0.0
        logger.debug("gripper %s grab ended at %.1f mm, holding=%s", self.name, self.width_mm(), self._holding)
        return self._holding

    async def go_to_inputs(
        self, values: Sequence[float], *, extra: Mapping[str, Any] | None = None, timeout: float | None = None,
        **kwargs: Any,
    ) -> None:
        if len(values) != 1:
            raise ValidationError(f"a parallel gripper has one input (the opening in mm), got {len(values)}")
        wanted = values[0]
        if not math.isfinite(wanted) or not 0.0 <= wanted <= self.max_width_mm:
            raise ValidationError(f"opening must be in [0, {self.max_width_mm:g}] mm, got {wanted!r}")
        target = self._closing_target(wanted)
        self._holding = False
        arrived = await self._run(self._move(target), self.get_operation(kwargs), "go_to_inputs")
        self._holding = arrived and target != wanted

    async def get_current_inputs(
        self, *, extra: Mapping[str, Any] | None = None, timeout: float | None = None, **kwargs: Any
    ) -> Sequence[float]:
        return [self.width_mm()]

    async def is_holding_something(
        self, *, extra: Mapping[str, Any] | None = None, timeout: float | None = None, **kwargs: Any
    ) -> HoldingStatus:
        return HoldingStatus(
            self._holding, meta={"width_mm": self.width_mm(), "object_width_mm": self.object_width_mm}
        )

    async def stop(self, *, extra: Mapping[str, Any] | None = None, timeout: float | None = None,
                   **kwargs: Any) -> None:
        self._hold()

    async def is_moving(self) -> bool:
        return time.monotonic() < self._t_end

    async def do_command(
        self, command: Mapping[str, Any], *, timeout: float | None = None, **kwargs: Any
    ) -> Mapping[str, Any]:
        if set(command) != {"object_width_mm"}:
            raise NotSupportedError(
                f"fake gripper {self.name!r} understands only {{\"object_width_mm\": number or null}},"
                f" not {sorted(command)}"
            )
        obj = command["object_width_mm"]
        if obj is not None and (
            not isinstance(obj, int | float) or isinstance(obj, bool) or not 0 <= obj < self.max_width_mm
        ):
            raise ValidationError(f"object_width_mm must be null or in [0, {self.max_width_mm:g}), got {obj!r}")
        self.object_width_mm = float(obj) if obj else None
        self._holding = False  # a new (or no) object is not in the grip yet
        return {"object_width_mm": self.object_width_mm}

    async def get_geometries(
        self, *, extra: Mapping[str, Any] | None = None, timeout: float | None = None, **kwargs: Any
    ) -> Sequence[common_pb2.Geometry]:
        """The body with fingers fully open: a box on the mount, centred on the gripper's z axis."""
        dims = common_pb2.Vector3(x=self.max_width_mm + 2 * FINGER_MM, y=BODY_DEPTH_MM, z=BODY_HEIGHT_MM)
        return [
            common_pb2.Geometry(
                center=common_pb2.Pose(z=BODY_HEIGHT_MM / 2, o_z=1.0),
                box=common_pb2.RectangularPrism(dims_mm=dims),
                label=self.name,
            )
        ]

    async def get_status(self, *, timeout: float | None = None, **kwargs: Any) -> Mapping[str, Any]:
        now = time.monotonic()
        return {"is_moving": now < self._t_end, "width_mm": self.width_mm(now), "is_holding_something": self._holding}

    async def close(self) -> None:
        self._hold()
