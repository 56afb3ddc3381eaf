"""argparse ``type=`` callables from the project's own parsers."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def from_parser(parse: Callable[[str], T]) -> Callable[[str], T]:
    """A ``type=`` for argparse from a ``parse`` that raises ValueError with the reason: argparse's
    own handling of ValueError prints only "invalid value", so the reason is passed on instead."""

    def convert(value: str) -> T:
        try:
            return parse(value)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return convert
