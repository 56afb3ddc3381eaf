"""Operations: every resource call runs as a cancellable, listable operation.

The handler table wraps each RPC so that, on every transport, the call gets an
:class:`Operation` (id from the client's ``opid`` metadata when it sends one). Resource code
reaches it through ``self.get_operation(kwargs)`` and can poll :meth:`Operation.is_cancelled`;
``CancelOperation`` also cancels the task that runs the call, so a handler that never polls
still stops.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .resource.types import ResourceName

OPERATION_ARG_NAME = "viam_operation"
OPID_METADATA_KEY = "opid"

current_operation: contextvars.ContextVar[Operation | None] = contextvars.ContextVar(
    "peerbot_current_operation", default=None
)


class Operation:
    """One running call. ``arguments`` is a JSON-like summary for GetOperations."""

    ARG_NAME = OPERATION_ARG_NAME

    def __init__(
        self,
        method: str,
        *,
        opid: uuid.UUID | None = None,
        session_id: str = "",
        arguments: Mapping[str, Any] | None = None,
        task: asyncio.Task[Any] | None = None,
    ) -> None:
        self.id = opid or uuid.uuid4()
        self.method = method
        self.session_id = session_id
        self.arguments: dict[str, Any] = dict(arguments or {})
        self.time_started = time.time()
        self._task = task
        self._cancel_requested = False
        self._done = asyncio.Event()
        #: Resources the call looked up; sessions use this to know what to stop.
        self.resources: list[ResourceName] = []
        self.on_resource: Callable[[ResourceName], None] | None = None

    def note_resource(self, name: ResourceName) -> None:
        if name not in self.resources:
            self.resources.append(name)
        if self.on_resource is not None:
            self.on_resource(name)

    @property
    def cancel_requested(self) -> bool:
        return self._cancel_requested

    async def is_cancelled(self) -> bool:
        """True once cancelled; yields once so a pending task cancellation is delivered."""
        if self._cancel_requested:
            return True
        await asyncio.sleep(0)
        return self._cancel_requested

    def cancel(self) -> None:
        if self._cancel_requested or self._done.is_set():
            return
        self._cancel_requested = True
        if self._task is not None and self._task is not asyncio.current_task():
            self._task.cancel()

    def finish(self) -> None:
        self._done.set()

    @property
    def done(self) -> bool:
        return self._done.is_set()

    async def wait(self) -> None:
        await self._done.wait()

    def __repr__(self) -> str:
        return f"Operation({self.id}, {self.method})"

    @classmethod
    def noop(cls) -> Operation:
        """An operation that is never cancelled, for calls made outside any RPC."""
        return cls("noop-operation")


def opid_from_metadata(metadata: Mapping[str, str] | None) -> uuid.UUID | None:
    """The client-chosen id, or ``None`` when absent or not a UUID."""
    if not metadata:
        return None
    raw = metadata.get(OPID_METADATA_KEY)
    if not raw:
        return None
    try:
        return uuid.UUID(raw)
    except ValueError:
        return None


class OperationManager:
    """The robot's table of running operations."""

    def __init__(self) -> None:
        self._operations: dict[uuid.UUID, Operation] = {}

    def __len__(self) -> int:
        return len(self._operations)

    def list(self, session_id: str | None = None) -> list[Operation]:
        ops = sorted(self._operations.values(), key=lambda op: op.time_started)
        if session_id is None:
            return ops
        return [op for op in ops if op.session_id == session_id]

    def find(self, opid: str) -> Operation | None:
        try:
            key = uuid.UUID(opid)
        except ValueError:
            return None
        return self._operations.get(key)

    @contextmanager
    def track(
        self,
        method: str,
        metadata: Mapping[str, str] | None = None,
        *,
        session_id: str = "",
    ) -> Iterator[Operation]:
        """Register an operation for the current task for the duration of the block."""
        opid = opid_from_metadata(metadata)
        if opid is not None and opid in self._operations:
            opid = None  # a reused id must not shadow the running call
        op = Operation(method, opid=opid, session_id=session_id, task=asyncio.current_task())
        self._operations[op.id] = op
        token = current_operation.set(op)
        try:
            yield op
        finally:
            current_operation.reset(token)
            self._operations.pop(op.id, None)
            op.finish()

    def cancel_all(self) -> None:
        for op in list(self._operations.values()):
            op.cancel()
