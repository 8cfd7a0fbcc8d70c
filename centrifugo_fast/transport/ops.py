"""Operations endpoints: `/health` and the Prometheus `/metrics` page (spec §8.1-8.2).

Both are served on the internal listener when `http_server.internal_port` is set, as in
Centrifugo. Node gauges are read from the hub when the page is scraped; counters come from
the node's `Metrics` (centrifugo_fast/metrics.py).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator

from ..core.node import Node
from ..metrics import CONTENT_TYPE, NAMESPACE, Exposition, Histogram, Labels
from ..protocol.http11 import render_response
from .http import Request

_NS = NAMESPACE
_HEALTH = render_response(200, [("Content-Type", "application/json")], b"{}")


async def health(request: Request) -> bytes:
    """`{}` with 200: the process is up and serving (no dependency checks, as Centrifugo)."""
    return _HEALTH


class MetricsEndpoint:
    """Serves the Prometheus text exposition of one node."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self._started = time.time()

    async def __call__(self, request: Request) -> bytes:
        if request.method not in ("GET", "HEAD"):
            return render_response(405, [("Allow", "GET, HEAD")])
        body = self.render()
        headers = [("Content-Type", CONTENT_TYPE)]
        if request.method == "HEAD":
            headers.append(("Content-Length", str(len(body))))
            return render_response(200, headers, content_length=False)
        return render_response(200, headers, body)

    def render(self) -> bytes:
        """The current page."""
        page = Exposition()
        self._node_metrics(page)
        self._client_metrics(page)
        self._api_metrics(page)
        self._broker_metrics(page)
        self._process_metrics(page)
        return page.render()

    def _node_metrics(self, page: Exposition) -> None:
        node = self.node
        hub = node.hub
        m = node.metrics
        m.fold()
        gauges = (
            ("num_clients", "Number of clients connected.", hub.num_clients),
            ("num_users", "Number of unique users connected.", hub.num_users),
            ("num_subscriptions", "Number of subscriptions.", hub.num_subscriptions),
            ("num_channels", "Number of channels with one or more subscribers.", hub.num_channels),
            ("num_nodes", "Number of nodes in the cluster.", len(node.cluster_info())),
        )
        for name, text, value in gauges:
            page.family(f"{_NS}_node_{name}", "gauge", text, [((), value)])
        page.family(
            f"{_NS}_node_build",
            "gauge",
            "Node build info.",
            [((("version", node.version),), 1)],
        )
        page.family(
            f"{_NS}_node_messages_sent_count",
            "counter",
            "Number of messages sent by node to broker.",
            (
                ((("type", kind), ("channel_namespace", "")), count)
                for kind, count in m.messages_sent.items()
            ),
        )
        page.family(
            f"{_NS}_node_messages_received_count",
            "counter",
            "Number of messages received from broker.",
            (
                ((("type", kind), ("channel_namespace", "")), count)
                for kind, count in m.received().items()
            ),
        )
        page.family(
            f"{_NS}_node_uptime_seconds",
            "gauge",
            "Seconds since this node started (centrifugo-fast).",
            [((), node.uptime())],
        )

    def _client_metrics(self, page: Exposition) -> None:
        m = self.node.metrics

        def conn_labels(key: tuple[str, str, str, str]) -> Labels:
            transport, accept, name, version = key
            return (
                ("transport", transport),
                ("accept_protocol", accept),
                ("client_name", name),
                ("client_version", version),
            )

        page.family(
            f"{_NS}_client_connections_accepted",
            "counter",
            "Count of accepted transports.",
            ((conn_labels(k), v) for k, v in sorted(m.connections_accepted.items())),
        )
        page.family(
            f"{_NS}_client_connections_inflight",
            "gauge",
            "Number of inflight client connections.",
            ((conn_labels(k), v) for k, v in sorted(m.connections_inflight.items())),
        )
        durations = sorted(m.command_durations.items())

        def by_method() -> Iterator[tuple[Labels, Histogram]]:
            for method, histogram in durations:
                yield (("method", method), ("channel_namespace", "")), histogram

        page.summaries(
            f"{_NS}_client_command_duration_seconds",
            "Client command duration summary (no quantiles: use the histogram).",
            by_method(),
        )
        page.histograms(
            f"{_NS}_client_command_duration_seconds_histogram",
            "Client command duration histogram.",
            by_method(),
        )
        page.family(
            f"{_NS}_client_num_reply_errors",
            "counter",
            "Number of errors in replies sent to clients.",
            (
                ((("method", method), ("code", str(code)), ("channel_namespace", "")), count)
                for (method, code), count in sorted(m.reply_errors.items())
            ),
        )
        page.family(
            f"{_NS}_client_num_server_disconnects",
            "counter",
            "Number of server initiated disconnects.",
            (
                ((("code", str(code)),), count)
                for code, count in sorted(m.server_disconnects.items())
            ),
        )
        page.family(
            f"{_NS}_client_num_server_unsubscribes",
            "counter",
            "Number of server initiated unsubscribes.",
            (
                ((("code", str(code)), ("channel_namespace", "")), count)
                for code, count in sorted(m.server_unsubscribes.items())
            ),
        )
        page.family(
            f"{_NS}_transport_messages_sent",
            "counter",
            "Number of messages sent to client connections over specific transport.",
            (
                ((("transport", t), ("frame_type", f), ("channel_namespace", "")), count)
                for (t, f), count in sorted(m.transport_sent.items())
            ),
        )
        page.family(
            f"{_NS}_transport_messages_received",
            "counter",
            "Number of messages received from client connections over specific transport.",
            (
                ((("transport", t), ("frame_type", f), ("channel_namespace", "")), count)
                for (t, f), count in sorted(m.transport_received.items())
            ),
        )

    def _api_metrics(self, page: Exposition) -> None:
        m = self.node.metrics
        durations = sorted(m.api_durations.items())

        def by_method() -> Iterator[tuple[Labels, Histogram]]:
            for (protocol, method), histogram in durations:
                yield (("protocol", protocol), ("method", method)), histogram

        page.summaries(
            f"{_NS}_api_command_duration_seconds",
            "Duration of API per command (no quantiles: use the histogram).",
            by_method(),
        )
        page.histograms(
            f"{_NS}_api_command_duration_seconds_histogram",
            "Histogram of duration of API per command.",
            by_method(),
        )
        page.family(
            f"{_NS}_api_command_errors_total",
            "counter",
            "Total errors in API commands.",
            (
                ((("protocol", p), ("method", method), ("error", error)), count)
                for (p, method, error), count in sorted(m.api_errors.items())
            ),
        )

    def _broker_metrics(self, page: Exposition) -> None:
        """Redis PUB/SUB failures, read from the broker's own counters (engine.type redis)."""
        broker = self.node.broker
        connections = getattr(broker, "pubsub", None)
        if connections is None:
            return
        reconnects = sum(getattr(conn, "errors", 0) for conn in connections)
        dropped = getattr(broker, "dropped", 0)
        page.family(
            f"{_NS}_broker_redis_pub_sub_errors",
            "counter",
            "Number of times there was an error in Redis PUB/SUB connection.",
            [
                ((("broker_name", ""), ("error", "connection")), reconnects),
                ((("broker_name", ""), ("error", "handle_client_message")), dropped),
            ],
        )

    def _process_metrics(self, page: Exposition) -> None:
        """Whole-process metrics, under the names every Prometheus client library uses."""
        if sys.platform == "win32":
            return  # no resource module there
        import resource

        usage = resource.getrusage(resource.RUSAGE_SELF)
        rss, vms = _memory()
        page.family(
            "process_cpu_seconds_total",
            "counter",
            "Total user and system CPU time spent in seconds.",
            [((), usage.ru_utime + usage.ru_stime)],
        )
        page.family(
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory size in bytes.",
            [((), rss)],
        )
        page.family(
            "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.", [((), vms)]
        )
        page.family(
            "process_start_time_seconds",
            "gauge",
            "Start time of the process since unix epoch in seconds.",
            [((), self._started)],
        )
        fds = _open_fds()
        if fds is not None:
            page.family(
                "process_open_fds", "gauge", "Number of open file descriptors.", [((), fds)]
            )
            soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
            page.family(
                "process_max_fds",
                "gauge",
                "Maximum number of open file descriptors.",
                [((), soft)],
            )


def _memory() -> tuple[int, int]:
    """(resident, virtual) bytes of this process."""
    import resource

    try:
        with open("/proc/self/statm") as f:
            size, resident = f.read().split()[:2]
        page = resource.getpagesize()
        return int(resident) * page, int(size) * page
    except OSError:
        # Not Linux: the peak RSS is the best the standard library offers.
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return (peak if sys.platform == "darwin" else peak * 1024), 0


def _open_fds() -> int | None:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return None
