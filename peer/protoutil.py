"""Conversions between protobuf well-known types and plain Python values."""

from __future__ import annotations

import datetime
import math
from collections.abc import Mapping, Sequence
from typing import Any

from google.protobuf import duration_pb2, struct_pb2, timestamp_pb2

from .errors import ValidationError


def value_to_python(value: struct_pb2.Value) -> Any:
    kind = value.WhichOneof("kind")
    if kind == "struct_value":
        return struct_to_dict(value.struct_value)
    if kind == "list_value":
        return [value_to_python(v) for v in value.list_value.values]
    if kind == "number_value":
        number = value.number_value
        return int(number) if number.is_integer() and abs(number) < 2**53 else number
    if kind == "string_value":
        return value.string_value
    if kind == "bool_value":
        return value.bool_value
    return None


def python_to_value(obj: Any, path: str = "") -> struct_pb2.Value:
    """JSON-like Python to a ``Value``; anything else is a :class:`ValidationError` naming where."""
    if obj is None:
        return struct_pb2.Value(null_value=struct_pb2.NULL_VALUE)
    if isinstance(obj, bool):
        return struct_pb2.Value(bool_value=obj)
    if isinstance(obj, int | float):
        number = float(obj)
        if not math.isfinite(number):
            raise ValidationError(f"{number} cannot be represented", path or "value")
        return struct_pb2.Value(number_value=number)
    if isinstance(obj, str):
        return struct_pb2.Value(string_value=obj)
    if isinstance(obj, bytes):
        return struct_pb2.Value(string_value=obj.hex())
    if isinstance(obj, Mapping):
        return struct_pb2.Value(struct_value=dict_to_struct(obj, path))
    if isinstance(obj, Sequence):
        return struct_pb2.Value(
            list_value=struct_pb2.ListValue(
                values=[python_to_value(v, f"{path}[{i}]") for i, v in enumerate(obj)]
            )
        )
    raise ValidationError(f"{type(obj).__name__} is not JSON-like", path or "value")


def struct_to_dict(struct: struct_pb2.Struct | None) -> dict[str, Any]:
    if struct is None:
        return {}
    return {key: value_to_python(value) for key, value in struct.fields.items()}


def dict_to_struct(obj: Mapping[str, Any] | None, path: str = "") -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    for key, value in (obj or {}).items():
        struct.fields[str(key)].CopyFrom(python_to_value(value, f"{path}.{key}" if path else str(key)))
    return struct


def dict_to_value_map(obj: Mapping[str, Any]) -> dict[str, struct_pb2.Value]:
    return {str(key): python_to_value(value, str(key)) for key, value in obj.items()}


def timestamp_from_epoch(seconds: float) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.FromNanoseconds(int(seconds * 1e9))
    return ts


def timestamp_now() -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(datetime.datetime.now(datetime.UTC))
    return ts


def duration_from_seconds(seconds: float) -> duration_pb2.Duration:
    duration = duration_pb2.Duration()
    duration.FromNanoseconds(int(seconds * 1e9))
    return duration
