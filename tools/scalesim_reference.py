"""Run SCALE-Sim 3.0 on a sweep of GEMMs and write the reference table the systolic tests check.

    python tools/scalesim_reference.py                 # -> tests/cost_models/scalesim_reference.csv
    python tools/scalesim_reference.py --venv /tmp/ssv --out table.csv

SCALE-Sim (``scalesim`` on PyPI) crashes with numpy >= 2.4, so this script keeps it in its own
virtual environment (created on first use with ``pip install scalesim "numpy<2.4"``) and re-runs
itself there with ``--worker``. Each case is one GEMM layer (SCALE-Sim's ``-i gemm`` topology: M,
N, K) on one R×C array and dataflow (ws, os, is), with the bandwidth in
SCALE-Sim's CALC mode so that no stall occurs: the table records SCALE-Sim's "Total Cycles",
"Stall Cycles" (0 for every row, checked) and "Mapping Efficiency %".
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "tests" / "cost_models" / "scalesim_reference.csv"
DEFAULT_VENV = Path(tempfile.gettempdir()) / "scalesim-venv"

#: (M, N, K): GEMVs (M = 1, decode), skinny and square GEMMs, sizes that do and do not divide the arrays
SHAPES = [(1, 128, 128), (1, 200, 50), (4, 96, 300), (7, 33, 65), (16, 16, 16), (64, 64, 64), (100, 37, 29),
          (128, 256, 64), (200, 96, 70), (33, 300, 17), (150, 40, 200), (9, 512, 96)]
#: (rows, cols): tiny, rectangular both ways, TPU-like 128x128
ARRAYS = [(8, 8), (16, 8), (4, 16), (32, 32), (128, 128)]
DATAFLOWS = ["ws", "os", "is"]

_CONFIG = """[general]
run_name = ref

[architecture_presets]
ArrayHeight: {rows}
ArrayWidth: {cols}
IfmapSramSzkB: 256
FilterSramSzkB: 256
OfmapSramSzkB: 256
IfmapOffset: 0
FilterOffset: 10000000
OfmapOffset: 20000000
Dataflow: {dataflow}
Bandwidth: 10
ReadRequestBuffer: 32
WriteRequestBuffer: 32

[layout]
IfmapCustomLayout: False
FilterCustomLayout: False
IfmapSRAMBankBandwidth: 10
IfmapSRAMBankNum: 10
IfmapSRAMBankPort: 2
FilterSRAMBankBandwidth: 10
FilterSRAMBankNum: 10
FilterSRAMBankPort: 2

[sparsity]
SparsitySupport: false
SparseRep: ellpack_block
OptimizedMapping: false
BlockSize: 8
RandomNumberGeneratorSeed: 40

[run_presets]
InterfaceBandwidth: CALC
UseRamulatorTrace: False
"""


def _ensure_venv(venv: Path) -> Path:
    py = venv / "bin" / "python"
    probe = [str(py), "-c", "import scalesim, numpy; assert tuple(map(int, numpy.__version__.split('.')[:2])) < (2, 4)"]
    if py.exists() and subprocess.run(probe, capture_output=True, check=False).returncode == 0:
        return py
    print(f"creating {venv} with scalesim and numpy<2.4 ...", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(py), "-m", "pip", "install", "-q", "scalesim", "numpy<2.4"], check=True)
    return py


def _run_case(m: int, n: int, k: int, rows: int, cols: int, dataflow: str) -> dict:
    """One SCALE-Sim run (inside the SCALE-Sim venv)."""
    import contextlib
    import io

    from scalesim.scale_sim import scalesim  # only importable inside the SCALE-Sim venv

    work = Path(tempfile.mkdtemp(prefix="scalesim-"))
    try:
        (work / "arch.cfg").write_text(_CONFIG.format(rows=rows, cols=cols, dataflow=dataflow))
        (work / "gemm.csv").write_text(f"Layer, M, N, K,\ng, {m}, {n}, {k},\n")
        (work / "layout.csv").write_text("Layer,\n")
        with contextlib.redirect_stdout(io.StringIO()):
            sim = scalesim(save_disk_space=True, verbose=False, config=str(work / "arch.cfg"),
                           topology=str(work / "gemm.csv"), layout=str(work / "layout.csv"), input_type_gemm=True)
            sim.run_scale(top_path=str(work))
        with open(work / "ref" / "COMPUTE_REPORT.csv") as f:
            rows_ = [[c.strip() for c in r] for r in csv.reader(f)]
        head, vals = rows_[0], rows_[1]
        rec = dict(zip(head, vals))
        return {"total_cycles": int(rec["Total Cycles"]), "stall_cycles": int(rec["Stall Cycles"]),
                "mapping_efficiency": float(rec["Mapping Efficiency %"]) / 100.0}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _worker(out: Path, command: str) -> int:
    import importlib.metadata as md
    cases = [(m, n, k, r, c, df) for (m, n, k) in SHAPES for (r, c) in ARRAYS for df in DATAFLOWS]
    results = []
    for i, case in enumerate(cases, 1):
        rec = _run_case(*case)
        if rec["stall_cycles"] != 0:
            raise SystemExit(f"SCALE-Sim reported {rec['stall_cycles']} stall cycles for {case}: not stall-free")
        results.append((*case, rec["total_cycles"], rec["stall_cycles"], rec["mapping_efficiency"]))
        print(f"[{i}/{len(cases)}] m={case[0]} n={case[1]} k={case[2]} array={case[3]}x{case[4]} {case[5]}: "
              f"{rec['total_cycles']} cycles", file=sys.stderr)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="") as f:
        f.write(f"# SCALE-Sim {md.version('scalesim')} (numpy {md.version('numpy')}) stall-free GEMM cycle counts.\n")
        f.write(f"# Regenerate: {command}\n")
        f.write("# total_cycles is SCALE-Sim's COMPUTE_REPORT 'Total Cycles' (0-based index of the last output "
                "cycle); CALC bandwidth mode, 256 KiB SRAMs.\n")
        w = csv.writer(f)
        w.writerow(["m", "n", "k", "rows", "cols", "dataflow", "total_cycles", "stall_cycles", "mapping_efficiency"])
        for r in results:
            w.writerow([*r[:8], f"{r[8]:.6f}"])
    print(f"wrote {len(results)} rows to {out}", file=sys.stderr)
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--venv", type=Path, default=DEFAULT_VENV, help=f"SCALE-Sim's virtual env (default {DEFAULT_VENV})")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="the CSV to write")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    rel = os.path.relpath(args.out, ROOT) if args.out.is_absolute() else str(args.out)
    command = "python tools/scalesim_reference.py" + ("" if args.out == DEFAULT_OUT else f" --out {rel}")
    if args.worker:
        return _worker(args.out, command)
    py = _ensure_venv(args.venv)
    return subprocess.run([str(py), __file__, "--worker", "--out", str(args.out.resolve())], check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
