"""Fossil delta compression end to end over a raw client (spec §10)."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import pytest

from centrifugo_fast.auth.jwt import make_token
from centrifugo_fast.protocol.fossil import apply_delta
from tests.serverproc import API_KEY, SECRET, ServerProcess
from tests.wsclient import RawWebSocket

CONFIG = {
    "channel": {
        "namespaces": [
            {
                "name": "dd",
                "allow_subscribe_for_client": True,
                "allowed_delta_types": ["fossil"],
                "history_size": 100,
                "history_ttl": "300s",
                "force_recovery": True,
            },
            {
                "name": "auto",
                "allow_subscribe_for_client": True,
                "allowed_delta_types": ["fossil"],
                "delta_publish": True,
            },
            {"name": "nodelta", "allow_subscribe_for_client": True},
        ]
    }
}


@pytest.fixture(scope="module")
def srv() -> Any:
    from tests.serverproc import running_server

    yield from running_server(CONFIG)


def _doc(i: int) -> dict[str, Any]:
    return {
        "match": "A vs B",
        "minute": i,
        "score": [i // 10, (i + 3) // 15],
        "events": [f"event number {n} with some text" for n in range(20)],
    }


def _publish(srv: ServerProcess, channel: str, data: Any, delta: bool = True) -> dict[str, Any]:
    body = json.dumps({"channel": channel, "data": data, "delta": delta}).encode()
    req = urllib.request.Request(
        f"{srv.api_url}/publish", data=body, headers={"X-API-Key": API_KEY}
    )
    with urllib.request.urlopen(req, timeout=5) as resp:
        result: dict[str, Any] = json.load(resp)
        return result


def _client(srv: ServerProcess) -> RawWebSocket:
    ws = RawWebSocket(srv.host, srv.port).open()
    ws.connect(make_token(SECRET, "d", 600))
    return ws


def test_json_delta_subscriber_reconstructs_every_publication(srv: ServerProcess) -> None:
    ws = _client(srv)
    ws.send_json({"id": 2, "subscribe": {"channel": "dd:json", "delta": "fossil"}})
    assert ws.reply(2)["subscribe"]["delta"] is True
    plain = _client(srv)
    plain.send_json({"id": 2, "subscribe": {"channel": "dd:json"}})
    assert "delta" not in plain.reply(2)["subscribe"]
    base = b""
    wire_delta = wire_full = 0
    for i in range(20):
        raw = json.dumps(_doc(i))  # the bytes _publish sends, kept exactly by the server
        _publish(srv, "dd:json", _doc(i))
        pub = ws.push()["pub"]
        assert isinstance(pub["data"], str)  # delta subscribers get data as a JSON string
        payload = pub["data"].encode()
        if i == 0:
            assert "delta" not in pub  # the first publication after subscribe is full
        else:
            assert pub["delta"] is True
            wire_delta += len(payload)
            wire_full += len(raw)
            payload = apply_delta(base, payload)
        assert payload == raw.encode()
        base = payload
        assert plain.push()["pub"]["data"] == _doc(i)  # others get ordinary publications
    assert wire_delta < wire_full / 4


def test_not_eligible_publications_go_in_full(srv: ServerProcess) -> None:
    ws = _client(srv)
    ws.send_json({"id": 2, "subscribe": {"channel": "dd:mixed", "delta": "fossil"}})
    ws.reply(2)
    _publish(srv, "dd:mixed", _doc(1))
    _publish(srv, "dd:mixed", _doc(2), delta=False)
    _publish(srv, "dd:mixed", _doc(3))
    first, second, third = (ws.push()["pub"] for _ in range(3))
    assert "delta" not in first and "delta" not in second and third["delta"] is True
    assert json.loads(apply_delta(second["data"].encode(), third["data"].encode())) == _doc(3)


def test_delta_publish_namespace_option(srv: ServerProcess) -> None:
    ws = _client(srv)
    ws.send_json({"id": 2, "subscribe": {"channel": "auto:x", "delta": "fossil"}})
    ws.reply(2)
    _publish(srv, "auto:x", _doc(1), delta=False)
    _publish(srv, "auto:x", _doc(2), delta=False)  # delta_publish forces eligibility
    ws.push()
    assert ws.push()["pub"]["delta"] is True


def test_namespace_without_delta_ignores_the_request(srv: ServerProcess) -> None:
    ws = _client(srv)
    ws.send_json({"id": 2, "subscribe": {"channel": "nodelta:x", "delta": "fossil"}})
    assert ws.reply(2) == {"id": 2, "subscribe": {}}
    _publish(srv, "nodelta:x", {"a": 1})
    assert ws.push()["pub"]["data"] == {"a": 1}


def test_recovered_publications_form_a_delta_chain(srv: ServerProcess) -> None:
    ws = _client(srv)
    ws.send_json({"id": 2, "subscribe": {"channel": "dd:rec", "delta": "fossil"}})
    start = ws.reply(2)["subscribe"]
    ws.close()
    for i in range(5):
        _publish(srv, "dd:rec", _doc(i))
    back = _client(srv)
    back.send_json(
        {
            "id": 2,
            "subscribe": {
                "channel": "dd:rec",
                "delta": "fossil",
                "recover": True,
                "offset": start.get("offset", 0),
                "epoch": start["epoch"],
            },
        }
    )
    result = back.reply(2)["subscribe"]
    assert result["recovered"] is True and result["delta"] is True
    pubs = result["publications"]
    assert "delta" not in pubs[0] and all(p.get("delta") for p in pubs[1:])
    data = pubs[0]["data"].encode()
    docs = [json.loads(data)]
    for pub in pubs[1:]:
        data = apply_delta(data, pub["data"].encode())
        docs.append(json.loads(data))
    assert docs == [_doc(i) for i in range(5)]
    # Live publications continue as deltas right away.
    _publish(srv, "dd:rec", _doc(5))
    live = back.push()["pub"]
    assert live["delta"] is True
    assert json.loads(apply_delta(data, live["data"].encode())) == _doc(5)


def test_binary_payload_cannot_reach_a_json_delta_subscriber(srv: ServerProcess) -> None:
    import base64

    ws = _client(srv)
    ws.send_json({"id": 2, "subscribe": {"channel": "dd:bin", "delta": "fossil"}})
    ws.reply(2)
    body = json.dumps({"channel": "dd:bin", "b64data": base64.b64encode(b"\xff\x00").decode()})
    req = urllib.request.Request(
        f"{srv.api_url}/publish", data=body.encode(), headers={"X-API-Key": API_KEY}
    )
    urllib.request.urlopen(req, timeout=5).close()
    assert ws.close_code() == 3506
