"""Lowering signatures (backends/llvm/signature.py): the executor emits a kernel once per
signature, so a signature must change whenever the emitted IR does.

Drawn here: a graph from a recipe, and the recipe with each of its parts changed in turn (a dim,
an attribute, a scalar constant, the epilogue op, the dtype); every lowering of all of them is
emitted, and each signature must always come with the same IR. Weights alone never change a
signature (the layers of a model share kernels) and sharing gives the same bits. Every other llvm
test runs with ``RIDGELINE_LLVM_VERIFY_SIGNATURES=1`` (conftest), which checks the same across
the drawn kernel spaces.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

pytest.importorskip("llvmlite")

import ridgeline as rl
from ridgeline.backends.llvm import executor
from ridgeline.backends.llvm.lowering import Unsupported
from ridgeline.backends.registry import get_backend
from ridgeline.ir import Builder, Graph, tensor

_BASE = {"m": 3, "k": 8, "n": 16, "epi": "Relu", "alpha": 0.5, "axis": -1, "eps": 1e-5,
         "norm": "LayerNormalization", "act": "Tanh", "dtype": "f32", "transB": 0, "seed": 0}
_CHOICES = {"m": [1, 2, 3, 5, 9], "k": [4, 8, 17, 32], "n": [8, 16, 24, 33], "epi": ["Relu", "Gelu", "Sigmoid", "none"],
            "alpha": [0.5, 2.0, -1.0, 0.25], "axis": [-1, 0, 1], "eps": [1e-5, 1e-6, 0.1],
            "norm": ["LayerNormalization", "RMSNormalization", "Softmax", "LogSoftmax"],
            "act": ["Tanh", "Exp", "Neg", "Abs"], "dtype": ["f32", "f64"], "transB": [0, 1]}


def _graph(r: dict) -> Graph:
    """x @ W (+ bias, scaled, an activation) → a norm or softmax → an elementwise op, with
    constant weights drawn from ``seed``."""
    rng = np.random.default_rng(r["seed"])
    g = Graph("sig")
    b = Builder(g)
    m, k, n = r["m"], r["k"], r["n"]
    x = g.add_input("x", tensor("f32", 2, m, k))
    w = g.add_constant("w", rng.standard_normal((n, k) if r["transB"] else (k, n)).astype(np.float32))
    if r["transB"]:
        y = b.Gemm(b.Reshape(x, g.add_constant("s", np.array([2 * m, k], np.int64))), w, transB=1)
        y = b.Reshape(y, g.add_constant("s2", np.array([2, m, n], np.int64)))
    else:
        y = b.MatMul(x, w)
    y = b.Add(y, g.add_constant("bias", rng.standard_normal(n).astype(np.float32)))
    y = b.Mul(y, g.add_constant("alpha", np.array(r["alpha"], np.float32)))
    if r["epi"] != "none":
        y = b.op(r["epi"], y)
    if r["dtype"] == "f64":
        y = b.Cast(y, to="f64")
    if r["norm"] in ("Softmax", "LogSoftmax"):
        y = b.op(r["norm"], y, axis=r["axis"])
    else:
        shape = (n,) if r["axis"] == -1 else (m, n) if r["axis"] == 1 else (2, m, n)
        scale = g.add_constant("scale", (1 + 0.1 * rng.standard_normal(shape)).astype(np.dtype(r["dtype"].replace("f", "float"))))
        y = b.op(r["norm"], y, scale, axis=r["axis"], epsilon=r["eps"], _outputs=1)
    g.outputs = [b.op(r["act"], y)]
    g.verify()
    return g


@st.composite
def _recipe_families(draw):
    """A recipe and, for every one of its keys, the recipe with that key changed."""
    base = {key: draw(st.sampled_from(vals)) for key, vals in _CHOICES.items()}
    base["seed"] = 0
    return [base] + [dict(base, **{key: draw(st.sampled_from([v for v in vals if v != base[key]]))})
                     for key, vals in _CHOICES.items()]


def _record_emissions(graph: Graph, seen: dict, monkeypatch) -> None:
    """Lower ``graph`` for llvm and emit every lowering (nothing is compiled); each signature
    -> the symbols of its IR (hashes of the text) goes to ``seen``, which must never map one
    signature to two IRs."""
    def record(plan, lowered, runner):
        for _, lw in lowered:
            try:
                mine = executor._emit(lw, {}, {})
            except Unsupported as e:
                mine = str(e)
            sig = lw.signature()
            if sig is None:   # allowed (emitted every time), but then nothing is shared
                continue
            assert seen.setdefault(sig, mine) == mine, f"{type(lw).__name__}: one signature, two IRs"
    monkeypatch.setattr(executor, "_compile", record)
    rl.compile(graph, backend="llvm")   # after its default pipeline: epilogues fused


@settings(max_examples=5, deadline=None, phases=[Phase.explicit, Phase.generate], derandomize=True, database=None, suppress_health_check=list(HealthCheck))
@given(_recipe_families())
def test_one_change_never_shares_a_signature_with_other_ir(monkeypatch, family):
    seen: dict = {}
    with monkeypatch.context() as mp:
        for r in family:
            _record_emissions(_graph(r), seen, mp)


def test_weights_alone_share_every_kernel(monkeypatch):
    """Two layers that differ only in their weights emit nothing new, and give the same bits as
    a process that emitted everything."""
    monkeypatch.delenv("RIDGELINE_LLVM_VERIFY_SIGNATURES", raising=False)
    recipe = dict(_BASE, m=7, k=12, n=20)   # sizes no other test in this module compiles
    feeds = {"x": np.random.default_rng(2).standard_normal((2, 7, 12)).astype(np.float32)}
    first = get_backend("llvm").compile(_graph(dict(recipe, seed=1))).run(feeds)
    before = dict(executor.STATS)
    g2 = _graph(dict(recipe, seed=2))
    second = get_backend("llvm").compile(g2).run(feeds)
    assert executor.STATS["functions"] == before["functions"]
    assert executor.STATS["emits_skipped"] > before["emits_skipped"]
    monkeypatch.setenv("RIDGELINE_LLVM_VERIFY_SIGNATURES", "1")   # everything emitted again
    again = get_backend("llvm").compile(g2).run(feeds)
    for name in second:
        assert np.array_equal(second[name], again[name])
    assert not all(np.array_equal(first[n], second[n]) for n in first)   # other weights, other values
