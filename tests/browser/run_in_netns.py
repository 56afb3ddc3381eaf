"""One browser scenario, run INSIDE a private network namespace; prints one JSON report on stdout.

    ../shared/tools/netns.sh .venv/bin/python -m tests.browser.run_in_netns SCENARIO

(from the repo root; ``scripts/setup.sh`` builds ``web/static/sdk-harness.js`` first). Scenarios:

* ``page``   — Chromium starts, the test page loads from a second origin, the SDK bundle runs, and
  an in-page RTCPeerConnection gathers ICE candidates (checks the launch flags: a plain-IP host
  candidate on the namespace's veth address, no ``.local`` mDNS names). Needs no robot features.
* ``webrtc`` — ``createRobotClient`` over signaling (gRPC-web) + the data channel: ResourceNames,
  GetReadings, GetImages, and an error status (a sensor that does not exist).
* ``direct`` — ``new RobotClient().dial({host: 'http://localhost:P'})``: gRPC-web only
  (GetOperations on connect, then ResourceNames).

Here, inside the namespace: ``peerbot serve --host 0.0.0.0 --port 0`` (the robot, at
``http://198.18.0.1:P``), a static server for the page on another port of the same host name (a
different origin; the server's default CORS policy allows a page whose host name is the robot's),
and Debian's Chromium driven by playwright with ``executable_path`` (no browser download). The
report has each step's outcome, the robot's ``/stats`` after the scenario, and what the browser saw
(console messages, page errors, failed requests, non-2xx responses) for diagnosis. Every wait is
bounded and every child is stopped in ``finally``. The exit code is 0 whenever a report was
printed; the pytest side (test_browser_sdk.py) decides what passes.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from tests.serverproc import REPO, ServerProcess

if TYPE_CHECKING:  # playwright is imported where it runs: pytest imports this module's constants
    from playwright.sync_api import Browser, Page

CHROMIUM = os.environ.get("PEERBOT_CHROMIUM", "/usr/bin/chromium")
#: real-clients.md §4.3 / style.md §2.4. The last two are what make WebRTC work in the namespace:
#: loopback allowed, and host candidates as plain IPs instead of mDNS ``<uuid>.local`` names.
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
    "--allow-loopback-in-peer-connection", "--disable-features=WebRtcHideLocalIpsWithMdns",
]
NETNS_ADDRESS = "198.18.0.1"  # v0 in ../shared/tools/netns.sh
BUNDLE = REPO / "web" / "static" / "sdk-harness.js"

READY_TIMEOUT_S = 20
LAUNCH_TIMEOUT_S = 30
PAGE_TIMEOUT_S = 15
SCENARIO_BUDGET_S = 35  # enforced inside the page, where each step also has its own bound
STOP_TIMEOUT_S = 8

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>peerbot browser harness</title></head>
<body><p>peerbot browser harness</p><script src="/sdk-harness.js"></script></body></html>
"""

# Each scenario is one async function evaluated in the page. ``step(name, fn, ms)`` records
# {ok, value} or {ok: false, error} so that one failing call does not hide the others.
_PRELUDE = """
const H = window.peerbotHarness, V = window.viam;
const out = {steps: {}};
const deadline = performance.now() + args.budgetMs;
const bounded = (promise, ms, what) => Promise.race([promise, new Promise((_, reject) =>
  setTimeout(() => reject(new Error(`${what}: no answer after ${Math.round(ms)} ms`)), ms))]);
const step = async (name, fn, ms = 8000) => {
  const t0 = performance.now();
  const budget = Math.min(ms, deadline - t0);
  try {
    if (budget <= 0) throw new Error(`${name}: not run, the scenario's ${args.budgetMs} ms were spent`);
    out.steps[name] = {ok: true, value: await bounded(fn(), budget, name)};
  } catch (error) {
    out.steps[name] = {ok: false, error: H.describeError(error)};
  }
  out.steps[name].ms = Math.round(performance.now() - t0);
  return out.steps[name].ok;
};
"""

_SCENARIOS: dict[str, str] = {
    "page": _PRELUDE + """
  out.sdkVersion = V.version;
  out.exports = Object.keys(V).sort();
  await step('iceCandidates', async () => {
    const pc = new RTCPeerConnection({iceServers: []});
    const candidates = [];
    pc.onicecandidate = (e) => { if (e.candidate) candidates.push(e.candidate.candidate); };
    pc.createDataChannel('probe');
    await pc.setLocalDescription(await pc.createOffer());
    await new Promise((resolve) => {
      if (pc.iceGatheringState === 'complete') resolve();
      pc.onicegatheringstatechange = () => { if (pc.iceGatheringState === 'complete') resolve(); };
      setTimeout(resolve, 5000);
    });
    pc.close();
    return candidates;
  });
  return out;
""",
    "webrtc": _PRELUDE + """
  let robot = null;
  const connected = await step('connect', async () => {
    robot = await V.createRobotClient({host: args.host, signalingAddress: args.signaling,
      iceServers: [], noReconnect: true, dialTimeout: 10000});
    return {iceConnectionState: robot.peerConn ? robot.peerConn.iceConnectionState : null};
  }, 15000);
  if (connected) {
    await step('resourceNames', async () => H.toPlain(await robot.resourceNames()));
    await step('getReadings', async () =>
      H.toPlain(await new V.SensorClient(robot, 'sensor1').getReadings()));
    await step('getImages', async () => {
      const {images} = await new V.CameraClient(robot, 'cam1').getImages();
      return images.map((im) => ({sourceName: im.sourceName, mimeType: im.mimeType,
        bytes: im.image.length, head: Array.from(im.image.slice(0, 4))}));
    });
    await step('missingSensor', async () =>
      H.toPlain(await new V.SensorClient(robot, 'nope').getReadings()));
    await step('selectedPair', async () => {
      const report = await robot.peerConn.getStats();
      const byId = new Map(); report.forEach((s) => byId.set(s.id, s));
      for (const s of byId.values()) {
        if (s.type === 'transport' && s.selectedCandidatePairId) {
          const pair = byId.get(s.selectedCandidatePairId);
          const side = (id) => { const c = byId.get(id) || {};
            return {address: c.address, port: c.port, type: c.candidateType, protocol: c.protocol}; };
          return {local: side(pair.localCandidateId), remote: side(pair.remoteCandidateId)};
        }
      }
      return null;
    });
  }
  if (robot) await step('disconnect', async () => { await robot.disconnect(); return true; }, 5000);
  return out;
""",
    "direct": _PRELUDE + """
  const robot = new V.RobotClient();
  const connected = await step('connect', async () => {
    await robot.dial({host: args.direct, noReconnect: true, dialTimeout: 10000});
    return true;
  }, 15000);
  if (connected) {
    await step('resourceNames', async () => H.toPlain(await robot.resourceNames()));
    await step('getReadings', async () =>
      H.toPlain(await new V.SensorClient(robot, 'sensor1').getReadings()));
    await step('missingSensor', async () =>
      H.toPlain(await new V.SensorClient(robot, 'nope').getReadings()));
  }
  await step('disconnect', async () => { await robot.disconnect(); return true; }, 5000);
  return out;
""",
}


def _wrap(body: str) -> str:
    return f"async (args) => {{ {body} }}"


class _PageHandler(SimpleHTTPRequestHandler):
    """``/`` is the harness page; everything else comes from web/static (the esbuild output)."""

    def do_GET(self) -> None:
        if self.path in ("/", "/index.html"):
            body = _PAGE.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-cache")
            self.end_headers()
            self.wfile.write(body)
            return
        super().do_GET()

    def log_message(self, format: str, *args: Any) -> None:  # keep stdout for the report
        pass


@contextmanager
def _static_server() -> Iterator[int]:
    handler = functools.partial(_PageHandler, directory=str(BUNDLE.parent))
    httpd = ThreadingHTTPServer(("0.0.0.0", 0), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, name="page-server", daemon=True)
    thread.start()
    try:
        yield httpd.server_address[1]
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(STOP_TIMEOUT_S)


@contextmanager
def _robot(report: dict[str, Any]) -> Iterator[int | None]:
    """``peerbot serve`` on 0.0.0.0 (so both 127.0.0.1/localhost and 198.18.0.1 reach it)."""
    proc = ServerProcess.peerbot(["--host", "0.0.0.0", "--port", "0"])
    try:
        proc.start()
        address = proc.wait_ready(1, READY_TIMEOUT_S)[0]
        yield int(address.rsplit(":", 1)[1])
    finally:
        code = proc.terminate(STOP_TIMEOUT_S)
        report["server"] = {"exit": code, "log": proc.log().splitlines()[-40:]}


def _stats(port: int) -> Any:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats", timeout=5) as response:
            return json.load(response)
    except (OSError, ValueError) as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}


def _watch(page: Page, seen: dict[str, list[Any]]) -> None:
    """Collect what the browser saw: the report's evidence when a scenario fails."""
    seen.update(console=[], pageErrors=[], requestFailures=[], responses=[])
    page.on("console", lambda m: seen["console"].append(f"{m.type}: {m.text}"[:500]))
    page.on("pageerror", lambda e: seen["pageErrors"].append(str(e)[:500]))
    page.on("requestfailed", lambda r: seen["requestFailures"].append(
        {"method": r.method, "url": r.url, "failure": r.failure}))
    page.on("response", lambda r: seen["responses"].append(
        {"method": r.request.method, "url": r.url, "status": r.status,
         "grpcStatus": r.headers.get("grpc-status")}))


def _launch(playwright: Any) -> Browser:
    """A fresh headless Chromium (playwright gives it a temporary profile and removes it on close)."""
    browser: Browser = playwright.chromium.launch(
        executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS, timeout=LAUNCH_TIMEOUT_S * 1000,
    )
    return browser


def run(scenario: str) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    report: dict[str, Any] = {"scenario": scenario, "netns": os.environ.get("PEERBOT_NETNS") == "1"}
    seen: dict[str, list[Any]] = {}
    report["browser"] = seen
    started = time.monotonic()
    try:
        with _robot(report) as port, _static_server() as page_port, sync_playwright() as playwright:
            assert port is not None
            page_host = "localhost" if scenario == "direct" else NETNS_ADDRESS
            args = {
                "host": f"{NETNS_ADDRESS}:{port}",
                "signaling": f"http://{NETNS_ADDRESS}:{port}",
                "direct": f"http://localhost:{port}",
                "budgetMs": SCENARIO_BUDGET_S * 1000,
            }
            report.update(robotPort=port, pageOrigin=f"http://{page_host}:{page_port}", args=args)
            browser = _launch(playwright)
            try:
                report["chromium"] = browser.version
                page = browser.new_page()
                _watch(page, seen)
                page.goto(report["pageOrigin"] + "/", timeout=PAGE_TIMEOUT_S * 1000)
                page.wait_for_function("window.peerbotHarness && window.peerbotHarness.ready",
                                       timeout=PAGE_TIMEOUT_S * 1000)
                report["result"] = page.evaluate(_wrap(_SCENARIOS[scenario]), args)
                report["pageErrorsBeforeClose"] = len(seen["pageErrors"])
            finally:
                browser.close()
            report["stats"] = _stats(port)
    except Exception as exc:  # the report says what broke; pytest turns it into a failure
        report["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        report["seconds"] = round(time.monotonic() - started, 2)
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scenario", choices=sorted(_SCENARIOS))
    args = parser.parse_args()
    if os.environ.get("PEERBOT_NETNS") != "1":
        print("run_in_netns.py runs only inside ../shared/tools/netns.sh (it starts Chromium)", file=sys.stderr)
        return 2
    if not BUNDLE.is_file():
        print(f"{BUNDLE} is missing: run scripts/setup.sh (npm ci + npm run build in web/client)", file=sys.stderr)
        return 2
    print(json.dumps(run(args.scenario), indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
