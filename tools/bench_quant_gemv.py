#!/usr/bin/env python
"""The llvm backend's packed int4/int8 GEMV against its previous path on the same quantized GEMM.

    python tools/bench_quant_gemv.py                 # decode shapes of SmolLM2/Llama layers, 1 row
    python tools/bench_quant_gemv.py --profile ci    # one small shape, few repeats

The packed kernel (``backends/llvm/quant_gemv.py``) reads 0.5 byte per int4 weight; the path
the llvm backend took before it ("dequantize") runs the kernel's body node by node: the
DequantizeLinear on numpy at every call, then the JIT GEMM on the float32 weight it wrote.
Printed per shape: the median time of each, their ratio, and the packed kernel's weight bytes
per second (the memory roofline is the host's bandwidth).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SHAPES = {"soak": [(576, 1536), (1536, 576), (4096, 4096), (4096, 14336)], "ci": [(256, 512)]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", choices=("ci", "soak"), default="soak")
    ap.add_argument("--scheme", default="int4-asym-g128")
    ap.add_argument("--rows", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=None)
    args = ap.parse_args(argv)
    import numpy as np

    import ridgeline as rl
    from ridgeline.backends.llvm import quant_gemv
    from ridgeline.ir import Graph, tensor
    from ridgeline.passes.transforms.quantize import quantize_graph
    reps = args.repeats or (5 if args.profile == "ci" else 50)
    print(f"{args.scheme}, {args.rows} row(s), median of {reps}")
    for k, n in SHAPES[args.profile]:
        rng = np.random.default_rng(0)
        g = Graph("gemv")
        x = g.add_input("x", tensor("f32", args.rows, k))
        w = g.add_constant("w", rng.standard_normal((k, n)).astype(np.float32))
        g.outputs = list(g.add_node("MatMul", [x, w], names=["y"]).outputs)
        quantize_graph(g, args.scheme)
        feeds = {"x": rng.standard_normal((args.rows, k)).astype(np.float32)}
        times, outs = {}, {}
        for path, rows_max in (("packed", quant_gemv.MAX_ROWS), ("dequantize", 0)):
            quant_gemv.MAX_ROWS = rows_max
            exe = rl.compile(g, backend="llvm", pipeline="")
            outs[path] = exe.run(feeds)["y"]      # compiles
            ts = []
            for _ in range(reps):
                t0 = time.perf_counter()
                exe.run(feeds)
                ts.append(time.perf_counter() - t0)
            times[path] = statistics.median(ts)
        quant_gemv.MAX_ROWS = 16
        err = float(np.abs(outs["packed"] - outs["dequantize"]).max() / np.abs(outs["dequantize"]).max())
        packed_bytes = k * n * (0.5 if "4" in args.scheme.split("-")[0] else 1.0)
        print(f"K={k:5d} N={n:5d}: packed {times['packed'] * 1e6:8.1f} µs ({packed_bytes / times['packed'] / 1e9:5.2f} GB/s)"
              f"  dequantize {times['dequantize'] * 1e6:8.1f} µs"
              f"  speedup {times['dequantize'] / times['packed']:5.2f}×  max rel diff {err:.1e}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
