"""``ridgeline compare MODEL --backends numpy,llvm,host-cpu --decode-steps N``: a KV-cache decode
loop timed per token on each executing backend and onnxruntime side by side, with the host cost
model's prediction for one decode step beside the measured time.

The loop is ``ridgeline.runtime.generate`` (greedy, from a seeded random prompt of ``--dim
seq=…`` tokens, batch ``--dim batch=…``); the first step is the prefill, the next N are cached
decode steps. Every backend must produce numpy's tokens; a mismatch is shown, not hidden.
"""

from __future__ import annotations

import statistics
from typing import Any

import numpy as np

from ...ir.errors import RidgelineError
from ..common import UsageError, emit, fmt_time, is_file_model, parse_dims, table


def compare_decode(args, executors: list[str], host: str | None) -> int:
    from ...runtime import kv_pairs, step_model
    if not is_file_model(args.model):
        raise UsageError(f"{args.model} is a weightless preset: --decode-steps runs a model with weights "
                         f"(an .onnx export with a KV cache)")
    from ...api import load
    graph = load(args.model)
    inputs = {v.name: (v.type.dtype.np_dtype, v.type.shape) for v in graph.inputs}
    try:
        kv = kv_pairs(inputs, [v.name for v in graph.outputs])
    except RidgelineError as e:
        raise UsageError(f"{args.model}: {str(e).splitlines()[0]}") from None
    if not kv or "input_ids" not in inputs:
        raise UsageError(f"{args.model} has no KV-cache inputs (past_*) and present_* outputs; --decode-steps "
                         f"needs a decode export (e.g. transformers' with use_cache, past length 0 for the prefill)")
    dims = parse_dims(args.dim)
    batch, seq = dims.get("batch", 1), dims.get("seq", 8)
    vocab = graph.outputs[0].type.shape[-1] if graph.outputs[0].name == "logits" else None
    hi = vocab if isinstance(vocab, int) else 100
    ids = np.random.default_rng(args.seed).integers(0, hi, (batch, seq)).astype(np.int64)
    names = list(executors)
    if str(args.model).lower().endswith(".onnx"):
        names.append("onnxruntime")
    rows: list[dict[str, Any]] = []
    reference = None
    for name in names:
        row: dict[str, Any] = {"name": name}
        try:
            step = step_model(graph if name != "onnxruntime" else args.model, name, pipeline=args.pipeline)
            from ...runtime import generate
            generate(step, None, ids, 2)  # warm-up: JIT compiles, caches fill
            runs = [generate(step, None, ids, args.decode_steps + 1) for _ in range(max(1, args.repeat))]
        except (RidgelineError, ImportError) as e:
            row["error"] = str(e).splitlines()[0]
            rows.append(row)
            continue
        tokens = runs[0].new_tokens
        if reference is None:
            reference = tokens
        per_token = [statistics.median(r.per_token_seconds) for r in runs if r.per_token_seconds]
        row.update({"prefill_s": statistics.median(r.step_seconds[0] for r in runs),
                    "per_token_s": statistics.median(per_token) if per_token else None,
                    "tokens": tokens.tolist(), "same_tokens": bool(np.array_equal(tokens, reference))})
        rows.append(row)
    if host is not None:
        predicted = _host_step(graph, kv, batch, seq + args.decode_steps // 2, host)
        for row in rows:
            if "error" not in row:
                row.update(predicted)
                if row.get("per_token_s") and predicted.get("host_predicted_s"):
                    row["predicted_over_measured"] = predicted["host_predicted_s"] / row["per_token_s"]
    data = {"model": args.model, "decode_steps": args.decode_steps, "batch": batch, "prompt": seq, "rows": rows}
    emit(args, data, lambda: _render(args, rows, host, batch, seq))
    return 0


def _host_step(graph, kv, batch: int, past: int, host: str) -> dict[str, Any]:
    """The host model's time for one decode step (1 new token over ``past`` cached ones)."""
    from ...cost_models import estimate
    feeds = {"input_ids": (batch, 1)}
    for v in graph.inputs:
        if v.name in ("attention_mask",):
            feeds[v.name] = (batch, past + 1)
        elif v.name == "position_ids":
            feeds[v.name] = (batch, 1)
    for p in kv:
        shape = [batch if i == 0 else (past if i == p.axis else d) for i, d in enumerate(p.shape)]
        feeds[p.past] = tuple(shape)
    bind: dict[str, int] = {}
    for v in graph.inputs:
        for d, n in zip(v.type.shape, feeds.get(v.name, ())):
            if isinstance(d, str) and d.isidentifier() and isinstance(n, int):
                bind.setdefault(d, n)
    try:
        from ...api import optimize
        step = optimize(graph.bind(bind), "default")  # what the backends run, fused (bind copies)
        est = estimate(step, host)
    except RidgelineError as e:
        return {"host_model": host, "host_error": str(e).splitlines()[0]}
    return {"host_model": host, "host_predicted_s": est.time_s}


def _render(args, rows, host, batch, seq) -> None:
    cols = ["backend", "prefill", "per token (median)", "tokens = numpy's"]
    if host:
        cols += [f"{host} predicted / token", "predicted / measured"]
    cols.append("note")
    out = []
    for r in rows:
        if "error" in r:
            out.append([r["name"]] + ["-"] * (len(cols) - 2) + [r["error"]])
            continue
        line = [r["name"], fmt_time(r["prefill_s"]), fmt_time(r["per_token_s"]), "yes" if r["same_tokens"] else "NO"]
        if host:
            ratio = r.get("predicted_over_measured")
            line += [fmt_time(r.get("host_predicted_s")), "-" if ratio is None else f"{ratio:.2f}"]
        line.append(r.get("host_error", ""))
        out.append(line)
    table(f"{args.model}: {args.decode_steps} decode steps, batch {batch}, prompt {seq} (median of {args.repeat})",
          cols, out)
