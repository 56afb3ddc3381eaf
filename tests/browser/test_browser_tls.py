"""The browser SDK (Debian's Chromium) against the one port serving TLS, in a private namespace.

``netns.sh python -m tests.browser.run_tls_in_netns`` runs the ``webrtc`` scenario with signaling
over HTTPS, then loads the control panel from the robot's HTTPS origin. Chromium offers ALPN
``h2, http/1.1``: the robot must answer ``http/1.1`` so gRPC-web and the page reach aiohttp.
"""

from __future__ import annotations

import sys
from typing import Any

import pytest

from ..netnsrun import netns_report
from .test_browser_sdk import SCENARIO_TIMEOUT_S, _evidence, _require_tools, check_webrtc


@pytest.fixture(scope="module")
def rep() -> dict[str, Any]:
    _require_tools()
    result = netns_report([sys.executable, "-m", "tests.browser.run_tls_in_netns"], timeout=SCENARIO_TIMEOUT_S,
                          what="tls")
    assert "error" not in result, f"harness error: {result['error']}\n{_evidence(result)}"
    return result


@pytest.mark.timeout(SCENARIO_TIMEOUT_S + 30)
def test_webrtc_with_signaling_over_https(rep: dict[str, Any]) -> None:
    assert rep["args"]["signaling"].startswith("https://"), rep["args"]
    check_webrtc(rep)  # signaling counted under grpc-web, every resource call under webrtc


def test_the_browser_is_routed_by_alpn_to_http1(rep: dict[str, Any]) -> None:
    # every connection Chromium made went over TLS and was handed to aiohttp, none to grpclib
    assert rep["server"]["browserConnections"] == ["http/1.1 over TLS"], _evidence(rep)


def test_the_panel_loads_over_https_and_connects_back(rep: dict[str, Any]) -> None:
    panel = rep["panel"]
    assert panel["url"].startswith("https://") and panel["status"] == "connected", panel
    assert panel["transportShown"] == "WebRTC", panel
    assert rep["panelBrowser"]["pageErrors"] == [], rep["panelBrowser"]
    before, after = rep["stats"]["rpcs"], rep["statsAfterPanel"]["rpcs"]
    assert after["grpc-web"] > before["grpc-web"] and after["webrtc"] > before["webrtc"], (before, after)
