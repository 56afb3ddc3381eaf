"""The built-in component and service APIs; importing this package registers them all."""

from . import camera, gripper, movement_sensor, sensor

__all__ = ["camera", "gripper", "movement_sensor", "sensor"]
