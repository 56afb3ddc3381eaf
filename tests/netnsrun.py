"""Run a JSON-reporting script inside ``../shared/tools/netns.sh`` with every wait bounded.

Real clients that send mDNS/STUN (viam-sdk's Rust dialer) and Chromium run only inside a private
network namespace; the tests outside read the JSON report the script prints on stdout.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

import pytest

from .serverproc import REPO

NETNS = REPO.parent / "shared" / "tools" / "netns.sh"
#: The real viam-sdk's own venv (scripts/setup.sh): the scripts in tests/clients/ run its python.
VIAM_PYTHON = REPO / ".venv-viam" / "bin" / "python"


def netns_report(argv: Sequence[str], *, timeout: float, what: str, require_success: bool = False) -> dict[str, Any]:
    """``netns.sh ARGV…`` in a session of its own (a timeout kills the whole tree: servers,
    playwright's driver, Chromium, the Rust dialer); its stdout parsed as JSON. Fails the test with
    the tail of stderr on a timeout, unparsable output, or (``require_success``) a nonzero exit."""
    assert NETNS.exists(), f"{NETNS} is missing: these tests run only inside its private network namespace"
    proc = subprocess.Popen([str(NETNS), *argv], cwd=REPO, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate(timeout=10)
        pytest.fail(f"{what}: no report after {timeout}s; stderr:\n{stderr[-4000:]}")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
    if require_success and proc.returncode != 0:
        pytest.fail(f"{what}: exit {proc.returncode}; stderr:\n{stderr[-4000:]}")
    try:
        result: dict[str, Any] = json.loads(stdout)
    except json.JSONDecodeError:
        pytest.fail(f"{what}: exit {proc.returncode}, no JSON report; stdout:\n{stdout[-3000:]}\n"
                    f"stderr:\n{stderr[-4000:]}")
    return result


def viam_report(script: str, *, timeout: float) -> dict[str, Any]:
    """``tests/clients/SCRIPT`` (a runner that starts our servers and drives the real viam-sdk with
    ``VIAM_PYTHON``) inside a private namespace; its JSON report, or the test fails with its stderr."""
    assert VIAM_PYTHON.exists(), "the viam-sdk venv is missing: run scripts/setup.sh"
    return netns_report([sys.executable, str(REPO / "tests" / "clients" / script)], timeout=timeout, what=script,
                        require_success=True)
