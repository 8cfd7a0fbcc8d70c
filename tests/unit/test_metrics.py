"""Metrics counting and the Prometheus text exposition (parsed by prometheus_client)."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from centrifugo_fast.metrics import (
    CLIENT_COMMAND_BUCKETS,
    MIXED_TRANSPORTS,
    Exposition,
    Histogram,
    Metrics,
    command_method,
)
from centrifugo_fast.protocol.messages import (
    ChannelRequest,
    Command,
    ConnectRequest,
    PublishRequest,
    SendRequest,
)


def _parse(page: bytes) -> dict[str, list[tuple[str, dict[str, str], float]]]:
    """{family name: [(sample name, labels, value)]}."""
    return {
        family.name: [(s.name, s.labels, s.value) for s in family.samples]
        for family in text_string_to_metric_families(page.decode())
    }


def test_histogram_buckets_are_upper_inclusive() -> None:
    h = Histogram((0.1, 1.0))
    for value in (0.05, 0.1, 0.5, 1.0, 3.0):
        h.observe(value)
    assert h.counts == [2, 2, 1]
    assert h.count == 5
    assert h.sum == 4.65


def test_exposition_parses_with_prometheus_client() -> None:
    h = Histogram(CLIENT_COMMAND_BUCKETS)
    h.observe(0.0002)
    h.observe(2.0)
    page = Exposition()
    page.family("x_total", "counter", "Things.\nSecond line \\ backslash", [((), 3)])
    page.family("x_gauge", "gauge", "A gauge.", [((("label", 'quote " and \\ and \n'),), 1.5)])
    page.histograms("x_seconds", "Durations.", [((("method", "publish"),), h)])
    page.summaries("x_summary_seconds", "Durations.", [((("method", "publish"),), h)])
    families = _parse(page.render())
    assert families["x"] == [("x_total", {}, 3.0)]
    assert families["x_gauge"] == [("x_gauge", {"label": 'quote " and \\ and \n'}, 1.5)]
    buckets = [s for s in families["x_seconds"] if s[0] == "x_seconds_bucket"]
    assert buckets[1] == ("x_seconds_bucket", {"method": "publish", "le": "0.00025"}, 1.0)
    assert buckets[-1] == ("x_seconds_bucket", {"method": "publish", "le": "+Inf"}, 2.0)
    assert ("x_seconds_count", {"method": "publish"}, 2.0) in families["x_seconds"]
    assert ("x_summary_seconds_count", {"method": "publish"}, 2.0) in families["x_summary_seconds"]


def test_command_method_labels() -> None:
    assert command_method(Command(id=1, connect=ConnectRequest())) == "connect"
    assert command_method(Command(id=2, publish=PublishRequest(channel="a"))) == "publish"
    assert command_method(Command(id=3, presence_stats=ChannelRequest(channel="a"))) == (
        "presence_stats"
    )
    assert command_method(Command(send=SendRequest())) == "send"
    assert command_method(Command()) == "client_pong"


def test_fanout_label_is_the_one_transport_in_use() -> None:
    m = Metrics()
    ws = m.connection_labels("websocket", "js", "")
    assert ws == ("websocket", "h1", "unregistered", "unversioned")
    assert m.connection_labels("websocket", "other-name", "") is ws  # shared tuple
    m.connection_opened(ws)
    m.pushed("push_publication", 10)
    sse = m.connection_labels("sse", "", "1.0")
    m.connection_opened(sse)
    m.pushed("push_publication", 4)
    m.connection_closed(ws)
    m.pushed("push_publication", 1)
    m.pushed("push_publication", 0)
    assert m.transport_sent == {
        ("websocket", "push_publication"): 10,
        (MIXED_TRANSPORTS, "push_publication"): 4,
        ("sse", "push_publication"): 1,
    }
    assert m.connections_accepted == {ws: 1, sse: 1}
    assert m.connections_inflight == {ws: 0, sse: 1}


def test_command_done_counts_replies_errors_and_durations() -> None:
    m = Metrics()
    m.command_done("websocket", "subscribe", 0.002, 0, True)
    m.command_done("websocket", "subscribe", 0.003, 103, True)
    m.command_done("websocket", "client_pong", 0.00001, 0, False)
    assert m.transport_received == {("websocket", "subscribe"): 2, ("websocket", "client_pong"): 1}
    assert m.transport_sent == {("websocket", "subscribe"): 2}
    assert m.reply_errors == {("subscribe", 103): 1}
    assert m.command_durations["subscribe"].count == 2


def test_publication_deliveries_fold_under_the_label_they_were_made_with() -> None:
    m = Metrics()
    ws = m.connection_labels("websocket", "", "")
    m.connection_opened(ws)
    m.publications_received += 2
    m.publication_pushes += 7  # what Node.handle_publication adds, once per publication
    m.connection_opened(m.connection_labels("sse", "", ""))  # the label changes: fold first
    m.publication_pushes += 3
    m.fold()  # a scrape
    assert m.transport_sent == {
        ("websocket", "push_publication"): 7,
        (MIXED_TRANSPORTS, "push_publication"): 3,
    }
    assert m.received()["publication"] == 2
    assert m.publication_pushes == 0
