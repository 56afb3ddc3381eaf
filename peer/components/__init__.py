"""The built-in component and service APIs; importing this package registers them all."""

from . import sensor

__all__ = ["sensor"]
