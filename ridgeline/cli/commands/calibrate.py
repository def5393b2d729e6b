"""``ridgeline calibrate``: measure this host and write a ``cpu`` target file for the cost models.

Measures what ridgeline's llvm backend reaches here — GEMM FLOP/s per dtype, STREAM bandwidth
(DRAM and each cache level), element-wise FLOP/s, per-kernel overhead — prints it, and with
``--output host.toml`` writes a target file that ``ridgeline estimate --target-file host.toml``
(and ``compare``) can use. It never writes into ridgeline's packaged targets, and only replaces
an existing file with ``--force``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ...ir.safe_files import write_atomic
from ..common import UsageError, emit, fmt_time, int_arg, table


def register(sub) -> None:
    p = sub.add_parser("calibrate", help="measure this host (GEMM, bandwidth, overhead); write a target file")
    p.add_argument("-o", "--output", metavar="HOST.toml", help="write the measurements as a cpu target file")
    p.add_argument("--name", default="host-calibrated", help="the target's name in the file (default: host-calibrated)")
    p.add_argument("--threads", type=int_arg(1, 2 ** 31), help="cores to measure with (default: all this process may use)")
    p.add_argument("--quick", action="store_true", help="small sizes: a rough calibration in a few seconds")
    p.add_argument("--force", action="store_true", help="replace --output if it exists")
    p.add_argument("--json", action="store_true", help="machine-readable measurements")


def _check_output(path: str, force: bool) -> Path:
    out = Path(path)
    packaged = Path(__file__).resolve().parents[2] / "cost_models" / "targets"
    try:
        inside = out.resolve().parent == packaged.resolve()
    except OSError:
        inside = False
    if inside:
        raise UsageError(f"--output {path}: that is ridgeline's packaged targets folder; write your host file "
                         f"elsewhere and pass it with --target-file")
    if out.suffix.lower() != ".toml":
        raise UsageError(f"--output {path}: a target file ends in .toml")
    if out.exists() and not force:
        raise UsageError(f"--output {path} exists; pass --force to replace it")
    if out.parent and not out.parent.exists():
        raise UsageError(f"--output {path}: folder {out.parent} does not exist")
    return out


def run(args: argparse.Namespace) -> int:
    from ...backends.threads import check_threads
    check_threads(args.threads)
    out = _check_output(args.output, args.force) if args.output else None
    from ...backends.registry import get_backend
    get_backend("llvm")  # the measurements run on it: a missing llvmlite is reported here, naming the extra
    from ...backends.llvm.calibrate import calibrate, target_toml
    cal = calibrate(quick=args.quick, threads=args.threads)
    text = target_toml(cal, name=args.name, command="ridgeline calibrate" + (" --quick" if args.quick else ""))
    if out is not None:
        write_atomic(out, text.encode(), "--output")

    def render() -> None:
        g = lambda v: f"{v / 1e9:.1f}"  # noqa: E731
        rows = [(f"GEMM {dt} ({cal.gemm_path[dt]})", f"{g(v)} GFLOP/s", f"{g(cal.gemm_flops_1core[dt])} GFLOP/s")
                for dt, v in cal.gemm_flops.items()]
        rows.append(("element-wise f32 (L1)", f"{g(cal.vector_flops)} GFLOP/s", "-"))
        rows += [(f"STREAM {k}", f"{g(cal.stream[k])} GB/s", f"{g(cal.stream[k + '_1core'])} GB/s") for k in ("copy", "triad")]
        rows += [(f"{lvl} copy ({cal.caches[lvl] // 1024} KiB)", f"{g(v)} GB/s", "-") for lvl, v in cal.level_bandwidth.items()]
        rows += [("overhead per kernel node", fmt_time(cal.kernel_overhead_s), "-"),
                 ("overhead per view node", fmt_time(cal.view_overhead_s), "-"),
                 ("overhead per run", fmt_time(cal.run_overhead_s), "-"),
                 ("split across cores", fmt_time(cal.parallel_dispatch_s), "-")]
        table(f"{cal.cpu} ({cal.llvm_cpu}), {cal.vector_bits}-bit SIMD, measured in {cal.seconds:.1f} s",
              ["measure", f"{cal.cores} cores", "1 core"], rows)
        if out is not None:
            sys.stderr.write(f"wrote {out}\n")
    emit(args, {**cal.to_dict(), "output": str(out) if out else None}, render)
    return 0
