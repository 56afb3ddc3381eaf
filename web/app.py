"""The aiohttp application behind the one port's HTTP/1.1 side.

Routes: ``POST /{package.Service}/{Method}`` (gRPC-web into the shared handler table),
``GET /stats`` (call counts per transport, for people and for the browser tests that check which
transport served a call) and ``GET /`` (a placeholder until the control panel lands). CORS is
installed for every route. Everything here is served ``Cache-Control: no-cache``: the page and the
numbers change between runs of a development robot.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from peer.handlers import HandlerTable

from .cors import CorsPolicy
from .grpcweb import GrpcWebHandler

NO_CACHE = {"Cache-Control": "no-cache"}

_PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>peerbot</title></head>
<body>
<h1>peerbot</h1>
<p>This robot speaks Viam's API: native gRPC (h2c) and gRPC-web on this port.
The control panel is not here yet; call counts are at <a href="/stats">/stats</a>.</p>
</body>
</html>
"""


def make_app(
    handlers: HandlerTable,
    *,
    cors: CorsPolicy | None = None,
    peers: Callable[[], int] = lambda: 0,
) -> web.Application:
    """The application; ``peers`` counts live WebRTC peers (the composition root provides it)."""
    app = web.Application()
    (cors if cors is not None else CorsPolicy()).install(app)

    async def page(request: web.Request) -> web.Response:
        return web.Response(text=_PAGE, content_type="text/html", headers=NO_CACHE)

    async def stats(request: web.Request) -> web.Response:
        body: dict[str, Any] = {"peers": peers(), **handlers.stats.snapshot()}
        return web.json_response(body, headers=NO_CACHE)

    app.router.add_get("/", page)
    app.router.add_get("/stats", stats)
    app.router.add_post("/{service}/{method}", GrpcWebHandler(handlers).handle)
    return app
