"""Data-movement and view ops against onnx.reference: Slice clamping and negative steps, negative
indices, Pad modes, Trilu, Split variants, Expand, scatters, Reshape rules."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from op_harness import check_op

_BIG = np.iinfo(np.int64).max


@st.composite
def _slices(draw):
    rank = draw(st.integers(1, 4))
    shape = tuple(draw(st.integers(0, 6)) for _ in range(rank))
    axes = draw(st.lists(st.integers(-rank, rank - 1), min_size=1, max_size=rank, unique_by=lambda a: a % rank))
    bound = st.one_of(st.integers(-9, 9), st.sampled_from([_BIG, -_BIG - 1, 2 ** 31 - 1, -(2 ** 31)]))
    starts = [draw(bound) for _ in axes]
    ends = [draw(bound) for _ in axes]
    steps = [draw(st.integers(-3, 3).filter(bool)) for _ in axes]
    return shape, starts, ends, axes, steps


@settings(max_examples=120, deadline=None)
@given(_slices(), st.booleans(), st.booleans())
def test_slice_clamps_and_steps_like_onnx(case, constant, give_axes):
    shape, starts, ends, axes, steps = case
    x = np.arange(int(np.prod(shape)), dtype=np.float32).reshape(shape)
    i64 = lambda v: np.array(v, np.int64)  # noqa: E731
    if not give_axes:  # without axes, starts/ends address dims 0.. in order
        axes = list(range(len(starts)))
        if len(axes) > len(shape):
            return
    inputs = [x, i64(starts), i64(ends), i64(axes), i64(steps)]
    check_op("Slice", inputs, const={1, 2, 3, 4} if constant else {3, 4}, static_outputs=constant)


@pytest.mark.parametrize("axis", [0, 1, -1])
@pytest.mark.parametrize("idx_dt", [np.int64, np.int32])
def test_gather_negative_indices(axis, idx_dt):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 5, 3)).astype(np.float32)
    n = x.shape[axis]
    idx = rng.integers(-n, n, size=(2, 3)).astype(idx_dt)
    check_op("Gather", [x, idx], {"axis": axis})
    check_op("Gather", [x, np.array(-1, idx_dt)], {"axis": axis})  # a scalar index drops the dim
    idx_e = rng.integers(-n, n, size=tuple(3 if k == axis % 3 else d for k, d in enumerate(x.shape))).astype(idx_dt)
    check_op("GatherElements", [x, idx_e], {"axis": axis})


@pytest.mark.parametrize("batch_dims", [0, 1])
def test_gather_nd(batch_dims):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 4)).astype(np.float32)
    idx = np.stack([rng.integers(0, 3, size=(2, 5)), rng.integers(0, 4, size=(2, 5))], -1) if batch_dims else \
        np.stack([rng.integers(0, 2, size=(5,)), rng.integers(0, 3, size=(5,))], -1)
    check_op("GatherND", [x, idx.astype(np.int64)], {"batch_dims": batch_dims})


@pytest.mark.parametrize("mode", ["constant", "reflect", "edge", "wrap"])
@pytest.mark.parametrize("pads,axes", [([1, 2, 2, 1], None), ([0, 3, 1, 0], None), ([2, 1], [1]),
                                       ([1, 2], [-2])])
def test_pad_modes(mode, pads, axes):
    x = np.arange(20, dtype=np.float32).reshape(4, 5)
    inputs = [x, np.array(pads, np.int64), np.array(2.5, np.float32) if mode == "constant" else None]
    if axes is not None:
        inputs.append(np.array(axes, np.int64))
    check_op("Pad", inputs, {"mode": mode}, const={1, 3})


@pytest.mark.parametrize("mode", ["constant", "reflect", "edge", "wrap"])
def test_negative_pads_crop(mode):
    """ONNX allows negative pads (they remove elements); onnx.reference cannot run them, so the
    expectation is numpy's pad of the cropped array."""
    from op_harness import one_node_model
    from ridgeline.frontends.onnx import load_onnx
    from ridgeline.testing.onnx_backend import StrictInterpreter
    x = np.arange(20, dtype=np.float32).reshape(4, 5)
    pads = np.array([1, -2, -1, 2], np.int64)  # dim0: +1 before, -1 after; dim1: -2 before, +2 after
    m = one_node_model("Pad", [x, pads], {"mode": mode}, const={1})
    g = load_onnx(m)
    got = StrictInterpreter(g).run({"in0": x})["out0"]
    np_mode = {"constant": "constant", "reflect": "reflect", "edge": "edge", "wrap": "wrap"}[mode]
    want = np.pad(x[:3, 2:], [(1, 0), (0, 2)], mode=np_mode)
    np.testing.assert_array_equal(got, want)
    assert g.outputs[0].type.shape == want.shape


@pytest.mark.parametrize("upper", [0, 1])
@pytest.mark.parametrize("k", [None, 0, 2, -1, -7, 9])
def test_trilu(upper, k):
    x = np.arange(2 * 4 * 5, dtype=np.int64).reshape(2, 4, 5)
    check_op("Trilu", [x] + ([] if k is None else [np.array(k, np.int64)]), {"upper": upper}, const={1})


@pytest.mark.parametrize("case", [
    ({"axis": 0}, [2, 4], 2), ({"axis": 1, "num_outputs": 3}, None, 3), ({"axis": -1, "num_outputs": 4}, None, 4),
    ({"axis": 1}, [0, 5, 2], 3), ({"axis": 1}, None, 7), ({"axis": 0, "num_outputs": 2}, None, 2)])
def test_split_variants(case):
    attrs, sizes, n = case
    x = np.arange(6 * 7, dtype=np.float32).reshape(6, 7)
    inputs = [x] if sizes is None else [x, np.array(sizes, np.int64)]
    # without sizes or num_outputs the outputs split evenly: the opset-13 form
    opset = 13 if sizes is None and "num_outputs" not in attrs else 18
    check_op("Split", inputs, attrs, outputs=n, const={1}, opset=opset)
    if sizes is not None:  # split sizes known only at run time: same values, unknown dims
        check_op("Split", inputs, attrs, outputs=n, static_outputs=False)


@pytest.mark.parametrize("shape,target", [((3, 1), (2, 3, 4)), ((1,), (5,)), ((2, 1, 4), (1, 3, 1)),
                                          ((4,), (3, 1)), ((1, 1), (1,))])
def test_expand_is_bidirectional(shape, target):
    x = np.arange(int(np.prod(shape)), dtype=np.float32).reshape(shape)
    check_op("Expand", [x, np.array(target, np.int64)], const={1})
    check_op("Expand", [x, np.array(target, np.int64)], const={1}, symbolic={0: {0: "a"}} if shape[0] > 1 else None)


@pytest.mark.parametrize("target,allowzero", [([0, -1], 0), ([2, 0, 3], 0), ([-1], 0), ([6, 0], 1),
                                              ([0, 0, 3, 2], 0)])
def test_reshape_rules(target, allowzero):
    x = np.arange(12, dtype=np.float32).reshape(2, 1, 3, 2) if target != [6, 0] else np.zeros((6, 0), np.float32)
    if target == [2, 0, 3]:
        x = x.reshape(2, 2, 3)
    check_op("Reshape", [x, np.array(target, np.int64)], {"allowzero": allowzero}, const={1})


@pytest.mark.parametrize("axis", [-3, -2, -1, 0, 1, 2, 3])
def test_flatten_axes(axis):
    check_op("Flatten", [np.zeros((2, 3, 4), np.float32)], {"axis": axis})


def test_squeeze_unsqueeze_negative_and_unsorted_axes():
    x = np.zeros((1, 3, 1, 4), np.float32)
    check_op("Squeeze", [x, np.array([-2, 0], np.int64)], const={1})
    check_op("Squeeze", [x])
    check_op("Unsqueeze", [np.zeros((3, 4), np.float32), np.array([3, -5, 1], np.int64)], const={1})


@pytest.mark.parametrize("reduction", ["none", "add", "mul", "max", "min"])
def test_scatter_nd_and_elements(reduction):
    rng = np.random.default_rng(2)
    data = rng.standard_normal((4, 5, 3)).astype(np.float32)
    idx = np.array([[[0, 1]], [[-1, 2]], [[2, -5]]], np.int64)  # slices, negative indices
    upd = rng.standard_normal((3, 1, 3)).astype(np.float32)
    check_op("ScatterND", [data, idx, upd], {"reduction": reduction})
    e_idx = np.array([[[1, -1, 0]], [[3, 2, -4]]], np.int64)
    e_upd = rng.standard_normal((2, 1, 3)).astype(np.float32)
    check_op("ScatterElements", [data, e_idx, e_upd], {"axis": 0, "reduction": reduction})


@pytest.mark.parametrize("mode", ["linear", "circular"])
@pytest.mark.parametrize("axis", [-2, 2, 1])
def test_tensor_scatter_kv_cache_update(mode, axis):
    rng = np.random.default_rng(3)
    shape = [2, 3, 6, 4]
    ax = axis % 4
    past = rng.standard_normal(shape).astype(np.float32)
    upd_shape = list(shape)
    upd_shape[ax] = 2
    upd = rng.standard_normal(upd_shape).astype(np.float32)
    starts = np.array([1, 5 if mode == "circular" else 4], np.int64)[: shape[0]]
    if ax != 2:
        starts = np.array([0, 1], np.int64)
    check_op("TensorScatter", [past, upd, starts], {"axis": axis, "mode": mode})
    check_op("TensorScatter", [past, upd], {"axis": axis, "mode": mode})


@pytest.mark.parametrize("axis", [-1, 0, 1])
def test_one_hot_negative_and_out_of_range(axis):
    idx = np.array([[0, -1, 3], [7, -5, 2]], np.int64)
    values = np.array([0.5, 3.0], np.float32)
    check_op("OneHot", [idx, np.array(5, np.int64), values], {"axis": axis}, const={1})
    check_op("OneHot", [idx.astype(np.float32), np.array(5.0, np.float32), values], {"axis": axis}, const={1})


@pytest.mark.parametrize("op", ["DepthToSpace", "SpaceToDepth"])
@pytest.mark.parametrize("mode", ["DCR", "CRD"])
def test_depth_space(op, mode):
    x = np.arange(2 * 8 * 4 * 6, dtype=np.float32).reshape(2, 8, 4, 6)
    check_op(op, [x], {"blocksize": 2, "mode": mode})


def test_transpose_concat_tile_compress_nonzero():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 3, 4)).astype(np.float32)
    check_op("Transpose", [x], {"perm": [2, 0, 1]})
    check_op("Transpose", [x])
    check_op("Concat", [x, x[:, :1], x[:, :2]], {"axis": -2})
    check_op("Tile", [x, np.array([1, 2, 3], np.int64)], const={1})
    check_op("Compress", [x, np.array([True, False, True])], {"axis": 1}, static_outputs=False)
    check_op("Compress", [x, np.array([False, True, True, False, True])], static_outputs=False)
    check_op("NonZero", [(x > 0.3)], static_outputs=False)
