"""Shared fixtures: every test runs against its own copy of the registry."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import peer.components
import peer.services  # noqa: F401
from peer.resource import Registry


@pytest.fixture(autouse=True)
def isolated_registry() -> Iterator[None]:
    with Registry.isolated():
        yield
