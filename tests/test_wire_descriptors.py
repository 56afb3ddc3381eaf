"""Wire conformance: every message, field, enum and RPC in our protos matches viam-sdk's.

Our .proto files are hand-written, so this is what proves they are wire-compatible with real Viam clients.
The comparison runs in the separate ``.venv-viam`` (viam-sdk registers the same full names as our generated
code, so the two cannot be imported into one process).  We hand it a FileDescriptorSet of our files.
Discovery is automatic: every ``*_pb2.py`` under signaling/gen and peer/gen is included.
"""

from __future__ import annotations

import importlib
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import descriptor_pb2

REPO_ROOT = Path(__file__).resolve().parent.parent
COMPARE_SCRIPT = REPO_ROOT / "tests" / "wire" / "compare_descriptors.py"
VIAM_PYTHON = REPO_ROOT / ".venv-viam" / "bin" / "python"
GEN_TREES = {"signaling/gen": "signaling/protos", "peer/gen": "peer/protos"}


def _our_file_descriptors() -> dict[str, Any]:
    """Import every generated *_pb2 module; map proto file name -> FileDescriptor."""
    files: dict[str, Any] = {}
    for gen in GEN_TREES:
        for path in sorted((REPO_ROOT / gen).rglob("*_pb2.py")):
            module = ".".join(path.relative_to(REPO_ROOT).with_suffix("").parts)
            descriptor = importlib.import_module(module).DESCRIPTOR
            files[descriptor.name] = descriptor
    return files


def _descriptor_set(files: dict[str, Any]) -> descriptor_pb2.FileDescriptorSet:
    """Our files only (google/* dependencies left out), dependencies before dependents."""
    fds = descriptor_pb2.FileDescriptorSet()
    done: set[str] = set()

    def add(name: str) -> None:
        if name in done or name not in files:
            return
        done.add(name)
        for dep in files[name].dependencies:
            add(dep.name)
        files[name].CopyToProto(fds.file.add())

    for name in sorted(files):
        add(name)
    return fds


def _run_compare(fds_path: Path) -> dict[str, Any]:
    if not VIAM_PYTHON.exists():
        pytest.fail(
            f"{VIAM_PYTHON} is missing. Run the project's set-up script, which creates .venv-viam "
            "(a separate venv with viam-sdk==0.85.1) used as the reference for wire conformance."
        )
    proc = subprocess.run(
        [str(VIAM_PYTHON), str(COMPARE_SCRIPT), str(fds_path)],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        cwd=REPO_ROOT,
    )
    try:
        report: dict[str, Any] = json.loads(proc.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"compare script failed (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return report


def test_every_proto_file_is_generated() -> None:
    files = _our_file_descriptors()
    sources = {
        p.relative_to(REPO_ROOT / protos).as_posix()
        for protos in GEN_TREES.values()
        for p in (REPO_ROOT / protos).rglob("*.proto")
    }
    assert sources, "no .proto sources found"
    assert sources == set(files), "generated code is stale: run .venv/bin/python scripts/gen_protos.py"


def test_our_protos_match_viam_sdk(tmp_path: Path) -> None:
    fds = _descriptor_set(_our_file_descriptors())
    fds_path = tmp_path / "ours.fds"
    fds_path.write_bytes(fds.SerializeToString())

    report = _run_compare(fds_path)

    assert report["mismatches"] == [], "protos differ from viam-sdk:\n" + "\n".join(report["mismatches"])
    assert report["checked_files"] == len(fds.file)
    assert report["checked_messages"] > 0
    assert report["checked_fields"] > 0
    assert report["checked_enum_values"] > 0
    assert report["checked_methods"] > 0
    assert report["checked_services"] >= 10
