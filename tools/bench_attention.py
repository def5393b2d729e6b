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


def _graph(hq: int, hkv: int, d: int, sq: int, past: int, mask: bool = False):
    """One causal Attention node, 4-D, with a KV cache when ``past`` > 0 (as the decode exports);
    ``mask``: causal by an additive [1, 1, seq, past + seq] mask, as legacy exports say it."""
    from ridgeline.ir import Builder, Graph, tensor
    g = Graph("attn")
    q = g.add_input("q", tensor("f32", 1, hq, sq, d))
    k, v = (g.add_input(n, tensor("f32", 1, hkv, sq, d)) for n in "kv")
    pk, pv = ((g.add_input(n, tensor("f32", 1, hkv, past, d)) for n in ("pk", "pv")) if past else (None, None))
    bias = g.add_input("mask", tensor("f32", 1, 1, sq, past + sq)) if mask else None
    out = Builder(g).Attention(q, k, v, bias, pk, pv, is_causal=int(not mask), _outputs=3 if past else 1)
    g.outputs = list(out) if isinstance(out, tuple) else [out]
    return g


def _feeds(g) -> dict[str, np.ndarray]:
    """Random Q/K/V (and past) for :func:`_graph`'s graph; its mask, when it has one, causal."""
    rng = np.random.default_rng(0)
    feeds = {p.name: rng.standard_normal(p.type.shape).astype(np.float32) for p in g.inputs}
    if "mask" in feeds:
        sq, t = feeds["mask"].shape[2:]
        feeds["mask"] = np.triu(np.full((sq, t), -np.inf, np.float32), t - sq + 1)[None, None]
    return feeds


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
    feeds = _feeds(g)
    exe = get_backend("llvm").compile(g, strict=True, threads=threads)
    exe.run(feeds)
    wall, cpu = [], []
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        exe.run(feeds)
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return statistics.median(wall), statistics.median(cpu)


def against(path: str, g, threads: int, repeats: int) -> tuple[float, float]:
    """Fastest CPU seconds per call of this checkout's kernel and of the attention.py at ``path``
    (another version of the file, loaded beside it), runs interleaved in one process so that the
    host's load weighs on both alike (the fastest: on a loaded host a median still moves ±10%)."""
    import importlib.util
    from unittest import mock

    from ridgeline.backends.llvm import lowerings
    from ridgeline.backends.registry import get_backend
    spec = importlib.util.spec_from_file_location("ridgeline.backends.llvm._attention_other", path)
    other = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(other)
    feeds = _feeds(g)
    mine = get_backend("llvm").compile(g, strict=True, threads=threads)
    with mock.patch.object(lowerings, "AttentionLowering", other.AttentionLowering):
        theirs = get_backend("llvm").compile(g, strict=True, threads=threads)
    out = {"mine": [], "other": []}
    for _ in range(repeats):
        for k, exe in (("mine", mine), ("other", theirs)):
            exe.run(feeds)
            c = time.process_time()
            exe.run(feeds)
            out[k].append(time.process_time() - c)
    return min(out["mine"]), min(out["other"])


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


def _ort_attention_nodes(model) -> set[str]:
    """Names of the nodes of an unfused export that compute attention: each Softmax, the nodes
    between it and the MatMul of two activations that feeds it (scale, mask), the MatMul after
    it, and the movement ops before both MatMuls that repeat the K/V heads (Expand, Reshape...)."""
    inits = {i.name for i in model.graph.initializer}
    producer = {o: n for n in model.graph.node for o in n.output}
    consumers: dict[str, list] = {}
    for n in model.graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    picked: set[str] = set()

    def repeats(name: str) -> None:   # back through the head-repeat of K/V (repeat_kv) to a real op
        n = producer.get(name)
        while n is not None and n.op_type in ("Expand", "Reshape", "Unsqueeze", "Transpose") and n.name not in picked:
            picked.add(n.name)
            n = producer.get(n.input[0])

    for sm in (n for n in model.graph.node if n.op_type == "Softmax"):
        picked.add(sm.name)
        n = producer.get(sm.input[0])
        while n is not None and n.op_type != "MatMul":
            picked.add(n.name)
            n = producer.get(n.input[0])
        mms = [n] + [c for c in consumers.get(sm.output[0], []) if c.op_type == "MatMul"]
        for mm in mms:
            if mm is not None and not any(i in inits for i in mm.input):
                picked.add(mm.name)
                for i in mm.input:
                    repeats(i)
    return picked


def model_profile(path: str, seq: int, threads: int, repeats: int) -> tuple[float, float]:
    """Seconds per prefill of ``seq`` tokens spent in attention: the llvm backend's Attention
    kind (``exe.run(feeds, profile=True)``) and onnxruntime's profiler over the unfused nodes
    :func:`_ort_attention_nodes` names: each node's fastest of ``repeats`` runs, summed (on a
    loaded host a descheduled call takes tens of ms; the fastest is the kernel's own time)."""
    import json

    import onnx
    import onnxruntime as ort

    from ridgeline import api
    from ridgeline.backends.registry import get_backend
    g = api.optimize(api.load(path), "default")
    rng = np.random.default_rng(0)
    feeds = {}
    for v in g.inputs:
        shape = tuple(1 if d == "batch" else seq if isinstance(d, str) else d for d in v.type.shape)
        feeds[v.name] = (rng.integers(0, 1000, shape) if v.name == "input_ids" else np.ones(shape)).astype(np.int64) \
            if v.type.dtype.name == "i64" else rng.standard_normal(shape).astype(np.float32)
    if "position_ids" in feeds:
        feeds["position_ids"] = np.arange(seq, dtype=np.int64)[None]
    exe = get_backend("llvm").compile(g, threads=threads)
    exe.run(feeds)
    ours: dict = {}
    for _ in range(repeats):
        exe.run(feeds, profile=True)
        for n, t in exe.timings.items():
            if n.op == "Attention":
                ours[n] = min(t, ours.get(n, t))
    names = _ort_attention_nodes(onnx.load(path, load_external_data=False))
    so = ort.SessionOptions()
    so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
    so.enable_profiling = True
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    for _ in range(repeats + 1):
        sess.run(None, feeds)
    with open(sess.end_profiling()) as f:
        events = json.load(f)
    os.unlink(f.name)
    theirs: dict[str, float] = {}
    for e in events:
        node = e["name"][:-12]   # onnxruntime names a fused node after its first: "<MatMul>/MatMulScaleFusion/"
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time") and node.split("/MatmulTransposeFusion")[0] \
                .split("/MatMulScaleFusion")[0] in names:
            theirs[node] = min(e["dur"] * 1e-6, theirs.get(node, float("inf")))
    return sum(ours.values()), sum(theirs.values())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", choices=["compile", "run"], help="one half of the report")
    ap.add_argument("--configs", default=",".join(c[0] for c in CONFIGS), help="comma-separated names")
    ap.add_argument("--past", type=int, nargs="*", default=[512, 2048], help="decode points (past length)")
    ap.add_argument("--seq", type=int, nargs="*", default=[256], help="prefill points (sequence length)")
    ap.add_argument("--threads", type=int, nargs="*", default=[1, 2])
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--against", help="another attention.py: run time per call A/B, interleaved in one process")
    ap.add_argument("--mask", action="store_true", help="causal by an additive mask input, not is_causal")
    ap.add_argument("--ort", action="store_true", help="onnxruntime on the same node beside llvm")
    ap.add_argument("--model", help="an unfused ONNX export (no KV cache): attention's share of a prefill of "
                                    "each --seq, llvm's Attention kind against onnxruntime's profiler")
    a = ap.parse_args(argv)
    import ridgeline
    print(f"# ridgeline from {os.path.dirname(ridgeline.__file__)}; load {os.getloadavg()[0]:.1f}")
    if a.model:
        for sq in a.seq:
            for th in a.threads:
                ours, theirs = model_profile(a.model, sq, th, a.repeats)
                print(f"model prefill {sq} {th} thr: llvm Attention {ours * 1e3:8.3f} ms  onnxruntime attention nodes "
                      f"{theirs * 1e3:8.3f} ms  llvm/ort {ours / theirs:5.2f}  (load {os.getloadavg()[0]:.1f})", flush=True)
        return 0
    want = set(a.configs.split(","))
    points = [(name, hq, hkv, d, 1, p) for name, hq, hkv, d in CONFIGS if name in want for p in a.past] + \
             [(name, hq, hkv, d, s, 0) for name, hq, hkv, d in CONFIGS if name in want for s in a.seq]
    for name, hq, hkv, d, sq, past in points:
        g = _graph(hq, hkv, d, sq, past, a.mask)
        label = f"{name:11s} {'decode past' if past else 'prefill seq'} {past or sq:5d}"
        if a.only != "run":   # the fastest of three: a loaded host's stalls are not compile work
            emit, opt, cg, lines = min((compile_phases(g) for _ in range(3)), key=lambda r: sum(r[:3]))
            print(f"compile {label}: emit {emit * 1e3:6.1f} ms  opt {opt * 1e3:6.1f} ms  codegen {cg * 1e3:6.1f} ms"
                  f"  total {(emit + opt + cg) * 1e3:6.1f} ms  ({lines} lines of optimized IR)", flush=True)
        if a.only != "compile":
            for th in a.threads:
                if a.against:
                    t, o = against(a.against, g, th, a.repeats)
                    print(f"run     {label} {th} thr: CPU this {t * 1e3:8.3f} ms  other {o * 1e3:8.3f} ms  "
                          f"this/other {t / o:5.3f}  (load {os.getloadavg()[0]:.1f})", flush=True)
                    continue
                t, cpu = run_time(g, th, a.repeats)
                extra = ""
                if a.ort:
                    o = ort_time(hq, hkv, d, sq, past, th, a.repeats)
                    extra = f"  onnxruntime {o * 1e3:8.3f} ms  llvm/ort {t / o:5.2f}"
                print(f"run     {label} {th} thr: llvm {t * 1e3:8.3f} ms (CPU {cpu * 1e3:8.3f} ms){extra}  (load {os.getloadavg()[0]:.1f})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
