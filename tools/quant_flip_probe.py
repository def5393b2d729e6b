#!/usr/bin/env python
"""Where a weight quantization's top-1 flips come from, on a real language model and real text.

    nice -n 10 python tools/quant_flip_probe.py floor                    # fp32 numpy vs fp32 onnxruntime
    nice -n 10 python tools/quant_flip_probe.py kinds --scheme int8      # one layer kind at a time
    nice -n 10 python tools/quant_flip_probe.py kinds --scheme int8 --by layer   # one decoder layer at a time
    nice -n 10 python tools/quant_flip_probe.py methods --scheme int8 --methods rtn,gptq,awq,awq-gptq
    nice -n 10 python tools/quant_flip_probe.py methods --scheme int4-asym-g128 --methods rtn,awq-gptq --clip output
    nice -n 10 python tools/quant_flip_probe.py weights                  # max/rms per output channel, per kind
    nice -n 10 python tools/quant_flip_probe.py rounding --variants int8,int8/rotate,int8-asym,noise:0.5,int8/head

Fast and approximate where ``tools/bench_quant_accuracy.py`` is exact: weights of the fp32 export
(SmolLM2-135M-Instruct by default, the bench's cached file) are quantized and dequantized in
numpy with ridgeline's own arithmetic (``quantize_methods``), written back as fp32 and scored by
onnxruntime on the bench's held-out windows (the last 5 × 128 tokens of the bundled passage);
calibrated methods see the *fp32* model's activations on the calibration windows (not the
sequential walk of the pass). Per row: perplexity, top-1 agreement, the flips, and the change
of each position's top-1/top-2 logit margin (``dmargin``) against the fp32 margins.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

#: fp32 top-1/top-2 margins (logits) the flips are binned by
MARGIN_BINS = (0.01, 0.03, 0.1, 0.3)
KINDS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj", "lm_head")


class Probe:
    """An fp32 ONNX causal LM whose MatMul weights can be swapped, scored by onnxruntime."""

    def __init__(self, model: Path, tokenizer: str, window: int = 128, n_eval: int = 5):
        import onnx
        from onnx import numpy_helper

        from ridgeline.testing import text_accuracy as ta
        wins = ta.windows(ta.tokenize(ta.passage(), tokenizer), window)    # a bad tokenizer fails before the load
        self.onnx, self.ta, self.path = onnx, ta, model
        self.m = onnx.load(str(model))
        inits = {i.name: i for i in self.m.graph.initializer}
        self.kind: dict[str, tuple[str, int, str]] = {}       # weight -> (kind, layer, activation)
        for n in self.m.graph.node:
            if n.op_type == "MatMul" and n.input[1] in inits and inits[n.input[1]].dims.__len__() == 2:
                parts = n.name.split("/")
                kind = "lm_head" if "lm_head" in n.name else (parts[-2] if len(parts) > 1 else n.name)
                layer = int(n.name.split("layers.")[1].split("/")[0]) if "layers." in n.name else -1
                self.kind[n.input[1]] = (kind, layer, n.input[0])
        self.w = {k: numpy_helper.to_array(inits[k]).astype(np.float64) for k in self.kind}
        self.evals, self.calib = wins[-n_eval:], wins[:len(wins) - n_eval]
        self._ref = [o[0] for o in self.run(str(model), self.evals)]

    def run(self, model, windows, extra: tuple[str, ...] = ()):
        import onnxruntime as ort
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        so.intra_op_num_threads = 2
        if not isinstance(model, str):
            model = model.SerializeToString()
        sess = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
        names = [i.name for i in sess.get_inputs()]
        return [sess.run(None, self.ta.lm_feeds(names, w)) for w in windows]

    def edited(self, new: dict[str, np.ndarray]):
        from onnx import numpy_helper
        mm = self.onnx.ModelProto()
        mm.CopyFrom(self.m)
        for init in mm.graph.initializer:
            if init.name in new:
                init.CopyFrom(numpy_helper.from_array(new[init.name].astype(np.float32), init.name))
        return mm

    def activations(self, names) -> dict[str, np.ndarray]:
        """The fp32 model's values ``names`` on the calibration windows (rows × channels)."""
        mm = self.edited({})
        for nm in names:
            mm.graph.output.append(self.onnx.helper.make_tensor_value_info(nm, self.onnx.TensorProto.FLOAT, None))
        outs = self.run(mm, self.calib)
        return {nm: np.concatenate([o[1 + i].reshape(-1, o[1 + i].shape[-1]) for o in outs]).astype(np.float64)
                for i, nm in enumerate(names)}

    def score(self, logits: list[np.ndarray], label: str) -> dict:
        sc = self.ta.TextScore()
        for lg, w, r in zip(logits, self.evals, self._ref):
            sc.add(lg, w, r)
        R = np.concatenate([r.reshape(-1, r.shape[-1]) for r in self._ref]).astype(np.float64)
        Q = np.concatenate([o.reshape(-1, o.shape[-1]) for o in logits]).astype(np.float64)
        rows = np.arange(len(R))
        top = np.argsort(-R, axis=1)[:, :2]
        margin = R[rows, top[:, 0]] - R[rows, top[:, 1]]
        dmargin = np.abs((Q - R)[rows, top[:, 0]] - (Q - R)[rows, top[:, 1]])
        flip = Q.argmax(1) != R.argmax(1)
        row = {"label": label, "ppl": round(sc.perplexity, 3), "top1": round(sc.top1, 4), "flips": int(flip.sum()),
               "flip_margin_median": round(float(np.median(margin[flip])), 4) if flip.any() else None,
               "dmargin_median": round(float(np.median(dmargin)), 4), "dmargin_p95": round(float(np.percentile(dmargin, 95)), 4),
               "flips_below_p95_dmargin": int((flip & (margin < np.percentile(dmargin, 95))).sum()),
               "flips_by_margin": {f"<{hi:g}": int((flip & (margin >= lo) & (margin < hi)).sum())
                                   for lo, hi in zip((0,) + MARGIN_BINS, MARGIN_BINS + (np.inf,))},
               "max_abs_logit_diff": float(np.abs(Q - R).max()),
               "logit_err_rms": round(float(np.sqrt(np.square(Q - R).mean())), 4)}
        print(json.dumps(row), flush=True)
        return row

    def score_weights(self, new: dict[str, np.ndarray], label: str) -> dict:
        return self.score([o[0] for o in self.run(self.edited(new), self.evals)], label)


def margins(p: Probe) -> None:
    R = np.concatenate([r.reshape(-1, r.shape[-1]) for r in p._ref])
    srt = np.sort(R, axis=1)
    m = srt[:, -1] - srt[:, -2]
    print(json.dumps({"positions": len(m), "fp32_margin_below": {t: int((m < t).sum()) for t in MARGIN_BINS}}))


def floor(p: Probe) -> None:
    """fp32 on ridgeline's numpy backend (the default pipeline) against fp32 onnxruntime."""
    import ridgeline as rl
    g = rl.load(p.path)
    rl.optimize(g, "default")
    ex = rl.compile(g, backend="numpy")
    names = [v.name for v in g.inputs]
    outs = []
    for w in p.evals:
        o = ex.run(p.ta.lm_feeds(names, w))
        outs.append(np.asarray(next(iter(o.values())) if isinstance(o, dict) else o[0]))
    p.score(outs, "fp32 numpy backend (default pipeline) vs fp32 onnxruntime")


def quantizer(scheme_name: str):
    from ridgeline.passes.transforms import quantize_methods as qm
    from ridgeline.passes.transforms.quantize_schemes import parse_scheme
    sch = parse_scheme(scheme_name)
    return sch, (lambda w: qm.roundtrip(w, sch, np.dtype(np.float32)))


def kinds(p: Probe, scheme: str, by: str = "kind") -> None:
    """Rounding in one layer kind (``by="kind"``) or one decoder layer (``"layer"``) at a time."""
    _, rt = quantizer(scheme)
    body = [k for k, v in p.kind.items() if v[0] != "lm_head"]
    p.score_weights({k: rt(p.w[k]) for k in body}, f"{scheme}: every GEMM but the LM head")
    parts = KINDS if by == "kind" else sorted({v[1] for v in p.kind.values() if v[1] >= 0})
    for part in parts:
        p.score_weights({k: rt(p.w[k]) for k, v in p.kind.items() if v[0 if by == "kind" else 1] == part},
                        f"{scheme}: only {by} {part}")


def methods(p: Probe, scheme: str, names: list[str], damp: float, clip: str = "weight",
            rotate: tuple[str, ...] = ()) -> None:
    """``rotate``: layer kinds (exact, or ``fnmatch`` globs such as ``*_proj``) quantized as ``Rᵀ·W``
    on ``x·R`` (``quantize{rotate}``'s block Hadamard) and written back as ``R·deq(Rᵀ·W)``, the same
    function. Only the matched GEMMs rotate, as in the pass: a sibling reading the same input
    (``k_proj`` beside a rotated ``q_proj``) is calibrated on the unrotated input."""
    from ridgeline.passes.transforms import quantize_methods as qm
    from ridgeline.passes.transforms.quantize_rotate import rotation
    sch, _ = quantizer(scheme)
    f32 = np.dtype(np.float32)
    body = [k for k, v in p.kind.items() if v[0] != "lm_head"]
    groups: dict[tuple[str, bool], list[str]] = {}      # (activation, rotated) -> weights
    for k in body:
        groups.setdefault((p.kind[k][2], any(fnmatch.fnmatchcase(p.kind[k][0], r) for r in rotate)), []).append(k)
    X = p.activations(sorted({a for a, _ in groups}))
    awq: dict[tuple[str, bool], np.ndarray] = {}
    for meth in names:
        t0 = time.time()
        new = {}
        for (a, rot), ks in groups.items():
            r = rotation(X[a].shape[1], sch.group) if rot else None
            x = X[a] if r is None else X[a] @ r
            w = {k: p.w[k] if r is None else r.T @ p.w[k] for k in ks}
            s = np.ones(x.shape[1])
            if meth in ("awq", "awq-gptq"):
                if (a, rot) not in awq:
                    awq[a, rot] = qm.awq_scales([w[k] for k in ks], x[:512], np.abs(x).mean(0), sch)[0]
                s = awq[a, rot]
            xs = x / s
            h = xs.T @ xs if clip == "output" else None
            if meth in ("gptq", "awq-gptq"):
                fac = qm.gptq_factor(xs.T @ xs, damp=damp)
                for k in ks:
                    new[k] = qm.gptq(w[k] * s[:, None], fac, sch, f32, clip_hessian=h)[2] / s[:, None]
            else:
                for k in ks:
                    new[k] = qm.roundtrip(w[k] * s[:, None], sch, f32, h) / s[:, None]
            if r is not None:
                new.update({k: r @ new[k] for k in ks})
        per_kind: dict[str, list[float]] = {}
        for k in body:        # relative output error on the calibration rows, summed per kind
            e = per_kind.setdefault(p.kind[k][0], [0.0, 0.0])
            e[0] += float(np.square(X[p.kind[k][2]] @ (new[k] - p.w[k])).sum())
            e[1] += float(np.square(X[p.kind[k][2]] @ p.w[k]).sum())
        print(json.dumps({"method": meth, "scheme": scheme, "damp": damp, "clip": clip,
                          "calib_rel_out_err": sum(e for e, _ in per_kind.values()) / sum(r for _, r in per_kind.values()),
                          "per_kind": {kd: float(f"{e / r:.3g}") for kd, (e, r) in per_kind.items()},
                          "seconds": round(time.time() - t0)}), flush=True)
        p.score_weights(new, f"{scheme}:{meth} clip={clip} rotate={','.join(rotate)} (fp32 activations, LM head kept)")


def weights(p: Probe) -> None:
    """Per layer kind, the crest factor max|w| / rms(w) of each output channel (a per-channel
    int8 step is max|w|/127, so this sets its error relative to the weights), before and after
    ``quantize{rotate}``'s block Hadamard (per-channel block, 128)."""
    from ridgeline.passes.transforms.quantize_rotate import fold
    crest: dict[str, list] = {}
    for k, (kind, _, _) in p.kind.items():
        c = crest.setdefault(kind, [[], [], p.w[k].shape])
        for i, w in enumerate((p.w[k], fold(p.w[k], 0, 0))):
            c[i].append(np.abs(w).max(0) / np.sqrt(np.square(w).mean(0)))
    for kind, (c, r, shape) in crest.items():
        c, r = np.concatenate(c), np.concatenate(r)
        print(json.dumps({"kind": kind, "shape": "x".join(map(str, shape)),
                          "crest_median": round(float(np.median(c)), 2),
                          "crest_p99": round(float(np.percentile(c, 99)), 2),
                          "crest_max": round(float(c.max()), 1), "rotated_median": round(float(np.median(r)), 2),
                          "rotated_max": round(float(r.max()), 1),
                          "int8_error_rel_rms": float(f"{np.median(c) / 127 / np.sqrt(12):.3g}")}), flush=True)


def rounding(p: Probe, variants: list[str]) -> None:
    """Uncalibrated rounding of every GEMM but the LM head (``/head``: it too), one variant a row:
    ``scheme`` (ridgeline's fit), ``/rotate`` (all of them rotated, R·deq(Rᵀ·W); ``/seedN``: the
    rotation's sign seed, or the noise's), ``/absmax`` (no clip search), or ``noise:F`` — Gaussian noise of F
    times int8's error rms per output channel: do the flips follow the error's size or its form?"""
    from ridgeline.passes.transforms import quantize_methods as qm
    from ridgeline.passes.transforms.quantize_rotate import rotation
    f32 = np.dtype(np.float32)
    for v in variants:
        name, *flags = v.split("/")
        seed = next((int(f[4:]) for f in flags if f.startswith("seed")), 0)     # rotation signs, or the noise
        rng = np.random.default_rng(seed)
        keys = [k for k, (kind, _, _) in p.kind.items() if kind != "lm_head" or "head" in flags]
        new = {}
        for k in keys:
            w = p.w[k]
            if name.startswith("noise:"):
                e = quantizer("int8")[1](w) - w
                new[k] = w + float(name[6:]) * rng.standard_normal(w.shape) * np.sqrt(np.square(e).mean(0))
                continue
            sch, _ = quantizer(name)
            r = rotation(w.shape[0], sch.group, seed) if "rotate" in flags else np.eye(w.shape[0])
            new[k] = r @ qm.roundtrip(r.T @ w, sch, f32, ratios=(1.0,) if "absmax" in flags else ())
        p.score_weights(new, f"{v} (LM head {'rounded too' if 'head' in flags else 'kept'})")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("what", choices=("floor", "kinds", "methods", "weights", "rounding"))
    ap.add_argument("--variants", default="int8,int8/rotate,int8-asym,int8/absmax,noise:1,noise:0.5,noise:0.25",
                    help="rounding: scheme[/rotate[/seedN]][/absmax][/head] or noise:F[/seedN][/head], comma-separated")
    ap.add_argument("--scheme", default="int8")
    ap.add_argument("--by", choices=("kind", "layer"), default="kind", help="kinds: one layer kind or one decoder layer at a time")
    ap.add_argument("--methods", default="rtn,gptq,awq,awq-gptq")
    ap.add_argument("--damp", type=float, default=0.1)
    ap.add_argument("--clip", choices=("weight", "output"), default="weight",
                    help="integer ranges searched on the weight's or the output's error (quantize{clip=…})")
    ap.add_argument("--rotate", default="", help="layer kinds (exact names or fnmatch globs, e.g. down_proj or "
                    "'*_proj'; not the pass's name fragments or layer:N) whose GEMMs are rotated first "
                    "(quantize{rotate}); only those: siblings sharing their input stay unrotated")
    ap.add_argument("--model", help="an fp32 causal-LM ONNX file with MatMul weights (default: the bench's SmolLM2)")
    ap.add_argument("--tokenizer", help="its tokenizer (default: the SmolLM2 GGUF)")
    args = ap.parse_args(argv)
    if args.model:
        if not args.tokenizer:
            ap.error("--model needs --tokenizer")
        model, tok = Path(args.model), args.tokenizer
    else:
        from bench_quant_accuracy import smollm2
        model, tok = smollm2()
    from ridgeline.ir.errors import ModelError
    try:
        p = Probe(model, tok)
    except (ModelError, OSError) as e:    # a bad --tokenizer or --model: one line, not a traceback
        ap.error(str(e))
    margins(p)
    if args.what == "floor":
        floor(p)
    elif args.what == "weights":
        weights(p)
    elif args.what == "rounding":
        rounding(p, [v for v in args.variants.split(",") if v])
    elif args.what == "kinds":
        kinds(p, args.scheme, args.by)
    else:
        methods(p, args.scheme, [m for m in args.methods.split(",") if m], args.damp, args.clip,
                tuple(k for k in args.rotate.split(",") if k))
    return 0


if __name__ == "__main__":
    sys.exit(main())
