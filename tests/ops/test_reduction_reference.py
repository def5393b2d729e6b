"""Reductions and row-wise ops against onnx.reference: Reduce* with random, empty and dynamic axes,
keepdims and noop_with_empty_axes; ArgMax ties; Softmax axes; scans; TopK ties; Einsum."""

from __future__ import annotations

import numpy as np
import pytest

from op_harness import check_op

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")  # log(0), empty max in the reference

_REDUCE = ["ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
           "ReduceSumSquare", "ReduceLogSum", "ReduceLogSumExp"]


@pytest.mark.parametrize("op", _REDUCE)
@pytest.mark.parametrize("seed", range(5))
def test_reduce_random_axes(op, seed):
    rng = np.random.default_rng(seed)
    rank = int(rng.integers(1, 5))
    shape = tuple(int(d) for d in rng.integers(1, 5, size=rank))
    x = rng.standard_normal(shape).astype(np.float32)
    if op in ("ReduceLogSum",):
        x = np.abs(x) + np.float32(0.1)
    n = int(rng.integers(0, rank + 1))
    axes = rng.permutation(rank)[:n] - rank * rng.integers(0, 2, size=n)  # some negative
    keepdims = int(rng.integers(0, 2))
    noop = int(rng.integers(0, 2))
    attrs = {"keepdims": keepdims, "noop_with_empty_axes": noop}
    inputs = [x, np.array(axes, np.int64)] if n or rng.random() < 0.5 else [x]
    check_op(op, inputs, attrs, const={1}, rtol=1e-4, atol=1e-5)
    if len(inputs) == 2:  # the same axes known only at run time
        check_op(op, inputs, attrs, rtol=1e-4, atol=1e-5, static_outputs=False)


@pytest.mark.parametrize("op", _REDUCE)
def test_reduce_over_an_empty_dim(op):
    x = np.zeros((2, 0, 3), np.float32)
    check_op(op, [x, np.array([1], np.int64)], {"keepdims": 1}, const={1})


@pytest.mark.parametrize("op", ["ReduceMax", "ReduceMin", "ReduceSum", "ReduceProd"])
@pytest.mark.parametrize("dt", [np.int32, np.int64, np.uint8])
def test_reduce_integers(op, dt):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 9, size=(3, 4)).astype(dt)
    check_op(op, [x, np.array([0], np.int64)], {"keepdims": 0}, const={1})


@pytest.mark.parametrize("op", ["ArgMax", "ArgMin"])
@pytest.mark.parametrize("axis,keepdims,last", [(0, 1, 0), (1, 0, 1), (-1, 1, 1), (-2, 0, 0)])
def test_argmax_ties(op, axis, keepdims, last):
    x = np.array([[1, 3, 3, 0], [2, 2, 1, 1], [0, 3, 1, 3]], np.float32)
    check_op(op, [x], {"axis": axis, "keepdims": keepdims, "select_last_index": last})


@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax", "Hardmax"])
@pytest.mark.parametrize("axis", [0, 1, 2, -1])
@pytest.mark.parametrize("dt", [np.float32, np.float16, np.float64])
def test_softmax_axes(op, axis, dt):
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((2, 3, 4)) * 4).astype(dt)
    if op == "Hardmax":
        x[0, 0, :2] = 9  # ties: the first maximum wins
    tol = 2e-3 if dt == np.float16 else 1e-5
    check_op(op, [x], {"axis": axis}, rtol=tol, atol=tol, symbolic={0: {0: "b"}})


def test_softmax_with_infinities():
    x = np.array([[-np.inf, 0.0, 1.0], [-np.inf, -np.inf, -np.inf], [np.inf, 0.0, 0.0]], np.float32)
    check_op("Softmax", [x], {"axis": -1})
    check_op("LogSoftmax", [x], {"axis": -1})


@pytest.mark.parametrize("op", ["CumSum", "CumProd"])
@pytest.mark.parametrize("exclusive,reverse", [(0, 0), (1, 0), (0, 1), (1, 1)])
@pytest.mark.parametrize("axis", [0, -1])
def test_scans(op, exclusive, reverse, axis):
    rng = np.random.default_rng(2)
    x = rng.uniform(0.5, 1.5, size=(3, 4)).astype(np.float32)
    check_op(op, [x, np.array(axis, np.int32)], {"exclusive": exclusive, "reverse": reverse}, rtol=1e-5)
    xi = rng.integers(-3, 4, size=(3, 4)).astype(np.int64)
    check_op(op, [xi, np.array(axis, np.int64)], {"exclusive": exclusive, "reverse": reverse})


@pytest.mark.parametrize("largest", [0, 1])
@pytest.mark.parametrize("axis", [0, 1, -1])
@pytest.mark.parametrize("k", [0, 1, 3])
def test_topk_ties_keep_the_lower_index(largest, axis, k):
    x = np.array([[3, 1, 3, 2], [0, 0, 5, 5], [2, 2, 2, 2]], np.float32)
    check_op("TopK", [x, np.array([k], np.int64)], {"axis": axis, "largest": largest}, outputs=2, const={1})
    check_op("TopK", [x.astype(np.int32), np.array([k], np.int64)], {"axis": axis, "largest": largest},
             outputs=2, static_outputs=False)


@pytest.mark.parametrize("equation,shapes", [
    ("ij,jk->ik", [(3, 4), (4, 5)]), ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]), ("ii->i", [(4, 4)]),
    ("ii", [(3, 3)]), ("ij->ji", [(2, 3)]), ("i,i", [(5,), (5,)]), ("i,j->ij", [(3,), (4,)]),
    ("...ij,...jk->...ik", [(2, 1, 3, 4), (5, 4, 2)]), ("bhqd,bhkd->bhqk", [(1, 2, 3, 4), (1, 2, 5, 4)]),
    ("ij,jk", [(2, 3), (3, 2)]), ("abc,cd,de->abe", [(2, 3, 4), (4, 5), (5, 2)])])
def test_einsum(equation, shapes):
    rng = np.random.default_rng(3)
    xs = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    check_op("Einsum", xs, {"equation": equation}, rtol=1e-5, atol=1e-5)


def test_det_of_batches():
    rng = np.random.default_rng(4)
    check_op("Det", [rng.standard_normal((2, 3, 3)).astype(np.float32)], rtol=1e-4)
    check_op("Det", [rng.standard_normal((4, 4)).astype(np.float64)])


@pytest.mark.parametrize("op", ["NegativeLogLikelihoodLoss", "SoftmaxCrossEntropyLoss"])
@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
@pytest.mark.parametrize("weighted,ignore,extra_dims", [(False, None, 0), (True, None, 1), (False, 2, 2),
                                                        (True, 0, 1)])
def test_losses(op, reduction, weighted, ignore, extra_dims):
    rng = np.random.default_rng(10)
    shape = (3, 5) + (2,) * extra_dims
    x = rng.standard_normal(shape).astype(np.float32)
    target = rng.integers(0, 5, size=(3,) + (2,) * extra_dims).astype(np.int64)
    attrs = {"reduction": reduction}
    if ignore is not None:
        attrs["ignore_index"] = ignore
    inputs = [x, target] + ([rng.uniform(0.5, 2, size=5).astype(np.float32)] if weighted else [])
    outputs = 2 if op == "SoftmaxCrossEntropyLoss" else 1
    check_op(op, inputs, attrs, outputs=outputs, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("outputs", [1, 4])
def test_unique_sorted_and_in_order_of_appearance(outputs):
    from op_harness import one_node_model
    from ridgeline.frontends.onnx import load_onnx
    from ridgeline.testing.onnx_backend import StrictInterpreter
    x = np.array([2, 1, 1, 3, 4, 3], np.int64)
    check_op("Unique", [x], {"sorted": 1}, outputs=outputs, static_outputs=False)
    # sorted=0 keeps first-occurrence order (the schema's example 1)
    g = load_onnx(one_node_model("Unique", [x], {"sorted": 0}, outputs=4))
    y, idx, inv, counts = (StrictInterpreter(g).run({"in0": x})[f"out{j}"] for j in range(4))
    assert y.tolist() == [2, 1, 3, 4] and idx.tolist() == [0, 1, 3, 4]
    assert inv.tolist() == [0, 1, 1, 2, 3, 2] and counts.tolist() == [1, 2, 2, 1]
    # along an axis, unique rows
    rows = np.array([[1, 0, 0], [1, 0, 0], [2, 3, 4]], np.float32)
    g = load_onnx(one_node_model("Unique", [rows], {"axis": 0, "sorted": 0}, outputs=4))
    y, idx, inv, counts = (StrictInterpreter(g).run({"in0": rows})[f"out{j}"] for j in range(4))
    assert y.tolist() == [[1, 0, 0], [2, 3, 4]] and inv.tolist() == [0, 0, 1] and counts.tolist() == [2, 1]


@pytest.mark.parametrize("op", ["HannWindow", "HammingWindow", "BlackmanWindow"])
@pytest.mark.parametrize("periodic", [0, 1])
def test_window_functions(op, periodic):
    check_op(op, [np.array(10, np.int64)], {"periodic": periodic}, const={0}, rtol=1e-6, atol=1e-7)
    check_op(op, [np.array(7, np.int32)], {"periodic": periodic, "output_datatype": 11}, static_outputs=False)
