"""`http_server.tls`, `tls_external`, `internal_tls` and mutual TLS on a real server."""

from __future__ import annotations

import base64
import json
import socket
import ssl
import subprocess
import sys
import urllib.request
import warnings
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import WebSocketException
from websockets.sync.client import connect as ws_connect

from centrifugo_fast.auth.jwt import make_token
from tests.serverproc import API_KEY, ROOT, SECRET, ServerProcess, free_port
from tests.tlsutil import TestCA


@pytest.fixture(scope="module")
def ca() -> TestCA:
    """The CA of this module's certificates."""
    return TestCA()


def centrifuge_connect(url: str, ctx: ssl.SSLContext | None, user: str = "alice") -> str:
    """Open a WebSocket, send a Centrifugo connect, return the client id from the reply."""
    with ws_connect(url, ssl=ctx, subprotocols=["centrifuge-json"], open_timeout=5) as ws:  # type: ignore[list-item]
        ws.send(json.dumps({"id": 1, "connect": {"token": make_token(SECRET, user, 600)}}))
        reply = json.loads(ws.recv(timeout=5))
    assert reply["id"] == 1, reply
    client: str = reply["connect"]["client"]
    return client


def api_info(url: str, ctx: ssl.SSLContext | None) -> dict[str, Any]:
    """POST {url}/api/info."""
    request = urllib.request.Request(f"{url}/api/info", data=b"{}", headers={"X-API-Key": API_KEY})
    with urllib.request.urlopen(request, timeout=5, context=ctx) as response:
        result: dict[str, Any] = json.loads(response.read())
        return result


def test_tls_with_pem_text_and_base64_key(ca: TestCA, make_server: Any) -> None:
    issued = ca.issue("localhost", "127.0.0.1")
    server: ServerProcess = make_server(
        {
            "http_server": {
                "tls": {
                    "enabled": True,
                    "cert_pem": issued.cert_pem.decode(),
                    "key_pem": base64.b64encode(issued.key_pem).decode(),
                }
            }
        }
    )
    url = f"wss://localhost:{server.port}/connection/websocket"
    assert centrifuge_connect(url, ca.client_context())
    # Protocol floor: TLS 1.2.
    ctx = ca.client_context()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TLS 1.1 is, on purpose
        ctx.maximum_version = ssl.TLSVersion.TLSv1_1
        ctx.minimum_version = ssl.TLSVersion.TLSv1
    with pytest.raises(ssl.SSLError):
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
            ctx.wrap_socket(sock, server_hostname="localhost")
    # Plain HTTP on the TLS port gets nowhere.
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"GET /connection/websocket HTTP/1.1\r\nHost: x\r\n\r\n")
        assert not sock.recv(100).startswith(b"HTTP/1.1 ")


def test_tls_external_leaves_the_internal_port_plain(
    ca: TestCA, tmp_path: Path, make_server: Any
) -> None:
    issued = ca.issue("localhost")
    (tmp_path / "cert.pem").write_bytes(issued.cert_pem)
    (tmp_path / "key.pem").write_bytes(issued.key_pem)
    internal = free_port()
    server = make_server(
        {
            "http_server": {
                "internal_port": internal,
                "tls_external": True,
                "tls": {
                    "enabled": True,
                    "cert_pem": str(tmp_path / "cert.pem"),
                    "key_pem": str(tmp_path / "key.pem"),
                },
            }
        }
    )
    assert centrifuge_connect(
        f"wss://localhost:{server.port}/connection/websocket", ca.client_context()
    )
    assert api_info(f"http://127.0.0.1:{internal}", None)["result"]["nodes"]


def test_internal_tls_has_its_own_certificate(ca: TestCA, make_server: Any) -> None:
    internal_ca = TestCA("internal CA")
    external = ca.issue("localhost")
    internal_cert = internal_ca.issue("localhost")
    internal = free_port()
    make_server(
        {
            "http_server": {
                "internal_port": internal,
                "tls": {
                    "enabled": True,
                    "cert_pem": external.cert_pem.decode(),
                    "key_pem": external.key_pem.decode(),
                },
                "internal_tls": {
                    "enabled": True,
                    "cert_pem": internal_cert.cert_pem.decode(),
                    "key_pem": internal_cert.key_pem.decode(),
                },
            }
        }
    )
    assert api_info(f"https://localhost:{internal}", internal_ca.client_context())["result"]
    with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
        api_info(f"https://localhost:{internal}", ca.client_context())


def test_client_ca_requires_client_certificates(ca: TestCA, make_server: Any) -> None:
    issued = ca.issue("localhost")
    client_ca = TestCA("client CA")
    server = make_server(
        {
            "http_server": {
                "tls": {
                    "enabled": True,
                    "cert_pem": issued.cert_pem.decode(),
                    "key_pem": issued.key_pem.decode(),
                    "client_ca_pem": base64.b64encode(client_ca.cert_pem).decode(),
                }
            }
        }
    )
    url = f"wss://localhost:{server.port}/connection/websocket"
    # TLS 1.3: the client may finish its handshake before the server refuses it, so the
    # refusal shows up as a failed TLS read or a WebSocket handshake that gets no answer.
    with pytest.raises((ssl.SSLError, OSError, WebSocketException)):
        centrifuge_connect(url, ca.client_context())
    ctx = ca.client_context()
    mine = client_ca.issue("client-1", client=True)
    cert_file = Path(server.config_path).with_name("client.pem")
    cert_file.write_bytes(mine.cert_pem + mine.key_pem)
    ctx.load_cert_chain(cert_file)
    assert centrifuge_connect(url, ctx)


@pytest.mark.parametrize(
    ("tls", "message"),
    [
        ({"enabled": True}, "http_server.tls: cert_pem and key_pem are required"),
        (
            {"enabled": True, "cert_pem": "/nonexistent/cert.pem", "key_pem": "x"},
            "http_server.tls.cert_pem: not PEM text",
        ),
    ],
)
def test_bad_tls_config_exits_1_naming_the_key(
    tmp_path: Path, tls: dict[str, Any], message: str
) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"http_server": {"tls": tls}}))
    done = subprocess.run(
        [sys.executable, "-m", "centrifugo_fast", "checkconfig", "-c", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=ROOT,
    )
    assert done.returncode == 1
    assert message in done.stderr


def test_mismatched_key_stops_the_server(ca: TestCA, tmp_path: Path) -> None:
    one, other = ca.issue("localhost"), ca.issue("localhost")
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps(
            {
                "http_server": {
                    "tls": {
                        "enabled": True,
                        "cert_pem": one.cert_pem.decode(),
                        "key_pem": other.key_pem.decode(),
                    }
                }
            }
        )
    )
    done = subprocess.run(
        [sys.executable, "-m", "centrifugo_fast", "-c", str(config), "-p", str(free_port())],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=ROOT,
    )
    assert done.returncode == 1
    assert "http_server.tls: certificate and key do not load" in done.stderr
