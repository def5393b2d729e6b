"""Differential checks of one op: ridgeline (importer + spec + numpy kernel) against onnx.reference.

``check_op("Slice", [x, starts, ends], const={1, 2})`` builds a one-node ONNX model, runs it with
``onnx.reference.ReferenceEvaluator`` and with ridgeline's strict reference interpreter, and asserts

* the outputs agree (exactly for integers and bools, within tolerance for floats, NaN where NaN),
* ridgeline's dtypes and shapes equal the reference's, and
* the types the op's spec inferred (after binding any symbolic dims) are exactly the kernel's.

Inputs listed in ``const`` become initializers (the spec then sees their values, as it does for
the constant axes/shapes of exported models); ``symbolic`` declares some input dims by name
(``{0: {0: "batch"}}``) so inference runs symbolically and ``Graph.bind`` specializes it.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import onnx
from onnx import helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from ridgeline.frontends.onnx import load_onnx
from ridgeline.ir.graph import Graph
from ridgeline.testing.onnx_backend import StrictInterpreter

__all__ = ["check_op", "one_node_model", "assert_same", "OPSET"]

OPSET = onnx.defs.onnx_opset_version()


def _name(i: int) -> str:
    return f"in{i}"


def one_node_model(op: str, inputs: Sequence[np.ndarray | None], attrs: Mapping | None = None, *,
                   outputs: int = 1, const: set[int] = frozenset(),
                   symbolic: Mapping[int, Mapping[int, str]] | None = None, opset: int = OPSET,
                   domain: str = "") -> onnx.ModelProto:
    """A model with one ``op`` node reading ``inputs`` (None = an omitted optional input)."""
    symbolic = symbolic or {}
    graph_inputs, inits, names = [], [], []
    for i, a in enumerate(inputs):
        if a is None:
            names.append("")
            continue
        names.append(_name(i))
        if i in const:
            inits.append(numpy_helper.from_array(np.asarray(a), _name(i)))
            continue
        dims = [symbolic.get(i, {}).get(k, d) for k, d in enumerate(np.shape(a))]
        graph_inputs.append(helper.make_tensor_value_info(
            _name(i), helper.np_dtype_to_tensor_dtype(np.asarray(a).dtype), dims))
    outs = [f"out{j}" for j in range(outputs)]
    node = helper.make_node(op, names, outs, domain=domain, **dict(attrs or {}))
    graph_outputs = [helper.make_tensor_value_info(o, onnx.TensorProto.UNDEFINED, None) for o in outs]
    g = helper.make_graph([node], f"one_{op}", graph_inputs, graph_outputs, initializer=inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid(domain, opset)])


def _as_float(a: np.ndarray) -> np.ndarray:
    return a.astype(np.float64) if a.dtype.kind not in "biu" else a


def assert_same(got: np.ndarray, want: np.ndarray, *, rtol: float, atol: float, what: str = "") -> None:
    """Same dtype and shape; equal ints/bools; close floats with NaN in the same places."""
    assert got.dtype == want.dtype, f"{what}: dtype {got.dtype} != reference {want.dtype}"
    assert got.shape == want.shape, f"{what}: shape {got.shape} != reference {want.shape}"
    if got.dtype.kind in "biu" or got.dtype.name in ("int4", "uint4"):
        np.testing.assert_array_equal(got.astype(np.int64) if got.dtype.kind != "b" else got,
                                      want.astype(np.int64) if want.dtype.kind != "b" else want, err_msg=what)
        return
    np.testing.assert_allclose(_as_float(got), _as_float(want), rtol=rtol, atol=atol, equal_nan=True, err_msg=what)


def _bind(g: Graph, model: onnx.ModelProto, inputs, symbolic) -> Graph:
    binding = {}
    for i, axes in (symbolic or {}).items():
        for k, name in axes.items():
            binding[name] = int(np.shape(inputs[i])[k])
    return g.bind(binding) if binding else g


def check_op(op: str, inputs: Sequence[np.ndarray | None], attrs: Mapping | None = None, *, outputs: int = 1,
             const: set[int] = frozenset(), symbolic: Mapping[int, Mapping[int, str]] | None = None,
             opset: int = OPSET, rtol: float = 1e-5, atol: float = 1e-6,
             static_outputs: bool = True) -> list[np.ndarray]:
    """Run ``op`` in ridgeline and in onnx.reference and compare (see the module docstring).

    ``static_outputs=False`` for ops whose output dims depend on the data (NonZero, dynamic
    axes): their inferred dims may stay unknown. Returns ridgeline's outputs.
    """
    model = one_node_model(op, inputs, attrs, outputs=outputs, const=const, symbolic=symbolic, opset=opset)
    feeds = {_name(i): a for i, a in enumerate(inputs) if a is not None and i not in const}
    want = ReferenceEvaluator(model).run(None, feeds)
    g = load_onnx(model)
    bound = _bind(g, model, inputs, symbolic)
    got_map = StrictInterpreter(bound).run(feeds)
    got = [got_map[v.name] for v in bound.outputs]
    for j, (v, a, w) in enumerate(zip(bound.outputs, got, want)):
        w = np.asarray(w)
        assert_same(a, w, rtol=rtol, atol=atol, what=f"{op} output {j}")
        t = v.type
        assert t.dtype.np_dtype == a.dtype, f"{op} output {j}: spec says {t}, kernel gave {a.dtype}"
        if static_outputs:
            assert t.shape == a.shape, f"{op} output {j}: spec says {t}, kernel gave shape {a.shape}"
        else:
            assert t.rank == a.ndim and all(not isinstance(d, int) or d == n for d, n in zip(t.shape, a.shape)), \
                f"{op} output {j}: spec says {t}, kernel gave shape {a.shape}"
    if symbolic:
        for v in g.outputs:  # before binding, the types are symbolic but of the right rank
            assert v.type.rank == got[g.outputs.index(v)].ndim
    return got
