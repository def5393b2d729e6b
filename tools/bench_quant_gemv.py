#!/usr/bin/env python
"""The llvm backend's packed int4/int8 GEMV against the memory roofline and onnxruntime's MatMulNBits.

    nice -n 5 python tools/bench_quant_gemv.py                 # decode shapes of SmolLM2/Llama layers, 1 row
    nice -n 5 python tools/bench_quant_gemv.py --scheme int8   # per-channel int8
    python tools/bench_quant_gemv.py --profile ci              # one small shape, few repeats

The packed kernel (``backends/llvm/quant_gemv.py``) reads 0.5 byte per int4 weight. Measured
in the same run, per shape: its median time and achieved packed-weight bytes per second, that
against the host's STREAM triad bandwidth (``ridgeline calibrate``'s figure, all cores,
measured here first), onnxruntime's ``com.microsoft.MatMulNBits`` on the same quantized weight
(``opt --matmul-nbits``' writer, 2 intra-op threads); ``--dequantize`` adds the llvm backend's
path without the kernel (the ``DequantizeLinear`` run by numpy at every call, then the float
GEMM: seconds per call on the large shapes).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SHAPES = {"soak": [(576, 1536), (1536, 576), (576, 49152), (4096, 4096), (4096, 14336), (14336, 4096)],
          "ci": [(256, 512)]}


def _median(fn, reps: int) -> float:
    fn()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", choices=("ci", "soak"), default="soak")
    ap.add_argument("--scheme", default="int4-zp-g128")
    ap.add_argument("--rows", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--dequantize", action="store_true", help="also time the path without the packed kernel")
    args = ap.parse_args(argv)
    import numpy as np
    import onnx
    import onnxruntime as ort

    import ridgeline as rl
    from ridgeline.backends.llvm import quant_gemv
    from ridgeline.backends.llvm.calibrate import _stream  # ridgeline calibrate's STREAM measure
    from ridgeline.backends.llvm.jit import host
    from ridgeline.frontends.onnx.matmul_nbits import save_matmul_nbits
    from ridgeline.ir import Graph, tensor
    from ridgeline.passes.transforms.quantize import quantize_graph
    ci = args.profile == "ci"
    reps = args.repeats or (5 if ci else 50)
    triad = _stream(1 << 16 if ci else 1 << 25, host().cores, 3)["triad"]
    print(f"{args.scheme}, {args.rows} row(s), median of {reps}; STREAM triad (all cores) {triad / 1e9:.1f} GB/s")
    for k, n in SHAPES[args.profile]:
        rng = np.random.default_rng(0)
        g = Graph("gemv")
        x = g.add_input("x", tensor("f32", args.rows, k))
        w = g.add_constant("w", rng.standard_normal((k, n)).astype(np.float32))
        g.outputs = list(g.add_node("MatMul", [x, w], names=["y"]).outputs)
        quantize_graph(g, args.scheme)
        feeds = {"x": rng.standard_normal((args.rows, k)).astype(np.float32)}
        times, outs = {}, {}
        paths = (("packed", quant_gemv.MAX_ROWS), ("dequantize", 0))[:2 if args.dequantize else 1]
        for path, rows_max in paths:
            quant_gemv.MAX_ROWS = rows_max
            exe = rl.compile(g, backend="llvm", pipeline="")
            outs[path] = exe.run(feeds)["y"]      # compiles
            times[path] = _median(lambda e=exe, f=feeds: e.run(f), reps)
        quant_gemv.MAX_ROWS = 16
        with tempfile.TemporaryDirectory() as d:
            f = Path(d) / "gemv.onnx"
            save_matmul_nbits(g, f)
            so = ort.SessionOptions()
            so.intra_op_num_threads = 2
            sess = ort.InferenceSession(str(f), so, providers=["CPUExecutionProvider"])
            ops = {nd.op_type for nd in onnx.load(str(f)).graph.node}
            outs["ort"] = sess.run(None, feeds)[0]
            times["ort"] = _median(lambda s=sess, f=feeds: s.run(None, f), reps)
        exact = rl.compile(g, backend="numpy", pipeline="").run(feeds)["y"]
        err = max(float(np.abs(outs[p] - exact).max() / np.abs(exact).max()) for p in outs)
        packed_bytes = k * n * (0.5 if "4" in args.scheme.split("-")[0] else 1.0)
        gbs = packed_bytes / times["packed"]
        print(f"K={k:5d} N={n:5d}: packed {times['packed'] * 1e6:8.1f} µs {gbs / 1e9:6.2f} GB/s "
              f"({gbs / triad:4.2f} of triad)  ort {'MatMulNBits' if 'MatMulNBits' in ops else '/'.join(sorted(ops))} "
              f"{times['ort'] * 1e6:8.1f} µs (packed {times['ort'] / times['packed']:4.2f}× faster)  "
              + (f"dequantize {times['dequantize'] * 1e6:8.1f} µs  " if args.dequantize else "")
              + f"max rel diff from the numpy reference {err:.1e}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
