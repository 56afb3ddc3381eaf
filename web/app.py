"""The aiohttp application behind the one port's HTTP/1.1 side.

Routes: ``POST /{package.Service}/{Method}`` (gRPC-web into the shared handler table),
``GET /stats`` (call counts per transport, for people and for the browser tests that check which
transport served a call; live peers; per streamed camera its viewers and capture fps),
``GET /`` (the control panel, ``web/static/index.html``) and ``GET /static/{file}`` (its esbuild
bundle: ``web/client``'s ``npm run build`` writes ``web/static/``; without it ``/`` says how to
build it). CORS is installed for every route. Everything here is served
``Cache-Control: no-cache``: the page and the numbers change between runs of a development robot.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from peer.handlers import HandlerTable

from .cors import CorsPolicy
from .grpcweb import GrpcWebHandler

NO_CACHE = {"Cache-Control": "no-cache"}
#: esbuild output of web/client (git-ignored; scripts/setup.sh builds it).
STATIC_DIR = Path(__file__).resolve().parent / "static"
_CONTENT_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".map": "application/json"}

_UNBUILT = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>peerbot</title></head>
<body>
<h1>peerbot</h1>
<p>This robot speaks Viam's API: native gRPC (h2c) and gRPC-web on this port.
The control panel is not built: run <code>scripts/setup.sh</code> (or <code>npm ci &amp;&amp; npm run build</code>
in <code>web/client</code>). Call counts are at <a href="/stats">/stats</a>.</p>
</body>
</html>
"""


def make_app(
    handlers: HandlerTable,
    *,
    cors: CorsPolicy | None = None,
    peers: Callable[[], int] = lambda: 0,
    cameras: Callable[[], dict[str, Any]] = dict,
    static_dir: Path = STATIC_DIR,
) -> web.Application:
    """The application; ``peers`` counts live WebRTC peers, ``cameras`` gives live video per camera
    (viewers, capture fps; the composition root provides both)."""
    app = web.Application()
    (cors if cors is not None else CorsPolicy()).install(app)
    root = static_dir.resolve()

    async def page(request: web.Request) -> web.Response:
        index = root / "index.html"
        if not index.is_file():
            return web.Response(text=_UNBUILT, content_type="text/html", headers=NO_CACHE)
        return web.Response(body=index.read_bytes(), content_type="text/html", charset="utf-8", headers=NO_CACHE)

    async def static(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        path = (root / name).resolve()
        content_type = _CONTENT_TYPES.get(path.suffix)
        if content_type is None or path.parent != root or not path.is_file():
            raise web.HTTPNotFound(text=f"no static file {name!r}")
        return web.FileResponse(path, headers={**NO_CACHE, "Content-Type": content_type})

    async def stats(request: web.Request) -> web.Response:
        body: dict[str, Any] = {"peers": peers(), "cameras": cameras(), **handlers.stats.snapshot()}
        return web.json_response(body, headers=NO_CACHE)

    app.router.add_get("/", page)
    app.router.add_get("/static/{name}", static)
    app.router.add_get("/stats", stats)
    app.router.add_post("/{service}/{method}", GrpcWebHandler(handlers).handle)
    return app
