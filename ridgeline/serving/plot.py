"""Plots of serving runs (matplotlib, Agg): latency percentiles vs arrival rate, and a timeline."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["plot_rate_sweep", "plot_timeline"]


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def plot_rate_sweep(curves: Mapping[str, Sequence[tuple[float, Any]]], path: str | Path, *,
                    slo: Any = None) -> None:
    """``curves``: target → [(rate, Metrics)]; p50/p99 TTFT and TPOT against rate, one colour per target."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for name, pts in curves.items():
        rates = [r for r, _ in pts]
        for ax, key in zip(axes, ("ttft", "tpot")):
            line, = ax.plot(rates, [getattr(m, key)["p50"] for _, m in pts], marker="o", label=f"{name} p50")
            ax.plot(rates, [getattr(m, key)["p99"] for _, m in pts], marker="^", ls="--", color=line.get_color(),
                    label=f"{name} p99")
    for ax, key, title in zip(axes, ("ttft", "tpot"), ("time to first token", "time per output token")):
        bound = getattr(slo, key, None) if slo is not None else None
        if bound:
            ax.axhline(bound, color="k", lw=0.8, ls=":", label="SLO")
        ax.set_xlabel("arrival rate (requests/s)")
        ax.set_ylabel("seconds")
        ax.set_yscale("log")
        ax.set_title(title)
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_timeline(metrics: Any, path: str | Path, *, title: str = "") -> None:
    """KV-cache occupancy, running/waiting sequences and preemptions over the run."""
    plt = _plt()
    tl = metrics.timeline
    fig, ax = plt.subplots(figsize=(10, 3.6))
    if tl:
        ax.plot(tl["t"], tl["running"], label="running", lw=1)
        ax.plot(tl["t"], tl["waiting"], label="waiting", lw=1)
        ax2 = ax.twinx()
        ax2.plot(tl["t"], [100 * k for k in tl["kv"]], color="tab:red", lw=0.8, label="KV used (%)")
        ax2.set_ylabel("KV cache used (%)")
        ax2.set_ylim(0, 105)
        for t in tl.get("preemptions", [])[:2000]:
            ax.axvline(t, color="tab:purple", lw=0.3, alpha=0.4)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("sequences")
    ax.set_title(title or "serving timeline (purple: preemptions)")
    handles, labels = ax.get_legend_handles_labels()
    if tl:
        h2, l2 = ax2.get_legend_handles_labels()
        handles, labels = handles + h2, labels + l2
    ax.legend(handles, labels, loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
