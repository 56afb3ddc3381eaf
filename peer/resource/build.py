"""Turn validated resource configs into live resources, dependencies first."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Mapping, Sequence

from ..errors import ValidationError
from .base import ResourceBase
from .config import ResourceConfig
from .registry import Registry
from .types import ResourceName

logger = logging.getLogger(__name__)


def dependency_order(configs: Sequence[ResourceConfig], implicit: Mapping[str, Sequence[str]]) -> list[ResourceConfig]:
    """Configs ordered so that each comes after what it depends on; a cycle is a ValidationError."""
    by_name = {c.name: c for c in configs}
    order: list[ResourceConfig] = []
    state: dict[str, str] = {}

    def visit(config: ResourceConfig, chain: list[str]) -> None:
        mark = state.get(config.name)
        if mark == "done":
            return
        if mark == "visiting":
            cycle = " -> ".join([*chain[chain.index(config.name):], config.name])
            raise ValidationError(f"dependency cycle: {cycle}", f"{config.path}.depends_on")
        state[config.name] = "visiting"
        for dep in (*config.depends_on, *implicit.get(config.name, ())):
            if dep in by_name:
                visit(by_name[dep], [*chain, config.name])
        state[config.name] = "done"
        order.append(config)

    for config in configs:
        visit(config, [])
    return order


async def build_resources(configs: Sequence[ResourceConfig]) -> list[ResourceBase]:
    """Validate every config (collecting implicit dependencies), then create in dependency order.

    A creator that fails closes what was already built, so nothing half-started keeps running.
    """
    implicit: dict[str, Sequence[str]] = {}
    names = {c.name for c in configs}
    for config in configs:
        validator = Registry.lookup_validator(config.api, config.model)
        try:
            deps = list(validator(config))
        except ValidationError:
            raise
        except Exception as exc:
            raise ValidationError(f"invalid attributes: {exc}", f"{config.path}.attributes") from exc
        for dep in deps:
            if dep not in names:
                raise ValidationError(f'needs resource "{dep}", which is not configured', config.path)
        implicit[config.name] = deps

    built: dict[str, ResourceBase] = {}
    try:
        for config in dependency_order(configs, implicit):
            deps_by_name: dict[ResourceName, ResourceBase] = {}
            for dep in (*config.depends_on, *implicit[config.name]):
                resource = built[dep]
                deps_by_name[resource.get_resource_name(resource.name)] = resource
            creator = Registry.lookup_resource_creator(config.api, config.model)
            try:
                created = creator(config, deps_by_name)
                if inspect.isawaitable(created):
                    created = await created
            except ValidationError:
                raise
            except Exception as exc:
                raise ValidationError(f"could not create {config.model}: {exc}", config.path) from exc
            built[config.name] = created
            logger.debug("built %s (%s)", config.resource_name, config.model)
    except BaseException:
        for resource in reversed(list(built.values())):
            try:
                await resource.close()
            except Exception:
                logger.exception("error closing %s after a failed start", resource.name)
        raise
    return [built[c.name] for c in configs]
