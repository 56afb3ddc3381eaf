"""The built-in component APIs; importing this package registers them all."""

from . import arm, base, board, camera, generic, gripper, motor, movement_sensor, sensor, servo

__all__ = ["arm", "base", "board", "camera", "generic", "gripper", "motor", "movement_sensor", "sensor", "servo"]
