#!/usr/bin/env python
"""The llvm backend's skinny GEMM (decode: M = batch ≤ 8 rows) against the memory roofline and
onnxruntime's MatMul on the same products, in one process.

    nice -n 5 python tools/bench_gemv.py                  # GPT-2 / SmolLM2 decode shapes, M 1 and 4
    nice -n 5 python tools/bench_gemv.py --profile ci     # one small shape, few repeats
    nice -n 5 python tools/bench_gemv.py --rows 1,2,8 --threads 1
    nice -n 5 python tools/bench_gemv.py --prefill --threads 1   # GEMM GFLOP/s at prefill rows
    nice -n 5 python tools/bench_gemv.py --siblings       # q/k/v, gate/up as separate products or one

Per shape, a graph of ``L`` independent products ``x @ W_i`` (distinct constant weights, together
at least 4x the last-level cache, so every run streams them from DRAM as a decode step does) runs
on the llvm backend and on onnxruntime at the same thread count, interleaved round-robin. Printed:
median time, the weight bytes each read per second, that rate as a share of the STREAM bandwidth
``ridgeline calibrate`` measures (copy, through llvm kernels, on as many cores), and llvm/ort in
wall time and in CPU time (``cpu l/o``: at one thread, the computing without the waits for a core
on a loaded host; at two, CPU summed over both threads).
The machine's load average is printed beside every row: timings on a shared machine vary, the
ratio to the peer measured in the same rounds much less.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

#: (K, N) of decode-step products: GPT-2 small (qkv, proj, fc1, fc2, LM head) and SmolLM2-135M
#: (q, kv, o, gate/up, down)
SHAPES = {
    "soak": [(768, 2304), (768, 768), (768, 3072), (3072, 768), (768, 50257), (576, 576), (576, 192),
             (576, 1536), (1536, 576)],
    "ci": [(256, 300)],
}
#: (K, N) of prefill products (compute-bound: one weight, in cache), at --rows 64,128,256
PREFILL = [(768, 2304), (768, 3072), (3072, 768), (576, 1536), (1536, 576), (576, 49152)]


def load_avg() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def _onnx_model(m: int, k: int, n: int, copies: int, rng):
    """ONNX bytes of ``copies`` products x[m, k] @ W_i[k, n] sharing x."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    inits = [numpy_helper.from_array((rng.standard_normal((k, n)) * 0.05).astype(np.float32), f"w{i}")
             for i in range(copies)]
    nodes = [helper.make_node("MatMul", ["x", f"w{i}"], [f"y{i}"]) for i in range(copies)]
    outs = [helper.make_tensor_value_info(f"y{i}", TensorProto.FLOAT, [m, n]) for i in range(copies)]
    graph = helper.make_graph(nodes, "gemv", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [m, k])],
                              outs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString(), onnx


def stream_bandwidth(threads: int, llc: int) -> float:
    """STREAM copy through llvm kernels on 4x the last-level cache (what ``ridgeline calibrate``
    reports as the DRAM bandwidth), bytes per second."""
    from ridgeline.backends.llvm.calibrate import _stream
    return _stream(max(llc, 1 << 22), threads, 3)["copy"]


def interleaved(fns: dict, repeats: int, pause: float = 0.0) -> tuple[dict, dict]:
    """Median wall and CPU seconds of each of ``fns``, run round-robin ``repeats`` times (sleeping
    ``pause`` before each run)."""
    wall: dict[str, list[float]] = {key: [] for key in fns}
    cpu: dict[str, list[float]] = {key: [] for key in fns}
    for _ in range(repeats):
        for key, f in fns.items():
            if pause:
                time.sleep(pause)
            t0, c0 = time.perf_counter(), time.process_time()
            f()
            wall[key].append(time.perf_counter() - t0)
            cpu[key].append(time.process_time() - c0)
    return ({key: statistics.median(v) for key, v in wall.items()},
            {key: statistics.median(v) for key, v in cpu.items()})


def bench_shape(m: int, k: int, n: int, threads: int, llc: int, repeats: int, rng) -> dict:
    import numpy as np
    import onnxruntime as ort

    import ridgeline as rl
    copies = max(1, -(-4 * llc // (4 * k * n)))
    data, _ = _onnx_model(m, k, n, copies, rng)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "gemv.onnx"
        path.write_bytes(data)
        g = rl.load(str(path))
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        sess = ort.InferenceSession(data, so, providers=["CPUExecutionProvider"])
    exe = rl.compile(g, backend="llvm", pipeline="", threads=threads)
    x = rng.standard_normal((m, k)).astype(np.float32)
    got = exe.run({"x": x})
    want = sess.run(None, {"x": x})
    err = max(float(np.max(np.abs(got[f"y{i}"] - want[i]) / (np.abs(want[i]) + 1e-3))) for i in range(copies))
    fns = {"llvm": lambda: exe.run({"x": x}), "ort": lambda: sess.run(None, {"x": x})}
    # onnxruntime's pool spins after a run: let it park first
    med, cmed = interleaved(fns, repeats, pause=0.02)
    nbytes = 4.0 * k * n * copies
    return {"m": m, "k": k, "n": n, "copies": copies, "seconds": med, "GBps": {key: nbytes / v / 1e9 for key, v in med.items()},
            "cpu_seconds": cmed, "max_rel_err": err, "load": load_avg()}


#: (K, [N...]) of products that read the same activation: q/k/v and gate/up of SmolLM2-135M and Qwen2-0.5B
SIBLINGS = [(576, (576, 192, 192)), (576, (1536, 1536)), (896, (896, 128, 128)), (896, (4864, 4864))]


def siblings(args) -> int:
    """Llama-family exports keep q/k/v (and gate/up) as separate products of one activation; GPT-2
    has one. Per group: llvm on L layers of separate products against the same weights as one
    product per layer (concatenated along N), alternating; ratio merged / separate (< 1: merging
    the siblings would pay). 1-thread CPU time is the figure that survives a loaded host."""
    import numpy as np

    import ridgeline as rl
    from ridgeline.backends.llvm.calibrate import cache_sizes
    from ridgeline.ir import Builder, Graph, tensor
    llc = max(cache_sizes().values(), default=32 << 20)
    rng = np.random.default_rng(0)
    print("GB/s per CPU second (at 2 threads: of both threads' CPU time); m/s: merged / separate time")
    print(f"{'K':>5s} {'N':>16s} {'L':>3s} {'thr':>3s} {'separate GB/s':>13s} {'merged GB/s':>11s} "
          f"{'wall m/s':>8s} {'cpu m/s':>7s}  load")
    for k, ns in SIBLINGS:
        layers = max(1, -(-4 * llc // (4 * k * sum(ns))))
        ws = [[(rng.standard_normal((k, n)) * 0.05).astype(np.float32) for n in ns] for _ in range(layers)]
        graphs = {}
        for merged in (False, True):
            g = Graph("siblings")
            x, b = g.add_input("x", tensor("f32", 1, k)), Builder(g)
            mats = [[np.concatenate(w, axis=1)] if merged else w for w in ws]
            g.outputs = [b.MatMul(x, g.add_constant(f"w{i}_{j}", m)) for i, ms in enumerate(mats) for j, m in enumerate(ms)]
            graphs[merged] = g
        feeds = {"x": rng.standard_normal((1, k)).astype(np.float32)}
        for th in args.threads:
            exes = {mg: rl.compile(g, backend="llvm", pipeline="", threads=th) for mg, g in graphs.items()}
            outs = {mg: list(exe.run(feeds).values()) for mg, exe in exes.items()}   # the plan and its kernels
            sep = np.concatenate([np.concatenate(outs[False][i * len(ns):(i + 1) * len(ns)], axis=1) for i in range(layers)])
            if not np.allclose(np.concatenate(outs[True]), sep, rtol=1e-4, atol=1e-4):
                sys.exit("bench_gemv: the merged product differs from the separate ones")
            w, c = interleaved({mg: partial(exe.run, feeds) for mg, exe in exes.items()}, args.repeats or 15)
            nbytes = 4.0 * k * sum(ns) * layers
            print(f"{k:5d} {'+'.join(map(str, ns)):>16s} {layers:3d} {th:3d} {nbytes / c[False] / 1e9:13.1f} "
                  f"{nbytes / c[True] / 1e9:11.1f} {w[True] / w[False]:8.2f} {c[True] / c[False]:7.2f}  {load_avg()}",
                  flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", choices=("ci", "soak"), default=None, help="default soak")
    ap.add_argument("--rows", type=lambda s: [int(x) for x in s.split(",")], default=None, help="M values (default 1,4)")
    ap.add_argument("--threads", type=lambda s: [int(x) for x in s.split(",")], default=[1, 2])
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--prefill", action="store_true",
                    help="the GEMM at prefill rows (default 64,128,256): GFLOP/s against onnxruntime's MatMul")
    ap.add_argument("--siblings", action="store_true",
                    help="separate sibling products (q/k/v, gate/up) against one merged product, llvm only")
    args = ap.parse_args(argv)
    if args.siblings:
        ignored = [f for f, v in (("--rows", args.rows), ("--profile", args.profile), ("--prefill", args.prefill)) if v]
        if ignored:
            ap.error(f"--siblings takes only --threads and --repeats, not {', '.join(ignored)}")
    args.profile = args.profile or "soak"
    if args.prefill:
        return prefill(args)
    if args.siblings:
        return siblings(args)
    import numpy as np

    from ridgeline.backends.llvm.calibrate import cache_sizes
    llc = max(cache_sizes().values(), default=32 << 20)
    ci = args.profile == "ci"
    if ci:
        llc = 1 << 20   # a small working set: the CI profile checks the tool runs, not the roofline
    rows = args.rows or ([1] if ci else [1, 4])
    reps = args.repeats or (3 if ci else 15)
    rng = np.random.default_rng(0)
    for th in args.threads:
        bw = stream_bandwidth(th, 4 * llc if not ci else 1 << 20)
        print(f"\n{th} thread(s): STREAM copy via llvm {bw / 1e9:.1f} GB/s (load {load_avg()})")
        print(f"{'M':>3s} {'K':>5s} {'N':>6s} {'mats':>4s} {'llvm ms':>8s} {'ort ms':>8s} {'llvm GB/s':>9s} "
              f"{'ort GB/s':>8s} {'llvm/stream':>11s} {'llvm/ort':>8s} {'cpu l/o':>7s}  err      load")
        for m in rows:
            for k, n in SHAPES[args.profile]:
                r = bench_shape(m, k, n, th, llc, reps, rng)
                s, gb = r["seconds"], r["GBps"]
                print(f"{m:3d} {k:5d} {n:6d} {r['copies']:4d} {s['llvm'] * 1e3:8.2f} {s['ort'] * 1e3:8.2f} "
                      f"{gb['llvm']:9.1f} {gb['ort']:8.1f} {gb['llvm'] * 1e9 / bw:11.0%} {s['llvm'] / s['ort']:8.2f} "
                      f"{r['cpu_seconds']['llvm'] / r['cpu_seconds']['ort']:7.2f}  "
                      f"{r['max_rel_err']:.0e}  {r['load']}", flush=True)
    return 0


def prefill(args) -> int:
    """GFLOP/s of the llvm GEMM and onnxruntime's MatMul on one weight each (in cache: the compute
    rate, not the bandwidth), wall and CPU medians of interleaved runs, the load beside each row."""
    import numpy as np
    rows = args.rows or [64, 128, 256]
    reps = args.repeats or 15
    rng = np.random.default_rng(0)
    for th in args.threads:
        print(f"\n{th} thread(s), load {load_avg()}")
        print(f"{'M':>4s} {'K':>5s} {'N':>6s} {'llvm GF/s':>9s} {'ort GF/s':>8s} {'llvm/ort':>8s} {'cpu l/o':>7s}  err      load")
        for m in rows:
            for k, n in PREFILL if args.profile == "soak" else SHAPES["ci"]:
                r = bench_shape(m, k, n, th, 0, reps, rng)
                s, c = r["seconds"], r["cpu_seconds"]
                gf = {key: 2.0 * m * k * n / v / 1e9 for key, v in s.items()}
                print(f"{m:4d} {k:5d} {n:6d} {gf['llvm']:9.1f} {gf['ort']:8.1f} {s['llvm'] / s['ort']:8.2f} "
                      f"{c['llvm'] / c['ort']:7.2f}  {r['max_rel_err']:.0e}  {r['load']}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
