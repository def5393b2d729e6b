"""The exported test models (``tests/models/manifest.json``): inputs, onnxruntime, comparisons.

Shared by every test that runs a real exported transformer (frontends, passes, backends)::

    from exported_models import MODELS, entries, feeds_for, ort_run, assert_outputs_close

A model's inputs are built from its manifest entry: token ids, an attention mask (optionally
left-padded, as a batch of prompts of different lengths is), positions counting from ``past``,
and a random KV cache. Rows of a fully masked query are arbitrary in every implementation
(softmax over nothing), so comparisons look only at query positions that attend to something.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Mapping

import numpy as np

__all__ = ["MODELS", "MANIFEST", "entries", "entry", "dims_for", "feeds_for", "attended", "ort_session",
           "ort_run", "assert_outputs_close", "max_rel_error", "RTOL"]

MODELS = Path(__file__).resolve().parent / "models"
MANIFEST = MODELS / "manifest.json"
#: the acceptance bound: fp32 outputs within 1e-4 relative to onnxruntime
RTOL = 1e-4
_NP = {"f32": np.float32, "i64": np.int64, "i32": np.int32, "bool": np.bool_}


@functools.lru_cache(maxsize=None)
def _manifest() -> dict:
    return json.loads(MANIFEST.read_text())


def entries(**match) -> list[dict]:
    """Manifest entries, optionally filtered (``entries(phase="decode", family="llama")``)."""
    return [e for e in _manifest()["models"] if all(e[k] == v for k, v in match.items())]


def accuracy_entries(**match) -> list[dict]:
    """The default-init exports (``init_std`` 0.02) kept for quantization-accuracy checks."""
    return [e for e in _manifest().get("accuracy_models", []) if all(e[k] == v for k, v in match.items())]


def entry(file: str) -> dict:
    return next(e for e in _manifest()["models"] + _manifest().get("accuracy_models", []) if e["file"] == file)


def dims_for(e: dict, batch: int, seq: int, past: int) -> dict[str, int]:
    """The dims the entry's graph uses (``past`` only for a decode step)."""
    dims = {"batch": batch, "seq": seq}
    if e["phase"] == "decode":
        dims["past"] = past
    return dims


def _size(d, dims: Mapping[str, int]) -> int:
    if isinstance(d, int):
        return d
    import sympy
    return int(sympy.sympify(d).subs({k: v for k, v in dims.items()}))


def feeds_for(e: dict, dims: Mapping[str, int], *, seed: int = 0, left_pad: bool = True) -> dict[str, np.ndarray]:
    """Inputs for one run. With ``left_pad`` row ``b`` of the batch has ``b`` padded slots
    (capped so every row keeps one real token), the usual layout of batched generation."""
    rng = np.random.default_rng(seed)
    past = dims.get("past", 0)
    out = {}
    for p in e["inputs"]:
        shape = tuple(_size(d, dims) for d in p["dims"])
        role = p["role"]
        if role == "tokens":
            a = rng.integers(0, _manifest()["config"]["vocab"], size=shape)
        elif role == "mask":
            a = np.ones(shape, np.int64)
            if left_pad:
                for b in range(shape[0]):
                    a[b, :min(b, shape[1] - 1)] = 0
        elif role == "positions":
            a = np.broadcast_to(np.arange(past, past + shape[1]), shape)
        else:
            a = rng.standard_normal(shape)
        out[p["name"]] = np.ascontiguousarray(a.astype(_NP[p["dtype"]]))
    return out


def attended(e: dict, feeds: Mapping[str, np.ndarray], dims: Mapping[str, int]) -> np.ndarray:
    """bool[batch, seq]: query positions that attend to at least one unmasked key."""
    mask = feeds[e["masks"][0]].astype(bool)
    past, seq = dims.get("past", 0), dims["seq"]
    if e["family"] == "bert":  # bidirectional: every key is visible to every query
        return np.repeat(mask.any(axis=1, keepdims=True), seq, axis=1)
    # causal: query j sees keys 0 .. past + j
    seen = np.cumsum(mask, axis=1) > 0
    return seen[:, past:past + seq]


@functools.lru_cache(maxsize=64)
def ort_session(source: str | bytes):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.intra_op_num_threads = 1
    return ort.InferenceSession(source, so, providers=["CPUExecutionProvider"])


def ort_run(source: str | Path | bytes, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Run a model (a path or serialized bytes) in onnxruntime; outputs by name."""
    sess = ort_session(source if isinstance(source, bytes) else str(source))
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(names, dict(feeds))))


def max_rel_error(got: np.ndarray, ref: np.ndarray) -> float:
    """max |got - ref| / max |ref| (the fp32 error measure of the acceptance criteria)."""
    scale = float(np.max(np.abs(ref))) if ref.size else 0.0
    return float(np.max(np.abs(got.astype(np.float64) - ref))) / max(scale, 1e-30) if ref.size else 0.0


def _select(e: dict, port: dict, a: np.ndarray, keep: np.ndarray, past: int) -> np.ndarray:
    if port["role"] == "output":          # [batch, seq, ...]
        return a[keep]
    if port["role"] == "present":         # [batch, heads, past + seq, d]: the past part is copied
        b, h, t, d = a.shape
        ok = np.concatenate([np.ones((b, past), bool), keep], axis=1)
        return a.transpose(0, 2, 1, 3)[ok]
    return a


def assert_outputs_close(e: dict, got: Mapping[str, np.ndarray], ref: Mapping[str, np.ndarray],
                         feeds: Mapping[str, np.ndarray], dims: Mapping[str, int], *, rtol: float = RTOL,
                         what: str = "") -> None:
    """Every output of ``got`` matches ``ref`` at the attended positions within ``rtol``."""
    keep = attended(e, feeds, dims)
    assert keep.any(), "the inputs leave no query position unmasked"
    past = dims.get("past", 0)
    for port in e["outputs"]:
        name = port["name"]
        g, r = np.asarray(got[name]), np.asarray(ref[name])
        assert g.shape == r.shape, f"{e['file']} {name}: shape {g.shape} vs {r.shape}"
        assert g.dtype == r.dtype, f"{e['file']} {name}: dtype {g.dtype} vs {r.dtype}"
        gs, rs = _select(e, port, g, keep, past), _select(e, port, r, keep, past)
        assert np.isfinite(gs).all(), f"{e['file']} {name}: non-finite values at attended positions"
        err = max_rel_error(gs, rs)
        assert err <= rtol, f"{e['file']} {name} {what}: relative error {err:.3g} > {rtol:g} at dims {dict(dims)}"
