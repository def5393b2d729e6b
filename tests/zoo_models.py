"""The model zoo (``tests/models/zoo``, built by ``tools/export_zoo.py``): entries and inputs.

Default-setting transformers exports (SDPA attention, no ``position_ids``, dynamic axes). Inputs
are built from a manifest entry: token ids below the model's vocabulary, a left-padded attention
mask, a random KV cache and random pixels; comparisons reuse ``exported_models``' rules (only
query positions that attend to something are compared).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from exported_models import _size

ZOO = Path(__file__).resolve().parent / "models" / "zoo"
_NP = {"f32": np.float32, "i64": np.int64}


@functools.cache
def _manifest() -> dict:
    path = ZOO / "manifest.json"
    return json.loads(path.read_text()) if path.is_file() else {"models": []}


def zoo_entries(**match) -> list[dict]:
    """Zoo manifest entries, optionally filtered (``zoo_entries(exporter="legacy")``)."""
    return [e for e in _manifest()["models"] if all(e[k] == v for k, v in match.items())]


def zoo_dims(e: dict, batch: int = 2, seq: int = 5, past: int = 3, enc: int = 7) -> dict[str, int]:
    """Dims for a run (``enc``: the encoder length an encoder-decoder's cross-attention reads);
    batch 1 for the files onnxruntime rejects at batch >= 2 as exported."""
    if e.get("ort_batch1_only"):
        batch = 1
    names = {d for p in e["inputs"] for d in p["dims"] if isinstance(d, str) and " " not in d}
    return {k: v for k, v in {"batch": batch, "seq": seq, "past": past, "enc": enc}.items() if k in names}


def zoo_feeds(e: dict, dims: Mapping[str, int], *, seed: int = 0) -> dict[str, np.ndarray]:
    """Inputs for one run; row ``b`` of the mask has ``b`` left-padded slots (one token kept)."""
    rng = np.random.default_rng(seed)
    vocab = min(p["dims"][-1] for p in e["outputs"] if p["role"] == "output") if e["kind"] == "decoder" else 50
    out = {}
    for p in e["inputs"]:
        shape = tuple(_size(d, {**dims, "seq": dims.get("seq", 1)}) for d in p["dims"])
        if p["role"] == "tokens":
            a = rng.integers(2, vocab, size=shape)  # encoders: every zoo vocab has > 50 entries
        elif p["role"] == "mask":
            a = np.ones(shape, np.int64)
            for b in range(shape[0]):
                a[b, :min(b, shape[1] - 1)] = 0
        else:
            a = rng.standard_normal(shape)
        out[p["name"]] = np.ascontiguousarray(a.astype(_NP[p["dtype"]]))
    return out


def zoo_attended(e: dict, feeds: Mapping[str, np.ndarray], dims: Mapping[str, int]) -> np.ndarray | None:
    """bool[batch, seq] of query positions that see an unmasked key (None: every position)."""
    if not e["masks"]:
        return None
    mask = feeds[e["masks"][0]].astype(bool)
    past, seq = dims.get("past", 0), dims["seq"]
    if e["kind"] != "decoder":
        return np.repeat(mask.any(axis=1, keepdims=True), seq, axis=1)
    return (np.cumsum(mask, axis=1) > 0)[:, past:past + seq]


def assert_zoo_close(e: dict, got: Mapping[str, np.ndarray], ref: Mapping[str, np.ndarray],
                     feeds: Mapping[str, np.ndarray], dims: Mapping[str, int], *, rtol: float, what: str = "") -> None:
    """Every output within ``rtol`` (max abs error over max |ref|) at the attended positions."""
    keep = zoo_attended(e, feeds, dims)
    past = dims.get("past", 0)
    for port in e["outputs"]:
        g, r = np.asarray(got[port["name"]]), np.asarray(ref[port["name"]])
        assert g.shape == r.shape, f"{e['file']} {port['name']}: shape {g.shape} vs {r.shape}"
        if keep is not None and port["role"] == "output":
            g, r = g[keep], r[keep]
        elif keep is not None and port["role"] == "present":
            ok = np.concatenate([np.ones((g.shape[0], past), bool), keep], axis=1)
            g, r = g.transpose(0, 2, 1, 3)[ok], r.transpose(0, 2, 1, 3)[ok]
        assert np.isfinite(g).all(), f"{e['file']} {port['name']} {what}: non-finite values"
        err = float(np.max(np.abs(g.astype(np.float64) - r))) / max(float(np.max(np.abs(r))), 1e-30)
        assert err <= rtol, f"{e['file']} {port['name']} {what}: relative error {err:.3g} > {rtol:g} at {dict(dims)}"
