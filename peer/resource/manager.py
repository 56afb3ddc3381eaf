"""The robot's live resources, looked up by full name or by a unique short name."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TypeVar

from ..errors import DuplicateResourceError, ResourceNotFoundError
from .base import ResourceBase
from .registry import Registry
from .types import API, ResourceName

logger = logging.getLogger(__name__)

T = TypeVar("T", bound=ResourceBase)


class ResourceManager:
    """Holds resources by :class:`ResourceName`.

    A remote resource (``remote1:cam``) is also reachable by its short name (``cam``) while
    that short name is unique across remotes and no local resource has it. Everything runs on
    one event loop, so no lock is held across ``await`` (a resource's ``close`` may take time).
    """

    def __init__(self, resources: Iterable[ResourceBase] = ()) -> None:
        self.resources: dict[ResourceName, ResourceBase] = {}
        self._short_names: dict[tuple[API, str], list[ResourceName]] = {}
        for resource in resources:
            self.register(resource)

    def register(self, resource: ResourceBase) -> ResourceName:
        Registry.lookup_api(resource.API)  # an unserved API is a programming error: fail early
        rn = resource.get_resource_name(resource.name)
        if rn in self.resources:
            raise DuplicateResourceError(str(rn))
        self.resources[rn] = resource
        if rn.is_remote:
            self._short_names.setdefault((rn.api, rn.short_name), []).append(rn)
        return rn

    def resource_names(self) -> list[ResourceName]:
        return list(self.resources)

    def _resolve(self, name: ResourceName) -> ResourceBase | None:
        found = self.resources.get(name)
        if found is not None:
            return found
        candidates = self._short_names.get((name.api, name.name), [])
        if len(candidates) == 1:
            return self.resources[candidates[0]]
        return None

    def get_resource(self, of_type: type[T], name: ResourceName) -> T:
        resource = self._resolve(name)
        if resource is None or not isinstance(resource, of_type):
            raise ResourceNotFoundError(name.subtype, name.name)
        return resource

    def get_resource_by_name(self, api: API, name: str) -> ResourceBase:
        resource = self._resolve(ResourceName.of(api, name))
        if resource is None:
            raise ResourceNotFoundError(api.resource_subtype, name)
        return resource

    async def remove_resource(self, name: ResourceName) -> None:
        """Forget the resource, then close it; a failing close still removes it."""
        resource = self.resources.pop(name, None)
        if resource is None:
            raise ResourceNotFoundError(name.subtype, name.name)
        if name.is_remote:
            key = (name.api, name.short_name)
            longs = self._short_names.get(key, [])
            if name in longs:
                longs.remove(name)
            if not longs:
                self._short_names.pop(key, None)
        await resource.close()

    async def close(self) -> None:
        """Close every resource; errors are logged, never raised, so shutdown always finishes."""
        for name in list(self.resources):
            try:
                await self.remove_resource(name)
            except Exception:
                logger.exception("error while closing %s", name)
