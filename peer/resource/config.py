"""The parsed form of one configured resource, as handed to creators and validators."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .types import API, Model, ResourceName


@dataclass(frozen=True)
class ResourceConfig:
    name: str
    api: API
    model: Model
    attributes: Mapping[str, Any] = field(default_factory=dict)
    depends_on: tuple[str, ...] = ()
    #: Where this entry sits in the config file, for error messages (``components[2]``).
    path: str = ""

    @property
    def resource_name(self) -> ResourceName:
        return ResourceName.of(self.api, self.name)
