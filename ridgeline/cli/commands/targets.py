"""``ridgeline targets [NAME]``: the hardware targets, their peaks, bandwidths and ridge points.

The ridge point (FLOP per byte of device memory) is where a kernel stops being memory-bound:
peak compute of a dtype divided by device-memory bandwidth. ``--file my.toml`` validates and
shows a target file of your own.
"""

from __future__ import annotations

import argparse

from ..common import emit, fmt_bytes, table, wide_output


def register(sub) -> None:
    p = sub.add_parser("targets", help="list hardware targets: peaks, bandwidths, ridge points",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("name", nargs="?", help="show one target in detail")
    p.add_argument("--file", metavar="FILE.toml", help="validate and show a target file of your own")
    p.add_argument("--json", action="store_true", help="machine-readable output")


def run(args: argparse.Namespace) -> int:
    from ...cost_models import get_target, list_targets, load_target_file
    from ...cost_models.families import is_implemented
    if args.file:
        targets = [load_target_file(args.file)]
    elif args.name:
        targets = [get_target(args.name)]
    else:
        targets = list_targets()
    data = []
    for t in targets:
        d = t.describe()
        d["implemented"] = is_implemented(t.family)
        data.append(d)
    detail = bool(args.file or args.name)
    if detail:
        emit(args, data[0], lambda: _render_one(targets[0], data[0]))
    else:
        emit(args, data, lambda: _render(targets, data))
    return 0


def _tflops(x: float) -> str:
    return f"{x / 1e12:,.4g} T" if x >= 1e12 else f"{x / 1e9:,.4g} G"


def _render(targets, data) -> None:
    wide_output()
    rows = []
    for t, d in zip(targets, data):
        dt = "bf16" if t.peak("bf16") else ("f16" if t.peak("f16") else (t.dtypes()[0] if t.dtypes() else "f32"))
        mem = t.device_memory
        link = t.interconnect[0] if t.interconnect else None
        rows.append((t.name, t.family + ("" if d["implemented"] else " (not yet)"), t.title,
                     f"{_tflops(t.peak(dt))}FLOP/s {dt}", f"{fmt_bytes(mem.total_capacity)} {mem.name}",
                     f"{mem.bandwidth / 1e12:,.4g} TB/s", f"{t.ridge(dt):,.0f}",
                     f"{link.name} {link.bandwidth / 1e9:,.0f} GB/s ×{link.max_devices}" if link else "-"))
    table("targets", ["name", "family", "title", "peak", "device memory", "bandwidth", "ridge FLOP/B", "link"], rows,
          justify=["left", "left", "left", "right", "right", "right", "right", "left"])


def _render_one(t, d) -> None:
    wide_output()
    table(f"{t.name}: {t.title} ({t.family}; {t.source})", ["unit", "kind", "count", "shape", "dtype", "peak",
                                                           "ridge FLOP/B"],
          [(u.name, u.kind, u.count, "×".join(map(str, u.shape)) or "-", dt, f"{_tflops(r)}FLOP/s",
            f"{r / t.device_memory.bandwidth:,.1f}") for u in t.units.values() for dt, r in u.peak.items()],
          justify=["left"] * 5 + ["right"] * 2)
    table("memory (outermost first)", ["level", "capacity", "per", "bandwidth", "latency"],
          [(m.name, fmt_bytes(m.capacity), f"{m.per} ×{m.count}" if m.count > 1 else m.per,
            f"{m.bandwidth / 1e9:,.1f} GB/s", f"{m.latency * 1e9:,.0f} ns") for m in t.memory],
          justify=["left", "right", "left", "right", "right"])
    if t.interconnect:
        table("interconnect", ["link", "bandwidth", "latency", "max devices", "topology"],
              [(l.name, f"{l.bandwidth / 1e9:,.0f} GB/s", f"{l.latency * 1e6:,.2f} us", l.max_devices, l.topology)
               for l in t.interconnect], justify=["left", "right", "right", "right", "left"])
    sections = [(sec, k, v) for sec in ("array", "overheads", "efficiency") for k, v in getattr(t, sec).items()]
    if sections:
        table("family parameters", ["section", "key", "value"], [(s, k, v) for s, k, v in sections],
              justify=["left", "left", "right"])
    if t.calibrated_on:
        table("calibrated on", ["row"], [(c,) for c in t.calibrated_on], justify=["left"])
