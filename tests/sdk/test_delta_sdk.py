"""centrifuge-js with delta compression: exact reconstruction and fewer bytes on the wire."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest
from cent import BatchRequest, PublishRequest

from tests.sdk.common import cent_client, token
from tests.sdk.jsrun import node_path, run_script_with, wait_marker
from tests.serverproc import ServerProcess

pytestmark = pytest.mark.sdk

DELTA_CONFIG = {
    "channel": {
        "namespaces": [
            {
                "name": "live",
                "allow_subscribe_for_client": True,
                "allowed_delta_types": ["fossil"],
                "delta_publish": True,
                "history_size": 100,
                "history_ttl": "300s",
            }
        ]
    }
}
COUNT = 50


def _document(i: int) -> dict[str, Any]:
    """A scoreboard that changes a little between publications."""
    return {
        "match": "Rovers vs United",
        "minute": i,
        "score": {"home": i // 17, "away": i // 23},
        "possession": {"home": 50 + i % 7, "away": 50 - i % 7},
        "events": [
            {
                "minute": m,
                "type": "shot" if m % 3 else "corner",
                "team": "home" if m % 2 else "away",
            }
            for m in range(0, i, 2)
        ][-12:],
        "commentary": "A long, steady spell of possession in midfield without much threat.",
    }


def test_js_reconstructs_50_delta_publications(make_server: Any) -> None:
    server: ServerProcess = make_server(DELTA_CONFIG)
    docs = [_document(i) for i in range(COUNT)]

    def publish(proc: subprocess.Popen[str]) -> None:
        wait_marker(proc, "subscribed")
        with cent_client(server) as cent:
            cent.batch(
                BatchRequest(requests=[PublishRequest(channel="live:1", data=d) for d in docs])
            )

    result = run_script_with(
        node_path(),
        "delta.js",
        {"url": server.ws_url, "token": token("fan"), "channel": "live:1", "count": str(COUNT)},
        publish,
    )
    received = [p["data"] for p in result["publications"]]
    assert received == docs  # every publication reconstructed exactly, in order
    wire = result["wire"]
    assert wire["pubFrames"] == COUNT and wire["deltaPubs"] == COUNT - 1
    full_bytes = sum(len(json.dumps(d)) for d in docs)
    ratio = wire["pubBytes"] / full_bytes
    print(f"delta wire bytes {wire['pubBytes']} vs full payloads {full_bytes}: {ratio:.3f}")
    assert ratio < 0.35
