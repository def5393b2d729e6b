#!/usr/bin/env python
"""Benchmark (not a test): ONNX import + verify time for the exported models and a 2,000-node graph.

    python tools/bench_import.py [--repeat 7] [--nodes 2000] [--json]
    python tools/bench_import.py --big models/smollm2/with_past.onnx

``--big FILE`` (repeatable) times, on a real model, the median of 3 fresh processes each of
``rl.load`` (wall and CPU seconds; the process's first load, as a user's script pays it) beside
an onnxruntime session on the same file (its peer, alternating with it),
``ridgeline show`` and ``ridgeline opt -o`` (wall), with the machine's load average printed.

For each model: the median over ``--repeat`` runs of ``load_onnx`` (parse, op check, ONNX shape
inference, conversion, our own type inference, verify), of a separate ``graph.verify()``, and of
a peer measured in the same run on the same file: ``onnx.load`` + ``onnx.checker.check_model`` +
``onnx.shape_inference.infer_shapes``, the work any ONNX tool does to open a model. The ratio
import/peer is what to compare across machines; absolute times move with the machine's load.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ridgeline.frontends.onnx import load_onnx  # noqa: E402


def synthetic_model(nodes: int, hidden: int = 64):
    """A residual MLP stack as ONNX with about ``nodes`` nodes over symbolic [batch, seq, hidden].

    Each block is LayerNorm → MatMul → Add(bias) → Gelu → MatMul → Add(bias) → Add(residual)
    → Reshape/Transpose/Transpose/Reshape (a head split and merge, as attention has) = 11 nodes;
    blocks share two weight matrices so the file stays small while the graph is long.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.standard_normal((hidden, hidden)).astype(np.float32) * 0.1, n)
             for n in ("W1", "W2")]
    inits += [numpy_helper.from_array(np.zeros(hidden, np.float32), "b"),
              numpy_helper.from_array(np.ones(hidden, np.float32), "gamma"),
              numpy_helper.from_array(np.array([0, 0, 4, hidden // 4], np.int64), "split_heads"),
              numpy_helper.from_array(np.array([0, 0, hidden], np.int64), "merge_heads")]
    body, x = [], "x"
    for i in range(max(1, nodes // 11)):
        p = f"b{i}_"
        body += [
            helper.make_node("LayerNormalization", [x, "gamma", "b"], [p + "ln"], axis=-1),
            helper.make_node("MatMul", [p + "ln", "W1"], [p + "h"]),
            helper.make_node("Add", [p + "h", "b"], [p + "hb"]),
            helper.make_node("Gelu", [p + "hb"], [p + "g"]),
            helper.make_node("MatMul", [p + "g", "W2"], [p + "o"]),
            helper.make_node("Add", [p + "o", "b"], [p + "ob"]),
            helper.make_node("Add", [x, p + "ob"], [p + "r"]),
            helper.make_node("Reshape", [p + "r", "split_heads"], [p + "s"]),
            helper.make_node("Transpose", [p + "s"], [p + "t"], perm=[0, 2, 1, 3]),
            helper.make_node("Transpose", [p + "t"], [p + "u"], perm=[0, 2, 1, 3]),
            helper.make_node("Reshape", [p + "u", "merge_heads"], [p + "y"]),
        ]
        x = p + "y"
    body.append(helper.make_node("Identity", [x], ["y"]))
    g = helper.make_graph(body, "synthetic",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "seq", hidden])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", "seq", hidden])],
                          initializer=inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 20)])
    m.ir_version = 9
    onnx.checker.check_model(m)
    return m


def _median(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _peer(path: Path):
    import onnx
    m = onnx.load(str(path))
    onnx.checker.check_model(m)
    onnx.shape_inference.infer_shapes(m, data_prop=True)


def bench(path: Path, repeat: int) -> dict:
    load_onnx(path)  # warm caches (op registry, sympy) so the first model is not penalized
    g = load_onnx(path)
    return {"model": path.name, "nodes": len(g), "values": sum(1 for _ in g.values()),
            "import_ms": 1e3 * _median(lambda: load_onnx(path), repeat),
            "verify_ms": 1e3 * _median(g.verify, repeat),
            "peer_ms": 1e3 * _median(lambda: _peer(path), repeat)}


_LOAD = ("import os, sys, time; sys.path.insert(0, {root!r}); import ridgeline as rl; "
         "t = time.perf_counter(); c = time.process_time(); rl.load({path!r}); "
         "print(time.perf_counter() - t, time.process_time() - c)")
#: the peer: an onnxruntime session on the same file (1 thread), in a fresh process the same way
_ORT = ("import time; import onnxruntime as ort; so = ort.SessionOptions(); so.intra_op_num_threads = 1; "
        "t = time.perf_counter(); c = time.process_time(); "
        "ort.InferenceSession({path!r}, so, providers=['CPUExecutionProvider']); "
        "print(time.perf_counter() - t, time.process_time() - c)")


def _fresh(cmd: list[str]) -> float:
    import subprocess
    t = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, cwd=ROOT)
    return time.perf_counter() - t


def bench_big(path: Path, repeat: int = 3, load_only: bool = False) -> dict:
    """``rl.load`` (wall, CPU) and an onnxruntime session (the peer) alternating, then ``show`` and
    ``opt -o``, on a real model, each a fresh process."""
    import subprocess
    loads, peer = [], []
    for _ in range(repeat):
        for code, into in ((_LOAD, loads), (_ORT, peer)):
            out = subprocess.run([sys.executable, "-c", code.format(root=str(ROOT), path=str(path))], check=True,
                                 capture_output=True, text=True, cwd=ROOT).stdout.split()
            into.append((float(out[0]), float(out[1])))
    res = {"model": str(path), "load_s": statistics.median(w for w, _ in loads),
           "load_cpu_s": statistics.median(c for _, c in loads), "ort_s": statistics.median(w for w, _ in peer),
           "ort_cpu_s": statistics.median(c for _, c in peer), "show_s": float("nan"), "opt_s": float("nan"),
           "loadavg": os.getloadavg()[0]}
    if load_only:
        return res
    cli = [sys.executable, "-m", "ridgeline"]
    with tempfile.TemporaryDirectory() as tmp:
        show = statistics.median(_fresh(cli + ["show", str(path)]) for _ in range(repeat))
        opt = statistics.median(_fresh(cli + ["opt", str(path), "-p", "default", "-o", str(Path(tmp) / "o.onnx")]) for _ in range(repeat))
    return {**res, "show_s": show, "opt_s": opt, "loadavg": os.getloadavg()[0]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=7, help="runs per measurement (median reported)")
    ap.add_argument("--nodes", type=int, default=2000, help="size of the synthetic graph")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--big", action="append", default=[], type=Path,
                    help="a real model: rl.load / show / opt -o in fresh processes (repeatable)")
    ap.add_argument("--load-only", action="store_true", help="with --big: rl.load and the onnxruntime session only")
    args = ap.parse_args(argv)
    if args.big:
        print(f"fresh processes, median of 3; load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
        print(f"{'model':50s} {'rl.load s':>9s} {'(cpu s)':>8s} {'ort sess s':>10s} {'(cpu s)':>8s} {'show s':>7s} "
              f"{'opt -o s':>9s}  load")
        for p in args.big:
            r = bench_big(p, load_only=args.load_only)
            print(f"{r['model']:50s} {r['load_s']:9.2f} {r['load_cpu_s']:8.2f} {r['ort_s']:10.2f} {r['ort_cpu_s']:8.2f} "
                  f"{r['show_s']:7.2f} {r['opt_s']:9.2f}  {r['loadavg']:.1f}", flush=True)
        print(f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
        return 0
    manifest = json.loads((ROOT / "tests" / "models" / "manifest.json").read_text())
    paths = [ROOT / "tests" / "models" / e["file"] for e in manifest["models"]]
    rows = [bench(p, args.repeat) for p in paths]
    with tempfile.TemporaryDirectory() as tmp:
        syn = Path(tmp) / f"synthetic-{args.nodes}.onnx"
        syn.write_bytes(synthetic_model(args.nodes).SerializeToString())
        rows.append(bench(syn, args.repeat))
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    print(f"import + verify, median of {args.repeat} runs; peer = onnx.load + checker + shape inference")
    print(f"{'model':34s} {'nodes':>6s} {'import ms':>10s} {'verify ms':>10s} {'peer ms':>9s} {'import/peer':>12s}")
    for r in rows:
        print(f"{r['model']:34s} {r['nodes']:6d} {r['import_ms']:10.1f} {r['verify_ms']:10.1f} {r['peer_ms']:9.1f} "
              f"{r['import_ms'] / r['peer_ms']:11.1f}x")
    per_node = [r["import_ms"] / r["nodes"] for r in rows]
    print(f"import per node: median {statistics.median(per_node) * 1e3:.0f} us")
    return 0


if __name__ == "__main__":
    sys.exit(main())
