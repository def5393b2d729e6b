"""The llvm attention kernel: compile time per kernel (IR build in Python, LLVM -O3, code
generation, each timed) and run time per call, on decode and prefill shapes of GPT-2, SmolLM2
and GQA configurations, against onnxruntime's unfused attention where asked.

    python tools/bench_attention.py                  # compile times and run times, this checkout
    python tools/bench_attention.py --ort            # + onnxruntime per-kind attention time
    python tools/bench_attention.py --only compile   # compile times only

Run from the checkout to measure (its ``ridgeline`` is imported); compare two checkouts by
running the script in both, alternating, under the same load (printed beside the figures).
The on-disk object cache is off (``RIDGELINE_LLVM_CACHE=0``): CI's fresh clone has none.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

os.environ["RIDGELINE_LLVM_CACHE"] = "0"
sys.path.insert(0, os.getcwd())

import numpy as np

#: (name, query heads, KV heads, head dim): a test-sized model, GPT-2, SmolLM2-135M (9:3), Qwen2-0.5B-like (14:2),
#: Llama-3-8B-like (32:8, d 128)
CONFIGS = [("tiny-4:2", 4, 2, 16), ("gpt2", 12, 12, 64), ("smollm2", 9, 3, 64), ("qwen-14:2", 14, 2, 64), ("llama-32:8", 32, 8, 128)]


def _graph(hq: int, hkv: int, d: int, sq: int, past: int):
    """One causal Attention node, 4-D, with a KV cache when ``past`` > 0 (as the decode exports)."""
    from ridgeline.ir import Builder, Graph, tensor
    g = Graph("attn")
    q = g.add_input("q", tensor("f32", 1, hq, sq, d))
    k, v = (g.add_input(n, tensor("f32", 1, hkv, sq, d)) for n in "kv")
    pk, pv = ((g.add_input(n, tensor("f32", 1, hkv, past, d)) for n in ("pk", "pv")) if past else (None, None))
    out = Builder(g).Attention(q, k, v, None, pk, pv, is_causal=1, _outputs=3 if past else 1)
    g.outputs = list(out) if isinstance(out, tuple) else [out]
    return g


def compile_phases(g) -> tuple[float, float, float, int]:
    """CPU seconds to (emit the IR in Python, optimize it at -O3, generate code) and the IR's lines."""
    import llvmlite.binding as llvm
    from llvmlite import ir

    from ridgeline.backends.llvm import jit
    from ridgeline.backends.llvm.attention import AttentionLowering
    node = g.nodes[0]
    shapes = [tuple(v.type.shape) if v is not None else None for v in node.inputs]
    tm, info = jit._target_machine()
    t0 = time.process_time()
    m = ir.Module(name="k")
    AttentionLowering(node, shapes, {}).emit(m, lambda n: f"k_{n}")
    text = jit.finalize_text(str(m)).replace('target triple = "unknown-unknown-unknown"', f'target triple = "{info.triple}"')
    text = text.replace('target datalayout = ""', f'target datalayout = "{tm.target_data}"')
    t1 = time.process_time()
    mod = llvm.parse_assembly(text)
    mod.verify()
    pto = llvm.create_pipeline_tuning_options(speed_level=3)
    pto.loop_vectorization = pto.slp_vectorization = pto.loop_unrolling = pto.loop_interleaving = True
    pb = llvm.create_pass_builder(tm, pto)
    pb.getModulePassManager().run(mod, pb)
    t2 = time.process_time()
    engine = llvm.create_mcjit_compiler(mod, jit._new_target_machine(info.triple, info.cpu, info.features))
    engine.finalize_object()
    t3 = time.process_time()
    return t1 - t0, t2 - t1, t3 - t2, str(mod).count("\n")


def run_time(g, threads: int, repeats: int) -> tuple[float, float]:
    """Median (wall, CPU) seconds per call of the compiled graph (the attention kernel and its
    bookkeeping); CPU time is the steadier figure on a loaded host."""
    from ridgeline.backends.registry import get_backend
    rng = np.random.default_rng(0)
    feeds = {p.name: rng.standard_normal(p.type.shape).astype(np.float32) for p in g.inputs}
    exe = get_backend("llvm").compile(g, strict=True, threads=threads)
    exe.run(feeds)
    wall, cpu = [], []
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        exe.run(feeds)
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return statistics.median(wall), statistics.median(cpu)


def ort_time(hq: int, hkv: int, d: int, sq: int, past: int, threads: int, repeats: int) -> float:
    """Median seconds per call of onnxruntime's unfused attention on the same shapes, as
    transformers exports it: Concat(past, new), K/V heads repeated to the query heads (given
    repeated here, so their copy is not counted), MatMul, scale, causal mask, Softmax, MatMul."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto as T
    from onnx import helper as h
    t = past + sq
    mask = np.triu(np.full((sq, t), -np.inf, np.float32), past + 1)
    nodes = [h.make_node("Transpose", ["k"], ["kt"], perm=[0, 1, 3, 2]),
             h.make_node("MatMul", ["q", "kt"], ["s0"]),
             h.make_node("Mul", ["s0", "scale"], ["s1"]), h.make_node("Add", ["s1", "mask"], ["s2"]),
             h.make_node("Softmax", ["s2"], ["p"], axis=-1), h.make_node("MatMul", ["p", "v"], ["y"])]
    if past:
        nodes = [h.make_node("Concat", ["pk", "kn"], ["k"], axis=2), h.make_node("Concat", ["pv", "vn"], ["v"], axis=2)] + nodes
    shapes = {"q": (1, hq, sq, d), "kn" if past else "k": (1, hq, sq, d), "vn" if past else "v": (1, hq, sq, d)}
    if past:
        shapes.update(pk=(1, hq, past, d), pv=(1, hq, past, d))
    graph = h.make_graph(nodes, "attn", [h.make_tensor_value_info(n, T.FLOAT, s) for n, s in shapes.items()],
                         [h.make_tensor_value_info("y", T.FLOAT, None)],
                         [onnx.numpy_helper.from_array(np.float32(d ** -0.5), "scale"),
                          onnx.numpy_helper.from_array(mask, "mask")])
    so = ort.SessionOptions()
    so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", 17)])
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    feeds = {n: rng.standard_normal(s).astype(np.float32) for n, s in shapes.items()}
    sess.run(None, feeds)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        sess.run(None, feeds)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", choices=["compile", "run"], help="one half of the report")
    ap.add_argument("--configs", default=",".join(c[0] for c in CONFIGS), help="comma-separated names")
    ap.add_argument("--past", type=int, nargs="*", default=[512, 2048], help="decode points (past length)")
    ap.add_argument("--seq", type=int, nargs="*", default=[256], help="prefill points (sequence length)")
    ap.add_argument("--threads", type=int, nargs="*", default=[1, 2])
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--ort", action="store_true", help="onnxruntime on the same node beside llvm")
    a = ap.parse_args(argv)
    import ridgeline
    print(f"# ridgeline from {os.path.dirname(ridgeline.__file__)}; load {os.getloadavg()[0]:.1f}")
    want = set(a.configs.split(","))
    points = [(name, hq, hkv, d, 1, p) for name, hq, hkv, d in CONFIGS if name in want for p in a.past] + \
             [(name, hq, hkv, d, s, 0) for name, hq, hkv, d in CONFIGS if name in want for s in a.seq]
    for name, hq, hkv, d, sq, past in points:
        g = _graph(hq, hkv, d, sq, past)
        label = f"{name:11s} {'decode past' if past else 'prefill seq'} {past or sq:5d}"
        if a.only != "run":
            emit, opt, cg, lines = compile_phases(g)
            print(f"compile {label}: emit {emit * 1e3:6.1f} ms  opt {opt * 1e3:6.1f} ms  codegen {cg * 1e3:6.1f} ms"
                  f"  total {(emit + opt + cg) * 1e3:6.1f} ms  ({lines} lines of optimized IR)", flush=True)
        if a.only != "compile":
            for th in a.threads:
                t, cpu = run_time(g, th, a.repeats)
                extra = ""
                if a.ort:
                    o = ort_time(hq, hkv, d, sq, past, th, a.repeats)
                    extra = f"  onnxruntime {o * 1e3:8.3f} ms  llvm/ort {t / o:5.2f}"
                print(f"run     {label} {th} thr: llvm {t * 1e3:8.3f} ms (CPU {cpu * 1e3:8.3f} ms){extra}  (load {os.getloadavg()[0]:.1f})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
