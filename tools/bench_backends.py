#!/usr/bin/env python
"""Benchmark the executing backends against onnxruntime and the host's memory bandwidth.

    python tools/bench_backends.py                 # everything, models from tests/models
    python tools/bench_backends.py --only kernels  # fused chain + layernorm vs bandwidth
    python tools/bench_backends.py --only gemm     # JIT GEMM vs onnxruntime's MatMul and the FMA peak
    python tools/bench_backends.py --model my.onnx --only models
    python tools/bench_backends.py --with-past with_past.onnx    # generation (KV cache), 1 and 2 threads
    python tools/bench_backends.py --with-past with_past.onnx --threads 1 --no-compile-probe

Sections (all timed in this one process, so that ratios compare like with like on a machine other
jobs share — absolute numbers there vary ~3x between runs, ratios much less):

models   GPT-2, BERT and Llama exports: the tiny test models of ``tests/models/manifest.json``
         (hidden 32: the runtime's overheads dominate) or, with ``--size base``, the same families
         at GPT-2-small / BERT-base scale (12 layers, hidden 768; Llama with 4 KV heads) exported
         here by ``tools/export_models.py`` into ``--cache`` (once; random weights), or ``--model``
         files. Prefill at seq 128 (32 for the tiny models) and a decode step attending to as many tokens.
         Median latency of onnxruntime (1 and 2 threads), our numpy, torch and llvm backends (llvm
         at 1 and 2 threads), runs interleaved round-robin; printed as ratios to onnxruntime at the
         same thread count, with each backend's max error against numpy.
kernels  STREAM copy/triad through the llvm backend (1 and all cores) and numpy's copy; then a
         fused ``gelu(x·a + b)`` chain and a LayerNormalization at large sizes: GB/s achieved, share
         of the measured stream bandwidth, speed-up over the numpy expression.
gemm     The JIT GEMM against onnxruntime's MatMul (1 thread in CPU time, 2 in wall time) on the
         products of prefill and decode steps of several model widths, as a share of one
         core's FMA peak (24 register-resident vector multiply-adds in flight).
attention  The attention kernel with grouped-query heads sharing a task against one head per task.
launch   The runner's cost per split launch: native pool, pure-Python runner, a direct call.
generation  For each ``--with-past`` export: llvm compile time with a cold and a warm object cache
         (two fresh processes), first token and first decode step; a generation on one executable
         (per-token time, plans and compiles after the first step); then steady decode steps at
         ``--past`` 64,512 and prefills at ``--prefill`` 64,256: median of >= 10 runs of
         onnxruntime, llvm (1 and 2 threads) and torch, each measured alone in a fresh process
         (--rounds of them in alternating order; another runtime's spinning pool threads in the
         same process took the second core from 2-thread runs), with the load average per backend.
         ``--profile``: per point, llvm's and onnxruntime's own per-node profiles (minimum per node
         over the runs), summed per op and the slowest nodes: where one loses to the other.

Goals reported (not asserted anywhere): fused chains >= 70% of stream bandwidth and >= 2x the
numpy expression; prefill within 1.5x of onnxruntime at the same thread count; decode faster.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ridgeline import api
from ridgeline.backends.registry import get_backend
from ridgeline.ir import Builder, Graph, tensor
from ridgeline.testing.inputs import random_inputs


def load_avg() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def interleaved(fns: dict, repeats: int, budget: float, clock=time.perf_counter, settle: float = 0.0) -> dict[str, list[float]]:
    """Call every function once per round, round after round; per-name lists of seconds
    (``clock=time.process_time``: CPU seconds — on a loaded machine the time a one-thread run
    computes, without the time it waits for a core). ``settle`` seconds of sleep before each call
    let the thread pools of the previous one (onnxruntime's and OpenMP's spin after a run) park
    instead of taking the next one's core."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    t_end = time.perf_counter() + budget
    for r in range(repeats):
        for k, f in fns.items():
            if settle:
                time.sleep(settle)
            t0 = clock()
            f()
            times[k].append(clock() - t0)
        if r >= 2 and time.perf_counter() > t_end:
            break
    return times


def med(ts: list[float]) -> float:
    return statistics.median(ts) if ts else float("nan")


# ------------------------------------------------------------------------------------ models
#: the families at the scale of the real models (random weights): GPT-2 small, BERT base, and a
#: Llama-style decoder of the same width with grouped-query attention
BASE = {"VOCAB": 50257, "HIDDEN": 768, "LAYERS": 12, "HEADS": 12, "KV_HEADS": 4, "FFN": 3072, "POSITIONS": 1024,
        "INIT_STD": 0.02}


def export_base(cache: Path) -> list[dict]:
    """Export GPT-2 / BERT / Llama at base scale with the test models' exporter (legacy, opset 17)."""
    sys.path.insert(0, str(ROOT / "tools"))
    import export_models as em
    for k, v in BASE.items():
        setattr(em, k, v)
    em.HEAD_DIM = em.HIDDEN // em.HEADS
    cache.mkdir(parents=True, exist_ok=True)
    out = []
    for family, phases in em.FAMILIES.items():
        for phase in phases:
            path = cache / f"{family}-base-legacy17-{phase}.onnx"
            if not path.exists():
                print(f"exporting {path.name} (once) ...", flush=True)
                em.export(family, "legacy", 17, phase, path)
            out.append({"name": path.stem, "path": str(path), "phase": phase, "family": family})
    return out


def eager_step(m: dict):
    """The PyTorch model itself (transformers, eager) and its input names, for --size base."""
    import export_models as em
    import torch
    model = em.build(m["family"], "eager")
    step = em.make_step(model, m["family"], m["phase"] == "decode")
    names = [p.name for p in em.signature(m["family"], m["phase"] == "decode").inputs]

    def run(inputs, threads):
        before = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            with torch.no_grad():
                return step(*[torch.from_numpy(inputs[n]) for n in names])
        finally:
            torch.set_num_threads(before)
    return run


def model_list(args) -> list[dict]:
    out = []
    if args.size == "base" and not args.model:
        return export_base(Path(args.cache))
    for p in args.model or []:
        out.append({"name": Path(p).stem, "path": p, "phase": "decode" if "decode" in Path(p).stem else "prefill"})
    if args.model:
        return out
    manifest = Path(args.models) / "manifest.json"
    if not manifest.exists():
        print(f"(no {manifest}: pass --model FILE.onnx or --size base)")
        return out
    entries = json.loads(manifest.read_text())
    entries = entries.get("models", entries) if isinstance(entries, dict) else entries
    for e in entries:
        fam = e.get("family", "")
        if fam not in ("gpt2", "bert", "llama"):
            continue
        if e.get("exporter") != args.exporter or e.get("opset") != args.opset:
            continue
        path = Path(args.models) / e.get("file", e.get("path", ""))
        out.append({"name": path.stem, "path": str(path), "phase": e.get("phase", "prefill")})
    return out


def dims_for(graph, phase: str, seq: int) -> dict[str, int]:
    syms = graph.symbols()
    dims = {"batch": 1}
    if phase == "decode":
        dims.update(seq=1, past=seq - 1)
    else:
        dims.update(seq=seq, past=0)
    return {k: v for k, v in dims.items() if k in syms}


def rel_err(ref: dict, out: dict) -> float:
    worst = 0.0
    for k, r in ref.items():
        o = np.asarray(out[k], dtype=np.float64)
        r = np.asarray(r, dtype=np.float64)
        scale = max(np.abs(r).max(initial=0.0), 1e-30)
        worst = max(worst, float(np.abs(o - r).max(initial=0.0) / scale))
    return worst


def bench_model(m: dict, args) -> dict:
    import onnxruntime as ort
    g = api.load(m["path"])
    dims = dims_for(g, m["phase"], args.seq)
    gb = g.bind(dims) if dims else g
    inputs = random_inputs(gb, seed=0)
    fns, errs = {}, {}
    ref = get_backend("numpy").compile(gb).run(inputs)
    for th in (1, 2):
        so = ort.SessionOptions()
        so.intra_op_num_threads = th
        so.inter_op_num_threads = 1
        sess = ort.InferenceSession(m["path"], so, providers=["CPUExecutionProvider"])
        names = [o.name for o in sess.get_outputs()]
        feed = {i.name: inputs[i.name] for i in sess.get_inputs()}
        res = dict(zip(names, sess.run(None, feed)))
        errs[f"ort{th}"] = rel_err({k: v for k, v in ref.items() if k in res}, res)
        fns[f"ort{th}"] = (lambda s=sess, f=feed: s.run(None, f))
    compiled = {}
    t0 = time.perf_counter()
    compiled["llvm1"] = api.compile(gb, "llvm", threads=1)
    compiled["llvm2"] = api.compile(gb, "llvm", threads=2)
    compile_s = time.perf_counter() - t0
    compiled["torch1"] = api.compile(gb, "torch", threads=1)
    compiled["torch2"] = api.compile(gb, "torch", threads=2)
    if not args.skip_numpy:
        compiled["numpy"] = api.compile(gb, "numpy")
    for k, exe in compiled.items():
        errs[k] = rel_err(ref, exe.run(inputs))
        fns[k] = (lambda e=exe: e.run(inputs))
    if m.get("family"):
        eager = eager_step(m)
        for th in (1, 2):
            fns[f"eager{th}"] = (lambda th=th: eager(inputs, th))
    times = interleaved(fns, args.repeats, args.budget)
    r = {k: med(v) for k, v in times.items()}
    plan = compiled["llvm2"].plan.summary()
    return {"model": m["name"], "phase": m["phase"], "dims": dims, "median_s": r, "max_rel_err": errs,
            "runs": {k: len(v) for k, v in times.items()}, "llvm_compile_s": compile_s,
            "llvm_fallbacks": plan["fallbacks"], "llvm_kernels": plan["kernels"]}


def print_models(rows: list[dict]) -> None:
    print("\n== models: median latency, ratio to onnxruntime at the same thread count (lower is better)")
    print(f"{'model':28s} {'phase':7s} {'ort1 ms':>8s} {'ort2 ms':>8s} {'llvm1':>6s} {'llvm2':>6s} {'torch1':>6s} "
          f"{'torch2':>6s} {'eager1':>6s} {'eager2':>6s} {'numpy':>6s}  max rel err llvm / torch")
    for r in rows:
        m = r["median_s"]
        ratio = lambda k, ref: f"{m[k] / m[ref]:6.2f}" if k in m else "     -"
        print(f"{r['model'][:28]:28s} {r['phase']:7s} {m['ort1'] * 1e3:8.2f} {m['ort2'] * 1e3:8.2f} "
              f"{ratio('llvm1', 'ort1')} {ratio('llvm2', 'ort2')} {ratio('torch1', 'ort1')} {ratio('torch2', 'ort2')} "
              f"{ratio('eager1', 'ort1')} {ratio('eager2', 'ort2')} {ratio('numpy', 'ort1')}"
              f"  {r['max_rel_err']['llvm2']:.1e} / {r['max_rel_err']['torch2']:.1e}"
              + (f"  fallbacks {r['llvm_fallbacks']}" if r["llvm_fallbacks"] else ""))
    print("  ratios to onnxruntime at the same thread count (…1: one thread, …2: two); torch: our torch backend,\n"
          "  eager: the transformers model run by PyTorch (--size base only); numpy against ort1")


# ------------------------------------------------------------------------------- generation
def _gen_feeds(graph, rng, batch: int, past: int, seq: int) -> dict[str, np.ndarray]:
    """Inputs of a with-past export (input_ids, attention_mask, [position_ids], past K/V)."""
    env = {"batch": batch, "seq": seq, "past": past, "total": past + seq}
    feeds = {}
    for v in graph.inputs:
        shape = tuple(d if isinstance(d, int) else int(eval(d, {}, env)) for d in v.type.shape)
        if v.name == "input_ids":
            vocab = graph.outputs[0].type.shape[-1]
            feeds[v.name] = rng.integers(0, min(1000, vocab if isinstance(vocab, int) else 1000), shape).astype(np.int64)
        elif v.name == "attention_mask":
            feeds[v.name] = np.ones(shape, np.int64)
        elif v.name == "position_ids":
            feeds[v.name] = np.broadcast_to(np.arange(past, past + seq), shape).astype(np.int64).copy()
        else:
            feeds[v.name] = rng.standard_normal(shape).astype(np.float32)
    return feeds


def _present_to_past(graph, outs: dict) -> dict:
    past = [v.name for v in graph.inputs if v.type.rank == 4]
    present = [v.name for v in graph.outputs if v.type.rank == 4]
    return {p: outs[q] for p, q in zip(past, present)}


def compile_probe(path: str, prompt: int) -> dict:
    """One process's cold start: load, optimize, compile; the first token (a prefill of
    ``prompt`` tokens) and the first decode step, each including its compilation."""
    from ridgeline.backends.llvm import objcache
    t0 = time.perf_counter()
    g = api.optimize(api.load(path), "default")
    load_s = time.perf_counter() - t0
    exe = api.compile(g, "llvm", pipeline="")
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    out = exe.run(_gen_feeds(g, rng, 1, 0, prompt))
    first = time.perf_counter() - t0
    feeds = _gen_feeds(g, rng, 1, prompt, 1)
    feeds.update(_present_to_past(g, out))
    t0 = time.perf_counter()
    exe.run(feeds)
    second = time.perf_counter() - t0
    import resource
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024   # KiB on Linux: MiB
    return {"load_opt_s": load_s, "first_token_s": first, "first_decode_s": second, "peak_rss_mib": peak,
            "llvm_compile_s": sum(p.compile_seconds for p in exe.interpreter._plans.values()),
            "cache": dict(objcache.STATS), "counts": exe.compile_count}


def bench_generation(path: str, args) -> dict:
    """Cold/warm compile (two subprocesses sharing a fresh object cache), a generation loop on one
    llvm executable (per-token times, plans/compiles after the first step), then steady decode
    steps at each --past and prefills at each --prefill against onnxruntime, each backend in its
    own process (``point_worker``), in --rounds of alternating order."""
    import subprocess
    import tempfile

    out: dict = {"model": path, "load_start": load_avg()}
    cache = tempfile.mkdtemp(prefix="ridgeline-bench-cache-")
    for label in () if args.no_compile_probe else ("cold", "warm"):
        env = {**os.environ, "RIDGELINE_CACHE_DIR": cache, "PYTHONPATH": str(ROOT)}
        r = subprocess.run([sys.executable, __file__, "--probe", path, "--prompt", str(args.prompt)],
                           capture_output=True, text=True, env=env, check=False)
        out[label] = json.loads(r.stdout.strip().splitlines()[-1]) if r.returncode == 0 else {"error": r.stderr[-400:]}
    g = api.optimize(api.load(path), "default")
    rng = np.random.default_rng(0)
    threads = args.threads
    llvm = {th: api.compile(g, "llvm", pipeline="", threads=th) for th in threads}
    # a generation on one executable: prompt, then --steps tokens, the cache growing by one each
    exe = llvm[threads[0]]
    res = exe.run(_gen_feeds(g, rng, 1, 0, args.prompt))
    steps = []
    counts = []
    for k in range(args.steps):
        feeds = _gen_feeds(g, rng, 1, args.prompt + k, 1)
        feeds.update(_present_to_past(g, res))
        t0 = time.perf_counter()
        res = exe.run(feeds)
        steps.append(time.perf_counter() - t0)
        counts.append(dict(exe.compile_count))
    out["generation"] = {"step_s": steps, "counts_after_first": counts[0], "counts_at_end": counts[-1],
                         "runtime_dims": sorted(exe.runtime_dims), "alloc": _step_allocations(g, exe, res, rng, args)}
    points = [("decode", p, 1) for p in args.past] + [("prefill", 0, s) for s in args.prefill]
    # each backend in its own fresh process, one after another, in rounds of alternating order:
    # a runtime's worker threads (onnxruntime's pool, torch's OpenMP team, our pool) spin for a
    # while after each run, and in one process they took the other core from the next backend's
    # 2-thread run (llvm's copy kernel streamed 15 GB/s there against 47 alone). Rounds spread
    # each backend over the run, so slow drifts of the host's load hit all of them alike.
    configs = [("ort", th) for th in threads] + [("llvm", th) for th in threads] + [("torch", 0)]
    runs = -(-max(args.repeats, 10) // args.rounds)
    samples = {f"{b}{th or ''}": [{"wall": [], "cpu": [], "load": []} for _ in points] for b, th in configs}
    out["errors"] = {}
    for rnd in range(args.rounds):
        for backend, th in (configs if rnd % 2 == 0 else configs[::-1]):
            name = f"{backend}{th or ''}"
            cmd = [sys.executable, __file__, "--point-worker", backend, str(th), path, "--repeats", str(runs),
                   "--budget", str(args.budget / args.rounds), "--past", ",".join(map(str, args.past)),
                   "--prefill", ",".join(map(str, args.prefill)), "--profile", str(args.profile)]
            r = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)},
                               check=False)
            if r.returncode != 0:
                out["errors"][name] = r.stderr[-400:]
                continue
            for acc, got in zip(samples[name], json.loads(r.stdout.strip().splitlines()[-1])):
                for key in ("wall", "cpu"):
                    acc[key] += got[key]
                acc["load"].append(got["load"])
                for label, node, t in got.get("profile", ()):   # the minimum over every round
                    prof = acc.setdefault("profile", {})
                    prof[node] = (label, min(t, prof.get(node, (label, t))[1]))
    out["points"] = []
    for i, (phase, past, seq) in enumerate(points):
        have = {k: v[i] for k, v in samples.items() if v[i]["wall"]}
        out["points"].append({"phase": phase, "past": past, "seq": seq,
                              "median_s": {k: med(v["wall"]) for k, v in have.items()},
                              "cpu_s": {k: med(v["cpu"]) for k, v in have.items()},
                              "runs": min((len(v["wall"]) for v in have.values()), default=0),
                              "load": _load_span([x for v in have.values() for x in v["load"]]),
                              "profile": {k: v["profile"] for k, v in have.items() if "profile" in v}})
    out["roofline"] = gemv_roofline(g, llvm, rng, args) if args.past else None
    out["load_end"] = load_avg()
    return out


def _load_span(loads: list[str]) -> str:
    """The span of 1-minute load averages seen after the backends' runs of one point."""
    firsts = [float(x.split()[0]) for x in loads if x and x != "?"]
    return f"{min(firsts):.2f}-{max(firsts):.2f}" if firsts else "?"


def point_worker(backend: str, threads: int, path: str, args) -> list[dict]:
    """One backend alone in this process: per --past decode step and --prefill, per-call wall and
    CPU seconds of ``--repeats`` runs after two warm-up runs (the torch backend: six, for its
    thread measurement), and the load average after them."""
    g = api.optimize(api.load(path), "default")
    rng = np.random.default_rng(0)
    if backend == "ort":
        import onnxruntime as ort
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
        run = lambda f: sess.run(None, f)
    else:
        exe = api.compile(g, backend, pipeline="", **({"threads": threads} if backend == "llvm" else {}))
        run = exe.run
    res = []
    for phase, past, seq in [("decode", p, 1) for p in args.past] + [("prefill", 0, s) for s in args.prefill]:
        feeds = _gen_feeds(g, rng, 1, past, seq)
        for _ in range(6 if backend == "torch" else 2):
            run(feeds)
        wall, cpu = [], []
        t_end = time.perf_counter() + args.budget
        for r in range(args.repeats):
            w0, c0 = time.perf_counter(), time.process_time()
            run(feeds)
            wall.append(time.perf_counter() - w0)
            cpu.append(time.process_time() - c0)
            if r >= 2 and time.perf_counter() > t_end:
                break
        res.append({"wall": wall, "cpu": cpu, "load": load_avg()})
        if args.profile and backend in ("llvm", "ort"):
            res[-1]["profile"] = (_profile_llvm(exe, feeds, args.profile) if backend == "llvm"
                                  else _profile_ort(path, threads, feeds, args.profile))
    return res


def _node_label(node, kind: str) -> str:
    """An llvm plan node's op, with its kernel kind and a fused body's ops (``gemm:Fused[MatMul+Add]``)."""
    body = f"[{'+'.join(n.op for n in node.body)}]" if node.op == "Fused" and node.body is not None else ""
    return f"{kind}:{node.op}{body}"


def _profile_llvm(exe, feeds, runs: int) -> list[tuple[str, str, float]]:
    """(label, node, seconds) per plan node: the minimum over ``runs`` runs with ``profile=True``."""
    from ridgeline.ir.verifier import describe
    best: dict = {}
    for _ in range(runs):
        exe.run(feeds, profile=True)
        for n, t in exe.timings.items():
            best[n] = min(t, best.get(n, t))
    kinds = exe.plan.kinds
    return [(_node_label(n, kinds.get(n, "numpy")), describe(n), t) for n, t in best.items()]


def _profile_ort(path: str, threads: int, feeds, runs: int) -> list[tuple[str, str, float]]:
    """The same from onnxruntime's profiler (``enable_profiling``: each node's kernel time), in a
    session of its own so that the timed runs above paid no profiling."""
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
    so.enable_profiling = True
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    for _ in range(runs + 1):   # the first run allocates
        sess.run(None, feeds)
    trace = sess.end_profiling()
    with open(trace) as f:
        events = json.load(f)
    os.unlink(trace)
    best: dict[str, tuple[str, float]] = {}
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            name, t = e["name"][:-len("_kernel_time")], e["dur"] * 1e-6
            best[name] = (e["args"].get("op_name", "?"), min(t, best.get(name, ("", t))[1]))
    return [(op, name, t) for name, (op, t) in best.items()]


def _step_allocations(g, exe, res, rng, args) -> dict:
    """Bytes allocated (peak over the step, tracemalloc sees numpy's buffers) by decode steps that
    feed the presents back, and the copies of the KV cache the attention kernels made doing so."""
    import tracemalloc

    from ridgeline.backends.llvm.attention import AttentionLowering
    past = args.prompt + args.steps
    peaks = []
    for k in range(3):
        feeds = _gen_feeds(g, rng, 1, past + k, 1)
        feeds.update(_present_to_past(g, res))
        tracemalloc.start()
        res = exe.run(feeds)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    copies = sum(c.copies for lw in exe.plan.lowerings.values() if isinstance(lw, AttentionLowering)
                 for c in getattr(lw, "caches", ()))
    cache_bytes = sum(v.nbytes for v in res.values() if v.ndim == 4)
    return {"peak_bytes": peaks, "kv_copies": copies, "kv_bytes": cache_bytes}


def gemv_roofline(g, llvm: dict, rng, args) -> dict:
    """The decode step's matrix products (one row each) against the memory bandwidth that
    ``ridgeline calibrate`` measures (STREAM through llvm kernels), at 1 and 2 threads: the
    weights each product reads once, divided by its time (best of a few profiled runs)."""
    from ridgeline.backends.llvm.calibrate import calibrate
    cal = calibrate()   # full sizes: quick STREAM arrays (256 KiB) time a worker's wake-up, not memory
    feeds = _gen_feeds(g, rng, 1, args.past[0], 1)
    res = {"stream_GBps": {k: v / 1e9 for k, v in cal.stream.items()}}
    for th, exe in llvm.items():
        best = float("inf")
        for _ in range(5):
            exe.run(feeds, profile=True)
            gemms = [n for n in exe.plan.kinds if exe.plan.kinds[n] == "gemm"]
            best = min(best, sum(exe.timings[n] for n in gemms))
        weights = sum(v.data.nbytes for n in gemms for v in n.inputs if v is not None and v.data is not None)
        res[f"llvm{th}"] = {"gemm_s": best, "weight_bytes": weights, "GBps": weights / best / 1e9}
    res["load"] = load_avg()
    return res


def print_generation(r: dict) -> None:
    print(f"\n== generation: {r['model']}")
    for name, err in r.get("errors", {}).items():
        print(f"  {name} failed: {err}")
    for label in ("cold", "warm"):
        if label not in r:
            continue
        c = r[label]
        if "error" in c:
            print(f"  {label} cache: failed: {c['error']}")
            continue
        print(f"  {label} object cache: load+optimize {c['load_opt_s']:.1f} s, llvm plans {c['llvm_compile_s']:.1f} s, "
              f"first token (prefill, with compile) {c['first_token_s']:.2f} s, first decode step {c['first_decode_s']:.2f} s; "
              f"cache {c['cache']}; peak resident {c.get('peak_rss_mib', 0):.0f} MiB")
    gen = r["generation"]
    st_ = gen["step_s"]
    print(f"  generation on one executable ({len(st_)} steps, runtime dims {gen['runtime_dims']}): first step "
          f"{st_[0] * 1e3:.0f} ms, median of the rest {med(st_[1:]) * 1e3:.1f} ms; plans/functions after the first "
          f"step {gen['counts_after_first']}, at the end {gen['counts_at_end']}")
    al = gen.get("alloc")
    if al:
        print(f"  decode steps feeding presents back: {', '.join(f'{b / 1024:.0f}' for b in al['peak_bytes'])} KiB "
              f"allocated per step (tracemalloc peak) for a {al['kv_bytes'] / 2**20:.1f} MiB KV cache; "
              f"{al['kv_copies']} copies of a cache tensor in the whole plan's life")
    ths = sorted({int(k[3:]) for p in r["points"] for k in p["median_s"] if k.startswith("ort")})
    t0 = ths[0]
    print(f"  {'phase':8s} {'past':>5s} {'seq':>4s} " + " ".join(f"{f'ort{t} ms':>8s}" for t in ths) + " "
          + " ".join(f"{f'wall{t}':>6s}" for t in ths) + f" {'torch':>6s} " + " ".join(f"{f'cpu{t}':>6s}" for t in ths)
          + "  runs  load")
    def q(d, a, b):
        return d[a] / d[b] if a in d and b in d else float("nan")
    for p in r["points"]:
        m, c = p["median_s"], p.get("cpu_s", {})
        print(f"  {p['phase']:8s} {p['past']:5d} {p['seq']:4d} " + " ".join(f"{m.get(f'ort{t}', float('nan')) * 1e3:8.1f}" for t in ths)
              + " " + " ".join(f"{q(m, f'llvm{t}', f'ort{t}'):6.2f}" for t in ths) + f" {q(m, 'torch', f'ort{t0}'):6.2f} "
              + " ".join(f"{q(c, f'llvm{t}', f'ort{t}'):6.2f}" for t in ths)
              + f"  {p['runs']:4d}  {p['load']}")
    print(f"  wallN: llvm / onnxruntime per-call wall time at N threads; cpuN: the same in CPU seconds of the process\n"
          f"  (process_time: the computing without the waits for a core on a loaded host; at 2 threads summed over both);\n"
          f"  torch (threads measured) against ort{t0}; each backend ran alone in its own process (load: the span\n"
          f"  of the 1-minute load average after each backend's runs)")
    for p in r["points"]:
        print_profile(p)
    dec = [p for p in r["points"] if p["phase"] == "decode"]
    for t in ths:
        if dec:
            w = [q(p["median_s"], f"llvm{t}", f"ort{t}") for p in dec]
            cc = [q(p["cpu_s"], f"llvm{t}", f"ort{t}") for p in dec]
            print(f"  per-token decode, llvm / onnxruntime at {t} thread(s): wall {min(w):.2f}-{max(w):.2f}, "
                  f"CPU {min(cc):.2f}-{max(cc):.2f} (past {', '.join(str(p['past']) for p in dec)}; "
                  f"load {dec[0]['load']} .. {dec[-1]['load']})")
    rf = r["roofline"]
    if rf is None:   # --past "": no decode step
        return
    print(f"  GEMV roofline (decode step, past {r['points'][0]['past']}): STREAM via llvm "
          + ", ".join(f"{k} {v:.1f}" for k, v in rf["stream_GBps"].items()) + " GB/s; "
          + "; ".join(f"{k}: {rf[k]['weight_bytes'] / 2**20:.0f} MiB of weights in {rf[k]['gemm_s'] * 1e3:.1f} ms = "
                      f"{rf[k]['GBps']:.1f} GB/s" for k in rf if k.startswith("llvm")) + f"  (load {rf['load']})")


# ------------------------------------------------------------------------------------ kernels
def _fused_graph(n: int):
    g = Graph("chain")
    x = g.add_input("x", tensor("f32", n))
    a = g.add_input("a", tensor("f32", n))
    b = g.add_input("b", tensor("f32", n))
    body = Graph("body")
    px, pa, pb = (body.add_input(k, tensor("f32", n)) for k in "xab")
    bb = Builder(body)
    body.outputs = [bb.Gelu(bb.Add(bb.Mul(px, pa), pb), approximate="tanh")]
    g.outputs = [g.add_node("Fused", [x, a, b], {"kind": "elementwise"}, body=body).outputs[0]]
    return g


def bench_kernels(args) -> dict:
    from ridgeline.backends.llvm.calibrate import _stream
    n = args.elements
    rng = np.random.default_rng(0)
    out: dict = {"elements": n}
    out["stream_llvm"] = _stream(n, None, 5)
    out["stream_llvm_1core"] = _stream(n, 1, 5)
    x = rng.standard_normal(n).astype(np.float32)
    y = np.empty_like(x)
    out["copy_numpy"] = 8 * n / min(interleaved({"c": lambda: np.copyto(y, x)}, 7, 10)["c"])
    # fused gelu(x * a + b): reads 3 arrays, writes 1
    a = rng.standard_normal(n).astype(np.float32)
    b = rng.standard_normal(n).astype(np.float32)
    exe2 = api.compile(_fused_graph(n), "llvm")
    exe1 = api.compile(_fused_graph(n), "llvm", threads=1)
    inp = {"x": x, "a": a, "b": b}
    c = np.float32(np.sqrt(2 / np.pi))

    def numpy_expr():
        t = x * a + b
        return 0.5 * t * (1 + np.tanh(c * (t + np.float32(0.044715) * t * t * t)))
    times = interleaved({"llvm2": lambda: exe2.run(inp), "llvm1": lambda: exe1.run(inp), "numpy": numpy_expr},
                        args.repeats, args.budget)
    fused = {k: med(v) for k, v in times.items()}
    moved = 16.0 * n
    out["fused_chain"] = {"seconds": fused, "gbps": {k: moved / v for k, v in fused.items()}}
    # layernorm over rows of 4096
    cols = 4096
    rows = max(1, n // cols)
    g = Graph("ln")
    xv = g.add_input("x", tensor("f32", rows, cols))
    s = g.add_constant("s", rng.standard_normal(cols).astype(np.float32))
    bv = g.add_constant("b", rng.standard_normal(cols).astype(np.float32))
    g.outputs = [Builder(g).LayerNormalization(xv, s, bv, _outputs=1)]
    xl = rng.standard_normal((rows, cols)).astype(np.float32)
    ln2, ln1, lnn = api.compile(g, "llvm"), api.compile(g, "llvm", threads=1), api.compile(g, "numpy")
    times = interleaved({"llvm2": lambda: ln2.run({"x": xl}), "llvm1": lambda: ln1.run({"x": xl}),
                         "numpy": lambda: lnn.run({"x": xl})}, args.repeats, args.budget)
    ln = {k: med(v) for k, v in times.items()}
    out["layernorm"] = {"seconds": ln, "gbps": {k: 8.0 * rows * cols / v for k, v in ln.items()}, "shape": [rows, cols]}
    return out


def print_kernels(k: dict) -> None:
    s2, s1 = k["stream_llvm"], k["stream_llvm_1core"]
    print(f"\n== kernels on {k['elements']:,} f32 elements per array")
    print(f"STREAM (llvm kernels): copy {s2['copy'] / 1e9:.1f} GB/s, triad {s2['triad'] / 1e9:.1f} GB/s on all cores; "
          f"copy {s1['copy'] / 1e9:.1f}, triad {s1['triad'] / 1e9:.1f} on one; numpy copy {k['copy_numpy'] / 1e9:.1f} GB/s")
    best_stream = max(s2["triad"], s2["copy"])
    for name, moved in (("fused gelu(x*a+b)", "fused_chain"), ("layernorm", "layernorm")):
        r = k[moved]
        g2, g1 = r["gbps"]["llvm2"], r["gbps"]["llvm1"]
        print(f"{name:18s}: llvm {g2 / 1e9:6.1f} GB/s all cores ({g2 / best_stream:4.0%} of stream), "
              f"{g1 / 1e9:6.1f} GB/s one core ({g1 / max(s1['triad'], s1['copy']):4.0%} of its stream); "
              f"numpy {r['gbps']['numpy'] / 1e9:5.1f} GB/s -> llvm is {r['seconds']['numpy'] / r['seconds']['llvm2']:.1f}x "
              f"(one core {r['seconds']['numpy'] / r['seconds']['llvm1']:.1f}x)")


# ------------------------------------------------------------------------------------ gemm
#: (M, K, N): decode rows, and prefill products of 256 tokens (batch 2 x 128 padded is the same M)
#: of SmolLM2-135M (576 / 1536 / 192 kv, LM head 49152), a Qwen2-0.5B-like model (896 / 4864, GQA
#: 7:1 so k/v are 128 wide, vocab cut to 32000) and hidden 1024 / 2048 decoders (MLP 2.75-4x)
GEMM_SHAPES = [(1, 768, 3072), (1, 2048, 8192), (16, 768, 3072),
               (256, 576, 576), (256, 576, 192), (256, 576, 1536), (256, 1536, 576), (256, 576, 49152),
               (256, 896, 128), (256, 896, 4864), (256, 4864, 896), (256, 896, 32000),
               (256, 1024, 2816), (256, 2048, 8192), (512, 1024, 1024)]


def fma_peak(seconds: float = 0.3) -> float:
    """f32 FLOP/s of one core on independent register-resident multiply-adds (24 vector
    accumulators, the GEMM micro-kernel's count): the ceiling its products are measured against."""
    import ctypes

    from llvmlite import ir

    from ridgeline.backends.llvm import host
    from ridgeline.backends.llvm.jit import compile_ir, finalize_text
    w = host().vector_width_f32
    i64, vt = ir.IntType(64), ir.VectorType(ir.FloatType(), w)
    mod = ir.Module("fma_peak")
    fn = ir.Function(mod, ir.FunctionType(ir.VoidType(), [i64, vt.as_pointer()]), "fma_peak")
    fma = ir.Function(mod, ir.FunctionType(vt, [vt] * 3), f"llvm.fma.v{w}f32")
    b = ir.IRBuilder(fn.append_basic_block())
    entry, body, done = b.block, fn.append_basic_block(), fn.append_basic_block()
    vals = [b.load(b.gep(fn.args[1], [ir.Constant(i64, j)]), align=4) for j in range(26)]
    b.branch(body)
    b.position_at_end(body)
    i = b.phi(i64)
    accs = [b.phi(vt) for _ in range(24)]
    new = [b.call(fma, [vals[24], vals[25], a]) for a in accs]
    nxt = b.add(i, ir.Constant(i64, 1))
    i.add_incoming(ir.Constant(i64, 0), entry)
    i.add_incoming(nxt, body)
    for a, v0, v1 in zip(accs, vals, new):
        a.add_incoming(v0, entry)
        a.add_incoming(v1, body)
    b.cbranch(b.icmp_signed("<", nxt, fn.args[0]), body, done)
    b.position_at_end(done)
    for j, v in enumerate(new):   # stored, so the loop is not dead code
        b.store(v, b.gep(fn.args[1], [ir.Constant(i64, j)]), align=4)
    b.ret_void()
    cm = compile_ir(finalize_text(str(mod)))
    run = ctypes.CFUNCTYPE(None, ctypes.c_int64, ctypes.c_void_p)(cm.address("fma_peak"))
    buf = np.ones(26 * w, np.float32)
    n, best = 1 << 20, float("inf")
    t_end = time.perf_counter() + seconds
    while time.perf_counter() < t_end or best == float("inf"):
        t0 = time.thread_time()
        run(n, buf.ctypes.data)
        best = min(best, (time.thread_time() - t0) or float("inf"))
    return 24 * 2 * w * n / best


def _ort_matmul(w: np.ndarray, m: int, threads: int):
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper
    k, n = w.shape
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "mm",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [m, k])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [m, n])],
                              [numpy_helper.from_array(w, "w")])
    so = ort.SessionOptions()
    so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
    return ort.InferenceSession(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
                                .SerializeToString(), so, providers=["CPUExecutionProvider"])


def bench_gemm(args) -> list[dict]:
    """Per shape: the JIT GEMM against onnxruntime's MatMul (MLAS) at 1 thread in CPU time of the
    calling thread (both run there: what a core computes, not how long it waited for one), and at
    2 threads in wall time; with the share of the register-resident FMA peak of one core."""
    rng = np.random.default_rng(0)
    peak = fma_peak()
    rows = []
    for m, k, n in GEMM_SHAPES:
        g = Graph("mm")
        x = g.add_input("x", tensor("f32", m, k))
        w = (rng.standard_normal((k, n)) * 0.05).astype(np.float32)
        g.outputs = [Builder(g).MatMul(x, g.add_constant("w", w))]
        inp = {"x": rng.standard_normal((m, k)).astype(np.float32)}
        row = {"m": m, "k": k, "n": n, "fma_peak_1core": peak, "gflops": {}}
        for threads, clock in ((1, time.thread_time), (2, time.perf_counter)):
            exe, sess = api.compile(g, "llvm", gemm="jit", threads=threads), _ort_matmul(w, m, threads)
            times = interleaved({"jit": lambda e=exe: e.run(inp), "ort": lambda s=sess: s.run(None, inp)},  # noqa: B023 (called here)
                                args.repeats * 2, args.budget / 2, clock=clock)
            for kk, v in times.items():
                row["gflops"][f"{kk}{threads}"] = 2 * m * n * k / max(min(v), 1e-9) / 1e9
        rows.append(row)
    return rows


def print_gemm(rows: list[dict]) -> None:
    peak = rows[0]["fma_peak_1core"] / 1e9 if rows else float("nan")
    print(f"\n== GEMM: JIT kernel vs onnxruntime's MatMul (best of the runs; 1 thread in CPU time, 2 in wall"
          f" time); one core's FMA peak {peak:.0f} GF/s")
    print(f"{'M x K x N':>18s} {'jit GF/s':>9s} {'% peak':>7s} {'ort GF/s':>9s} {'jit/ort time':>13s}"
          f" {'jit 2t':>7s} {'ort 2t':>7s} {'jit/ort 2t':>11s}")
    for r in rows:
        gf = r["gflops"]
        print(f"{r['m']:5d} x{r['k']:5d} x{r['n']:5d} {gf['jit1']:9.1f} {100 * gf['jit1'] / peak:7.0f} {gf['ort1']:9.1f}"
              f" {gf['ort1'] / gf['jit1']:13.2f} {gf['jit2']:7.1f} {gf['ort2']:7.1f} {gf['ort2'] / gf['jit2']:11.2f}")


# ------------------------------------------------------------------------------------ launch
def bench_launch(args) -> list[dict]:
    """The runner's cost per launch: a kernel adding 1 to n floats, called directly (one thread),
    through the pure-Python runner and through the native pool at all cores, split at any size
    (threshold 0); median per launch, interleaved."""
    import llvmlite.ir as lir

    from ridgeline.backends.llvm.irutil import F32, const, kernel_function, load, loop, store
    from ridgeline.backends.llvm.jit import compile_ir, finalize_text
    from ridgeline.backends.llvm.lowering import cfunc
    from ridgeline.backends.llvm.parallel import Runner
    m = lir.Module(name="bench_launch")
    _, b, lo, hi, (pa, pb) = kernel_function(m, "add1", 2, checked=False)
    with loop(b, lo, hi, name="i") as i:
        store(b, b.fadd(load(b, pa, i, F32), const(F32, 1.0)), pb, i)
    b.ret_void()
    mod = compile_ir(finalize_text(str(m)))
    kern = cfunc(mod.address("add1"), 2)
    runners = {"python": Runner(None, 0, native=False), "native": Runner(None, 0, native=True)}
    rows = []
    for n in (64, 1 << 14, 1 << 18, 1 << 22):
        a, c = np.zeros(n, np.float32), np.zeros(n, np.float32)
        ptrs = [a.ctypes.data, c.ctypes.data]
        fns = {"direct": lambda n=n, p=ptrs: kern(0, n, *p)}
        fns.update({k: (lambda r=r, n=n, p=ptrs: r.launch(kern, n, p, 1.0, 16)) for k, r in runners.items()})
        reps = max(20, min(3000, int(3e8 / (8 * n))))
        t = {k: med(v) for k, v in interleaved(fns, reps, args.budget / 4).items()}
        rows.append({"n": n, "seconds": t, "load": load_avg()})
    for r in runners.values():
        r.close()
    return rows


def print_launch(rows: list[dict]) -> None:
    print("\n== launch: one kernel over n floats (8 bytes each), median per call, all cores for the runners")
    print(f"{'n':>9s} {'direct us':>10s} {'python us':>10s} {'native us':>10s} {'native GB/s':>12s}  load")
    for r in rows:
        t = r["seconds"]
        print(f"{r['n']:9d} {t['direct'] * 1e6:10.1f} {t['python'] * 1e6:10.1f} {t['native'] * 1e6:10.1f} "
              f"{8 * r['n'] / t['native'] / 1e9:12.1f}  {r['load']}")


# ------------------------------------------------------------------------------------ attention
#: (query heads, KV heads, new positions, past): SmolLM2-135M and Llama-8B-style decode, a prefill,
#: and multi-head attention (one head per group: nothing to share)
ATTENTION_SHAPES = [(9, 3, 1, 512), (9, 3, 1, 2048), (32, 8, 1, 2048), (9, 3, 256, 0), (12, 12, 1, 512)]


def bench_attention(args) -> list[dict]:
    """The llvm attention kernel with the query heads of a KV head grouped in one task (the
    default) against one head per task (``attention.GMAX = 1``), head dim 64, causal, one thread:
    CPU medians of interleaved runs."""
    from ridgeline.backends.llvm import attention
    rng = np.random.default_rng(0)
    rows = []
    for hq, hkv, sq, past in ATTENTION_SHAPES:
        g = Graph("attn")
        b = Builder(g)
        ins = [g.add_input(n, tensor("f32", 1, h, sq, 64)) for n, h in (("q", hq), ("k", hkv), ("v", hkv))]
        pk = g.add_input("pk", tensor("f32", 1, hkv, past, 64)) if past else None
        pv = g.add_input("pv", tensor("f32", 1, hkv, past, 64)) if past else None
        out = b.Attention(*ins, None, pk, pv, is_causal=1, _outputs=3 if past else 1)
        g.outputs = list(out) if isinstance(out, tuple) else [out]
        feeds = {p.name: rng.standard_normal(p.type.shape).astype(np.float32) for p in g.inputs}
        exes, saved = {}, attention.GMAX
        try:
            for label, gmax in (("grouped", saved), ("per-head", 1)):
                attention.GMAX = gmax
                exes[label] = api.compile(g, "llvm", pipeline="", threads=1)
                exes[label].run(feeds)
        finally:
            attention.GMAX = saved
        t = interleaved({k: (lambda e=e: e.run(feeds)) for k, e in exes.items()}, args.repeats * 2, args.budget,
                        time.process_time)
        rows.append({"hq": hq, "hkv": hkv, "seq": sq, "past": past, "cpu_s": {k: med(v) for k, v in t.items()},
                     "load": load_avg()})
    return rows


def print_attention(rows: list[dict]) -> None:
    print("\n== attention: query heads of a KV head in one task vs one head per task (one core, CPU medians)")
    print(f"{'heads q/kv':>10s} {'seq':>4s} {'past':>5s} {'grouped us':>10s} {'per-head us':>11s} {'ratio':>6s}  load")
    for r in rows:
        c = r["cpu_s"]
        print(f"{r['hq']:>5d}/{r['hkv']:<4d} {r['seq']:4d} {r['past']:5d} {c['grouped'] * 1e6:10.0f} "
              f"{c['per-head'] * 1e6:11.0f} {c['grouped'] / c['per-head']:6.2f}  {r['load']}")


# ------------------------------------------------------------------------------------ main
def print_profile(p: dict, top: int = 8) -> None:
    """A point's per-node profiles (``--profile``): each backend's sum of per-node minima beside
    its measured step, the sums per op, and the slowest nodes."""
    for name, prof in sorted(p.get("profile", {}).items()):
        total = sum(t for _, t in prof.values())
        by_op: dict[str, list[float]] = {}
        for label, t in prof.values():
            by_op.setdefault(label, []).append(t)
        print(f"  profile {name} {p['phase']} past {p['past']} seq {p['seq']}: {len(prof)} nodes, sum of per-node "
              f"minima {total * 1e3:.2f} ms (step median {p['median_s'].get(name, float('nan')) * 1e3:.2f} ms)")
        for label, ts in sorted(by_op.items(), key=lambda kv: -sum(kv[1]))[:top]:
            print(f"    {sum(ts) * 1e3:8.2f} ms {sum(ts) / total:5.1%}  x{len(ts):<4d} {label}")
        print("    slowest nodes: " + "; ".join(f"{node} {t * 1e3:.2f} ms" for node, (_, t) in
                                                sorted(prof.items(), key=lambda kv: -kv[1][1])[:top]))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", choices=["models", "kernels", "gemm", "generation", "attention", "launch"], action="append")
    ap.add_argument("--models", default=str(ROOT / "tests" / "models"), help="folder with manifest.json")
    ap.add_argument("--model", action="append", help="an ONNX file to benchmark (repeatable)")
    ap.add_argument("--exporter", default="legacy", help="which exports of the manifest to use (default legacy)")
    ap.add_argument("--opset", type=int, default=17, help="which opset's exports of the manifest (default 17)")
    ap.add_argument("--size", choices=["tiny", "base"], default="tiny",
                    help="tiny: tests/models as committed; base: GPT-2-small-scale exports (see --cache)")
    ap.add_argument("--cache", default="/tmp/ridgeline-bench-models", help="where --size base exports go")
    ap.add_argument("--seq", type=int, help="prefill length; the decode step attends to seq tokens (default 128, "
                    "32 for the tiny models, whose position tables hold 64)")
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--budget", type=float, default=60.0, help="seconds per measurement before stopping early")
    ap.add_argument("--elements", type=int, default=1 << 24, help="array length of the kernel section")
    ap.add_argument("--skip-numpy", action="store_true", help="leave the (slow) numpy backend out of models")
    ap.add_argument("--json", help="also write every figure here")
    ap.add_argument("--with-past", action="append", default=[],
                    help="generation section: an ONNX export with a KV cache (inputs past_*, outputs present_*)")
    ap.add_argument("--past", type=lambda s: [int(x) for x in s.split(",") if x], default=[64, 512],
                    help='decode steps at these cache lengths (default 64,512; "" for none)')
    ap.add_argument("--prefill", type=lambda s: [int(x) for x in s.split(",") if x], default=[64, 256],
                    help="prefills of these lengths (default 64,256)")
    ap.add_argument("--prompt", type=int, default=16, help="prompt length of the generation loop")
    ap.add_argument("--steps", type=int, default=12, help="tokens of the generation loop")
    ap.add_argument("--threads", type=lambda s: sorted({int(x) for x in s.split(",")}), default=[1, 2],
                    help="generation section: thread counts of llvm and onnxruntime (default 1,2)")
    ap.add_argument("--no-compile-probe", action="store_true",
                    help="generation section: skip the cold/warm object-cache compile runs (two fresh processes)")
    ap.add_argument("--rounds", type=int, default=2,
                    help="generation section: fresh processes per backend, in alternating order (default 2)")
    ap.add_argument("--profile", type=int, nargs="?", const=5, default=0, metavar="RUNS",
                    help="generation section: per-node profiles of llvm (run(profile=True)) and onnxruntime "
                         "(enable_profiling), minimum of RUNS runs (default 5) per point, summed per op")
    ap.add_argument("--probe", help=argparse.SUPPRESS)
    ap.add_argument("--point-worker", nargs=3, metavar=("BACKEND", "THREADS", "PATH"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.point_worker:
        backend, th, path = args.point_worker
        print(json.dumps(point_worker(backend, int(th), path, args), default=float))
        return 0
    if args.probe:
        print(json.dumps(compile_probe(args.probe, args.prompt), default=float))
        return 0
    if args.seq is None:
        args.seq = 128 if args.size == "base" or args.model else 32
    only = set(args.only or (["generation"] if args.with_past else ["models", "kernels", "gemm"]))
    from ridgeline.backends.llvm import host
    h = host()
    print(f"host: {h.cpu} ({h.features.count('+avx512')} avx512 features), {h.cores} cores, "
          f"{h.vector_bits}-bit vectors; load average {load_avg()}")
    result: dict = {"host": {"cpu": h.cpu, "cores": h.cores, "vector_bits": h.vector_bits}, "load_start": load_avg()}
    if "kernels" in only:
        result["kernels"] = bench_kernels(args)
        print_kernels(result["kernels"])
    if "gemm" in only:
        result["gemm"] = bench_gemm(args)
        print_gemm(result["gemm"])
    if "launch" in only:
        result["launch"] = bench_launch(args)
        print_launch(result["launch"])
    if "attention" in only:
        result["attention"] = bench_attention(args)
        print_attention(result["attention"])
    if "models" in only:
        rows = []
        for m in model_list(args):
            try:
                rows.append(bench_model(m, args))
            except Exception as e:  # keep going: one broken export should not hide the others
                print(f"{m['name']}: {type(e).__name__}: {e}")
        if rows:
            print_models(rows)
        result["models"] = rows
    if "generation" in only:
        result["generation"] = []
        for path in args.with_past:
            r = bench_generation(path, args)
            print_generation(r)
            result["generation"].append(r)
    result["load_end"] = load_avg()
    print(f"\nload average at the end: {result['load_end']}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
