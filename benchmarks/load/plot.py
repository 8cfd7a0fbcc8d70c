"""PNG plots of stepped scenarios: deliveries and latency over offered load."""

from __future__ import annotations

from typing import Any


def plot_steps(records: list[dict[str, Any]], path: str) -> None:
    """Plot achieved deliveries/s and p50/p99 latency against offered load, one line per run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 8), sharex=True)
    peak = 0
    for record in records:
        steps = record["steps"]
        offered = [s["offered"] for s in steps]
        peak = max(peak, *offered)
        name = record.get("label") or record["scenario"]
        if any(r.get("run", 1) > 1 for r in records):
            name += f" #{record.get('run', 1)}"
        top.plot(offered, [s["achieved"] for s in steps], marker="o", label=name)
        (line,) = bottom.plot(
            offered, [s["p99_ms"] for s in steps], marker="o", label=f"{name} p99"
        )
        bottom.plot(
            offered,
            [s["p50_ms"] for s in steps],
            marker=".",
            linestyle="--",
            color=line.get_color(),
            label=f"{name} p50",
        )
    top.plot([0, peak], [0, peak], color="grey", linewidth=0.8, label="offered")
    top.set_ylabel("deliveries/s achieved")
    top.set_title(", ".join(sorted({r["scenario"] for r in records})))
    top.grid(True, alpha=0.3)
    top.legend()
    bottom.set_yscale("log")
    bottom.set_ylabel("end-to-end latency, ms")
    bottom.set_xlabel("deliveries/s offered")
    bottom.axhline(100, color="red", linewidth=0.8)
    bottom.grid(True, alpha=0.3)
    bottom.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
