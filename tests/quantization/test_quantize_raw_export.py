"""``quantize`` on a raw export whose weights are computed from constants (``Transpose(W)``,
``Cast(W)``: an unoptimized torch export) says why nothing was quantized and names the fix."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ridgeline as rl
from ridgeline.ir import Graph
from ridgeline.ir.dtypes import DTYPES
from ridgeline.ir.types import TensorType


def _graph(k: int, n: int, producer: str) -> Graph:
    g = Graph("raw")
    x = g.add_input("x", TensorType(DTYPES["f32"], ("b", k)))
    w = np.random.default_rng(k * 31 + n).standard_normal((n, k) if producer == "Transpose" else (k, n))
    if producer == "Transpose":
        wv = g.add_node("Transpose", [g.add_constant("W", w.astype(np.float32))], {"perm": [1, 0]}).outputs[0]
    else:   # a half-precision checkpoint cast up at run time
        wv = g.add_node("Cast", [g.add_constant("W", w.astype(np.float16))], {"to": "f32"}).outputs[0]
    g.outputs = list(g.add_node("MatMul", [x, wv]).outputs)
    return g


@settings(max_examples=6, deadline=None)
@given(k=st.integers(2, 40), n=st.integers(1, 40), producer=st.sampled_from(["Transpose", "Cast"]))
def test_raw_weights_warn_then_default_quantizes(k, n, producer):
    g = _graph(k, n, producer)
    with _capture() as records:
        rl.optimize(g, "quantize{scheme=int8}")
    assert not any(n.op == "Fused" for n in g)
    msgs = [r.getMessage() for r in records if r.levelno >= logging.WARNING]
    assert len(msgs) == 1 and "\n" not in msgs[0], msgs
    assert producer in msgs[0] and "default,quantize" in msgs[0]
    g2 = _graph(k, n, producer)
    with _capture() as records:
        rl.optimize(g2, "default,quantize{scheme=int8}")
    assert [n.attr("kind") for n in g2 if n.op == "Fused"] == ["dequant-matmul"]
    assert not [r for r in records if "no GEMM quantized" in r.getMessage()]


def test_no_gemm_at_all_warns_once():
    g = Graph("none")
    x = g.add_input("x", TensorType(DTYPES["f32"], (3,)))
    g.outputs = list(g.add_node("Relu", [x]).outputs)
    with _capture() as records:
        rl.optimize(g, "quantize{scheme=int4-g32}")
    assert [r.getMessage() for r in records if "no GEMM quantized" in r.getMessage()]


def test_skip_everything_is_not_a_warning():
    g = _graph(8, 4, "Transpose")
    rl.optimize(g, "fold-constants")
    with _capture() as records:
        rl.optimize(g, "quantize{scheme=int8,skip=*}")
    assert not [r for r in records if "no GEMM quantized" in r.getMessage()]


class _capture:
    def __enter__(self):
        self.records: list[logging.LogRecord] = []
        self.h = logging.Handler()
        self.h.emit = self.records.append
        logging.getLogger("ridgeline.passes").addHandler(self.h)
        return self.records

    def __exit__(self, *exc):
        logging.getLogger("ridgeline.passes").removeHandler(self.h)


if __name__ == "__main__":   # pragma: no cover
    pytest.main([__file__])
