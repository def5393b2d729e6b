"""Analysis of sweep results: Pareto fronts per model, and the plots people put in slides.

The default front is the serving trade-off: tokens/s per user (latency: 1 / TPOT) against
tokens/s per device (throughput: what a deployment costs), both maximised, over decode points that
fit in memory and did not fail. ``--y joules_per_token`` (minimised) ranks by energy instead,
where targets state their power.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..ir.errors import RidgelineError

__all__ = ["MINIMIZE", "ReportError", "pareto_front", "plot_pareto", "plot_roofline", "report"]

#: columns where smaller is better (everything else is maximised)
MINIMIZE = frozenset({"time_s", "ttft_s", "tpot_s", "joules_per_token", "devices", "memory.per_device_bytes",
                      "kv_cache_bytes"})
#: columns a front row shows beside its two coordinates (those present in the table)
SHOW = ("target", "phase", "batch", "context", "prompt", "dtype", "weight_dtype", "kv_dtype", "tp", "pp", "devices")


class ReportError(RidgelineError):
    """A report over columns the table does not have, or a table with nothing to rank."""


def pareto_front(rows: Sequence[dict[str, Any]], x: str, y: str) -> list[dict[str, Any]]:
    """The rows no other row beats on both ``x`` and ``y`` (direction by ``MINIMIZE``), by ``x``."""
    sx = -1.0 if x in MINIMIZE else 1.0
    sy = -1.0 if y in MINIMIZE else 1.0
    pts = [r for r in rows if isinstance(r.get(x), (int, float)) and isinstance(r.get(y), (int, float))]
    # best x first (ties: best y first); a row is on the front when its y beats every y before it
    pts.sort(key=lambda r: (-sx * r[x], -sy * r[y], r.get("point", 0)))
    front, best = [], None
    for r in pts:
        if best is None or sy * r[y] > best:
            front.append(r)
            best = sy * r[y]
    return sorted(front, key=lambda r: (sx * r[x], r.get("point", 0)))


def report(table, *, x: str = "tokens_per_s_per_user", y: str = "tokens_per_s_per_device",
           by: str = "model", phase: str | None = "decode", only_fitting: bool = True) -> dict[str, Any]:
    """Fronts per ``by`` value: ``{"x", "y", "counts": {...}, "fronts": {model: [rows]}}``."""
    cols = set(table.column_names)
    for c in (x, y):
        if c not in cols:
            raise ReportError(f"no column {c!r} in the results (columns include: "
                              f"{', '.join(sorted(c for c in cols if not c.startswith(('detail.', 'options.'))))})")
    rows = table.to_pylist()
    total = len(rows)
    errors = sum(r.get("error") is not None for r in rows)
    keep = [r for r in rows if r.get("error") is None]
    if phase and "phase" in cols:
        keep = [r for r in keep if r.get("phase") == phase]
    if only_fitting and "fits" in cols:
        keep = [r for r in keep if r.get("fits") is not False]
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in keep:
        groups.setdefault(str(r.get(by, "all")), []).append(r)
    fronts = {g: pareto_front(rs, x, y) for g, rs in groups.items()}
    show = [c for c in SHOW if c in cols]
    return {"x": x, "y": y, "by": by, "phase": phase, "counts": {"rows": total, "errors": errors, "ranked": len(keep)},
            "fronts": {g: [{"point": r["point"], **{c: r.get(c) for c in show}, x: r[x], y: r[y]} for r in f]
                       for g, f in fronts.items()},
            "_groups": groups}


def _mpl():
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ReportError("plots need matplotlib: pip install 'ridgeline[plot]'") from None
    return plt


def plot_pareto(rep: dict[str, Any], out_dir: str | Path) -> list[Path]:
    """One picture per group: every ranked point (by target), the front drawn through them."""
    plt = _mpl()
    out = Path(out_dir)
    paths = []
    x, y = rep["x"], rep["y"]
    for g, rows in rep["_groups"].items():
        fig, ax = plt.subplots(figsize=(8, 5.5))
        targets = sorted({str(r.get("target")) for r in rows})
        cmap = plt.get_cmap("tab20")
        for i, t in enumerate(targets):
            pts = [(r[x], r[y]) for r in rows if str(r.get("target")) == t and r.get(x) and r.get(y)]
            if pts:
                ax.scatter(*zip(*pts), s=10, alpha=0.5, color=cmap(i % 20), label=t)
        front = rep["fronts"][g]
        if front:
            ax.plot([r[x] for r in front], [r[y] for r in front], "k-", lw=1.2, label="Pareto front")
            ax.scatter([r[x] for r in front], [r[y] for r in front], s=28, facecolors="none", edgecolors="k")
        labels = [c + (" (lower is better)" if c in MINIMIZE else "") for c in (x, y)]
        paths.append(_save(plt, fig, ax, out / f"pareto_{_safe(g)}.png", *labels,
                           f"{g}: {rep['phase'] or 'all phases'}, {len(rows)} points, {len(front)} on the front"))
    return paths


def _save(plt, fig, ax, path: Path, xlabel: str, ylabel: str, title: str) -> Path:
    """Label a log-log plot, write it to ``path`` and close it."""
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(fontsize=7, ncol=2, loc="best")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path


def plot_roofline(table, out_dir: str | Path) -> Path | None:
    """Every successful point on its target's roofline: FLOP/s attained per device against FLOPs
    per byte of device memory, with each target's memory slope and compute roof."""
    plt = _mpl()
    need = {"flops", "time_s", "achieved_bandwidth", "peak_flop_per_s", "detail.device_bandwidth", "target"}
    if not need <= set(table.column_names):
        return None
    rows = [r for r in table.to_pylist() if r.get("error") is None and r.get("time_s") and r.get("achieved_bandwidth")]
    if not rows:
        return None
    fig, ax = plt.subplots(figsize=(8, 5.5))
    cmap = plt.get_cmap("tab20")
    for i, t in enumerate(sorted({str(r["target"]) for r in rows})):
        mine = [r for r in rows if str(r["target"]) == t]
        xs = [r["flops"] / (r["achieved_bandwidth"] * r["time_s"]) for r in mine]
        ys = [r["flops"] / r["time_s"] for r in mine]
        c = cmap(i % 20)
        ax.scatter(xs, ys, s=8, alpha=0.5, color=c, label=t)
        peak, bw = max(r["peak_flop_per_s"] for r in mine), max(r["detail.device_bandwidth"] for r in mine)
        if peak and bw:
            ridge = peak / bw
            lo, hi = min(xs + [ridge]) / 4, max(xs + [ridge]) * 4
            ax.plot([lo, ridge, hi], [lo * bw, peak, peak], "-", color=c, lw=1)
    return _save(plt, fig, ax, Path(out_dir) / "roofline.png",
                 "arithmetic intensity (FLOPs per byte of device memory)", "attained FLOP/s per device",
                 f"rooflines: {len(rows)} points")


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)
