"""Client sessions and the safety stop that Viam clients rely on.

A client that moves an actuator opens a session (StartSession) and heartbeats it. Calls that
carry the session id (``viam-sid`` metadata) to a *safety-heartbeat-monitored* method make that
session the resource's last mover. If the heartbeats lapse for longer than the window, the
session expires and every resource it was the last mover of is stopped: a robot must not keep
driving after its operator's connection died.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from .errors import SessionExpiredError
from .resource.types import ResourceName

logger = logging.getLogger(__name__)

SESSION_METADATA_KEY = "viam-sid"
DEFAULT_HEARTBEAT_WINDOW = 2.0

StopResource = Callable[[ResourceName], Coroutine[Any, Any, None]]


@dataclass
class Session:
    id: str
    heartbeat_window: float
    peer: str = ""
    deadline: float = 0.0
    expired: bool = False
    timer: asyncio.TimerHandle | None = field(default=None, repr=False)


class SessionManager:
    """Owns sessions, their expiry timers and which session last moved each resource."""

    def __init__(self, stop_resource: StopResource, heartbeat_window: float = DEFAULT_HEARTBEAT_WINDOW) -> None:
        self.heartbeat_window = heartbeat_window
        self._stop_resource = stop_resource
        self._sessions: dict[str, Session] = {}
        self._last_mover: dict[ResourceName, str] = {}
        self._stop_tasks: set[asyncio.Task[None]] = set()

    def list(self) -> list[Session]:
        return [s for s in self._sessions.values() if not s.expired]

    def start(self, resume: str = "", peer: str = "") -> Session:
        """A new session, or the resumed one while it is still alive."""
        if resume:
            existing = self._sessions.get(resume)
            if existing is None or existing.expired:
                raise SessionExpiredError()
            self.heartbeat(resume)
            return existing
        session = Session(id=str(uuid.uuid4()), heartbeat_window=self.heartbeat_window, peer=peer)
        self._sessions[session.id] = session
        self._arm(session)
        logger.info("session %s started by %s", session.id, peer or "?")
        return session

    def heartbeat(self, session_id: str) -> Session:
        session = self.get(session_id)
        self._arm(session)
        return session

    def get(self, session_id: str) -> Session:
        session = self._sessions.get(session_id)
        if session is None or session.expired:
            raise SessionExpiredError()
        return session

    def associate(self, session_id: str, name: ResourceName) -> None:
        """Record that this session was the last to call a monitored method on ``name``."""
        self._last_mover[name] = session_id

    def _arm(self, session: Session) -> None:
        if session.timer is not None:
            session.timer.cancel()
        session.deadline = time.monotonic() + session.heartbeat_window
        session.timer = asyncio.get_running_loop().call_later(session.heartbeat_window, self._expire, session.id)

    def _expire(self, session_id: str) -> None:
        session = self._sessions.pop(session_id, None)
        if session is None:
            return
        session.expired = True
        session.timer = None
        moved = [name for name, owner in self._last_mover.items() if owner == session_id]
        for name in moved:
            del self._last_mover[name]
        logger.warning("session %s expired; stopping %d resource(s) it moved", session_id, len(moved))
        for name in moved:
            task = asyncio.get_running_loop().create_task(self._stop(name, session_id))
            self._stop_tasks.add(task)
            task.add_done_callback(self._stop_tasks.discard)

    async def _stop(self, name: ResourceName, session_id: str) -> None:
        try:
            await self._stop_resource(name)
        except Exception:
            logger.exception("could not stop %s after session %s expired", name, session_id)

    async def close(self) -> None:
        for session in self._sessions.values():
            if session.timer is not None:
                session.timer.cancel()
        self._sessions.clear()
        if self._stop_tasks:
            await asyncio.wait(set(self._stop_tasks), timeout=5)
