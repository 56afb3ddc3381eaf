"""RobotService: the robot-wide RPCs (names, status, operations, sessions, stop)."""

from .service import RobotService

__all__ = ["RobotService"]
