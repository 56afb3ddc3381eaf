"""Compare our hand-written protos against viam-sdk's descriptors, name by name.

Why: our .proto files are written by hand, so a typo in a field number or type would silently break wire
compatibility with real Viam clients.  This script is the referee.  It must run in the separate
``.venv-viam`` (viam-sdk installed), because viam-sdk's generated modules register the same full names
(``viam.common.v1.Pose`` ...) as ours and the two cannot share one process.

Usage::

    .venv-viam/bin/python tests/wire/compare_descriptors.py OURS.fds

``OURS.fds`` is a serialized ``google.protobuf.FileDescriptorSet`` of our files (built by
tests/test_wire_descriptors.py).  Every message, enum, extension and service method we define must exist
upstream under the same full name with the same wire-relevant shape.  Upstream items we leave out are
listed under ``omitted`` for information only; differences in the safety-heartbeat method option (metadata,
not wire format) under ``warnings``.  The JSON report goes to stdout; exit status 1 means mismatches.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool

HEARTBEAT_OPTION = "viam.common.v1.safety_heartbeat_monitored"

FDP = descriptor_pb2.FieldDescriptorProto


def _import_viam_gen() -> list[str]:
    """Import every viam.gen *_pb2 module so the default pool knows all upstream names."""
    import viam.gen

    errors: list[str] = []
    for info in pkgutil.walk_packages(viam.gen.__path__, "viam.gen.", onerror=errors.append):
        if info.name.endswith("_pb2"):
            try:
                importlib.import_module(info.name)
            except Exception as exc:  # report, keep going: one broken module must not hide the rest
                errors.append(f"{info.name}: {exc!r}")
    return errors


def _walk_messages(prefix: str, messages: Any) -> Iterator[tuple[str, descriptor_pb2.DescriptorProto]]:
    for msg in messages:
        full = f"{prefix}.{msg.name}" if prefix else msg.name
        yield full, msg
        yield from _walk_messages(full, msg.nested_type)


def _walk_enums(
    fdp: descriptor_pb2.FileDescriptorProto,
) -> Iterator[tuple[str, descriptor_pb2.EnumDescriptorProto]]:
    pkg = fdp.package
    for enum in fdp.enum_type:
        yield (f"{pkg}.{enum.name}" if pkg else enum.name), enum
    for full, msg in _walk_messages(pkg, fdp.message_type):
        for enum in msg.enum_type:
            yield f"{full}.{enum.name}", enum


def _walk_extensions(
    fdp: descriptor_pb2.FileDescriptorProto,
) -> Iterator[tuple[str, descriptor_pb2.FieldDescriptorProto]]:
    pkg = fdp.package
    for ext in fdp.extension:
        yield (f"{pkg}.{ext.name}" if pkg else ext.name), ext
    for full, msg in _walk_messages(pkg, fdp.message_type):
        for ext in msg.extension:
            yield f"{full}.{ext.name}", ext


@dataclass
class _UpstreamIndex:
    """Upstream FileDescriptorProtos, indexed by full name, loaded lazily from the default pool."""

    pool: descriptor_pool.DescriptorPool
    messages: dict[str, descriptor_pb2.DescriptorProto] = field(default_factory=dict)
    enums: dict[str, descriptor_pb2.EnumDescriptorProto] = field(default_factory=dict)
    services: dict[str, descriptor_pb2.ServiceDescriptorProto] = field(default_factory=dict)
    extensions: dict[str, descriptor_pb2.FieldDescriptorProto] = field(default_factory=dict)
    loaded_files: set[str] = field(default_factory=set)

    def _load(self, file_desc: Any) -> None:
        if file_desc.name in self.loaded_files:
            return
        self.loaded_files.add(file_desc.name)
        fdp = descriptor_pb2.FileDescriptorProto()
        file_desc.CopyToProto(fdp)
        pkg = fdp.package
        self.messages.update(_walk_messages(pkg, fdp.message_type))
        self.enums.update(_walk_enums(fdp))
        self.extensions.update(_walk_extensions(fdp))
        for svc in fdp.service:
            self.services[f"{pkg}.{svc.name}" if pkg else svc.name] = svc

    def _find(self, finder: str, name: str) -> bool:
        try:
            desc = getattr(self.pool, finder)(name)
        except KeyError:
            return False
        self._load(desc.file)
        return True

    def message(self, name: str) -> descriptor_pb2.DescriptorProto | None:
        if name not in self.messages:
            self._find("FindMessageTypeByName", name)
        return self.messages.get(name)

    def enum(self, name: str) -> descriptor_pb2.EnumDescriptorProto | None:
        if name not in self.enums:
            self._find("FindEnumTypeByName", name)
        return self.enums.get(name)

    def service(self, name: str) -> descriptor_pb2.ServiceDescriptorProto | None:
        if name not in self.services:
            self._find("FindServiceByName", name)
        return self.services.get(name)

    def extension(self, name: str) -> descriptor_pb2.FieldDescriptorProto | None:
        if name not in self.extensions:
            self._find("FindExtensionByName", name)
        return self.extensions.get(name)


def _oneof_name(msg: descriptor_pb2.DescriptorProto, fld: descriptor_pb2.FieldDescriptorProto) -> str | None:
    """Name of the real (non-synthetic) oneof the field belongs to, or None."""
    if fld.proto3_optional or not fld.HasField("oneof_index"):
        return None
    return msg.oneof_decl[fld.oneof_index].name


def _shape(
    msg: descriptor_pb2.DescriptorProto | None, fld: descriptor_pb2.FieldDescriptorProto
) -> dict[str, Any]:
    """Everything about a field that matters on the wire (and for presence semantics)."""
    return {
        "number": fld.number,
        "type": FDP.Type.Name(fld.type),
        "label": FDP.Label.Name(fld.label),
        "proto3_optional": fld.proto3_optional,
        "oneof": _oneof_name(msg, fld) if msg is not None else None,
        "type_name": fld.type_name.lstrip("."),
    }


@dataclass
class Report:
    checked_files: int = 0
    checked_messages: int = 0
    checked_fields: int = 0
    checked_enums: int = 0
    checked_enum_values: int = 0
    checked_services: int = 0
    checked_methods: int = 0
    checked_extensions: int = 0
    mismatches: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    omitted: list[str] = field(default_factory=list)
    import_errors: list[str] = field(default_factory=list)


def _heartbeat_flag(options: descriptor_pb2.MethodOptions, pool: descriptor_pool.DescriptorPool) -> bool:
    try:
        ext: Any = pool.FindExtensionByName(HEARTBEAT_OPTION)
    except KeyError:
        return False
    # Re-parse so the extension is recognised even if it was read as an unknown field.
    opts = descriptor_pb2.MethodOptions.FromString(options.SerializeToString())
    return bool(opts.HasExtension(ext) and opts.Extensions[ext])


def compare(fds: descriptor_pb2.FileDescriptorSet, pool: descriptor_pool.DescriptorPool) -> Report:
    up = _UpstreamIndex(pool)
    rep = Report()
    for fdp in fds.file:
        rep.checked_files += 1
        pkg = fdp.package

        for full, msg in _walk_messages(pkg, fdp.message_type):
            rep.checked_messages += 1
            theirs = up.message(full)
            if theirs is None:
                rep.mismatches.append(f"{fdp.name}: message {full} does not exist upstream")
                continue
            their_fields = {f.name: f for f in theirs.field}
            for fld in msg.field:
                rep.checked_fields += 1
                tf = their_fields.get(fld.name)
                if tf is None:
                    rep.mismatches.append(f"{full}.{fld.name}: field does not exist upstream")
                    continue
                ours_shape, their_shape = _shape(msg, fld), _shape(theirs, tf)
                for key, value in ours_shape.items():
                    if value != their_shape[key]:
                        rep.mismatches.append(
                            f"{full}.{fld.name}: {key} is {value!r}, upstream {their_shape[key]!r}"
                        )
            ours_names = {f.name for f in msg.field}
            rep.omitted += [
                f"field {full}.{f.name} = {f.number}" for f in theirs.field if f.name not in ours_names
            ]

        for full, enum in _walk_enums(fdp):
            rep.checked_enums += 1
            their_enum = up.enum(full)
            if their_enum is None:
                rep.mismatches.append(f"{fdp.name}: enum {full} does not exist upstream")
                continue
            their_values = {v.name: v.number for v in their_enum.value}
            for val in enum.value:
                rep.checked_enum_values += 1
                if val.name not in their_values:
                    rep.mismatches.append(f"{full}.{val.name}: enum value does not exist upstream")
                elif their_values[val.name] != val.number:
                    rep.mismatches.append(
                        f"{full}.{val.name}: number is {val.number}, upstream {their_values[val.name]}"
                    )
            ours_values = {v.name for v in enum.value}
            rep.omitted += [f"enum value {full}.{n}" for n in their_values if n not in ours_values]

        for full, ext in _walk_extensions(fdp):
            rep.checked_extensions += 1
            their_ext = up.extension(full)
            if their_ext is None:
                rep.mismatches.append(f"{fdp.name}: extension {full} does not exist upstream")
                continue
            ours_shape, their_shape = _shape(None, ext), _shape(None, their_ext)
            ours_shape["extendee"], their_shape["extendee"] = (
                ext.extendee.lstrip("."),
                their_ext.extendee.lstrip("."),
            )
            for key, value in ours_shape.items():
                if value != their_shape[key]:
                    rep.mismatches.append(
                        f"extension {full}: {key} is {value!r}, upstream {their_shape[key]!r}"
                    )

        for svc in fdp.service:
            rep.checked_services += 1
            full = f"{pkg}.{svc.name}" if pkg else svc.name
            their_svc = up.service(full)
            if their_svc is None:
                rep.mismatches.append(f"{fdp.name}: service {full} does not exist upstream")
                continue
            their_methods = {m.name: m for m in their_svc.method}
            for method in svc.method:
                rep.checked_methods += 1
                tm = their_methods.get(method.name)
                where = f"/{full}/{method.name}"
                if tm is None:
                    rep.mismatches.append(f"{where}: method does not exist upstream")
                    continue
                for key in ("input_type", "output_type"):
                    mine, theirs_name = getattr(method, key).lstrip("."), getattr(tm, key).lstrip(".")
                    if mine != theirs_name:
                        rep.mismatches.append(f"{where}: {key} is {mine}, upstream {theirs_name}")
                for key in ("client_streaming", "server_streaming"):
                    if getattr(method, key) != getattr(tm, key):
                        rep.mismatches.append(
                            f"{where}: {key} is {getattr(method, key)}, upstream {getattr(tm, key)}"
                        )
                # Metadata only (not on the wire), so a difference is a warning, not a mismatch.
                mine_hb, their_hb = _heartbeat_flag(method.options, pool), _heartbeat_flag(tm.options, pool)
                if mine_hb != their_hb:
                    rep.warnings.append(
                        f"{where}: safety_heartbeat_monitored is {mine_hb}, upstream {their_hb}"
                    )
            ours_methods = {m.name for m in svc.method}
            rep.omitted += [f"method /{full}/{n}" for n in their_methods if n not in ours_methods]
    return rep


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(f"usage: {argv[0]} OURS.fds", file=sys.stderr)
        return 2
    import_errors = _import_viam_gen()
    with open(argv[1], "rb") as fh:
        fds = descriptor_pb2.FileDescriptorSet.FromString(fh.read())
    report = compare(fds, descriptor_pool.Default())
    report.import_errors = import_errors
    json.dump(report.__dict__, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")
    return 1 if report.mismatches else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
