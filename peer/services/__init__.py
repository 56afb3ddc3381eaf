"""The built-in service APIs; importing this package registers them all."""

from . import generic

__all__ = ["generic"]
