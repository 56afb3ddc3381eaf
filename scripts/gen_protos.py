"""Regenerate the checked-in protobuf/grpclib code from our hand-written .proto files.

Why this script exists:

* protoc emits absolute imports that follow the proto path (``from viam.common.v1 import common_pb2``,
  ``import proto.rpc.webrtc.v1.signaling_pb2``).  Left alone, these would need ``viam`` and ``proto`` as
  top-level packages, which would clash with the real ``viam-sdk`` and pollute the namespace.  We rewrite
  them into package-relative imports so the code lives under ``signaling.gen`` and ``peer.gen``.
* The generated code is committed (as viam and grpclib do), so regeneration must be deterministic and
  there must be a cheap way to detect a stale tree: ``--check`` regenerates into a temporary directory and
  diffs it against the checked-in one (exit status 1 when they differ).

Run with the project venv (it provides grpcio-tools, grpclib's and mypy-protobuf's protoc plugins)::

    .venv/bin/python scripts/gen_protos.py           # rewrite signaling/gen and peer/gen
    .venv/bin/python scripts/gen_protos.py --check   # verify they are up to date
"""

from __future__ import annotations

import argparse
import filecmp
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Tree:
    """One protos → gen mapping."""

    protos: str  # repo-relative directory holding the .proto sources
    gen: str  # repo-relative output directory (an importable package)
    # Other trees whose protos may be imported; their generated modules are reached by absolute import.
    deps: tuple[str, ...] = ()


# Order matters only for readability: the signaling tree is the bottom layer (peer may import it).
TREES: tuple[Tree, ...] = (
    Tree(protos="signaling/protos", gen="signaling/gen"),
    Tree(protos="peer/protos", gen="peer/gen", deps=("signaling/protos",)),
)

_FROM_IMPORT = re.compile(r"^from ([\w.]+) import (\w+) as (\w+)$", re.MULTILINE)
_PLAIN_IMPORT = re.compile(r"^import ([\w.]+?)\.(\w+_pb2)$", re.MULTILINE)


def _site_packages_with(relpath: str) -> Path:
    """Return the sys.path entry that contains ``relpath`` (e.g. googleapis-common-protos' .proto files)."""
    for entry in sys.path:
        if entry and (Path(entry) / relpath).is_file():
            return Path(entry)
    raise SystemExit(f"cannot find {relpath} on sys.path; install googleapis-common-protos")


def _grpc_tools_include() -> Path:
    """grpcio-tools bundles google/protobuf/*.proto next to its protoc."""
    spec = importlib.util.find_spec("grpc_tools")
    if spec is None or spec.origin is None:
        raise SystemExit("grpcio-tools is not installed; run this with the project's .venv/bin/python")
    return Path(spec.origin).resolve().parent / "_proto"


def _run_protoc(tree: Tree, out_dir: Path) -> None:
    protos_root = REPO_ROOT / tree.protos
    files = sorted(p.relative_to(protos_root).as_posix() for p in protos_root.rglob("*.proto"))
    if not files:
        return
    includes = [protos_root, *(REPO_ROOT / d for d in tree.deps)]
    includes += [_grpc_tools_include(), _site_packages_with("google/rpc/status.proto")]
    # protoc finds its plugins on PATH; put this interpreter's bin dir (the venv) first.
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    cmd = [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        *(f"-I{inc}" for inc in includes),
        f"--python_out={out_dir}",
        f"--grpclib_python_out={out_dir}",
        f"--mypy_out=quiet:{out_dir}",
        *files,
    ]
    proc = subprocess.run(cmd, cwd=protos_root, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout + proc.stderr)
        raise SystemExit(f"protoc failed for {tree.protos}")


def _relative_from(current_pkg: list[str], target_pkg: list[str]) -> str:
    """Spell ``target_pkg`` relative to the package ``current_pkg`` (both rooted at the gen dir)."""
    common = 0
    while common < min(len(current_pkg), len(target_pkg)) and current_pkg[common] == target_pkg[common]:
        common += 1
    dots = "." * (len(current_pkg) - common + 1)
    return dots + ".".join(target_pkg[common:])


class _Rewriter:
    """Turns protoc's absolute imports of our own modules into relative (or package-qualified) ones."""

    def __init__(self, tree: Tree) -> None:
        self.local_root = REPO_ROOT / tree.protos
        # (protos dir, absolute package of its gen dir) for each tree whose protos this one may import
        self.foreign: list[tuple[Path, str]] = [
            (REPO_ROOT / dep.protos, dep.gen.replace("/", ".")) for dep in TREES if dep.protos in tree.deps
        ]

    def _target(self, current_pkg: list[str], dotted_pkg: str, module: str) -> str | None:
        # Resolve by the .proto file behind the module, searched in protoc's -I order (own tree first),
        # not by top-level directory: both trees have a top-level proto/ (proto.rpc in signaling,
        # proto.stream in peer).
        rel = Path(*dotted_pkg.split("."), module.removesuffix("_pb2") + ".proto")
        if (self.local_root / rel).is_file():
            return _relative_from(current_pkg, dotted_pkg.split("."))
        for protos_root, gen_pkg in self.foreign:
            if (protos_root / rel).is_file():
                return f"{gen_pkg}.{dotted_pkg}"
        return None  # google.*, grpclib, typing, ...: leave absolute

    def rewrite(self, text: str, current_pkg: list[str]) -> str:
        def from_import(m: re.Match[str]) -> str:
            target = self._target(current_pkg, m.group(1), m.group(2))
            if target is None:
                return m.group(0)
            return f"from {target} import {m.group(2)} as {m.group(3)}"

        text = _FROM_IMPORT.sub(from_import, text)

        # grpclib style: ``import viam.common.v1.common_pb2`` and then fully dotted usages.
        renames: dict[str, str] = {}

        def plain_import(m: re.Match[str]) -> str:
            target = self._target(current_pkg, m.group(1), m.group(2))
            if target is None:
                return m.group(0)
            dotted = f"{m.group(1)}.{m.group(2)}"
            alias = dotted.replace("_", "__").replace(".", "_dot_")
            renames[dotted] = alias
            return f"from {target} import {m.group(2)} as {alias}"

        text = _PLAIN_IMPORT.sub(plain_import, text)
        for dotted in sorted(renames, key=len, reverse=True):
            pattern = re.compile(r"(?<![\w.])" + re.escape(dotted) + r"(?=\.)")
            text = pattern.sub(renames[dotted], text)
        return text


def _postprocess(tree: Tree, out_dir: Path) -> None:
    rewriter = _Rewriter(tree)
    for path in sorted(out_dir.rglob("*")):
        if path.is_file() and path.suffix in {".py", ".pyi"}:
            current_pkg = list(path.parent.relative_to(out_dir).parts)
            original = path.read_text(encoding="utf-8")
            updated = rewriter.rewrite(original, current_pkg)
            if updated != original:
                path.write_text(updated, encoding="utf-8")
    for directory in sorted([out_dir, *(p for p in out_dir.rglob("*") if p.is_dir())]):
        (directory / "__init__.py").touch()


def generate(tree: Tree, out_dir: Path) -> None:
    """Generate ``tree`` into ``out_dir``, which is wiped first so nothing stale survives."""
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    _run_protoc(tree, out_dir)
    _postprocess(tree, out_dir)


def _listing(root: Path) -> set[str]:
    return {
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    }


def _diff(expected: Path, actual: Path) -> list[str]:
    want, have = _listing(expected), _listing(actual) if actual.exists() else set()
    problems = [f"missing: {p}" for p in sorted(want - have)]
    problems += [f"extra:   {p}" for p in sorted(have - want)]
    problems += [
        f"differs: {p}"
        for p in sorted(want & have)
        if not filecmp.cmp(expected / p, actual / p, shallow=False)
    ]
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="do not write; exit 1 if the checked-in code is stale"
    )
    args = parser.parse_args(argv)

    problems: list[str] = []
    with tempfile.TemporaryDirectory(prefix="gen_protos_") as tmp:
        # Generate everything first, so a protoc error leaves the checked-in trees untouched.
        for tree in TREES:
            generate(tree, Path(tmp) / tree.gen)
        for tree in TREES:
            fresh, current = Path(tmp) / tree.gen, REPO_ROOT / tree.gen
            if args.check:
                problems += [f"{tree.gen}: {p}" for p in _diff(fresh, current)]
            else:
                if current.exists():
                    shutil.rmtree(current)
                shutil.copytree(fresh, current)
                print(f"generated {tree.gen} from {tree.protos}")
    if not args.check:
        return 0
    if problems:
        print("generated code is stale; run: .venv/bin/python scripts/gen_protos.py", file=sys.stderr)
        for line in problems:
            print(f"  {line}", file=sys.stderr)
        return 1
    print("generated code is up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
