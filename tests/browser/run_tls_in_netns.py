"""The browser SDK against a robot serving TLS, run INSIDE a private network namespace.

    ../shared/tools/netns.sh .venv/bin/python -m tests.browser.run_tls_in_netns

The robot serves a throwaway CA's certificate (``tests/pki.py``); Chromium is told to accept it
(playwright's ``ignore_https_errors``: the question here is routing, not trust). Two parts:

* the ``webrtc`` scenario of ``run_in_netns`` with signaling at ``https://198.18.0.1:P`` (the
  harness page comes from a second, cleartext origin): gRPC-web over TLS, then the data channel;
* the control panel loaded from ``https://198.18.0.1:P/``, connecting back to its own origin.

Chromium offers ALPN ``h2, http/1.1``; the robot must pick ``http/1.1`` (grpclib serves neither
gRPC-web nor the page). The server runs at debug level and reports each connection it routed, so
the report lists what every browser connection became. Prints one JSON report on stdout.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.browser.run_in_netns import (
    _SCENARIOS,
    BUNDLE,
    NETNS_ADDRESS,
    PAGE_TIMEOUT_S,
    READY_TIMEOUT_S,
    SCENARIO_BUDGET_S,
    STOP_TIMEOUT_S,
    _launch,
    _static_server,
    _stats,
    _watch,
    _wrap,
)
from tests.pki import make_pki
from tests.serverproc import ServerProcess

#: web.oneport's debug line for a routed connection: peer host, then what it became
HANDED_OVER = re.compile(r"web\.oneport: <connection \('([^']+)', \d+\) (.+)>: handed over")


@contextmanager
def _robot(report: dict[str, Any], cert: Path, key: Path) -> Iterator[tuple[int, ServerProcess]]:
    proc = ServerProcess([sys.executable, "-m", "web", "-vv", "serve", "--host", "0.0.0.0", "--port", "0",
                          "--tls-cert", str(cert), "--tls-key", str(key)])
    try:
        proc.start()
        address = proc.wait_ready(1, READY_TIMEOUT_S)[0]
        yield int(address.rsplit(":", 1)[1]), proc
    finally:
        code = proc.terminate(STOP_TIMEOUT_S)
        quiet = [line for line in proc.lines if " DEBUG " not in line]
        routed = [m.groups() for m in map(HANDED_OVER.search, proc.lines) if m]
        report["server"] = {"exit": code, "log": quiet[-40:],
                            "browserConnections": sorted({kind for host, kind in routed if host == NETNS_ADDRESS})}


def run() -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    report: dict[str, Any] = {"scenario": "webrtc over https", "netns": os.environ.get("PEERBOT_NETNS") == "1"}
    seen: dict[str, list[Any]] = {}
    report["browser"] = seen
    started = time.monotonic()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            pki = make_pki(Path(tmp))
            with _robot(report, pki.cert, pki.key) as (port, _), _static_server() as page_port, \
                    sync_playwright() as playwright:
                origin = f"https://{NETNS_ADDRESS}:{port}"
                args = {"host": f"{NETNS_ADDRESS}:{port}", "signaling": origin, "budgetMs": SCENARIO_BUDGET_S * 1000}
                report.update(robotPort=port, pageOrigin=f"http://{NETNS_ADDRESS}:{page_port}", args=args)
                browser = _launch(playwright)
                try:
                    report["chromium"] = browser.version
                    page = browser.new_page(ignore_https_errors=True)
                    _watch(page, seen)
                    page.goto(report["pageOrigin"] + "/", timeout=PAGE_TIMEOUT_S * 1000)
                    page.wait_for_function("window.peerbotHarness && window.peerbotHarness.ready",
                                           timeout=PAGE_TIMEOUT_S * 1000)
                    report["result"] = page.evaluate(_wrap(_SCENARIOS["webrtc"]), args)
                    report["pageErrorsBeforeClose"] = len(seen["pageErrors"])
                    report["stats"] = _stats(port)  # cleartext HTTP on the same port

                    panel = browser.new_page(ignore_https_errors=True)
                    panel_seen: dict[str, list[Any]] = {}
                    report["panelBrowser"] = panel_seen
                    _watch(panel, panel_seen)
                    panel.goto(origin + "/", timeout=PAGE_TIMEOUT_S * 1000)
                    panel.wait_for_function("window.peerbotPanel && window.peerbotPanel.status === 'connected'",
                                            timeout=PAGE_TIMEOUT_S * 1000)
                    report["panel"] = panel.evaluate("""() => ({status: window.peerbotPanel.status,
                        url: location.href, transportShown: document.getElementById('transport').textContent})""")
                finally:
                    browser.close()
                report["statsAfterPanel"] = _stats(port)
    except Exception as exc:  # the report says what broke; pytest turns it into a failure
        report["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        report["seconds"] = round(time.monotonic() - started, 2)
    return report


def main() -> int:
    if os.environ.get("PEERBOT_NETNS") != "1":
        print("run_tls_in_netns.py runs only inside ../shared/tools/netns.sh (it starts Chromium)", file=sys.stderr)
        return 2
    if not BUNDLE.is_file():
        print(f"{BUNDLE} is missing: run scripts/setup.sh (npm ci + npm run build in web/client)", file=sys.stderr)
        return 2
    print(json.dumps(run(), indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
