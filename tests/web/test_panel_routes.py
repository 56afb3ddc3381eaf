"""``GET /`` serves the control panel page and ``GET /static/{file}`` its bundle, uncached;
without a build ``/`` explains how to make one. (The panel itself: tests/browser/test_panel.py.)"""

from __future__ import annotations

from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer

from peer.handlers import HandlerTable
from peer.operations import OperationManager
from peer.resource import ResourceName
from peer.sessions import SessionManager
from web.app import make_app


async def _no_stop(name: ResourceName) -> None:
    pass


async def _client(static_dir: Path) -> TestClient:
    client = TestClient(TestServer(make_app(HandlerTable(
        [], operations=OperationManager(), sessions=SessionManager(_no_stop)), static_dir=static_dir)))
    await client.start_server()
    return client


async def test_panel_page_and_assets(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("<!doctype html><title>panel</title>")
    (tmp_path / "panel.js").write_text("console.log(1)")
    (tmp_path / "panel.css").write_text("body{}")
    (tmp_path / "notes.txt").write_text("not served")
    client = await _client(tmp_path)
    try:
        page = await client.get("/")
        assert page.status == 200 and page.content_type == "text/html"
        assert page.headers["Cache-Control"] == "no-cache"
        assert "<title>panel</title>" in await page.text()
        for name, kind in (("panel.js", "text/javascript"), ("panel.css", "text/css")):
            asset = await client.get(f"/static/{name}")
            assert asset.status == 200 and asset.content_type == kind, name
            assert asset.headers["Cache-Control"] == "no-cache"
        for missing in ("/static/nope.js", "/static/notes.txt", "/static/..%2Fapp.py", "/static/%2E%2E%2Fx.js"):
            assert (await client.get(missing)).status == 404, missing
        stats = await client.get("/stats")
        assert stats.status == 200 and "rpcs" in await stats.json()
    finally:
        await client.close()


async def test_unbuilt_panel_says_how_to_build(tmp_path: Path) -> None:
    client = await _client(tmp_path / "absent")
    try:
        page = await client.get("/")
        assert page.status == 200
        assert "scripts/setup.sh" in await page.text()
    finally:
        await client.close()
