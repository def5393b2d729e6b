"""``ridgeline quantize-report MODEL --schemes int8,int4-g128,fp8,w8a8 --targets h100,tpu-v6e``:
accuracy and cost of quantization schemes side by side.

For every scheme (and the unquantized baseline) the model goes through ``quantize{scheme=…}``;
then, on seeded inputs, its first output (the logits) is compared with the baseline's — max and
mean absolute error, cosine similarity, top-1 agreement along the last axis — and every target
estimates it: time per output token (TPOT) and tokens/s for LLM graphs (the step time otherwise),
device-memory bytes per token, and whether it fits. A scheme is marked Pareto-optimal on a target
when no other is both more accurate and faster there. Weightless presets have no accuracy to
measure (their weights are types only); their cost columns are what they are for.
"""

from __future__ import annotations

import argparse
import math
from typing import Any

import numpy as np

from ...ir import Graph
from ...ir.errors import RidgelineError
from ..common import (MAX_BATCH, MAX_CONTEXT, MAX_SEED, UsageError, add_model_argument, console, emit, fmt_bytes,
                      fmt_time, int_arg, is_file_model, parse_dims, table)

DEFAULT_SCHEMES = "int8,int4-g128,fp8,w8a8"
DEFAULT_TARGETS = "h100"


def register(sub) -> None:
    p = sub.add_parser("quantize-report", help="accuracy vs fp32 and estimated speed of quantization schemes",
                       description=__doc__.split("\n\n")[0])
    add_model_argument(p)
    p.add_argument("--schemes", default=DEFAULT_SCHEMES,
                   help=f"comma-separated schemes (default {DEFAULT_SCHEMES}; see `ridgeline passes`: quantize)")
    p.add_argument("--targets", default=DEFAULT_TARGETS, help="comma-separated targets (default h100)")
    p.add_argument("--samples", type=int_arg(1, 1000), default=2, help="seeded input sets to compare on (default 2)")
    p.add_argument("--seed", type=int_arg(0, MAX_SEED), default=0, help="seed of the inputs (calibration uses others)")
    p.add_argument("-p", "--pipeline", default=None,
                   help="passes before quantizing (default: 'default' for model files, none for presets)")
    p.add_argument("--tp", default="1", help="tensor-parallel degree for the estimates, or 'auto' (default 1)")
    p.add_argument("--cuda-graphs", action="store_true", help="gpu_simt targets: replay each step as a CUDA graph")
    g = p.add_argument_group("LLM presets")
    g.add_argument("--phase", choices=("prefill", "decode"), default=None, help="the step (default decode)")
    g.add_argument("--batch", type=int_arg(1, MAX_BATCH), default=None, help="sequences per step (default 1)")
    g.add_argument("--context", type=int_arg(1, MAX_CONTEXT), default=None, help="tokens in the KV cache (default 2048)")
    t = p.add_argument_group("accuracy on real text (causal LM files)")
    t.add_argument("--tokenizer", default=None,
                   help="tokenizer directory/name or .gguf file: adds perplexity and top-1 agreement on text")
    t.add_argument("--text", default=None, help="text file to measure on (default: a bundled public-domain passage)")
    t.add_argument("--positions", type=int_arg(1, 2 ** 20), default=256,
                   help="held-out token positions to score (default 256)")
    p.add_argument("--json", action="store_true", help="machine-readable output")


# --------------------------------------------------------------------------- loading
def _load(args) -> tuple[Graph, Graph | None, dict[str, int]]:
    """(graph, companion phase or None, dims bound) — fused and with static dims."""
    from ...api import load, optimize
    dims = parse_dims(args.dim)
    if is_file_model(args.model):
        if any(getattr(args, k) is not None for k in ("phase", "batch", "context")):
            raise UsageError("--phase, --batch and --context apply to presets; bind a model file's dims with --dim")
        g = _load_unbound(args)
        free = sorted(g.symbols() - set(dims))
        for s in free:                    # unbound dims: a small decode-like binding
            dims[s] = 1 if "batch" in s else 16
        return (g.bind(dims) if dims else g), None, dims
    from ...models import companion, find_preset
    opts = {k: getattr(args, k) for k in ("phase", "batch", "context") if getattr(args, k) is not None}
    if getattr(find_preset(args.model), "causal", False):
        opts.setdefault("phase", "decode")     # per-token cost is the point; TTFT comes from the companion
    g = load(args.model, **opts)               # the standard error for neither a file nor a preset
    other = companion(g)
    if args.pipeline:
        optimize(g, args.pipeline)
        if other is not None:
            optimize(other, args.pipeline)
    return g, other, dims


def _load_unbound(args) -> Graph:
    """The model file with its default pipeline and symbolic dims kept (text windows size them)."""
    from ...api import load, optimize
    g = load(args.model)
    pipe = "default" if args.pipeline is None else args.pipeline
    if pipe:
        optimize(g, pipe)
    return g


def _schemes(text: str) -> list[str]:
    from ...passes.transforms.quantize_methods import METHODS
    from ...passes.transforms.quantize_schemes import parse_scheme
    names = [s.strip() for s in text.split(",") if s.strip()]
    if not names:
        raise UsageError("--schemes is empty; e.g. --schemes int8,int4-g128,fp8,w8a8")
    for n in names:
        scheme, _, method = n.partition(":")
        parse_scheme(scheme)               # unknown schemes fail here, before any work
        if method and method not in METHODS:
            raise UsageError(f"scheme {n!r}: unknown method {method!r}; write scheme:method with one of "
                             f"{', '.join(METHODS)} (e.g. int4-asym-g128:gptq)")
    return names


def _pipeline(name: str, seed: int) -> str:
    scheme, _, method = name.partition(":")
    return f"quantize{{scheme={scheme},seed={seed}" + (f",method={method}" if method else "") + "}"


class _Text:
    """Held-out windows of real text (and calibration windows before them) for a causal LM."""

    def __init__(self, args, graph: Graph):
        from pathlib import Path

        from ...testing import text_accuracy as ta
        if args.positions < 2:
            raise UsageError(f"--positions must be at least 2, got {args.positions}")
        if args.text is not None and not Path(args.text).is_file():
            raise UsageError(f"--text {args.text}: no such file")
        text = Path(args.text).read_text(encoding="utf-8", errors="replace") if args.text else ta.passage()
        ids = ta.tokenize(text, args.tokenizer)
        window = min(128, args.positions)
        wins = ta.windows(ids, window)
        n_eval = -(-args.positions // window)
        if len(wins) < n_eval + 1:
            raise UsageError(f"the text has {len(ids)} tokens: too few for {args.positions} held-out positions "
                             f"plus a calibration window; give a longer --text or fewer --positions")
        self.names = [v.name for v in graph.inputs]
        self.evals = wins[-n_eval:]
        self.calib = [ta.lm_feeds(self.names, w) for w in wins[:min(4, len(wins) - n_eval)]]
        self.ta = ta

    def score(self, graph: Graph, reference=None):
        from ...backends.numpy import Interpreter
        interp = Interpreter(graph)
        first = graph.outputs[0].name
        return self.ta.score(lambda f: interp.run(f)[first], self.names, self.evals, reference)


def _targets(text: str) -> list:
    from ...cost_models import get_target
    names = [t.strip() for t in text.split(",") if t.strip()]
    if not names:
        raise UsageError("--targets is empty; e.g. --targets h100,tpu-v6e")
    return [get_target(t) for t in names]


# --------------------------------------------------------------------------- accuracy
def _has_weights(g: Graph) -> bool:
    return all(c.data is not None for c in g.constants.values())


def _feeds(g: Graph, count: int, seed: int, dims: dict[str, int]) -> list[dict[str, np.ndarray]]:
    from ...ir.inputs import random_inputs
    return [random_inputs(g, seed=seed + i, dims=dims) for i in range(count)]


def accuracy(base_out: list[np.ndarray], got: list[np.ndarray]) -> dict[str, float]:
    """Max/mean |Δ|, cosine (all elements) and top-1 agreement (argmax of the last axis)."""
    a = np.concatenate([np.asarray(x, np.float64).ravel() for x in base_out])
    b = np.concatenate([np.asarray(x, np.float64).ravel() for x in got])
    diff = np.abs(a - b)
    denom = float(np.linalg.norm(a) * np.linalg.norm(b))
    cos = float(a @ b / denom) if denom else float(np.array_equal(a, b))
    agree = [np.mean(np.argmax(np.asarray(x), axis=-1) == np.argmax(np.asarray(y), axis=-1))
             for x, y in zip(base_out, got) if np.asarray(x).ndim >= 1 and np.asarray(x).shape[-1] > 1]
    return {"max_abs": float(diff.max()) if diff.size else 0.0, "mean_abs": float(diff.mean()) if diff.size else 0.0,
            "cosine": cos, "top1": float(np.mean(agree)) if agree else float("nan")}


# --------------------------------------------------------------------------- cost
def _cost(g: Graph, companion: Graph | None, target, opts: dict[str, Any]) -> dict[str, Any]:
    from ...cost_models import estimate, estimate_pair
    try:
        est, note = estimate_pair(lambda x, c: estimate(x, target, companion=c, **opts), g, companion)
    except RidgelineError as e:
        return {"error": str(e).splitlines()[0]}
    dev = target.device_memory.name
    llm = est.llm
    out: dict[str, Any] = {"time_s": est.time_s, "devices": est.devices, "fits": est.fits,
                           "bound": est.bound}
    if llm is not None and llm.tpot_s:
        batch = max(1, llm.batch)
        out.update(tpot_s=llm.tpot_s, ttft_s=llm.ttft_s, tokens_per_s=llm.tokens_per_s,
                   kv_bytes_per_token=llm.kv_cache_bytes_per_token)
        step_bytes = (est.total_bytes or est.bytes).get(dev, 0.0)   # all devices, each counted once
        out["bytes_per_token"] = step_bytes / batch if llm.phase == "decode" else None
    else:
        out["bytes_per_step"] = (est.total_bytes or est.bytes).get(dev, 0.0)
        tokens = opts_tokens(g)
        if tokens:
            out["tokens_per_s"] = tokens / est.time_s if est.time_s else None
    if note:
        out["note"] = note
    return out


def opts_tokens(g: Graph) -> int | None:
    """Tokens one step of a bound model file processes: batch × seq of its token-id input."""
    for v in g.inputs:
        if "input_ids" in v.name and v.type.rank == 2 and all(isinstance(d, int) for d in v.type.shape):
            return int(v.type.shape[0] * v.type.shape[1])
    return None


def _pareto(rows: list[dict[str, Any]], target: str) -> None:
    """Mark rows no other row beats on both error (1 - cosine) and speed on ``target``."""
    pts = []
    for r in rows:
        c = r["targets"].get(target, {})
        speed = c.get("tokens_per_s") or (1.0 / c["time_s"] if c.get("time_s") else None)
        err = 1.0 - r["accuracy"]["cosine"] if r.get("accuracy") else None
        pts.append((speed, err))
    for r, (s, e) in zip(rows, pts):
        c = r["targets"].get(target, {})
        if s is None:
            continue
        if e is None:
            c["pareto"] = None
            continue
        c["pareto"] = not any(s2 is not None and e2 is not None and s2 >= s and e2 <= e and (s2 > s or e2 < e)
                              for s2, e2 in pts)


# --------------------------------------------------------------------------- command
def run(args: argparse.Namespace) -> int:
    from ...api import reference_evaluator
    from ...passes import run_pipeline
    from ...passes.transforms.quantize import quantize_inputs
    schemes = _schemes(args.schemes)
    targets = _targets(args.targets)
    tp: Any = args.tp if args.tp == "auto" else int(args.tp) if str(args.tp).isdigit() else None
    if tp is None or tp == 0:
        raise UsageError(f"--tp expects a positive integer or 'auto', got {args.tp!r}")
    opts: dict[str, Any] = {"tp": tp}
    text = None
    if args.tokenizer:
        if not is_file_model(args.model):
            raise UsageError("--tokenizer measures a model file on text; presets have no weights")
        args.dim = list(args.dim or [])
        base_unbound = _load_unbound(args)
        text = _Text(args, base_unbound)
        text_ref, text_ref_logits = text.score(base_unbound)
    base, other, dims = _load(args)
    evaluator = reference_evaluator()
    weights = _has_weights(base)
    feeds = _feeds(base, args.samples, args.seed, dims) if weights else []
    ref_out = []
    if weights:
        from ...backends.numpy import Interpreter
        interp = Interpreter(base)
        first = base.outputs[0].name
        ref_out = [interp.run(f)[first] for f in feeds]
    rows: list[dict[str, Any]] = []
    for name in ["none"] + schemes:
        g = base.copy()
        comp = other.copy() if other is not None else None
        summary = {}
        if name != "none":
            # calibration samples are seeded apart from the evaluation inputs
            rep = run_pipeline(g, _pipeline(name, args.seed + 1000), evaluator=evaluator)
            summary = dict(rep.records[0].stats)
            if comp is not None:
                run_pipeline(comp, _pipeline(name, args.seed + 1000), evaluator=evaluator)
        row: dict[str, Any] = {"scheme": "baseline" if name == "none" else name, "quantized": summary,
                               "weight_bytes": sum(c.type.dtype.nbytes(c.type.numel) for c in g.constants.values()
                                                   if isinstance(c.type.numel, int)),
                               "targets": {}}
        if weights:
            from ...backends.numpy import Interpreter
            interp = Interpreter(g)
            first = g.outputs[0].name
            got = [interp.run(quantize_inputs(g, f))[first] for f in feeds]
            row["accuracy"] = accuracy(ref_out, got)
        if text is not None:
            from ...passes.transforms.quantize import quantize_graph
            from ...passes.transforms.quantize_schemes import parse_scheme
            if name == "none":
                sc = text_ref
            else:    # quantized at the text's shapes, calibrated on the text's first windows
                gt = _load_unbound(args)
                scheme, _, method = name.partition(":")
                quantize_graph(gt, parse_scheme(scheme), method=method or "rtn", samples=text.calib,
                               evaluator=evaluator)
                sc, _ = text.score(gt, text_ref_logits)
            row["text"] = {"perplexity": sc.perplexity, "top1": 1.0 if name == "none" else sc.top1,
                           "positions": sum(len(w) for w in text.evals)}
        for t in targets:
            row["targets"][t.name] = _cost(g, comp, t, {**opts, **({"cuda_graphs": True} if args.cuda_graphs and
                                                                   t.family == "gpu_simt" else {})})
        rows.append(row)
    for t in targets:
        _pareto(rows, t.name)
    data = {"model": args.model, "dims": dims, "samples": args.samples if weights else 0,
            "accuracy_note": None if weights else "weightless preset: weights are types only, accuracy is not "
                                                  "measured (run an exported .onnx model for it)",
            "rows": rows}
    emit(args, data, lambda: _render(args, data, targets))
    return 0


def _f(x: Any, fmt: str = "{:.4g}") -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return fmt.format(x)


def _render(args, data: dict, targets) -> None:
    rows = data["rows"]
    if data["accuracy_note"]:
        acc_cols = ["scheme", "weights"]
        table(f"{args.model}: quantization schemes ({data['accuracy_note']})", acc_cols,
              [(r["scheme"], fmt_bytes(r["weight_bytes"])) for r in rows])
    else:
        text = "text" in rows[0]
        table(f"{args.model}: error of the first output vs the unquantized model ({data['samples']} seeded inputs)"
              + (f"; on text ({rows[0]['text']['positions']} held-out positions)" if text else ""),
              ["scheme", "weights", "max |Δ|", "mean |Δ|", "cosine", "top-1"]
              + (["perplexity", "text top-1"] if text else []),
              [(r["scheme"], fmt_bytes(r["weight_bytes"]), _f(r["accuracy"]["max_abs"]),
                _f(r["accuracy"]["mean_abs"]), _f(r["accuracy"]["cosine"], "{:.6f}"),
                _f(r["accuracy"]["top1"], "{:.1%}"))
               + ((_f(r["text"]["perplexity"], "{:.3f}"), _f(r["text"]["top1"], "{:.2%}")) if text else ())
               for r in rows])
    for t in targets:
        base = rows[0]["targets"][t.name]
        errors = {r["targets"][t.name].get("error") for r in rows} - {None}
        if len(errors) == 1 and all("error" in r["targets"][t.name] for r in rows):
            console().print(f"[bold]on {t.name} ({t.family})[/bold]: n/a — {errors.pop()}", markup=True,
                            highlight=False)
            continue
        out = []
        for r in rows:
            c = r["targets"][t.name]
            if "error" in c:
                out.append((r["scheme"], "-", "-", "-", "-", "-", "n/a: " + c["error"][:60]))
                continue
            speed = c.get("tokens_per_s")
            per = c.get("tpot_s") or c.get("time_s")
            base_per = base.get("tpot_s") or base.get("time_s")
            mark = {True: "★", False: "", None: ""}[c.get("pareto")]
            out.append((r["scheme"], fmt_time(per), _f(speed, "{:,.1f}"),
                        fmt_bytes(c.get("bytes_per_token") or c.get("bytes_per_step")),
                        f"{base_per / per:.2f}×" if per and base_per and "error" not in base else "-",
                        "yes" if c.get("fits") else ("no" if c.get("fits") is False else "-"),
                        mark + (f" ({c['devices']} dev)" if c.get("devices", 1) > 1 else "")))
        llm = any("tpot_s" in r["targets"][t.name] for r in rows)
        table(f"on {t.name} ({t.family})" + ("" if llm else ": one step"),
              ["scheme", "TPOT" if llm else "step", "tokens/s", "bytes/token" if llm else "bytes/step", "speed-up",
               "fits", "Pareto"], out)
