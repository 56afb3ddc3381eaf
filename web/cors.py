"""CORS with credentials for the browser SDK (wire-protocol.md §11, real-clients.md §4.1).

connect-web fetches with ``credentials: 'include'`` whenever the signaling address differs from
the robot host, so an allowed origin is *echoed* (``*`` is refused by browsers with credentials)
together with ``Access-Control-Allow-Credentials: true``, and the gRPC status headers are exposed:
a trailers-only error carries its status in headers that a cross-origin page cannot read otherwise.

Who is allowed:

* by default, any page whose Origin has the same host *name* as the request's ``Host`` header, on
  any port and scheme (a dev server on ``localhost:5173`` calling the robot on ``localhost:8080``).
  This trusts every other web app served on the robot's host, whatever its port;
* plus the origins configured with ``--allow-origin URL``.

A disallowed origin gets no CORS headers at all (its preflight is answered 403), so the browser
refuses to send the call or to hand the answer to the page. Nothing else is refused: a non-browser
client sends no Origin, and every gRPC-web call is preflighted (its content type is not a "simple"
one), so a page of another origin cannot make the robot act.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from aiohttp import web
from yarl import URL

from .const import CORS_MAX_AGE_S, CORS_METHODS, EXPOSED_HEADERS

logger = logging.getLogger(__name__)

_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
#: Response headers every browser may read anyway, or that describe the message, not the call.
_NOT_EXPOSED = frozenset({
    "cache-control", "content-language", "content-length", "content-type", "expires", "last-modified",
    "pragma", "date", "server", "connection", "keep-alive", "transfer-encoding", "vary",
})


@dataclass(frozen=True)
class Origin:
    """A web origin: scheme, lower-case host and port (the scheme's default when not written)."""

    scheme: str
    host: str
    port: int | None


def parse_origin(value: str) -> Origin:
    """``http://host[:port]`` (a trailing ``/`` is tolerated); ValueError when it is not an origin."""
    try:
        url = URL(value.strip())
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{value!r} is not an origin: {exc}") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError(f"{value!r} is not an origin like http://host:port")
    if url.path not in ("", "/") or url.query_string or url.fragment or url.user or url.password:
        raise ValueError(f"{value!r} is not an origin: it may not have a path, query or credentials")
    return Origin(url.scheme, url.host.lower().rstrip("."), url.port)


def host_name(host_header: str) -> str | None:
    """The name part of a ``Host`` header (``name``, ``name:port``, ``[v6]:port``), lower-case."""
    host_header = host_header.strip()
    if not host_header:
        return None
    if host_header.startswith("["):
        name, sep, _ = host_header[1:].partition("]")
        return name.lower() if sep else None
    name = host_header.rsplit(":", 1)[0] if host_header.count(":") == 1 else host_header
    return name.lower().rstrip(".") or None


class CorsPolicy:
    """Which origins may call with credentials, and the headers that tell the browser so.

    Install with :meth:`install` (a middleware answers preflights; a response-prepare hook adds the
    headers to every other response, streamed ones included, before they are sent).
    """

    def __init__(self, allowed_origins: Iterable[str | Origin] = (), *, same_host: bool = True) -> None:
        self.allowed_origins = frozenset(o if isinstance(o, Origin) else parse_origin(o) for o in allowed_origins)
        self.same_host = same_host

    def allows(self, origin: str, host_header: str | None) -> bool:
        """Whether a page of ``origin`` may read answers of a request sent with that ``Host``."""
        try:
            parsed = parse_origin(origin)
        except ValueError:
            return False  # "null" (sandboxed frames, file://) and garbage
        if parsed in self.allowed_origins:
            return True
        return self.same_host and host_header is not None and host_name(host_header) == parsed.host

    def install(self, app: web.Application) -> None:
        app.middlewares.append(self._preflight_middleware())
        app.on_response_prepare.append(self._on_response_prepare)

    # -- preflight ------------------------------------------------------------------------------
    def _preflight_middleware(self) -> Callable[..., Awaitable[web.StreamResponse]]:
        @web.middleware
        async def cors_preflight(
            request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
        ) -> web.StreamResponse:
            if request.method != "OPTIONS" or "Access-Control-Request-Method" not in request.headers:
                return await handler(request)
            origin = request.headers.get("Origin")
            if origin is None:
                return await handler(request)
            if not self.allows(origin, request.headers.get("Host")):
                logger.info("CORS: refusing a preflight from origin %s (host %s)", origin,
                            request.headers.get("Host"))
                return web.Response(status=403, text=f"origin {origin} is not allowed; "
                                                     f"start peerbot with --allow-origin {origin}\n")
            response = web.Response(status=204)
            headers = response.headers
            headers["Access-Control-Allow-Methods"] = CORS_METHODS
            requested = request.headers.get("Access-Control-Request-Headers", "")
            allowed = [h for h in (part.strip().lower() for part in requested.split(",")) if _TOKEN.match(h)]
            if allowed:
                headers["Access-Control-Allow-Headers"] = ", ".join(allowed)
            headers["Access-Control-Max-Age"] = str(CORS_MAX_AGE_S)
            if request.headers.get("Access-Control-Request-Private-Network", "").lower() == "true":
                headers["Access-Control-Allow-Private-Network"] = "true"  # Chrome's private network access
            _add_vary(response, "Access-Control-Request-Method", "Access-Control-Request-Headers")
            return response

        return cors_preflight

    # -- every response ---------------------------------------------------------------------------
    async def _on_response_prepare(self, request: web.BaseRequest, response: web.StreamResponse) -> None:
        origin = request.headers.get("Origin")
        if origin is None:
            return
        _add_vary(response, "Origin")
        if not self.allows(origin, request.headers.get("Host")):
            return
        headers = response.headers
        headers["Access-Control-Allow-Origin"] = origin
        headers["Access-Control-Allow-Credentials"] = "true"
        if request.method != "OPTIONS":
            custom = [name.lower() for name in headers
                      if name.lower() not in _NOT_EXPOSED and not name.lower().startswith("access-control-")]
            exposed = dict.fromkeys([*EXPOSED_HEADERS, *custom])
            headers["Access-Control-Expose-Headers"] = ", ".join(exposed)


def _add_vary(response: web.StreamResponse, *names: str) -> None:
    present = [v.strip() for v in response.headers.get("Vary", "").split(",") if v.strip()]
    lower = {v.lower() for v in present}
    present.extend(name for name in names if name.lower() not in lower)
    response.headers["Vary"] = ", ".join(present)
