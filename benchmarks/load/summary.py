"""summary.md from the suite's JSON lines: every target's value, the issue's target, and the
ours/Centrifugo ratio (oriented so that > 1.0 always means ours is better)."""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .scenarios import P99_LIMIT_MS, PLATEAU

Records = dict[str, dict[str, list[dict[str, Any]]]]  # target -> scenario -> runs


@dataclass(frozen=True)
class Metric:
    """One row of the summary."""

    label: str
    scenario: str
    get: Callable[[dict[str, Any]], float | None]
    higher_is_better: bool
    goal: str
    meets: Callable[[float], bool] | None = None
    fmt: str = "{:,.0f}"
    #: False when the two servers' values are not comparable (taken at different loads).
    compare: bool = True

    @property
    def is_stepped_max(self) -> bool:
        """A stepped scenario's maximum: a lower bound when the steps ran out first."""
        return self.get is _max_deliveries


def _max_deliveries(record: dict[str, Any]) -> float | None:
    return float(record["max_deliveries_per_s"])


def _at(offered: int) -> Callable[[dict[str, Any]], float | None]:
    def get(record: dict[str, Any]) -> float | None:
        for step in record.get("steps", []):
            if step["offered"] == offered:
                return float(step["p99_ms"])
        return None

    return get


METRICS = [
    Metric(
        "(a) fan-out, max deliveries/s",
        "fanout",
        _max_deliveries,
        True,
        "≥ 150 000",
        lambda v: v >= 150_000,
    ),
    Metric(
        "(a) fan-out, p99 at 100 000 deliveries/s (ms)",
        "fanout",
        _at(100_000),
        False,
        "≤ 50",
        lambda v: v <= 50,
        "{:.1f}",
    ),
    Metric(
        "(a) fan-out, p50 / p99 / p999 at max (ms)",
        "fanout",
        lambda r: r["at_max"]["p99_ms"],
        False,
        "—",
        None,
        "{:.1f}",
        compare=False,
    ),
    Metric(
        "(e) Protobuf fan-out, max deliveries/s",
        "fanout-protobuf",
        _max_deliveries,
        True,
        "≥ 1.3 × JSON",
    ),
    Metric(
        "(b) idle RSS per connection (KB)",
        "idle",
        lambda r: r["rss_per_connection_kb"],
        False,
        "≤ 10",
        lambda v: v <= 10,
        "{:.1f}",
    ),
    Metric(
        "(b) idle CPU per connection-second (µs)",
        "idle",
        lambda r: r["server_cpu_us_per_conn_s"],
        False,
        "≤ 3",
        lambda v: v <= 3,
        "{:.2f}",
    ),
    Metric(
        "(c) 10 000 channels × 1, max deliveries/s",
        "channels",
        _max_deliveries,
        True,
        "—",
    ),
    Metric(
        "(d) JWT connects/s",
        "storm",
        lambda r: r["connects_per_s"],
        True,
        "≥ 5 000",
        lambda v: v >= 5_000,
    ),
    Metric(
        "(f) Redis, 2 nodes, fan-out max deliveries/s",
        "fanout-redis",
        _max_deliveries,
        True,
        "—",
    ),
]


def _load(out: Path) -> Records:
    records: Records = {}
    for path in sorted(out.glob("*.jsonl")):
        for line in path.read_text().splitlines():
            if line:
                record = json.loads(line)
                runs = records.setdefault(path.stem, {}).setdefault(record["scenario"], [])
                runs.append(record)
    return records


def _median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run whose headline value is the median (the one to show details of)."""
    key = "max_deliveries_per_s" if "max_deliveries_per_s" in runs[0] else None
    if key is None:
        return runs[0]
    ordered = sorted(runs, key=lambda r: float(r[key]))
    return ordered[(len(ordered) - 1) // 2]


def _cell(metric: Metric, runs: list[dict[str, Any]] | None) -> tuple[str, float | None]:
    if not runs:
        return "—", None
    values = [v for v in (metric.get(r) for r in runs) if v is not None]
    if not values:
        return "not reached", None
    value = statistics.median(values)
    record = _median_run(runs)
    if metric.scenario == "fanout" and metric.label.endswith("at max (ms)"):
        at = record["at_max"]
        return f"{at['p50_ms']:.1f} / {at['p99_ms']:.1f} / {at['p999_ms']:.1f}", value
    text = metric.fmt.format(value)
    if metric.is_stepped_max and _capped(record):
        text = f"≥ {text} (top step)"
    if len(runs) > 1:
        text += f" [{metric.fmt.format(min(values))}–{metric.fmt.format(max(values))}]"
    if metric.meets is not None:
        text += " ✓" if metric.meets(value) else " ✗"
    return text, value


def _capped(record: dict[str, Any]) -> bool:
    """The stepping ran out of steps before the server saturated: the max is a lower bound."""
    steps = record.get("steps") or []
    if not steps:
        return False
    last = steps[-1]
    return bool(
        last["offered"] == record["at_max"]["offered"]
        and last["p99_ms"] <= P99_LIMIT_MS
        and last["achieved"] >= PLATEAU * last["offered"]
    )


def write_summary(out: Path) -> None:
    """Write out/summary.md from out/*.jsonl."""
    records = _load(out)
    targets = sorted(records, key=lambda t: (t != "ours", t))
    head = ["metric", "goal", *targets]
    compare = "ours" in records and "centrifugo" in records
    if compare:
        head.append("ours vs Centrifugo")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for metric in METRICS:
        cells = []
        values: dict[str, float | None] = {}
        for target in targets:
            text, value = _cell(metric, records[target].get(metric.scenario))
            cells.append(text)
            values[target] = value
        goal = metric.goal
        if metric.scenario == "fanout-protobuf" and "ours" in records:
            ratio = _protobuf_ratio(records["ours"])
            if ratio is not None:
                goal += f" (ours: {ratio:.2f}×)"
        row = [metric.label, goal, *cells]
        if compare:
            shown = "—"
            if metric.compare:
                shown = _ratio(metric, values.get("ours"), values.get("centrifugo"))
            if shown != "—" and metric.is_stepped_max:
                ours_runs = records["ours"].get(metric.scenario)
                if ours_runs and _capped(_median_run(ours_runs)):
                    shown = f"≥ {shown}"
            row.append(shown)
        lines.append("| " + " | ".join(row) + " |")
    repeats = max((len(runs) for t in records.values() for runs in t.values()), default=1)
    medians = (
        f"\nEach value is the median of {repeats} runs, [min–max] after it; the latency "
        "details are those of the median run.\n"
    )
    ratios = (
        "\nRatios are oriented so that above 1.0 means ours is better: ours/Centrifugo for "
        "rates, Centrifugo/ours for latency, memory and CPU.\n"
    )
    commands = sorted(
        {
            r["command"].replace(f" --label {t}", "")
            for t, by_scenario in records.items()
            for runs in by_scenario.values()
            for r in runs
            if "command" in r
        }
    )
    body = "\n".join(lines) + "\n" + (medians if repeats > 1 else "") + (ratios if compare else "")
    body += (
        "\nGenerator commands, each run pinned to CPU 1 against freshly started server(s) "
        "pinned to CPU 0 (`taskset`); PORT is the server's port:\n\n"
    )
    body += "\n".join(f"- `{c}`" for c in commands) + "\n"
    (out / "summary.md").write_text(body)


def _ratio(metric: Metric, ours: float | None, theirs: float | None) -> str:
    if not ours or not theirs:
        return "—"
    ratio = ours / theirs if metric.higher_is_better else theirs / ours
    return f"{ratio:.2f}"


def _protobuf_ratio(records: dict[str, list[dict[str, Any]]]) -> float | None:
    json_runs, pb_runs = records.get("fanout"), records.get("fanout-protobuf")
    if not json_runs or not pb_runs:
        return None
    json_max = statistics.median(float(r["max_deliveries_per_s"]) for r in json_runs)
    pb_max = statistics.median(float(r["max_deliveries_per_s"]) for r in pb_runs)
    return pb_max / json_max if json_max else None
