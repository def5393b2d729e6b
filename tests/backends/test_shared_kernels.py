"""One interpreter, one kernel-math layer: the generic interpreter's contract (values freed after
their last use and never before, every node run once, any kernel table and namespace) on random
graphs, the shared convolution geometry against its definition, and torch's library calls
(``conv*d``, ``conv_transpose*d``, ``scaled_dot_product_attention``) against the numpy reference
over generated configurations."""

from __future__ import annotations

import numpy as np
import pytest
from cases import assert_close
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ridgeline.backends.interpreter import NUMPY, Interpreter, evaluate_node, last_uses
from ridgeline.backends.kernel_math.conv import geometry, window_kinds
from ridgeline.backends.kernel_table import KernelTable
from ridgeline.backends.numpy import NumpyBackend
from ridgeline.backends.numpy.kernels import TABLE
from ridgeline.ir import Builder, Graph, tensor
from ridgeline.ir.errors import BackendError
from ridgeline.testing import strategies as rs

FAST = settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))


# --------------------------------------------------------------------------- the interpreter
class _Counting(KernelTable):
    """The numpy kernels, counting calls per node and recording which values are alive."""

    def __init__(self):
        super().__init__(TABLE.package, "counting")
        self.calls: dict[int, int] = {}

    def get(self, op):
        fn = TABLE.get(op)
        if fn is None:
            return None

        def counted(node, *args):
            self.calls[id(node)] = self.calls.get(id(node), 0) + 1
            return fn(node, *args)
        return counted


@FAST
@given(data=st.data())
def test_generic_interpreter_matches_the_reference_and_frees_after_last_use(data):
    g = data.draw(rs.graphs(dtypes=["f32", "i64", "bool"]))
    inputs = data.draw(rs.inputs_for(g))
    table = _Counting()
    interp = Interpreter(g, table, NUMPY)
    try:
        want = NumpyBackend().compile(g).run(inputs)
    except BackendError as e:   # bad data (an index out of range): the generic one says the same
        with pytest.raises(BackendError, match=str(e).split(":")[0]):
            interp.run(inputs)
        return
    got = interp.run(inputs)
    assert list(got) == list(want)
    for k in want:
        np.testing.assert_array_equal(got[k], want[k])
    ran = [n for n in g if n.op != "Fused"]
    assert all(table.calls.get(id(n)) == 1 for n in ran), "every node runs exactly once"
    # a freed value is read by no later node and is no output; every other read value is freed
    order = {id(n): i for i, n in enumerate(g)}
    outputs = {id(v) for v in g.outputs}
    freed = {}
    for nid, values in last_uses(g).items():
        for v in values:
            assert id(v) not in freed, f"%{v.name} freed twice"
            freed[id(v)] = order[nid]
    for n in g:
        for v in n.inputs:
            if v is None or v.const:
                continue
            if id(v) in outputs:
                assert id(v) not in freed
            else:
                assert freed[id(v)] >= order[id(n)], f"%{v.name} freed before {n.op} reads it"


def test_evaluate_node_is_one_line_on_bad_data_and_checks_the_declared_shape():
    g = Graph("gather")
    b = Builder(g)
    x = g.add_input("x", tensor("f32", 3))
    i = g.add_input("i", tensor("i64", 2))
    g.outputs = [b.Gather(x, i, axis=0)]
    node = g.nodes[0]
    with pytest.raises(BackendError, match=r"failed at run time: IndexError"):
        evaluate_node(node, [np.zeros(3, np.float32), np.array([0, 7])], TABLE)
    out = evaluate_node(node, [np.arange(3, dtype=np.float32), np.array([2, 0])], TABLE)
    np.testing.assert_array_equal(out[0], [2.0, 0.0])
    with pytest.raises(BackendError, match="kernel produced"):   # a 4-element x gives the declared 2
        evaluate_node(node, [np.zeros(4, np.float32), np.zeros((1, 2), np.int64)], TABLE)


# --------------------------------------------------------------------------- conv geometry
class _Attrs:
    def __init__(self, **attrs):
        self.attrs = attrs
        self.spec = self

    def attr(self, name, default=None):
        return self.attrs.get(name, default)


def _kinds_by_definition(dims, kernel_shape, spatial):
    """Pad each axis's coordinates, code them, and read the windows (the old numpy way)."""
    codes = []
    for (out, b, e, s, dl), k, size in zip(dims, kernel_shape, spatial):
        need = (out - 1) * s + (k - 1) * dl + 1
        pos = np.arange(-b, -b + max(need, size + b + e))
        code = np.where((pos >= 0) & (pos < size), 0, np.where(pos < size + e, 1, 2))
        codes.append(np.array([[code[o * s + j * dl] for j in range(k)] for o in range(out)]))
    n = len(dims)
    kind = np.zeros([d[0] for d in dims] + list(kernel_shape), np.int8)
    for i, c in enumerate(codes):
        shape = [1] * (2 * n)
        shape[i], shape[n + i] = c.shape
        kind = np.maximum(kind, c.reshape(shape))
    return kind


@FAST
@given(n=st.integers(1, 3), data=st.data())
def test_window_codes_match_their_definition(n, data):
    kernel = [data.draw(st.integers(1, 4)) for _ in range(n)]
    strides = [data.draw(st.integers(1, 3)) for _ in range(n)]
    dil = [data.draw(st.integers(1, 3)) for _ in range(n)]
    pads = [data.draw(st.integers(0, k - 1)) for k in kernel] * 2
    ceil = data.draw(st.integers(0, 1))
    spatial = [data.draw(st.integers((k - 1) * d + 1, (k - 1) * d + 7)) for k, d in zip(kernel, dil)]
    node = _Attrs(strides=strides, dilations=dil, pads=pads, ceil_mode=ceil, auto_pad="NOTSET")
    dims = geometry(node, tuple(spatial), tuple(kernel))
    np.testing.assert_array_equal(window_kinds(dims, tuple(kernel), tuple(spatial)),
                                  _kinds_by_definition(dims, kernel, spatial))


# --------------------------------------------------------------------------- torch's library calls


def _torch_matches_numpy(g: Graph, inputs: dict, rtol: float = 1e-4) -> None:
    pytest.importorskip("torch")
    from ridgeline.backends.registry import get_backend
    want = NumpyBackend().compile(g).run(inputs)
    got = get_backend("torch").compile(g, threads=1).run(inputs)
    for k in want:
        assert_close(want[k], np.asarray(got[k]), rtol=rtol, what=k)


@st.composite
def conv_graphs(draw):
    """Conv or ConvTranspose, 1-3 spatial dims, groups, asymmetric pads or auto_pad, strides,
    dilations, output_padding, with and without bias, f32 or f64."""
    n = draw(st.integers(1, 3))
    transpose = draw(st.booleans())
    dt = draw(st.sampled_from(["f32", "f64"]))
    g_ = draw(st.sampled_from([1, 2]))
    c, m = g_ * draw(st.integers(1, 2)), g_ * draw(st.integers(1, 2))
    kernel = [draw(st.integers(1, 3)) for _ in range(n)]
    strides = [draw(st.integers(1, 3)) for _ in range(n)]
    dil = [draw(st.integers(1, 2)) for _ in range(n)]
    spatial = [draw(st.integers((k - 1) * d + 1, (k - 1) * d + 5)) for k, d in zip(kernel, dil)]
    auto = draw(st.sampled_from(["NOTSET", "NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"]))
    attrs = {"strides": strides, "dilations": dil, "group": g_, "auto_pad": auto}
    if auto == "NOTSET":
        attrs["pads"] = [draw(st.integers(0, k - 1)) for k in kernel] + [draw(st.integers(0, k - 1)) for k in kernel]
    if transpose and draw(st.booleans()):
        attrs["output_padding"] = [draw(st.integers(0, max(s, d) - 1)) for s, d in zip(strides, dil)]
    g = Graph("conv")
    b = Builder(g)
    x = g.add_input("x", tensor(dt, 2, c, *spatial))
    w = g.add_input("w", tensor(dt, *((c, m // g_) if transpose else (m, c // g_)), *kernel))
    bias = g.add_input("b", tensor(dt, m)) if draw(st.booleans()) else None
    op = b.ConvTranspose if transpose else b.Conv
    g.outputs = [op(x, w, bias, **attrs)]
    return g


@FAST
@given(data=st.data())
def test_torch_conv_calls_match_the_reference(data):
    try:
        g = data.draw(conv_graphs())
    except Exception as e:   # a geometry the spec rejects (an empty output) is not a case
        if "Error" in type(e).__name__:
            return
        raise
    _torch_matches_numpy(g, data.draw(rs.inputs_for(g)))


@FAST
@given(causal=st.booleans(), gqa=st.sampled_from([1, 2, 4]), valid=st.lists(st.integers(0, 5), min_size=2,
       max_size=2), left=st.sampled_from([-1, 0, 2]), three=st.booleans())
def test_torch_sdpa_gives_zeros_where_a_query_sees_no_key(causal, gqa, valid, left, three):
    """A query that may see no key gives zeros in the reference; torch's SDPA path must too (this
    torch's CPU SDPA already does; the kernel forces it for builds that give NaN)."""
    g = Graph("attn")
    b = Builder(g)
    sq = 5
    hkv, d = 2, 4
    shape = (lambda h, dd: (2, sq, h * dd)) if three else (lambda h, dd: (2, h, sq, dd))
    q = g.add_input("q", tensor("f32", *shape(hkv * gqa, d)))
    k = g.add_input("k", tensor("f32", *shape(hkv, d)))
    v = g.add_input("v", tensor("f32", *shape(hkv, d)))
    nonpad = g.add_input("n", tensor("i64", 2))
    attrs = {"is_causal": int(causal), "left_window_size": left}
    if three:
        attrs.update(q_num_heads=hkv * gqa, kv_num_heads=hkv)
    g.outputs = [b.Attention(q, k, v, None, None, None, nonpad, _outputs=1, **attrs)]
    rng = np.random.default_rng(0)
    inputs = {p.name: rng.standard_normal(p.type.shape).astype(np.float32) for p in g.inputs[:3]}
    inputs["n"] = np.array(valid, np.int64)
    _torch_matches_numpy(g, inputs)


# --------------------------------------------------------------------------- one kernel per op
#: the ops torch runs with its own library function in place of the shared reference kernel
TORCH_OWN = {"Conv", "ConvInteger", "ConvTranspose", "Attention", "Sigmoid", "Gelu"}


def test_every_kernel_is_written_once_and_torch_replaces_only_its_library_calls():
    pytest.importorskip("torch")
    from ridgeline.backends.torch.kernels import TABLE as TORCH
    numpy_kernels, torch_kernels = TABLE.all(), TORCH.all()
    assert set(numpy_kernels) == set(torch_kernels)
    assert {fn.__module__.rsplit(".", 1)[0] for fn in numpy_kernels.values()} == {"ridgeline.backends.kernel_math"}
    assert {op for op, fn in torch_kernels.items() if fn is not numpy_kernels[op]} == TORCH_OWN


def _bad_index_graph(op: str, shape: list[int], axis: int, bad: int) -> tuple[Graph, dict]:
    """``op`` reading or writing at index ``bad`` on ``axis`` (0 for ScatterND) of an f32 tensor."""
    g = Graph("bad_index")
    b = Builder(g)
    x = g.add_input("x", tensor("f32", *shape))
    idx_shape = {"Gather": [2], "ScatterND": [1, 1], "GatherND": [1, 1]}.get(op, shape)
    idx = np.zeros(idx_shape, np.int64)
    idx.reshape(-1)[-1] = bad
    i = g.add_input("i", tensor("i64", *idx_shape))
    inputs = {"x": np.ones(shape, np.float32), "i": idx}
    if op in ("Gather", "GatherElements"):
        g.outputs = [getattr(b, op)(x, i, axis=axis)]
    elif op == "GatherND":
        g.outputs = [b.GatherND(x, i)]
    else:
        up_shape = [1, *shape[1:]] if op == "ScatterND" else shape
        u = g.add_input("u", tensor("f32", *up_shape))
        inputs["u"] = np.ones(up_shape, np.float32)
        g.outputs = [b.ScatterND(x, i, u) if op == "ScatterND" else b.ScatterElements(x, i, u, axis=axis)]
    return g, inputs


@FAST
@given(op=st.sampled_from(["Gather", "GatherElements", "GatherND", "ScatterElements", "ScatterND"]),
       shape=st.lists(st.integers(1, 4), min_size=1, max_size=3), data=st.data())
def test_an_index_out_of_range_is_a_one_line_error_on_numpy_and_torch(op, shape, data):
    """Indices are wrapped and checked once for both libraries, so a scatter never folds a bad
    index into another row's flat number."""
    pytest.importorskip("torch")
    from ridgeline.backends.registry import get_backend
    axis = 0 if op in ("ScatterND", "GatherND") else data.draw(st.integers(0, len(shape) - 1))
    bad = data.draw(st.sampled_from([shape[axis], -shape[axis] - 1, 100]))
    g, inputs = _bad_index_graph(op, shape, axis, bad)
    for exe in (NumpyBackend().compile(g), get_backend("torch").compile(g, threads=1)):
        with pytest.raises(BackendError, match=f"{op} node .* IndexError: index out of range"):
            exe.run(inputs)


class _Node(_Attrs):
    def __init__(self, op, **attrs):
        super().__init__(**attrs)
        self.op, self.outputs = op, [None] * 4


def test_kernels_give_c_order_numpy_results_torch_views_and_the_input_device(monkeypatch):
    """numpy results C-contiguous as numpy's own calls gave them, torch's Expand a view, Range on
    the inputs' device, Sign(NaN) NaN and a scatter into an empty tensor the tensor."""
    torch = pytest.importorskip("torch")
    from ridgeline.backends.kernel_math import elementwise, movement
    from ridgeline.backends.kernel_math import shape as shape_ops
    to = np.array([1, 8, 4, 4, 2])
    assert movement.expand(_Node("Expand"), np.ones((1, 8, 1, 4, 2), np.float32), to).flags.c_contiguous
    t = torch.ones(1, 8, 1, 4, 2)
    assert movement.expand(_Node("Expand"), t, to).data_ptr() == t.data_ptr()
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    for mode in ("edge", "reflect", "wrap"):
        assert movement.pad(_Node("Pad", mode=mode), x, np.array([1, 2, 1, 2])).flags.c_contiguous
    assert shape_ops.bit_cast(_Node("BitCast", to="i32"), x.T).flags.c_contiguous
    assert movement.unique(_Node("Unique", axis=1, sorted=1), x[:, [0, 1, 0]])[0].flags.c_contiguous
    empty = np.zeros((2, 0), np.float32)
    assert movement.scatter_nd(_Node("ScatterND", reduction="none"), empty, np.array([[1]]),
                               np.zeros((1, 0), np.float32)).shape == (2, 0)
    for nan in (np.array([np.nan, -2.0]), torch.tensor([float("nan"), -2.0])):
        assert np.isnan(np.asarray(elementwise.sign_erf(_Node("Sign"), nan))[0])
    seen, arange = [], torch.arange
    monkeypatch.setattr(torch, "arange", lambda *a, **k: seen.append(k.get("device")) or arange(*a, **k))
    shape_ops.range_(_Node("Range", stash_type=1), *(torch.tensor(v) for v in (0.0, 3.0, 1.0)))
    assert seen == [torch.device("cpu")]
