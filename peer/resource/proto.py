"""Wire forms of the resource value types."""

from __future__ import annotations

from ..gen.viam.common.v1 import common_pb2
from .types import ResourceName


def resource_name_to_proto(name: ResourceName) -> common_pb2.ResourceName:
    return common_pb2.ResourceName(namespace=name.namespace, type=name.type, subtype=name.subtype, name=name.name)


def resource_name_from_proto(msg: common_pb2.ResourceName) -> ResourceName:
    return ResourceName(msg.namespace, msg.type, msg.subtype, msg.name)
