#!/usr/bin/env python
"""ridgeline ``-p default`` next to onnxruntime's and onnxscript's optimizers, on the model zoo.

    python tools/compare_optimizers.py                      # every zoo model, markdown table on stdout
    python tools/compare_optimizers.py --only llama --runs 40
    python tools/compare_optimizers.py --ci                 # 3 models, 5 runs (a smoke run)

For each zoo model (``tests/models/zoo``, default-setting transformers exports) and each optimizer —
ridgeline (``load_onnx`` → ``-p default`` → ``save_onnx``, dims left symbolic: what ``ridgeline opt
-p default`` writes, i.e. ``--emit ort-contrib`` at the file's opset; also ``--emit std`` and, below
opset 23, ``--opset 23``),
``onnxruntime.transformers.optimizer.optimize_model`` (python fusions only, ``opt_level=0``; the
session applies onnxruntime's own graph optimizations to every file alike) and
``onnxscript.optimizer.optimize`` — it reports, all measured in this one run:

* nodes in the optimized graph (top level; a model-local function call counts as one);
* fused ops, counted in the graph and in model-local functions: Attention (ONNX ``Attention`` and
  the com.microsoft ``Attention``/``MultiHeadAttention``/``GroupQueryAttention``), norms
  (LayerNormalization, RMSNormalization, SkipLayerNormalization, SimplifiedLayerNormalization and
  its Skip form), rotary (RotaryEmbedding), gelu (Gelu, FastGelu, BiasGelu);
* whether onnxruntime loads and runs the file with outputs equal to the original's (1e-4 relative,
  at the query positions that attend to something);
* onnxruntime CPU latency (1 thread, all graph optimizations on): the median of ``--runs`` runs,
  the files run in turn (alternating) so drift in the machine's load hits them alike; as a ratio
  to the unoptimized file (< 1 is faster).
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
import warnings
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

ATTENTION = {"Attention", "MultiHeadAttention", "GroupQueryAttention", "PackedAttention"}
NORMS = {"LayerNormalization", "RMSNormalization", "SkipLayerNormalization", "SimplifiedLayerNormalization",
         "SkipSimplifiedLayerNormalization", "EmbedLayerNormalization"}
ROTARY = {"RotaryEmbedding"}
GELU = {"Gelu", "FastGelu", "BiasGelu", "QuickGelu"}
ORT_TYPES = {"gpt2": "gpt2", "gpt_neox": "gpt_neox", "bert": "bert", "roberta": "bert", "distilbert": "bert",
             "vit": "vit", "t5": "t5", "t5_decoder": "t5", "whisper": "bart", "whisper_decoder": "bart"}
# others (Llama-like, Phi-3) get the generic gpt2 fusions


def _ops(model) -> dict[str, int]:
    hist: dict[str, int] = {}
    from ridgeline.frontends.onnx.lowering import STD_DOMAIN, standard_op
    # a ridgeline.std call is its op (Attention_3 -> Attention); its body is the op's decomposition
    bodies = [n for f in model.functions if f.domain != STD_DOMAIN for n in f.node]
    for n in list(model.graph.node) + bodies:
        op = standard_op(n)
        hist[op] = hist.get(op, 0) + 1
    return hist


def ridgeline_opt(path: Path, opset: int | None = None, emit: str = "ort-contrib"):
    from ridgeline.api import reference_evaluator
    from ridgeline.frontends.onnx import load_onnx, to_onnx
    from ridgeline.passes import run_pipeline
    g = load_onnx(path)
    run_pipeline(g, "default", evaluator=reference_evaluator())
    return to_onnx(g, opset=opset, emit=emit)


def ort_opt(path: Path, e: dict):
    from onnxruntime.transformers.optimizer import optimize_model
    with redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = optimize_model(str(path), model_type=ORT_TYPES.get(e["family"], "gpt2"), num_heads=0, hidden_size=0,
                           opt_level=0)
    return m.model


def onnxscript_opt(path: Path):
    import onnx
    import onnxscript.optimizer
    return onnxscript.optimizer.optimize(onnx.load(path))


def _session(data: bytes):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.log_severity_level = 3
    return ort.InferenceSession(data, so, providers=["CPUExecutionProvider"])


def compare(e: dict, runs: int, seq: int) -> list[dict]:
    from zoo_models import ZOO, assert_zoo_close, zoo_dims, zoo_feeds
    path = ZOO / e["file"]
    original = path.read_bytes()
    rows = [{"optimizer": "none", "proto": None, "data": original, "seconds": 0.0}]
    # "ridgeline" is `ridgeline opt -p default`: the file's opset, onnxruntime's com.microsoft
    # contrib ops where exact (--emit ort-contrib); "ridgeline-std" writes ops newer than the opset
    # as model-local functions instead (--emit std, which onnxruntime inlines); "ridgeline@23" the
    # same graph at opset 23 with the native ops
    below23 = [("ridgeline-std", lambda: ridgeline_opt(path, emit="std")),
               ("ridgeline@23", lambda: ridgeline_opt(path, 23))] if e["opset"] < 23 else []
    for name, fn in [("ridgeline", lambda: ridgeline_opt(path))] + below23 + [
            ("onnxruntime", lambda: ort_opt(path, e)), ("onnxscript", lambda: onnxscript_opt(path))]:
        t = time.perf_counter()
        try:
            proto = fn()
            rows.append({"optimizer": name, "proto": proto, "data": proto.SerializeToString(),
                         "seconds": time.perf_counter() - t})
        except Exception as exc:  # noqa: BLE001 - a failing optimizer is a result
            rows.append({"optimizer": name, "proto": None, "data": None, "error": f"{type(exc).__name__}: {exc}"})
    # past + seq stays below Gemma 3's sliding window (16) in the zoo config
    dims = zoo_dims(e, seq=seq, past=seq // 2)
    feeds = zoo_feeds(e, dims, seed=0)
    base = _session(original)
    ref = dict(zip([o.name for o in base.get_outputs()], base.run(None, feeds)))
    live = []
    for r in rows:
        import onnx
        if r["data"] is None:
            r["runs"] = "no (optimizer failed)"
            continue
        proto = r["proto"] or onnx.load_from_string(r["data"])
        hist = _ops(proto)
        r["nodes"] = len(proto.graph.node)
        for key, group in (("attention", ATTENTION), ("norm", NORMS), ("rotary", ROTARY), ("gelu", GELU)):
            r[key] = sum(v for k, v in hist.items() if k in group)
        try:
            sess = _session(r["data"])
            got = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds)))
            assert_zoo_close(e, got, ref, feeds, dims, rtol=1e-4)
            r["runs"], r["session"] = "yes", sess
            live.append(r)
        except AssertionError as exc:
            r["runs"] = f"wrong ({str(exc).split(':')[-1].strip()[:40]})"
        except Exception as exc:  # noqa: BLE001
            r["runs"] = f"no ({str(exc).splitlines()[0][:60]})"
    times: dict[str, list[float]] = {r["optimizer"]: [] for r in live}
    for r in live:  # warm up
        r["session"].run(None, feeds)
    for _ in range(runs):
        for r in live:
            t = time.perf_counter()
            r["session"].run(None, feeds)
            times[r["optimizer"]].append(time.perf_counter() - t)
    if "none" not in times:
        raise RuntimeError(f"the original file does not run: {rows[0]['runs']}")
    base_ms = statistics.median(times["none"]) * 1e3
    for r in live:
        r["ms"] = statistics.median(times[r["optimizer"]]) * 1e3
        r["ratio"] = r["ms"] / base_ms
    return rows


#: the optimizers of the condensed table, in its column order (r, r-std, r@23, o, s)
SHORT = {"ridgeline": "r", "ridgeline-std": "r-std", "ridgeline@23": "r@23", "onnxruntime": "o", "onnxscript": "s"}


def docs_table(done: list[tuple[dict, list[dict]]]) -> str:
    """One line per model: nodes, fused-op counts and latency ratios of every optimizer side by side."""
    def cell(by, key, names, fmt="{}"):
        return " / ".join(fmt.format(by[n][key]) if key in by.get(n, {}) else "–" for n in names)
    fused = ["ridgeline", "onnxruntime", "onnxscript"]
    head = ("| model | nodes: original / r / o / s | Attention (r / o / s) | norm (r / o / s) | rotary (r / o / s) "
            "| gelu (r / o / s) | latency ratio (r / r-std / r@23 / o / s) |")
    lines = [head, "|---|---|---|---|---|---|---|"]
    for e, rows in done:
        by = {r["optimizer"]: r for r in rows}
        lines.append(f"| {e['file'].removesuffix('.onnx')} | {cell(by, 'nodes', ['none'] + fused)} | "
                     + " | ".join(cell(by, k, fused) for k in ("attention", "norm", "rotary", "gelu"))
                     + f" | {cell(by, 'ratio', list(SHORT), '{:.2f}')} |")
    return "\n".join(lines)


def _at_most(rows: list[dict], peer: str, slack: float) -> bool:
    """ridgeline's default output's median latency is at most ``slack`` × ``peer``'s (or the peer failed)."""
    by = {r["optimizer"]: r for r in rows}
    return "ms" in by.get("ridgeline", {}) and ("ms" not in by.get(peer, {}) or
                                                by["ridgeline"]["ms"] <= by[peer]["ms"] * slack)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", help="only zoo files whose name contains this")
    ap.add_argument("--runs", type=int, default=20, help="timed runs per file (median; default 20)")
    ap.add_argument("--seq", type=int, default=8, help="sequence length of the timed runs (past: half of it)")
    ap.add_argument("--ci", action="store_true", help="a smoke run: 3 models, 5 runs")
    ap.add_argument("--docs", action="store_true", help="also print the condensed table of docs/passes.md")
    args = ap.parse_args(argv)
    from zoo_models import zoo_entries
    es = [e for e in zoo_entries() if not args.only or args.only in e["file"]]
    if args.ci:
        es, args.runs = es[:3], 5
    if not es:
        print("error: no zoo model matches", file=sys.stderr)
        return 2
    print(f"| model | optimizer | nodes | Attention | norm | rotary | gelu | runs in onnxruntime | "
          f"latency ms (median of {args.runs}) | ratio to original |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    import os
    load = [os.getloadavg()[0]]
    ratios: dict[str, list[float]] = {}  # files below opset 23
    ratios_all: dict[str, list[float]] = {}
    done: list[tuple[dict, list[dict]]] = []
    for e in es:
        try:
            rows = compare(e, args.runs, args.seq)
        except Exception as exc:  # noqa: BLE001 - the original file itself fails at these dims
            print(f"| {e['file'].removesuffix('.onnx')} | none | | | | | | no ({str(exc).splitlines()[0][:80]}) | | |")
            continue
        load.append(os.getloadavg()[0])
        for r in rows:
            if "nodes" not in r:
                print(f"| {e['file']} | {r['optimizer']} | | | | | | {r['runs']} {r.get('error', '')[:60]} | | |")
                continue
            lat = f"{r['ms']:.3f}" if "ms" in r else "-"
            ratio = f"{r['ratio']:.2f}" if "ratio" in r else "-"
            print(f"| {e['file'].removesuffix('.onnx')} | {r['optimizer']} | {r['nodes']} | {r['attention']} | "
                  f"{r['norm']} | {r['rotary']} | {r['gelu']} | {r['runs']} | {lat} | {ratio} |", flush=True)
        done.append((e, rows))
        for r in rows:
            if "ratio" in r:
                ratios_all.setdefault(r["optimizer"], []).append(r["ratio"])
                if e["opset"] < 23:
                    ratios.setdefault(r["optimizer"], []).append(r["ratio"])
    for title, rs in (("files below opset 23", ratios), ("all files", ratios_all)):
        print(f"\nGeometric-mean latency ratio to the original, {title}: " + ", ".join(
            f"{k} {statistics.geometric_mean(v):.2f} ({len(v)} files)" for k, v in rs.items() if k != "none"))
    if args.docs:
        print("\n" + docs_table(done))
    print(f"\nload average (1 min) during the run: {min(load):.1f}-{max(load):.1f}")
    for slack in (1.0, 1.05):
        ok = [e["file"] for e, rows in done if _at_most(rows, "onnxruntime", slack)]
        print(f"ridgeline opt -p default runs in onnxruntime at most {round((slack - 1) * 100)} % slower than onnxruntime's "
              f"optimizer's output (or that one fails) on {len(ok)} of {len(done)} models"
              + (f"; not on {', '.join(sorted({e['file'] for e, _ in done} - set(ok)))}" if len(ok) < len(done) else ""))
    faster = sum(_at_most(rows, "none", 1.0) for _, rows in done)
    print(f"ridgeline opt -p default runs in onnxruntime at most as long as the unoptimized file on {faster} of {len(done)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
