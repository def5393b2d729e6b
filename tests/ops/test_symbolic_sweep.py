"""Spec inference agrees with the kernels across a sweep of ops and sizes, symbolically.

Each case declares some input dims by name. Imported, the graph's output types must be fully
symbolic (derived from the names, no unknown dims); bound to several sizes with ``Graph.bind``,
they must become static and equal, dim for dim and dtype for dtype, to what the numpy kernels
(and onnx.reference) produce.
"""

from __future__ import annotations

import numpy as np
import pytest

from op_harness import check_op, one_node_model
from ridgeline.frontends.onnx import load_onnx
from ridgeline.ir import dims as D
from ridgeline.ir.infer import is_unknown

F32 = np.float32


def _r(*shape, dt=F32, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dt)


def _i(*vals):
    return np.array(vals, np.int64)


# name -> (op, build(n) -> inputs, attrs, const input positions, symbolic dims, outputs)
CASES = {
    "add_broadcast": ("Add", lambda n: [_r(n, 4), _r(4)], {}, set(), {0: {0: "n"}}, 1),
    "matmul": ("MatMul", lambda n: [_r(2, n, 8), _r(8, 3)], {}, set(), {0: {1: "n"}}, 1),
    "gemm": ("Gemm", lambda n: [_r(8, n), _r(5, 8), _r(5)], {"transA": 1, "transB": 1}, set(), {0: {1: "n"}}, 1),
    "softmax": ("Softmax", lambda n: [_r(n, 3, n)], {"axis": 1}, set(), {0: {0: "n", 2: "n"}}, 1),
    "reduce_keep": ("ReduceMean", lambda n: [_r(2, n, 4), _i(-1)], {"keepdims": 1}, {1}, {0: {1: "n"}}, 1),
    "reduce_drop": ("ReduceSum", lambda n: [_r(2, n, 4), _i(0, 2)], {"keepdims": 0}, {1}, {0: {1: "n"}}, 1),
    "transpose": ("Transpose", lambda n: [_r(n, 2, 3)], {"perm": [2, 0, 1]}, set(), {0: {0: "n"}}, 1),
    "concat": ("Concat", lambda n: [_r(2, n), _r(2, 3)], {"axis": 1}, set(), {0: {1: "n"}}, 1),
    "split": ("Split", lambda n: [_r(2 * n, 3)], {"axis": 0, "num_outputs": 2}, set(), {0: {0: "n2"}}, 2),
    "split_uneven": ("Split", lambda n: [_r(n, 3)], {"axis": 0, "num_outputs": 2}, set(), {0: {0: "n"}}, 2),
    "slice_tail": ("Slice", lambda n: [_r(n, 6), _i(1), _i(2 ** 62), _i(0)], {}, {1, 2, 3}, {0: {0: "n"}}, 1),
    "gather_rows": ("Gather", lambda n: [_r(10, 4), np.arange(n, dtype=np.int64) % 10], {"axis": 0}, set(),
                    {1: {0: "n"}}, 1),
    "unsqueeze": ("Unsqueeze", lambda n: [_r(n, 3), _i(0, 3)], {}, {1}, {0: {0: "n"}}, 1),
    "squeeze": ("Squeeze", lambda n: [_r(1, n, 1), _i(0)], {}, {1}, {0: {1: "n"}}, 1),
    "flatten": ("Flatten", lambda n: [_r(2, n, 3)], {"axis": 1}, set(), {0: {1: "n"}}, 1),
    "expand": ("Expand", lambda n: [_r(n, 1), _i(1, 4)], {}, {1}, {0: {0: "n"}}, 1),
    "tile": ("Tile", lambda n: [_r(n, 2), _i(2, 3)], {}, {1}, {0: {0: "n"}}, 1),
    "pad": ("Pad", lambda n: [_r(n, 2), _i(1, 0, 2, 1)], {}, {1}, {0: {0: "n"}}, 1),
    "shape": ("Shape", lambda n: [_r(n, 3)], {}, set(), {0: {0: "n"}}, 1),
    "layernorm": ("LayerNormalization", lambda n: [_r(n, 2, 8), _r(8)], {}, set(), {0: {0: "n"}}, 1),
    "rmsnorm": ("RMSNormalization", lambda n: [_r(n, 8), _r(8)], {}, set(), {0: {0: "n"}}, 1),
    "attention_cache": ("Attention", lambda n: [_r(1, 4, n, 8), _r(1, 2, n, 8), _r(1, 2, n, 8), None,
                                                _r(1, 2, 3, 8), _r(1, 2, 3, 8)], {"is_causal": 1}, set(),
                        {0: {2: "n"}, 1: {2: "n"}, 2: {2: "n"}}, 3),
    "attention_3d": ("Attention", lambda n: [_r(2, n, 16), _r(2, n, 8), _r(2, n, 8)],
                     {"q_num_heads": 4, "kv_num_heads": 2}, set(), {0: {1: "n"}, 1: {1: "n"}, 2: {1: "n"}}, 1),
    "rotary": ("RotaryEmbedding", lambda n: [_r(1, 2, n, 8), _r(1, n, 4), _r(1, n, 4)], {}, set(),
               {0: {2: "n"}, 1: {1: "n"}, 2: {1: "n"}}, 1),
    "quantize_blocked": ("QuantizeLinear", lambda n: [_r(n, 8), np.full((n, 2), 0.1, F32), np.zeros((n, 2), np.int8)],
                         {"axis": 1, "block_size": 4}, set(), {0: {0: "n"}, 1: {0: "n"}, 2: {0: "n"}}, 1),
    "topk": ("TopK", lambda n: [_r(n, 6), _i(2)], {"axis": 1}, {1}, {0: {0: "n"}}, 2),
    "einsum": ("Einsum", lambda n: [_r(n, 3, 4), _r(n, 4, 2)], {"equation": "bij,bjk->bik"}, set(),
               {0: {0: "n"}, 1: {0: "n"}}, 1),
    "cumsum": ("CumSum", lambda n: [_r(n, 3), np.array(0, np.int64)], {}, set(), {0: {0: "n"}}, 1),
    "where": ("Where", lambda n: [np.ones((n, 1), bool), _r(n, 3), _r(3)], {}, set(), {0: {0: "n"}, 1: {0: "n"}}, 1),
    "cast": ("Cast", lambda n: [_r(n, 2)], {"to": 10}, set(), {0: {0: "n"}}, 1),
    "depth_to_space": ("DepthToSpace", lambda n: [_r(1, 8, n, 2)], {"blocksize": 2}, set(), {0: {2: "n"}}, 1),
    "tensor_scatter": ("TensorScatter", lambda n: [_r(1, 2, 8, 4), _r(1, 2, n, 4)], {}, set(), {1: {2: "n"}}, 1),
    "linear_attention": ("LinearAttention", lambda n: [_r(1, n, 8), _r(1, n, 8), _r(1, n, 6)],
                         {"q_num_heads": 2, "kv_num_heads": 2, "update_rule": "linear"}, set(),
                         {0: {1: "n"}, 1: {1: "n"}, 2: {1: "n"}}, 2),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_symbolic_inference_binds_to_kernel_shapes(case):
    op, build, attrs, const, symbolic, outputs = CASES[case]
    g = load_onnx(one_node_model(op, build(2), attrs, outputs=outputs, const=const, symbolic=symbolic))
    for v in g.outputs:
        assert not any(is_unknown(d) for d in v.type.shape), f"{op}: {v.type} lost track of a dim"
    for n in (1, 3, 5):
        inputs = build(n)
        got = check_op(op, inputs, attrs, outputs=outputs, const=const, symbolic=symbolic, rtol=1e-4, atol=1e-5)
        # the unbound symbolic types, evaluated at these sizes, are the kernel's shapes
        binding = {name: int(np.shape(inputs[i])[k]) for i, axes in symbolic.items() for k, name in axes.items()}
        for v, a in zip(g.outputs, got):
            assert tuple(D.substitute(d, binding) for d in v.type.shape) == a.shape, (op, str(v.type), binding)
