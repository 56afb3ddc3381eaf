"""One browser scenario, run INSIDE a private network namespace; prints one JSON report on stdout.

    ../shared/tools/netns.sh .venv/bin/python -m tests.browser.run_in_netns SCENARIO

(from the repo root; ``scripts/setup.sh`` builds ``web/static/sdk-harness.js`` first). Scenarios:

* ``page``   — Chromium starts, the test page loads from a second origin, the SDK bundle runs, and
  an in-page RTCPeerConnection gathers ICE candidates (checks the launch flags: a plain-IP host
  candidate on the namespace's veth address, no ``.local`` mDNS names). Needs no robot features.
* ``webrtc`` — ``createRobotClient`` over signaling (gRPC-web) + the data channel: ResourceNames,
  GetReadings, GetImages, and an error status (a sensor that does not exist).
* ``webrtc-auth`` — the robot requires an API key (``--api-key``): ``createRobotClient`` with
  ``credentials: {type: 'api-key', payload, authEntity}`` over WebRTC (ResourceNames, GetReadings),
  then the same with a wrong secret, which must fail.
* ``direct`` — ``new RobotClient().dial({host: 'http://localhost:P'})``: gRPC-web only
  (GetOperations on connect, then ResourceNames).
* ``panel``  — the control panel (``web/static/index.html`` + ``panel.js``) from the robot's own
  origin, driven like a person would: it connects over WebRTC, shows a card per resource, live
  sensor readings, the motor1 power slider (read back by the page and, independently, by a
  gRPC-web ``MotorService/IsPowered`` from here), DoCommand, the camera's Live toggle, and Stop
  all; a full-page screenshot goes to ``artifacts/panel.png``. Playwright steps, not one evaluate.
* ``video``  — two harness pages, each its own ``createRobotClient`` + the SDK's ``StreamClient``
  ``getStream('cam1')`` in a ``<video>``: both count decoded frames with
  ``requestVideoFrameCallback`` for ``VIDEO_MEASURE_S`` at once (each frame drawn to a canvas and
  compared with the previous one), ``/stats`` is read while both watch (one capture, two viewers),
  then one page is left (unloaded, then closed) and ``/stats`` is polled until the viewer count
  drops back, then the other page's renderer is crashed (``chrome://crash``) and ``/stats`` polled
  until its viewer is released too (the capture loop stops).
* ``throttled`` — two such pages; the second page's video squeezed through a UDP bottleneck (tc on
  ``lo``), the robot's RSS sampled from /proc for ``RSS_WATCH_S`` while the first page's rate is
  measured (test_video_robustness.py).
* ``restart`` — the panel from robot A; A SIGKILLed, robot B started on the same port; the page
  must show connected again with live readings (test_video_robustness.py).
* ``firstframe`` — ``getStream('cam1')`` → first presented frame, repeated with ``remove`` in
  between (scripts/bench_video.py; ``PEERBOT_FIRSTFRAME_REPS``).

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
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from tests.serverproc import REPO, ServerProcess
from tests.web.wire import frame, split_body

if TYPE_CHECKING:  # playwright is imported where it runs: pytest imports this module's constants
    from playwright.sync_api import Browser, Page

#: The API key of the ``webrtc-auth`` scenario.
AUTH_KEY_ID = "browser-key"
AUTH_SECRET = "browser-secret-1"
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
PANEL_BUNDLE = REPO / "web" / "static" / "panel.js"
SCREENSHOT = REPO / "artifacts" / "panel.png"

READY_TIMEOUT_S = 20
LAUNCH_TIMEOUT_S = 30
PAGE_TIMEOUT_S = 15
SCENARIO_BUDGET_S = 35  # enforced inside the page, where each step also has its own bound
STOP_TIMEOUT_S = 8
STEP_TIMEOUT_S = 8  # each panel step's bound (connect gets PAGE_TIMEOUT_S)
VIDEO_MEASURE_S = 5
RELEASE_TIMEOUT_S = 15  # closing a page → the robot drops its viewer
RECONNECT_TIMEOUT_S = 45  # robot restarted → the panel connected again (the panel itself starts over after 20 s)
THROTTLE_KBIT = 150  # the throttled page's video arrives through this UDP bottleneck (~1/4 of the stream)
THROTTLE_SETTLE_S = 6  # both streams settle (encoders, executor threads, allocator arenas) before RSS is watched
RSS_WATCH_S = 20  # the robot's RSS is sampled once a second for this long while one page is throttled

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
    "webrtc-auth": _PRELUDE + """
  const dialWith = (payload) => V.createRobotClient({host: args.host, signalingAddress: args.signaling,
    credentials: {type: 'api-key', payload, authEntity: args.keyId},
    iceServers: [], noReconnect: true, dialTimeout: 10000});
  let robot = null;
  const connected = await step('connect', async () => {
    robot = await dialWith(args.secret);
    return {iceConnectionState: robot.peerConn ? robot.peerConn.iceConnectionState : null};
  }, 15000);
  if (connected) {
    await step('resourceNames', async () => H.toPlain(await robot.resourceNames()));
    await step('getReadings', async () =>
      H.toPlain(await new V.SensorClient(robot, 'sensor1').getReadings()));
    await step('disconnect', async () => { await robot.disconnect(); return true; }, 5000);
  }
  await step('wrongSecret', async () => {
    const other = await dialWith('not-the-secret');
    await other.disconnect();
    return 'connected';
  }, 15000);
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


# The video snippets' first step: one WebRTC robot client, kept in window.peerbotRobot.
_CONNECT_FOR_VIDEO = """
  const connected = await step('connect', async () => {
    window.peerbotRobot = await V.createRobotClient({host: args.host, signalingAddress: args.signaling,
      iceServers: [], noReconnect: true, dialTimeout: 10000});
    return true;
  }, 15000);
  if (!connected) return out;
"""

# ``video``: start the SDK's StreamClient on cam1 in this page (the <video> is window.peerbotVideo).
_VIDEO_START = _PRELUDE + _CONNECT_FOR_VIDEO + """
  await step('getStream', async () => {
    const media = await new V.StreamClient(window.peerbotRobot).getStream('cam1');
    const video = document.createElement('video');
    video.muted = true; video.playsInline = true; video.autoplay = true;
    video.srcObject = media;
    document.body.append(video);
    window.peerbotVideo = video;
    await video.play();
    while (!(video.readyState >= 2 && video.videoWidth > 0)) await new Promise((r) => setTimeout(r, 50));
    return {tracks: media.getVideoTracks().length, width: video.videoWidth, height: video.videoHeight};
  }, 15000);
  return out;
"""

# ``firstframe`` (scripts/bench_video.py): StreamClient.getStream('cam1') → the first frame the
# <video> presents, args.reps times on one connection, each followed by remove (so the first run is
# the connection's first AddStream and the others re-adds on the reused transceiver).
_FIRST_FRAME = _PRELUDE + _CONNECT_FOR_VIDEO + """
  const sc = new V.StreamClient(window.peerbotRobot);
  out.runs = [];
  for (let i = 0; i < args.reps; i++) {
    const ok = await step(`run${i}`, async () => {
      const t0 = performance.now();
      const media = await sc.getStream('cam1');
      const trackMs = performance.now() - t0;
      const video = document.createElement('video');
      video.muted = true; video.playsInline = true; video.autoplay = true;
      document.body.append(video);
      const first = new Promise((resolve) => video.requestVideoFrameCallback((now, meta) => resolve(meta)));
      video.srcObject = media;
      void video.play().catch(() => undefined);
      const meta = await first;
      const run = {trackMs, firstFrameMs: meta.presentationTime - t0, width: meta.width, height: meta.height};
      out.runs.push(run);
      video.srcObject = null;
      video.remove();
      await sc.remove('cam1');
      await new Promise((resolve) => setTimeout(resolve, 500));
      return run;
    }, 10000);
    if (!ok) break;
  }
  return out;
"""

# ``video``: count frames for args.seconds; each presented frame is drawn to a canvas and a sample
# of its pixels compared with the previous frame's. Starts now, resolves into window.peerbotMeasure.
_VIDEO_MEASURE = """async (args) => {
  const video = window.peerbotVideo;
  const canvas = document.createElement('canvas');
  canvas.width = 160; canvas.height = 120;  // a quarter-size copy: cheap enough for every frame
  const ctx = canvas.getContext('2d', {willReadFrequently: true});
  const m = {frames: 0, changed: 0, sizes: {}, presented0: null, presented1: null, mediaTimes: 0};
  let previous = null, lastMedia = -1;
  window.peerbotMeasure = new Promise((resolve) => {
    const t0 = performance.now();
    const onFrame = (now, meta) => {
      if (m.presented0 === null) m.presented0 = meta.presentedFrames;
      m.presented1 = meta.presentedFrames;
      m.frames += 1;
      if (meta.mediaTime !== lastMedia) { m.mediaTimes += 1; lastMedia = meta.mediaTime; }
      const key = `${meta.width}x${meta.height}`; m.sizes[key] = (m.sizes[key] || 0) + 1;
      ctx.drawImage(video, 0, 0, canvas.width, canvas.height);
      const data = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
      if (previous !== null && data.some((v, i) => Math.abs(v - previous[i]) > 8)) m.changed += 1;
      previous = data;
      if (performance.now() - t0 < args.seconds * 1000) video.requestVideoFrameCallback(onFrame);
      else { m.seconds = (performance.now() - t0) / 1000; m.fps = m.frames / m.seconds; resolve(m); }
    };
    video.requestVideoFrameCallback(onFrame);
  });
  return true;
}"""


# The local and remote ends of this page's selected ICE candidate pair.
_SELECTED_PAIR = """async () => {
  const byId = new Map();
  (await window.peerbotRobot.peerConn.getStats()).forEach((s) => byId.set(s.id, s));
  for (const s of byId.values()) {
    if (s.type === 'transport' && s.selectedCandidatePairId) {
      const pair = byId.get(s.selectedCandidatePairId);
      const side = (id) => { const c = byId.get(id) || {}; return {address: c.address, port: c.port}; };
      return {local: side(pair.localCandidateId), remote: side(pair.remoteCandidateId)};
    }
  }
  return null;
}"""

# Decoded frames so far on this page's connection (inbound-rtp ``framesDecoded``) with the page's clock.
_DECODED = """async () => {
  const report = await window.peerbotRobot.peerConn.getStats();
  let frames = 0, keyframes = 0, bytes = 0;
  report.forEach((s) => {
    if (s.type === 'inbound-rtp' && s.kind === 'video') {
      frames += s.framesDecoded || 0; keyframes += s.keyFramesDecoded || 0; bytes += s.bytesReceived || 0;
    }
  });
  return {t: performance.now(), framesDecoded: frames, keyFramesDecoded: keyframes, bytesReceived: bytes};
}"""


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
def _robot(report: dict[str, Any], extra_args: tuple[str, ...] = ()) -> Iterator[int | None]:
    """``peerbot serve`` on 0.0.0.0 (so both 127.0.0.1/localhost and 198.18.0.1 reach it)."""
    proc = ServerProcess.peerbot(["--host", "0.0.0.0", "--port", "0", *extra_args])
    try:
        proc.start()
        report["serverPid"] = proc.pid
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


def _motor_is_powered(port: int, name: str) -> dict[str, Any]:
    """``MotorService/IsPowered`` over gRPC-web straight from Python: the server's own answer."""
    from peer.gen.viam.component.motor.v1 import motor_pb2

    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/viam.component.motor.v1.MotorService/IsPowered",
        data=frame(motor_pb2.IsPoweredRequest(name=name)), method="POST",
        headers={"Content-Type": "application/grpc-web+proto", "X-Grpc-Web": "1"})
    with urllib.request.urlopen(request, timeout=5) as response:
        messages, trailers = split_body(response.read())
    if (trailers or {}).get("grpc-status", "0") != "0" or len(messages) != 1:
        return {"error": trailers}
    answer = motor_pb2.IsPoweredResponse.FromString(messages[0])
    return {"isOn": answer.is_on, "powerPct": round(answer.power_pct, 3)}


def _poll(what: Any, until: Any, timeout_s: float) -> Any:
    """Call ``what()`` until ``until(value)`` or the bound; the last value either way."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = what()
        if until(value) or time.monotonic() >= deadline:
            return value
        time.sleep(0.1)


def _panel(page: Page, port: int, out: dict[str, Any]) -> None:
    """Drive the panel step by step; every step's outcome lands in ``out["steps"]``."""
    steps: dict[str, Any] = out.setdefault("steps", {})
    ms = STEP_TIMEOUT_S * 1000

    def step(name: str, fn: Any) -> bool:
        t0 = time.monotonic()
        try:
            steps[name] = {"ok": True, "value": fn()}
        except Exception as exc:
            steps[name] = {"ok": False, "error": {"text": f"{type(exc).__name__}: {exc}"[:2000]}}
        steps[name]["ms"] = round((time.monotonic() - t0) * 1000)
        return bool(steps[name]["ok"])

    card = '[data-resource="{}"]'.format

    def connect() -> Any:
        page.wait_for_function("window.peerbotPanel && window.peerbotPanel.status === 'connected'",
                               timeout=PAGE_TIMEOUT_S * 1000)
        return page.evaluate("""() => ({...window.peerbotPanel,
            transportShown: document.getElementById('transport').textContent})""")

    def cards() -> Any:
        page.wait_for_function("document.querySelectorAll('[data-resource]').length >= 11", timeout=ms)
        return page.evaluate("""() => [...document.querySelectorAll('[data-resource]')].map((c) =>
            ({name: c.dataset.resource, subtype: c.dataset.subtype,
              group: c.closest('[data-api]').dataset.api}))""")

    def readings(name: str) -> Any:
        def text() -> str:
            return str(page.locator(card(name) + ' [data-role="readings"]').inner_text(timeout=ms))
        page.wait_for_selector(card(name) + ' [data-role="readings"] table', timeout=ms)
        first = text()
        second = _poll(text, lambda t: t != first, STEP_TIMEOUT_S)
        return {"first": first, "second": second}

    def set_power() -> Any:
        page.locator(card("motor1") + ' input[data-role="power"]').fill("0.5", timeout=ms)
        page.wait_for_function("""() => { const s = document.querySelector(
            '[data-resource="motor1"] [data-role="powered"]');
            return s.dataset.powered === 'true' && Number(s.dataset.power) === 0.5; }""", timeout=ms)
        shown = page.locator(card("motor1") + ' [data-role="powered"]').inner_text(timeout=ms)
        server = _poll(lambda: _motor_is_powered(port, "motor1"), lambda v: v.get("isOn"), STEP_TIMEOUT_S)
        return {"page": shown, "server": server}

    def do_command() -> Any:
        page.locator(card("generic1") + " button").click(timeout=ms)
        page.wait_for_function("""() => document.querySelector(
            '[data-resource="generic1"] [data-role="result"]').textContent !== ''""", timeout=ms)
        return json.loads(page.locator(card("generic1") + ' [data-role="result"]').inner_text(timeout=ms))

    def snapshot() -> Any:
        page.wait_for_function("""() => { const i = document.querySelector(
            '[data-resource="cam1"] img[data-role="snapshot"]');
            return i && i.complete && i.naturalWidth > 0; }""", timeout=ms)
        return page.evaluate("""() => { const i = document.querySelector(
            '[data-resource="cam1"] img[data-role="snapshot"]');
            return {width: i.naturalWidth, height: i.naturalHeight}; }""")

    def live() -> Any:
        # Live video comes from StreamService/AddStream: either a playing <video> or a clear message.
        page.locator(card("cam1") + " label.switch").click(timeout=ms)
        page.wait_for_function("""() => { const c = document.querySelector('[data-resource="cam1"]');
            const v = c.querySelector('video'), m = c.querySelector('[data-role="live-msg"]');
            return (v && !v.hidden && v.srcObject) || (m && !m.hidden && m.dataset.kind === 'error'); }""",
                               timeout=ms)
        page.wait_for_function("""() => { const c = document.querySelector('[data-resource="cam1"]');
            const v = c.querySelector('video');
            return v.hidden || (v.readyState >= 2 && v.videoWidth > 0); }""", timeout=ms)
        page.wait_for_function("""() => { const c = document.querySelector('[data-resource="cam1"]');
            const s = c.querySelector('[data-role="video-stats"]');
            return c.querySelector('video').hidden || (s && !s.hidden && s.dataset.viewers === '1'
                && parseFloat(s.textContent.split('capturing ')[1]) >= 20
                && Number(s.dataset.encodedFps) > 0 && Number(s.dataset.bitrateKbps) > 0); }""",
                               timeout=ms)
        return page.evaluate("""() => { const c = document.querySelector('[data-resource="cam1"]');
            const v = c.querySelector('video'), m = c.querySelector('[data-role="live-msg"]');
            const s = c.querySelector('[data-role="video-stats"]');
            return {video: !v.hidden && !!v.srcObject, width: v.videoWidth, height: v.videoHeight,
                    message: m.hidden ? null : m.textContent, stats: s && !s.hidden ? s.textContent : null}; }""")

    def screenshot() -> Any:
        page.wait_for_function("() => !document.getElementById('rtt').textContent.includes('—')", timeout=ms)
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOT), full_page=True, timeout=ms)
        return {"path": str(SCREENSHOT), "bytes": SCREENSHOT.stat().st_size,
                "rtt": page.locator("#rtt").inner_text(timeout=ms)}

    def stop_all() -> Any:
        page.locator("#stop-all").click(timeout=ms)
        server = _poll(lambda: _motor_is_powered(port, "motor1"), lambda v: v.get("isOn") is False, STEP_TIMEOUT_S)
        page.wait_for_function("""() => document.querySelector(
            '[data-resource="motor1"] [data-role="powered"]').dataset.powered === 'false'""", timeout=ms)
        return {"server": server,
                "page": page.locator(card("motor1") + ' [data-role="powered"]').inner_text(timeout=ms)}

    if not step("connect", connect):
        return
    step("cards", cards)
    step("sensorReadings", lambda: readings("sensor1"))
    step("movementSensorReadings", lambda: readings("imu1"))
    step("snapshot", snapshot)
    step("doCommand", do_command)
    step("setPower", set_power)
    step("live", live)
    step("screenshot", screenshot)
    step("stopAll", stop_all)
    out["errors"] = page.evaluate("() => window.peerbotPanel.errors")


def _run_panel(report: dict[str, Any]) -> None:
    from playwright.sync_api import sync_playwright

    with _robot(report) as port, sync_playwright() as playwright:
        assert port is not None
        report.update(robotPort=port, pageOrigin=f"http://{NETNS_ADDRESS}:{port}")
        browser = _launch(playwright)
        try:
            report["chromium"] = browser.version
            page = browser.new_page(viewport={"width": 1360, "height": 900})
            _watch(page, report["browser"])
            page.goto(report["pageOrigin"] + "/", timeout=PAGE_TIMEOUT_S * 1000)
            result: dict[str, Any] = {}
            report["result"] = result
            _panel(page, port, result)
            report["pageErrorsBeforeClose"] = len(report["browser"]["pageErrors"])
        finally:
            browser.close()
        report["stats"] = _stats(port)


@contextmanager
def _two_viewers(report: dict[str, Any]) -> Iterator[tuple[int, dict[str, Any], dict[str, Any], list[Page]] | None]:
    """A robot, the harness page server and Chromium with two pages viewing cam1: ``(robot port, page
    args, report["result"], pages)``, or None when a page could not start viewing (its report says why).
    Closes the browser, then records the robot's final ``/stats``."""
    from playwright.sync_api import sync_playwright

    with _robot(report) as port, _static_server() as page_port, sync_playwright() as playwright:
        assert port is not None
        args = {"host": f"{NETNS_ADDRESS}:{port}", "signaling": f"http://{NETNS_ADDRESS}:{port}",
                "budgetMs": SCENARIO_BUDGET_S * 1000, "seconds": VIDEO_MEASURE_S}
        report.update(robotPort=port, pageOrigin=f"http://{NETNS_ADDRESS}:{page_port}", args=args)
        result: dict[str, Any] = {"steps": {}}
        report["result"] = result
        browser = _launch(playwright)
        try:
            report["chromium"] = browser.version
            pages = _open_viewers(browser, report, args, 2)
            yield (port, args, result, pages) if len(pages) == 2 else None
        finally:
            browser.close()
        report["stats"] = _stats(port)


def _run_video(report: dict[str, Any]) -> None:
    with _two_viewers(report) as viewing:
        if viewing is None:
            return
        port, args, result, pages = viewing
        for page in pages:  # both measure at the same time
            page.evaluate(_VIDEO_MEASURE, args)
        result["stats2"] = _poll(lambda: _stats(port), lambda s: _viewers(s) == 2, STEP_TIMEOUT_S)
        for i, page in enumerate(pages):
            result[f"measure{i + 1}"] = page.evaluate("() => window.peerbotMeasure")
        result["statsMeasured"] = _stats(port)
        report["pageErrorsBeforeClose"] = len(report["browser"]["pageErrors"])
        t0 = time.monotonic()
        # Leave the page the way a tab is left: its document unloads (Chromium closes its peer
        # connections, which the robot hears over SCTP/DTLS), then the page goes away.
        pages[1].goto("about:blank", timeout=PAGE_TIMEOUT_S * 1000)
        pages[1].close()
        result["stats1"] = _poll(lambda: _stats(port), lambda s: _viewers(s) == 1, RELEASE_TIMEOUT_S)
        result["releaseSeconds"] = round(time.monotonic() - t0, 2)
        # The other page's renderer is killed outright, as a crashed or killed tab is: no DTLS
        # close, no SCTP shutdown. The robot learns it only from silence (peer/webrtc/liveness.py).
        t1 = time.monotonic()
        try:
            pages[0].goto("chrome://crash", timeout=STEP_TIMEOUT_S * 1000)
        except Exception as exc:  # playwright reports the crash as a failed navigation
            result["crash"] = f"{type(exc).__name__}: {exc}"[:300]
        result["stats0"] = _poll(lambda: _stats(port), lambda s: _viewers(s) == 0, RELEASE_TIMEOUT_S)
        result["crashReleaseSeconds"] = round(time.monotonic() - t1, 2)


def _open_viewers(browser: Browser, report: dict[str, Any], args: dict[str, Any], count: int) -> list[Page]:
    """``count`` harness pages, each playing cam1 through its own connection; fewer if one failed
    (its steps are in ``report["result"]["pageN"]``)."""
    pages = []
    for i in range(count):
        page = browser.new_page()
        seen: dict[str, list[Any]] = {}
        report["browser" if i == 0 else f"browser{i + 1}"] = seen
        _watch(page, seen)
        page.goto(report["pageOrigin"] + "/", timeout=PAGE_TIMEOUT_S * 1000)
        page.wait_for_function("window.peerbotHarness && window.peerbotHarness.ready", timeout=PAGE_TIMEOUT_S * 1000)
        started = page.evaluate(_wrap(_VIDEO_START), args)
        report["result"][f"page{i + 1}"] = started
        if not all(s["ok"] for s in started["steps"].values()):
            break
        pages.append(page)
    return pages


def _rss_kib(pid: int) -> int | None:
    """Resident set size of process ``pid`` (``VmRSS`` in /proc), KiB; ``None`` if it is gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _udp_bottleneck(port: int) -> list[str]:
    """The video sent to UDP ``port`` on ``lo`` (where this namespace's own traffic goes) is squeezed
    through ``THROTTLE_KBIT`` kbit/s with a short queue: that page's video arrives late and lossy
    (it then asks for retransmissions and keyframes), while every other flow is untouched.

    Only packets of 512 bytes or more (video) are squeezed. With everything squeezed, Chromium's
    SCTP soon gives up on its unacknowledged data (our SACKs drown in the video) and closes the data
    channel: a real outcome on such a link, but then the page is no longer a slow *viewer*. Returns
    the commands run. Only inside the namespace (netns.sh), which disappears with it."""
    commands = [  # htb + pfifo + u32: the qdiscs this kernel has (no netem, no prio)
        "tc qdisc add dev lo root handle 1: htb default 10 r2q 1000",
        "tc class add dev lo parent 1: classid 1:10 htb rate 10gbit",
        f"tc class add dev lo parent 1: classid 1:30 htb rate {THROTTLE_KBIT}kbit ceil {THROTTLE_KBIT}kbit",
        "tc qdisc add dev lo parent 1:30 handle 30: pfifo limit 30",
        # packets under 512 bytes (SCTP SACKs, STUN, RTCP) pass: the data channel and ICE stay healthy
        f"tc filter add dev lo protocol ip parent 1: prio 1 u32 match ip protocol 17 0xff "
        f"match ip dport {port} 0xffff match u16 0x0000 0xfe00 at 2 flowid 1:10",
        f"tc filter add dev lo protocol ip parent 1: prio 2 u32 match ip protocol 17 0xff "
        f"match ip dport {port} 0xffff flowid 1:30",
    ]
    for command in commands:
        subprocess.run(command.split(), check=True, timeout=10, capture_output=True)
    return commands


def _run_throttled(report: dict[str, Any]) -> None:
    """Two viewers of cam1; the second page's video is squeezed through a UDP bottleneck, then for
    ``RSS_WATCH_S`` the robot's RSS is sampled once a second while the first page's presented
    frame rate is measured over the last ``VIDEO_MEASURE_S``. Both pages' decoded-frame counters
    (the inbound-rtp ``framesDecoded`` of their peer connection) are read at the start and the end."""
    with _two_viewers(report) as viewing:
        if viewing is None:
            return
        port, args, result, pages = viewing
        pair = pages[1].evaluate(_SELECTED_PAIR)
        result["throttledPair"] = pair
        result["bottleneck"] = _udp_bottleneck(int(pair["local"]["port"]))
        time.sleep(THROTTLE_SETTLE_S)
        decoded0 = [page.evaluate(_DECODED) for page in pages]
        pid = int(report["serverPid"])
        rss: list[tuple[float, int | None]] = []
        t0 = time.monotonic()
        measuring = False
        while (elapsed := time.monotonic() - t0) < RSS_WATCH_S:
            rss.append((round(elapsed, 2), _rss_kib(pid)))
            if not measuring and elapsed >= RSS_WATCH_S - VIDEO_MEASURE_S - 1:
                pages[0].evaluate(_VIDEO_MEASURE, args)
                measuring = True
            time.sleep(1.0)
        result["rssKiB"] = rss
        result["measure1"] = pages[0].evaluate("() => window.peerbotMeasure")
        decoded1 = [page.evaluate(_DECODED) for page in pages]
        result["decoded"] = [{"start": a, "end": b} for a, b in zip(decoded0, decoded1, strict=True)]
        result["statsWatched"] = _stats(port)


def _run_first_frame(report: dict[str, Any]) -> None:
    """``_FIRST_FRAME`` in one harness page (repetitions: ``PEERBOT_FIRSTFRAME_REPS``, default 5)."""
    from playwright.sync_api import sync_playwright

    with _robot(report) as port, _static_server() as page_port, sync_playwright() as playwright:
        assert port is not None
        reps = int(os.environ.get("PEERBOT_FIRSTFRAME_REPS", "5"))
        args = {"host": f"{NETNS_ADDRESS}:{port}", "signaling": f"http://{NETNS_ADDRESS}:{port}",
                "budgetMs": (SCENARIO_BUDGET_S + 2 * reps) * 1000, "reps": reps}
        report.update(robotPort=port, pageOrigin=f"http://{NETNS_ADDRESS}:{page_port}", args=args)
        browser = _launch(playwright)
        try:
            report["chromium"] = browser.version
            page = browser.new_page()
            _watch(page, report["browser"])
            page.goto(report["pageOrigin"] + "/", timeout=PAGE_TIMEOUT_S * 1000)
            page.wait_for_function("window.peerbotHarness && window.peerbotHarness.ready",
                                   timeout=PAGE_TIMEOUT_S * 1000)
            report["result"] = page.evaluate(_wrap(_FIRST_FRAME), args)
        finally:
            browser.close()
        report["stats"] = _stats(port)


def _run_restart(report: dict[str, Any]) -> None:
    """The panel from robot A; A is killed (SIGKILL: no goodbye) and robot B started on the same
    port; the page, never reloaded, must show connected again and live readings served by B."""
    from playwright.sync_api import sync_playwright

    serve = ["--host", "0.0.0.0", "--port"]
    first = ServerProcess.peerbot([*serve, "0"])
    second: ServerProcess | None = None
    result: dict[str, Any] = {"steps": {}}
    report["result"] = result
    try:
        first.start()
        port = int(first.wait_ready(1, READY_TIMEOUT_S)[0].rsplit(":", 1)[1])
        report.update(robotPort=port, pageOrigin=f"http://{NETNS_ADDRESS}:{port}")
        with sync_playwright() as playwright:
            browser = _launch(playwright)
            try:
                report["chromium"] = browser.version
                page = browser.new_page(viewport={"width": 1360, "height": 900})
                _watch(page, report["browser"])
                page.goto(report["pageOrigin"] + "/", timeout=PAGE_TIMEOUT_S * 1000)
                page.wait_for_function("window.peerbotPanel && window.peerbotPanel.status === 'connected'",
                                       timeout=PAGE_TIMEOUT_S * 1000)
                result["before"] = _readings_change(page)
                result["statsBefore"] = _stats(port)
                first.kill()
                result["firstExit"] = first.poll()
                t0 = time.monotonic()
                second = ServerProcess.peerbot([*serve, str(port)])
                second.start()
                second.wait_ready(1, READY_TIMEOUT_S)
                result["restartedSeconds"] = round(time.monotonic() - t0, 2)
                page.wait_for_function("window.peerbotPanel.status !== 'connected'", timeout=RECONNECT_TIMEOUT_S * 1000)
                result["noticedSeconds"] = round(time.monotonic() - t0, 2)
                result["statusWhileDown"] = page.evaluate("() => window.peerbotPanel.status")
                page.wait_for_function("window.peerbotPanel.status === 'connected'", timeout=RECONNECT_TIMEOUT_S * 1000)
                result["reconnectedSeconds"] = round(time.monotonic() - t0, 2)
                result["after"] = _readings_change(page)
                result["panel"] = page.evaluate("() => ({status: window.peerbotPanel.status, "
                                                "connects: window.peerbotPanel.connects, "
                                                "transport: window.peerbotPanel.transport})")
                result["statsAfter"] = _stats(port)
            finally:
                browser.close()
    finally:
        first.kill()
        if second is not None:
            report["server"] = {"exit": second.terminate(STOP_TIMEOUT_S), "log": second.log().splitlines()[-40:]}
        report["firstServerLog"] = first.log().splitlines()[-20:]


def _readings_change(page: Page) -> dict[str, str]:
    """sensor1's readings table now, and once it has changed (bounded): live readings."""
    selector = '[data-resource="sensor1"] [data-role="readings"]'
    page.wait_for_selector(selector + " table", timeout=STEP_TIMEOUT_S * 1000)
    first = str(page.locator(selector).inner_text(timeout=STEP_TIMEOUT_S * 1000))
    second = _poll(lambda: str(page.locator(selector).inner_text(timeout=STEP_TIMEOUT_S * 1000)),
                   lambda t: t != first, STEP_TIMEOUT_S)
    return {"first": first, "second": second}


def _viewers(stats: Any) -> Any:
    return ((stats.get("cameras") or {}).get("cam1") or {}).get("viewers")


def run(scenario: str) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    report: dict[str, Any] = {"scenario": scenario, "netns": os.environ.get("PEERBOT_NETNS") == "1"}
    seen: dict[str, list[Any]] = {}
    report["browser"] = seen
    started = time.monotonic()
    try:
        if scenario == "panel":
            _run_panel(report)
            return report
        if scenario == "video":
            _run_video(report)
            return report
        if scenario == "throttled":
            _run_throttled(report)
            return report
        if scenario == "firstframe":
            _run_first_frame(report)
            return report
        if scenario == "restart":
            _run_restart(report)
            return report
        serve_args = ("--api-key", f"{AUTH_KEY_ID}:{AUTH_SECRET}") if scenario == "webrtc-auth" else ()
        with _robot(report, serve_args) as port, _static_server() as page_port, sync_playwright() as playwright:
            assert port is not None
            page_host = "localhost" if scenario == "direct" else NETNS_ADDRESS
            args = {
                "host": f"{NETNS_ADDRESS}:{port}",
                "signaling": f"http://{NETNS_ADDRESS}:{port}",
                "direct": f"http://localhost:{port}",
                "budgetMs": SCENARIO_BUDGET_S * 1000,
                "keyId": AUTH_KEY_ID,
                "secret": AUTH_SECRET,
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


#: Scenarios driven step by step from Python rather than by one in-page script.
_OWN_DRIVERS = ("panel", "video", "throttled", "restart", "firstframe")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scenario", choices=sorted([*_SCENARIOS, *_OWN_DRIVERS]))
    args = parser.parse_args()
    if os.environ.get("PEERBOT_NETNS") != "1":
        print("run_in_netns.py runs only inside ../shared/tools/netns.sh (it starts Chromium)", file=sys.stderr)
        return 2
    if not BUNDLE.is_file() or not PANEL_BUNDLE.is_file():
        print(f"{BUNDLE} or {PANEL_BUNDLE} is missing: run scripts/setup.sh (npm ci + npm run build in web/client)",
              file=sys.stderr)
        return 2
    print(json.dumps(run(args.scenario), indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
