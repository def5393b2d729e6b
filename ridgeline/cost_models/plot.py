"""The roofline plot: each node placed by arithmetic intensity against the target's ceilings.

x: FLOPs per byte of device memory; y: the FLOP/s the node attains in the estimate. The slanted
line is device-memory bandwidth, the flat lines the peaks of the target's units per dtype; the
ridge point (where they meet) is marked for the dtype the graph computes in. Markers are sized by
the node's share of the step and coloured by its bound. Needs matplotlib (the ``plot`` extra).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from ..ir.errors import RidgelineError
from ..ir.safe_files import write_atomic
from .estimate import Estimate
from .target import Target

__all__ = ["pyplot", "roofline_plot", "save_figure"]

_COLORS = {"compute": "#d62728", "memory": "#1f77b4", "overhead": "#7f7f7f", "communication": "#2ca02c"}


def pyplot(path: Path, flag: str, what: str) -> Any:
    """matplotlib's pyplot (Agg) to draw ``what`` into ``path``; a file type it does not write or
    matplotlib missing is a one-line error naming ``flag``."""
    if path.suffix.lower() not in (".png", ".svg", ".pdf"):
        raise RidgelineError(f"{flag} {path}: use a .png, .svg or .pdf file name")
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise RidgelineError(f"{what} needs matplotlib: pip install 'ridgeline[plot]'") from None
    return plt


def save_figure(plt: Any, fig: Any, path: Path, label: str) -> Path:
    """Write ``fig`` to ``path`` (atomically, in the suffix's format) and close it."""
    try:
        write_atomic(path, lambda f: fig.savefig(f, format=path.suffix[1:].lower() or "png"), label)
    except ValueError as e:  # a format matplotlib does not write
        raise RidgelineError(f"{label} {path}: {e}") from None
    finally:
        plt.close(fig)
    return path


def roofline_plot(est: Estimate, target: Target, path: str | Path, *, title: str | None = None) -> Path:
    """Write the plot to ``path`` (.png, .svg or .pdf); returns the path."""
    path = Path(path)
    plt = pyplot(path, "--plot", "the roofline plot")
    bw = target.device_memory.bandwidth
    pts = [(r.intensity, r.flops / r.time_s, r) for r in est.nodes
           if r.time_s > 0 and r.flops > 0 and r.outer_bytes > 0 and math.isfinite(r.intensity)]
    fig, ax = plt.subplots(figsize=(8, 5.5))
    xs = [p[0] for p in pts] or [1.0]
    lo = min(min(xs) / 4, 0.1)
    order = {k: i for i, k in enumerate(("bf16", "f16", "f8e4m3", "i8", "tf32", "f32", "f8e5m2"))}
    peaks = []
    for u in target.units.values():
        for dt, rate in u.peak.items():
            peaks.append((rate, order.get(dt, 9), f"{u.name} {dt}"))
    peaks = [(r, label) for r, _, label in sorted(peaks, key=lambda p: (-p[0], p[1]))]
    top = peaks[0][0] if peaks else 1e12
    hi = max(max(xs) * 4, top / bw * 8)
    ax.plot([lo, top / bw], [bw * lo, top], color="black", lw=1.2,
            label=f"{target.device_memory.name} {bw / 1e12:.3g} TB/s")
    shown = set()
    for rate, label in peaks[:6]:
        if rate in shown:
            continue
        shown.add(rate)
        ax.plot([rate / bw, hi], [rate, rate], lw=1, ls="--", label=f"{label} {rate / 1e12:.4g} TFLOP/s")
    ridge_dt = max(est.detail.get("dtypes", {"bf16": 1}).items(), key=lambda kv: kv[1])[0] \
        if est.detail.get("dtypes") else None
    ridge = target.ridge(ridge_dt) if ridge_dt else (est.peak_flop_per_s / bw if est.peak_flop_per_s else None)
    if ridge:
        ax.axvline(ridge, color="black", lw=0.6, ls=":")
        ax.annotate(f"ridge {ridge:,.0f} FLOP/B", (ridge, top), textcoords="offset points", xytext=(4, -12),
                    fontsize=8)
    total = est.time_s or 1.0
    for bound, color in _COLORS.items():
        sel = [p for p in pts if p[2].bound == bound]
        if sel:
            ax.scatter([p[0] for p in sel], [p[1] for p in sel], s=[12 + 400 * p[2].time_s / total for p in sel],
                       color=color, alpha=0.6, edgecolors="none", label=f"{bound}-bound nodes")
    for x, y, r in sorted(pts, key=lambda p: p[2].time_s, reverse=True)[:5]:
        ax.annotate(r.op, (x, y), fontsize=7, textcoords="offset points", xytext=(3, 3))
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(lo, hi)
    ax.set_xlabel(f"arithmetic intensity (FLOP per byte of {target.device_memory.name})")
    ax.set_ylabel("attained FLOP/s")
    ax.set_title(title or f"{est.graph} on {target.name}: {est.time_s * 1e3:.3g} ms, {est.bound}-bound")
    ax.grid(True, which="both", lw=0.3, alpha=0.5)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return save_figure(plt, fig, path, "--plot")
