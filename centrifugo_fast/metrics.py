"""What one node counts for Prometheus, and the text exposition format.

A leaf module (stdlib only): core, API and transports count into a `Metrics` object owned by
the Node; `transport/ops.py` renders it, with gauges read from the hub at scrape time.

Why not `prometheus_client` on the hot paths: its counters take a lock and a label lookup per
increment. Here counting is a plain dict or attribute update, done once per publication for
fan-out (the delivered count the hub already returns), never once per subscriber. Metric and
label names follow Centrifugo's (namespace `centrifugo_`), so its dashboards and alerts work.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Iterable, Sequence

NAMESPACE = "centrifugo"

#: Buckets of client command durations (seconds), as Centrifugo's histogram.
CLIENT_COMMAND_BUCKETS = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
#: Prometheus' default buckets, which Centrifugo uses for API command durations.
DEFAULT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

#: Message types a node sends to / receives from its broker.
MESSAGE_TYPES = ("publication", "join", "leave", "control")

#: Command fields in the order they are tested (most frequent first), with their label.
_COMMAND_FIELDS = (
    "publish",
    "subscribe",
    "unsubscribe",
    "presence",
    "presence_stats",
    "history",
    "rpc",
    "sub_refresh",
    "refresh",
    "connect",
    "send",
)

#: The transport label of fan-out deliveries while the node's connections use more than one
#: transport (deliveries are counted per publication, not per subscriber: see `pushed`).
MIXED_TRANSPORTS = "mixed"
#: Every listener speaks HTTP/1.1 (Centrifugo's label for it).
ACCEPT_PROTOCOL = "h1"


def command_method(cmd: object) -> str:
    """Centrifugo's frame-type label of a client command ("client_pong" for an empty one)."""
    for name in _COMMAND_FIELDS:
        if getattr(cmd, name, None) is not None:
            return name
    return "client_pong"


class Histogram:
    """Bucket counts and a sum; also rendered as Centrifugo's (deprecated) summary."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(bounds)
        #: One count per bound, plus the +Inf bucket (not cumulative).
        self.counts = [0] * (len(self.bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        """Record one observation."""
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value

    @property
    def count(self) -> int:
        """Observations so far."""
        return sum(self.counts)


class Metrics:
    """The counters of one node (read by the `/metrics` endpoint)."""

    def __init__(self) -> None:
        #: Messages this node sent to its broker, by type.
        self.messages_sent: dict[str, int] = dict.fromkeys(MESSAGE_TYPES, 0)
        #: Messages this node received from its broker, by type (publications: below).
        self.messages_received: dict[str, int] = dict.fromkeys(MESSAGE_TYPES, 0)
        #: The hottest counters are plain attributes (Node.handle_publication adds to them
        #: once per publication): publications received from the broker, and their
        #: deliveries not yet folded into `transport_sent` (see `fold`).
        self.publications_received = 0
        self.publication_pushes = 0
        #: Messages written to client connections: (transport, frame type) -> count.
        self.transport_sent: dict[tuple[str, str], int] = {}
        #: Commands received from client connections: (transport, frame type) -> count.
        self.transport_received: dict[tuple[str, str], int] = {}
        #: Client command durations by method.
        self.command_durations: dict[str, Histogram] = {}
        #: Error replies to clients: (method, code) -> count.
        self.reply_errors: dict[tuple[str, int], int] = {}
        #: Connections closed by the server, by disconnect code.
        self.server_disconnects: dict[int, int] = {}
        #: Subscriptions ended by the server, by unsubscribe code.
        self.server_unsubscribes: dict[int, int] = {}
        #: Connections accepted: (transport, accept protocol, client name, version) -> count.
        self.connections_accepted: dict[tuple[str, str, str, str], int] = {}
        #: Connections open now, with the same labels.
        self.connections_inflight: dict[tuple[str, str, str, str], int] = {}
        #: Server API durations: (protocol, method) -> histogram.
        self.api_durations: dict[tuple[str, str], Histogram] = {}
        #: Server API errors: (protocol, method, error) -> count.
        self.api_errors: dict[tuple[str, str, str], int] = {}
        self._label_cache: dict[tuple[str, str, str, str], tuple[str, str, str, str]] = {}
        #: Open connections per transport, to label fan-out deliveries.
        self._live: dict[str, int] = {}
        #: The transport label fan-out deliveries are counted under (see `pushed`).
        self.fanout_transport = MIXED_TRANSPORTS

    # ---- fan-out ----

    def fold(self) -> None:
        """Move pending publication deliveries into `transport_sent` under the current
        transport label (before the label changes, and before a scrape)."""
        count = self.publication_pushes
        if count:
            self.publication_pushes = 0
            self.pushed("push_publication", count)

    def received(self) -> dict[str, int]:
        """Messages received from the broker, by type."""
        counts = dict(self.messages_received)
        counts["publication"] += self.publications_received
        return counts

    def pushed(self, frame_type: str, count: int) -> None:
        """Count `count` deliveries of one broadcast push.

        Called once per publication with the number of subscribers the hub visited, so the
        fan-out loop does no per-subscriber work for metrics. The transport label is the one
        transport of every open connection, or "mixed" when several are in use.
        """
        if count:
            key = (self.fanout_transport, frame_type)
            sent = self.transport_sent
            sent[key] = sent.get(key, 0) + count

    # ---- client connections ----

    def connection_labels(
        self, transport: str, client_name: str, client_version: str
    ) -> tuple[str, str, str, str]:
        """The shared label tuple of a connection (one per combination, so a connection
        holds a reference, not its own tuple).

        Name and version come from the client: as Centrifugo does for names nobody
        registered, they collapse to fixed values so a client cannot grow the label set.
        """
        key = (
            transport,
            ACCEPT_PROTOCOL,
            "unregistered" if client_name else "unnamed",
            "unregistered" if client_version else "unversioned",
        )
        return self._label_cache.setdefault(key, key)

    def connection_opened(self, labels: tuple[str, str, str, str]) -> None:
        """A connection authenticated (labels: transport, protocol, client name, version)."""
        accepted = self.connections_accepted
        accepted[labels] = accepted.get(labels, 0) + 1
        inflight = self.connections_inflight
        inflight[labels] = inflight.get(labels, 0) + 1
        transport = labels[0]
        live = self._live
        live[transport] = live.get(transport, 0) + 1
        self._relabel()

    def connection_closed(self, labels: tuple[str, str, str, str]) -> None:
        """An authenticated connection ended."""
        inflight = self.connections_inflight
        inflight[labels] = inflight.get(labels, 0) - 1
        live = self._live
        transport = labels[0]
        left = live.get(transport, 0) - 1
        if left > 0:
            live[transport] = left
        else:
            live.pop(transport, None)
        self._relabel()

    def _relabel(self) -> None:
        live = self._live
        label = next(iter(live)) if len(live) == 1 else MIXED_TRANSPORTS
        if label != self.fanout_transport:
            self.fold()  # deliveries so far belong to the old label
            self.fanout_transport = label

    def command_done(
        self, transport: str, method: str, seconds: float, error_code: int, replied: bool
    ) -> None:
        """One client command was handled (`error_code` 0: no error reply)."""
        key = (transport, method)
        received = self.transport_received
        received[key] = received.get(key, 0) + 1
        if replied:
            sent = self.transport_sent
            sent[key] = sent.get(key, 0) + 1
        histogram = self.command_durations.get(method)
        if histogram is None:
            histogram = self.command_durations[method] = Histogram(CLIENT_COMMAND_BUCKETS)
        histogram.observe(seconds)
        if error_code:
            errors = self.reply_errors
            ekey = (method, error_code)
            errors[ekey] = errors.get(ekey, 0) + 1

    def server_disconnect(self, code: int) -> None:
        """The server closed a connection with `code`."""
        self.server_disconnects[code] = self.server_disconnects.get(code, 0) + 1

    def server_unsubscribe(self, code: int) -> None:
        """The server ended a subscription with `code`."""
        self.server_unsubscribes[code] = self.server_unsubscribes.get(code, 0) + 1

    # ---- server API ----

    def api_call(self, protocol: str, method: str, seconds: float, error: str = "") -> None:
        """One server API command finished (`error`: its code, or what failed; "" = none)."""
        key = (protocol, method)
        histogram = self.api_durations.get(key)
        if histogram is None:
            histogram = self.api_durations[key] = Histogram(DEFAULT_BUCKETS)
        histogram.observe(seconds)
        if error:
            ekey = (protocol, method, error)
            self.api_errors[ekey] = self.api_errors.get(ekey, 0) + 1


# ---- text exposition format 0.0.4 ----

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

Labels = Sequence[tuple[str, str]]


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _number(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    return repr(float(value))


def _labels(labels: Labels) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_escape_label(v)}"' for k, v in labels) + "}"


class Exposition:
    """Builds a Prometheus text-format page, one metric family at a time."""

    def __init__(self) -> None:
        self._lines: list[str] = []

    def family(
        self,
        name: str,
        kind: str,
        help_text: str,
        samples: Iterable[tuple[Labels, float]],
    ) -> None:
        """A counter, gauge or untyped family: `# HELP`, `# TYPE`, then one line a sample."""
        lines = self._lines
        lines.append(f"# HELP {name} {_escape_help(help_text)}")
        lines.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            lines.append(f"{name}{_labels(labels)} {_number(value)}")

    def histograms(
        self, name: str, help_text: str, samples: Iterable[tuple[Labels, Histogram]]
    ) -> None:
        """A histogram family: cumulative `_bucket` lines (le), `_sum` and `_count`."""
        lines = self._lines
        lines.append(f"# HELP {name} {_escape_help(help_text)}")
        lines.append(f"# TYPE {name} histogram")
        for labels, histogram in samples:
            cumulative = 0
            bounds = [*(_number(b) for b in histogram.bounds), "+Inf"]
            for bound, count in zip(bounds, histogram.counts, strict=True):
                cumulative += count
                le = _labels([*labels, ("le", bound)])
                lines.append(f"{name}_bucket{le} {cumulative}")
            lines.append(f"{name}_sum{_labels(labels)} {_number(histogram.sum)}")
            lines.append(f"{name}_count{_labels(labels)} {cumulative}")

    def summaries(
        self, name: str, help_text: str, samples: Iterable[tuple[Labels, Histogram]]
    ) -> None:
        """A summary family without quantiles (`_sum` and `_count` only)."""
        lines = self._lines
        lines.append(f"# HELP {name} {_escape_help(help_text)}")
        lines.append(f"# TYPE {name} summary")
        for labels, histogram in samples:
            lines.append(f"{name}_sum{_labels(labels)} {_number(histogram.sum)}")
            lines.append(f"{name}_count{_labels(labels)} {histogram.count}")

    def render(self) -> bytes:
        """The page, ending with a newline."""
        return ("\n".join(self._lines) + "\n").encode()
