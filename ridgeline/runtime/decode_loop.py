"""``generate``: a KV-cache decode loop over a compiled causal LM (greedy, or sampled with a seed).

The loop is the one transformers' ``generate`` runs, on any backend: a prefill step over the
prompt, then one token at a time, each step's ``present`` key/value outputs fed back as the next
step's ``past`` inputs. Names are paired by the conventions of transformers' and optimum's exports
(``past_key_values.{i}.key`` ↔ ``present.{i}.key``, ``past_key_{i}`` ↔ ``present_key_{i}``,
``past_key.{i}`` ↔ ``present_key.{i}``, …). The attention mask grows by one column per step (left
padding of a batch lives in it), and ``position_ids``, when the graph has them, are derived from the
mask as transformers derives them. A graph without a cache is re-run on the whole sequence.

It sits above ``api`` (it loads and compiles through the public API) and below ``cli``.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..ir import Graph
from ..ir.errors import ModelError

__all__ = ["GenerateResult", "KVPair", "StepModel", "generate", "kv_pairs", "step_model"]

#: how an exported cache input is spelled, and the output that holds its next value
_PAST_TO_PRESENT: tuple[tuple[re.Pattern, str], ...] = (
    (re.compile(r"^past_key_values\.(\d+)\.(key|value)$"), r"present.\1.\2"),    # transformers / optimum
    (re.compile(r"^past_key_values\.(\d+)$"), r"present.\1"),                     # stacked k/v (old GPT-2)
    (re.compile(r"^past_(key|value)_(\d+)$"), r"present_\1_\2"),                  # onnxruntime-genai style
    (re.compile(r"^past_(key|value)\.(\d+)$"), r"present_\1.\2"),                 # ridgeline presets
    (re.compile(r"^past\.(\d+)\.(key|value)$"), r"present.\1.\2"),
    (re.compile(r"^past_(\d+)$"), r"present_\1"),
    (re.compile(r"^past\.(\d+)$"), r"present.\1"),
    (re.compile(r"^(.*)past(.*)$"), r"\1present\2"),                              # last resort: same name
)


@dataclass(frozen=True)
class KVPair:
    """One cache tensor: the ``past`` input, the ``present`` output that feeds it next step, and
    the axis along which the cache grows."""

    past: str
    present: str
    axis: int
    dtype: np.dtype
    shape: tuple  # the declared shape (ints or dim names)


def kv_pairs(inputs: Mapping[str, Any], outputs: Sequence[str]) -> list[KVPair]:
    """Pair every ``past`` input with its ``present`` output (``inputs``: name -> (dtype, shape))."""
    out: list[KVPair] = []
    outs = set(outputs)
    for name, (dtype, shape) in inputs.items():
        if "past" not in name or len(shape) < 3:  # a scalar like past_sequence_length is not a cache
            continue
        present = next((p.sub(r, name) for p, r in _PAST_TO_PRESENT if p.match(name) and p.sub(r, name) in outs),
                       None)
        if present is None:
            raise ModelError(f"cache input {name!r} has no matching output (expected one of the transformers/"
                             f"optimum names, e.g. {name.replace('past_key_values', 'present')!r})")
        out.append(KVPair(name, present, _cache_axis(name, shape), np.dtype(dtype), tuple(shape)))
    return out


def _cache_axis(name: str, shape: Sequence) -> int:
    """The sequence axis of a cache tensor: the one symbolic dim past the batch ([b, heads, past,
    dim] in every exporter we know); -2 when the shape does not say."""
    symbolic = [i for i, d in enumerate(shape) if not isinstance(d, (int, np.integer)) and i != 0]
    if len(symbolic) == 1:
        return symbolic[0]
    if len(shape) < 2:
        raise ModelError(f"cache input {name!r} has rank {len(shape)}; expected [batch, heads, past, head_dim]")
    return len(shape) - 2


@dataclass
class StepModel:
    """A compiled step: ``run(feeds) -> outputs`` plus the input types (name -> (dtype, shape)) and
    output names, whatever ran it (a ridgeline backend or onnxruntime)."""

    run: Callable[[Mapping[str, np.ndarray]], Mapping[str, np.ndarray]]
    inputs: dict[str, tuple[np.dtype, tuple]]
    outputs: list[str]
    backend: str
    kv: list[KVPair] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.kv = kv_pairs(self.inputs, self.outputs)
        if "input_ids" not in self.inputs:
            raise ModelError(f"the model has no 'input_ids' input (inputs: {', '.join(self.inputs)}); "
                             f"generate needs a causal LM")
        if not self.outputs or "logits" not in self.outputs:
            raise ModelError(f"the model has no 'logits' output (outputs: {', '.join(self.outputs)})")


def step_model(model: str | os.PathLike | Graph | StepModel, backend: str = "numpy", *,
               pipeline: str | None = None, **compile_options: Any) -> StepModel:
    """Load (a path, ``.rir`` or a ``Graph``) and compile ``model`` for ``backend``; the
    ``"onnxruntime"`` backend takes an ``.onnx`` path."""
    if isinstance(model, StepModel):
        return model
    if backend == "onnxruntime":
        return _onnxruntime_step(model, compile_options.pop("threads", None))
    from .. import api
    graph = model if isinstance(model, Graph) else api.load(model)
    weightless = [v.name for v in graph.constants.values() if not v.has_data]
    if weightless:
        raise ModelError(f"{graph.name}: {len(weightless)} constants have no weights (e.g. {weightless[0]!r}); "
                         f"generate runs a model with weights (an exported .onnx), not a weightless preset")
    exe = api.compile(graph, backend, pipeline=pipeline, **compile_options)
    g = exe.graph if getattr(exe, "graph", None) is not None else graph
    inputs = {v.name: (v.type.dtype.np_dtype, v.type.shape) for v in g.inputs}
    return StepModel(exe.run, inputs, [v.name for v in g.outputs], backend)


def _onnxruntime_step(model: Any, threads: int | None) -> StepModel:
    try:
        import onnxruntime as ort
    except ImportError:
        raise ModelError("the onnxruntime backend needs the onnxruntime package (pip install onnxruntime)") from None
    if isinstance(model, Graph) or not os.fspath(model).lower().endswith(".onnx"):
        raise ModelError("onnxruntime runs an .onnx file; pass its path")
    so = ort.SessionOptions()
    if threads:
        so.intra_op_num_threads = int(threads)
    sess = ort.InferenceSession(os.fspath(model), so, providers=["CPUExecutionProvider"])
    types = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64,
             "tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(bool)": np.bool_}
    inputs = {i.name: (np.dtype(types.get(i.type, np.float32)),
                       tuple(d if isinstance(d, int) else str(d) for d in i.shape)) for i in sess.get_inputs()}
    names = [o.name for o in sess.get_outputs()]

    def run(feeds):
        return dict(zip(names, sess.run(names, dict(feeds))))
    return StepModel(run, inputs, names, "onnxruntime")


@dataclass
class GenerateResult:
    """The prompt followed by the new tokens (``sequences``, [batch, prompt + new]; rows that hit
    an eos are padded with ``pad_token_id``), the new tokens alone, and per-step wall times
    (``step_seconds[0]`` is the prefill)."""

    sequences: np.ndarray
    new_tokens: np.ndarray
    step_seconds: list[float]
    backend: str

    @property
    def per_token_seconds(self) -> list[float]:
        """Decode-step times (every step after the prefill)."""
        return self.step_seconds[1:]


def generate(prefill: str | os.PathLike | Graph | StepModel, decode: str | os.PathLike | Graph | StepModel | None = None,
             input_ids: np.ndarray | Sequence[Sequence[int]] = (), max_new_tokens: int = 16, *,
             backend: str = "numpy", attention_mask: np.ndarray | None = None,
             eos_token_id: int | Sequence[int] | None = None, pad_token_id: int = 0,
             temperature: float = 0.0, top_k: int | None = None, top_p: float | None = None,
             seed: int | None = None, pipeline: str | None = None,
             **compile_options: Any) -> GenerateResult:
    """Generate up to ``max_new_tokens`` tokens after ``input_ids`` ([batch, seq]; left-pad a batch
    and pass ``attention_mask``) on ``backend``; greedy unless ``temperature > 0``.

    ``prefill`` runs the prompt. ``decode`` runs each next token with the cache; it defaults to
    ``prefill`` (one graph serving both, past length 0 first: the usual export). A ``prefill``
    without a cache and no ``decode`` is re-run on the whole sequence each step.
    """
    ids = np.asarray(input_ids, dtype=np.int64)
    if ids.ndim == 1:
        ids = ids[None, :]
    if ids.ndim != 2 or ids.shape[1] == 0:
        raise ModelError(f"input_ids must be [batch, seq] with seq >= 1, got shape {list(ids.shape)}")
    if max_new_tokens < 0:
        raise ModelError(f"max_new_tokens must be >= 0, got {max_new_tokens}")
    mask = np.ones_like(ids) if attention_mask is None else np.asarray(attention_mask, dtype=np.int64)
    if mask.shape != ids.shape:
        raise ModelError(f"attention_mask has shape {list(mask.shape)}, input_ids {list(ids.shape)}")
    first = step_model(prefill, backend, pipeline=pipeline, **compile_options)
    if decode is None:
        second = first
    else:
        second = first if decode is prefill else step_model(decode, backend, pipeline=pipeline, **compile_options)
    if decode is not None and not second.kv:
        raise ModelError("the decode model has no cache inputs (past_*); pass it as prefill alone to re-run "
                         "the whole sequence each step")
    eos = set() if eos_token_id is None else ({int(eos_token_id)} if np.isscalar(eos_token_id)
                                              else {int(t) for t in eos_token_id})
    pick = _sampler(temperature, top_k, top_p, seed)

    batch = ids.shape[0]
    seqs, times = ids, []
    done = np.zeros(batch, dtype=bool)
    cache: dict[str, np.ndarray] | None = None
    step, step_ids = first, ids
    for _ in range(max_new_tokens):
        feeds = _feeds(step, step_ids, mask, cache, batch)
        t0 = time.perf_counter()
        out = step.run(feeds)
        times.append(time.perf_counter() - t0)
        logits = np.asarray(out["logits"])
        if logits.ndim != 3 or logits.shape[0] != batch:
            raise ModelError(f"logits have shape {list(logits.shape)}; expected [batch, seq, vocab]")
        nxt = pick(logits[:, -1, :].astype(np.float64))
        nxt = np.where(done, pad_token_id, nxt)
        done |= np.isin(nxt, list(eos)) if eos else False
        seqs = np.concatenate([seqs, nxt[:, None]], axis=1)
        mask = np.concatenate([mask, np.ones((batch, 1), np.int64)], axis=1)
        if done.all():
            break
        if second.kv:
            cache = _cache_from(second, out)
            step, step_ids = second, nxt[:, None]
        else:  # no cache anywhere: the whole sequence again
            step_ids = seqs
    return GenerateResult(seqs, seqs[:, ids.shape[1]:], times, first.backend)


def _cache_from(step: StepModel, out: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The last step's ``present`` outputs, by name, as the next step's cache."""
    cache = {}
    for p in step.kv:
        if p.present not in out:
            raise ModelError(f"the prefill model has no output {p.present!r} to start the decode cache")
        cache[p.present] = np.asarray(out[p.present])
    return cache


def _feeds(step: StepModel, ids: np.ndarray, mask: np.ndarray, cache: Mapping[str, np.ndarray] | None,
           batch: int) -> dict[str, np.ndarray]:
    feeds: dict[str, np.ndarray] = {"input_ids": ids.astype(step.inputs["input_ids"][0], copy=False)}
    seq = ids.shape[1]
    if "attention_mask" in step.inputs:
        feeds["attention_mask"] = mask.astype(step.inputs["attention_mask"][0], copy=False)
    if "position_ids" in step.inputs:
        # as transformers derives them: the count of attended tokens before each one (pads get 1)
        pos = np.cumsum(mask, axis=1) - 1
        pos = np.where(mask == 0, 1, pos)[:, -seq:]
        feeds["position_ids"] = pos.astype(step.inputs["position_ids"][0], copy=False)
    for p in step.kv:
        if cache is not None:
            feeds[p.past] = cache[p.present]
            continue
        shape, batch_seen = [], False
        for i, d in enumerate(p.shape):
            if i == p.axis:
                shape.append(0)
            elif isinstance(d, (int, np.integer)):
                shape.append(int(d))
            elif not batch_seen:  # the first symbolic dim is the batch ([2, batch, …] when k/v are stacked)
                shape.append(batch)
                batch_seen = True
            else:
                raise ModelError(f"cache input {p.past!r} has a symbolic dim {d!r} at axis {i}; "
                                 f"cannot build an empty cache for it")
        feeds[p.past] = np.zeros(shape, dtype=p.dtype)
    missing = [n for n in step.inputs if n not in feeds]
    if missing:
        raise ModelError(f"generate does not know how to feed input(s) {', '.join(missing)} "
                         f"(it feeds input_ids, attention_mask, position_ids and past_* caches)")
    return feeds


def _sampler(temperature: float, top_k: int | None, top_p: float | None,
             seed: int | None) -> Callable[[np.ndarray], np.ndarray]:
    """Greedy (first maximum, as torch's argmax) or temperature/top-k/top-p sampling."""
    if temperature < 0:
        raise ModelError(f"temperature must be >= 0, got {temperature}")
    if top_k is not None and top_k < 1:
        raise ModelError(f"top_k must be >= 1, got {top_k}")
    if top_p is not None and not 0.0 < top_p <= 1.0:
        raise ModelError(f"top_p must be in (0, 1], got {top_p}")
    if temperature == 0:
        return lambda logits: np.argmax(logits, axis=-1).astype(np.int64)
    rng = np.random.default_rng(seed)

    def sample(logits: np.ndarray) -> np.ndarray:
        z = logits / temperature
        if top_k is not None and top_k < z.shape[-1]:
            kth = np.partition(z, -top_k, axis=-1)[:, -top_k][:, None]
            z = np.where(z < kth, -np.inf, z)
        p = np.exp(z - z.max(axis=-1, keepdims=True))
        p /= p.sum(axis=-1, keepdims=True)
        if top_p is not None and top_p < 1.0:
            order = np.argsort(-p, axis=-1, kind="stable")
            sp = np.take_along_axis(p, order, axis=-1)
            keep_sorted = np.cumsum(sp, axis=-1) - sp < top_p  # the smallest prefix reaching top_p
            keep = np.zeros_like(keep_sorted)
            np.put_along_axis(keep, order, keep_sorted, axis=-1)
            p = np.where(keep, p, 0.0)
            p /= p.sum(axis=-1, keepdims=True)
        return np.array([rng.choice(p.shape[-1], p=row) for row in p], dtype=np.int64)
    return sample
