"""Hostile numbers and values: each is one clear error (or a correct result), never a traceback, a
trap, a warning or an unbounded allocation."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ridgeline as rl
from ridgeline.cli.common import MAX_DIM, UsageError, parse_dims, parse_int
from ridgeline.ir import Graph, TensorType, parse_graph
from ridgeline.ir.dtypes import DTYPES
from ridgeline.ir.errors import ParseError, PipelineError, RidgelineError, VerifyError
from ridgeline.ir.ops import all_specs


# ----------------------------------------------------------------------------- CLI numbers
@settings(max_examples=300, deadline=None)
@given(text=st.one_of(st.text(max_size=30), st.integers(-2 ** 70, 2 ** 70).map(str),
                      st.sampled_from(["1_000", "٣", "２", " 7", "+3", "0x10", "1e3", "9" * 5000, "-0", "00012"])))
def test_parse_int_takes_plain_ascii_digits_in_range_only(text):
    try:
        v = parse_int(text, "--x", 0, 2 ** 40)
    except ValueError as e:
        assert "--x" in str(e)
        return
    assert text.strip().isascii() and text.strip().lstrip("-").isdigit()
    assert v == int(text) and 0 <= v <= 2 ** 40


@pytest.mark.parametrize("item", ["batch=1_000", "batch=٣", "batch=２", "batch=99999999999999999999", "batch=-1",
                                  f"batch={MAX_DIM + 1}", "batch", "=3", "batch=1e3"])
def test_bad_dim_bindings_are_usage_errors(item):
    with pytest.raises(UsageError):
        parse_dims([item])


@pytest.mark.parametrize("argv", [
    ["run", "gpt2", "--seed", "-1"], ["run", "gpt2", "--seed", "1_0"], ["estimate", "llama-3-8b", "--context", "9" * 20],
    ["estimate", "llama-3-8b", "--batch", "1000000000"], ["estimate", "llama-3-8b", "--batch", "٣"],
    ["run", "gpt2", "--threads", "0"], ["calibrate", "--threads", "99999999999999999999"],
    ["estimate", "llama-3-8b", "--tp", "99999999"], ["compare", "gpt2", "--repeat", "-3"],
])
def test_cli_refuses_hostile_numbers_in_one_line(argv, capsys):
    from ridgeline.cli import main
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_threads_are_capped_to_the_machine():
    from ridgeline.backends.threads import available_cores, check_threads
    assert check_threads(available_cores()) == available_cores()
    for bad in (available_cores() + 1, 1_000_000, 0, -1, True, 2.0):
        with pytest.raises(RidgelineError):
            check_threads(bad)


# ----------------------------------------------------------------------------- pass options
@pytest.mark.parametrize("pipeline", ["fuse-elementwise{max-nodes=-1}", "fuse-elementwise{max-nodes=0}",
                                      "quantize{samples=-1}", "quantize{percentile=150}", "quantize{percentile=-1}",
                                      "quantize{percentile=nan}", "fold-constants{size-limit=-1}",
                                      "fuse-elementwise{max-nodes=1_0}", "fuse-elementwise{max-nodes=٣}",
                                      "cse{max-constant-elements=" + "9" * 50 + "}"])
def test_pass_options_are_checked_against_their_declared_ranges(pipeline):
    from ridgeline.models import build
    g = build("gpt2", phase="decode", batch=1, context=8)
    with pytest.raises(PipelineError, match="option"):
        rl.optimize(g, pipeline)


def test_options_are_checked_from_python_too():
    from ridgeline.passes.registry import get_pass
    g = Graph("g")
    with pytest.raises(PipelineError, match="max-nodes"):
        get_pass("fuse-elementwise")(max_nodes=-1)(g)


# ----------------------------------------------------------------------------- op attributes
def _flag_attrs():
    return [(s.name, a.name) for s in all_specs().values() for a in s.attrs.values() if a.choices == (0, 1)]


def test_every_onnx_flag_attribute_accepts_only_0_and_1():
    flags = _flag_attrs()
    assert ("Reshape", "allowzero") in flags and ("ReduceSum", "keepdims") in flags
    from ridgeline.ir.ops import find_spec
    for op, attr in flags:
        a = find_spec(op).attrs[attr]
        assert a.check(0) is None and a.check(1) is None
        assert a.check(100) and a.check(-1)


@pytest.mark.parametrize("op, attrs", [("Reshape", {"allowzero": 100}), ("LayerNormalization", {"epsilon": -1e38}),
                                       ("LayerNormalization", {"epsilon": float("nan")})])
def test_op_attributes_are_validated_by_their_specs(op, attrs):
    g = Graph("g")
    x = g.add_input("x", TensorType(DTYPES["f32"], (2, 3)))
    ins = [x, g.add_constant("s", np.array([3, 2], np.int64))] if op == "Reshape" else \
          [x, g.add_constant("w", np.ones(3, np.float32))]
    with pytest.raises(VerifyError, match=next(iter(attrs))):
        g.add_node(op, ins, attrs)


@pytest.mark.parametrize("indices", [[2 ** 62], [-5], [4], [-2 ** 63]])
def test_gather_constant_indices_are_checked_against_the_dim(indices):
    g = Graph("g")
    x = g.add_input("x", TensorType(DTYPES["f32"], (4, 3)))
    with pytest.raises(VerifyError, match="out of range"):
        g.add_node("Gather", [x, g.add_constant("i", np.array(indices, np.int64))], {})


def test_gather_on_a_scalar_is_refused():
    g = Graph("g")
    x = g.add_input("x", TensorType(DTYPES["f32"], ()))
    with pytest.raises(VerifyError, match="rank"):
        g.add_node("Gather", [x, g.add_constant("i", np.array(0, np.int64))], {})


@settings(max_examples=60, deadline=None)
@given(start=st.sampled_from([-2 ** 63, -2 ** 62, -5, -1, 0, 3, 2 ** 62, 2 ** 63 - 1]),
       end=st.sampled_from([-2 ** 63, -1, 0, 2, 5, 2 ** 63 - 1]), step=st.sampled_from([-2 ** 63, -2, -1, 1, 3, 2 ** 63 - 1]))
def test_slice_with_extreme_bounds_matches_numpy(start, end, step):
    g = Graph("g")
    x = g.add_input("x", TensorType(DTYPES["f32"], (5, 2)))
    c = [g.add_constant(n, np.array([v], np.int64)) for n, v in (("s", start), ("e", end), ("a", 0), ("t", step))]
    n = g.add_node("Slice", [x, *c], {})
    g.outputs = [n.outputs[0]]
    data = np.arange(10, dtype=np.float32).reshape(5, 2)
    expect = data[slice(start, end, step)]
    assert n.outputs[0].type.shape == expect.shape
    np.testing.assert_array_equal(next(iter(rl.compile(g, backend="numpy").run({"x": data}).values())), expect)


# ----------------------------------------------------------------------------- .rir text
_DEEP = 10_000


@pytest.mark.parametrize("text, fragment", [
    ("graph @g(%x: f32[2]) -> (%y: f32[2]) {\n  const %c: f32[1] = " + "[" * _DEEP + "1" + "]" * _DEEP +
     "\n  %y = Relu(%x) : f32[2]\n  return %y\n}\n", "nested"),
    ("graph @g(%x: f32[2]) -> (%y: f32[2]) {\n  meta " + "{a=" * _DEEP + "1" + "}" * _DEEP +
     "\n  %y = Relu(%x) : f32[2]\n  return %y\n}\n", "nested"),
    ("graph @g(%x: f32[2]) -> (%y: f32[2]) {\n  const %c: i64[1] = [" + "9" * 5000 + "]\n  %y = Relu(%x) : f32[2]\n"
     "  return %y\n}\n", "digits"),
    ("graph @g(%x: f32[2]) -> (%y: f32[2]) {\n  const %c: f16[1] = [1e300]\n  %y = Relu(%x) : f32[2]\n  return %y\n}\n",
     "does not fit"),
    ("graph @g(%x: f32[2]) -> (%y: f32[2]) {\n  const %c: u8[1] = [300]\n  %y = Relu(%x) : f32[2]\n  return %y\n}\n",
     "does not fit"),
    ("graph @g(%x: f32[99999999999999999999]) -> (%y: f32[2]) {\n  %y = Relu(%x) : f32[2]\n  return %y\n}\n", "beyond"),
    ("graph @g(%x: f32[1099511627776, 1099511627776]) -> (%y: f32[2]) {\n  %y = Relu(%x) : f32[2]\n  return %y\n}\n",
     "beyond"),
    ("graph @g(%x: f32[٣]) -> (%y: f32[2]) {\n  %y = Relu(%x) : f32[2]\n  return %y\n}\n", "unexpected character"),
])
def test_hostile_rir_text_is_one_parse_error_without_warnings(text, fragment):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ParseError, match=fragment):
            parse_graph(text)


def test_fused_bodies_nested_past_the_limit_are_refused():
    body = "graph @b(%p: f32[2]) -> (%q: f32[2]) { %q = Relu(%p) : f32[2] return %q }"
    for _ in range(1000):
        body = "graph @b(%p: f32[2]) -> (%q: f32[2]) { %q = Fused(%p) {kind = \"k\"} : f32[2] body " + body + " return %q }"
    with pytest.raises(ParseError, match="nested"):
        parse_graph(body)


def test_minus_1e999_is_minus_inf_without_a_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        g = parse_graph("graph @g(%x: f32[1]) -> (%y: f32[1]) {\n  const %c: f32[1] = [-1e999]\n"
                        "  %y = Add(%x, %c) : f32[1]\n  return %y\n}\n")
    assert g.constants["c"].data[0] == -np.inf


# ----------------------------------------------------------------------------- ONNX names
def test_invalid_utf8_names_are_one_error(tmp_path):
    from onnx import helper
    from onnx_builders import mlp_model

    from ridgeline.frontends.onnx import load_onnx
    m = mlp_model()
    m.graph.node[0].name = "QQQQ"
    data = m.SerializeToString().replace(b"QQQQ", b"\xff\xfe\xfd\xfc")
    with pytest.raises(RidgelineError, match="UTF-8"):
        load_onnx(data)
    bad = helper.make_model(helper.make_graph([helper.make_node("Foo", ["x"], ["y"], name="QQ")], "g",
                                              [helper.make_tensor_value_info("x", 1, [2])],
                                              [helper.make_tensor_value_info("y", 1, [2])]))
    with pytest.raises(RidgelineError, match="UTF-8"):
        load_onnx(bad.SerializeToString().replace(b"\x02QQ", b"\x02\xff\xfe"))


def test_torch_refuses_an_int4_input_at_compile_time():
    g = Graph("g")
    x = g.add_input("x", TensorType(DTYPES["i4"], (4,)))
    n = g.add_node("Cast", [x], {"to": "f32"})
    g.outputs = [n.outputs[0]]
    with pytest.raises(RidgelineError, match="i4"):
        rl.compile(g, backend="torch")


@pytest.mark.parametrize("kw", [{"batch": 10 ** 12}, {"context": 10 ** 15}, {"batch": 0}, {"context": -1},
                                {"batch": "1_000"}, {"batch": True and 2.5}])
def test_presets_refuse_unbounded_sizes(kw):
    from ridgeline import models
    with pytest.raises(RidgelineError):
        models.build("llama-3-8b", **kw)


def test_an_estimate_beyond_the_interconnect_says_so_before_placing():
    from ridgeline import models
    g = models.build("llama-3-8b", batch=2 ** 20, context=2 ** 30)
    with pytest.raises(RidgelineError, match="fits no device count"):
        rl.estimate(g, target="groq-lpu")


@pytest.mark.parametrize("size", [2 ** 41, 2 ** 70, 10 ** 30])
def test_bind_refuses_dims_beyond_any_tensor(size):
    from onnx_builders import mlp_model

    from ridgeline.frontends.onnx import load_onnx
    g = load_onnx(mlp_model())
    with pytest.raises(RidgelineError, match="beyond"):
        g.bind(batch=size)


def _onnx_reshape_to(shape: list[int]):
    from onnx import TensorProto, helper, numpy_helper
    g = helper.make_graph([helper.make_node("Reshape", ["x", "s"], ["y"])], "r",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                          initializer=[numpy_helper.from_array(np.array(shape, np.int64), "s")])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 20)])


def test_a_reshape_that_cannot_bind_is_one_line_on_llvm(tmp_path, run_cli):
    """Fuzz seed 60093: llvm logged a warning that the dims would not bind, then the error: two lines.
    (A subprocess: pytest's log capture would swallow the warning in-process.)"""
    p = tmp_path / "m.onnx"
    p.write_bytes(_onnx_reshape_to([100, 4]).SerializeToString())
    r = run_cli("run", p, "--dim", "batch=3", "-b", "llvm")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "Reshape" in r.stderr, r.stderr


def test_run_summarizes_outputs_holding_inf_without_a_warning(tmp_path, capsys):
    """Fuzz seed 60278: a constant of 1e999 (inf) made the output summary's std warn on stderr."""
    from ridgeline.cli import main
    p = tmp_path / "m.rir"
    p.write_text("graph @g(%x: f32[batch, 2]) -> (%y: f32[batch, 2]) {\n  const %b: f32[2] = [1e999, 0.5]\n"
                 "  %y = Add(%x, %b) : f32[batch, 2]\n  return %y\n}\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert main(["run", str(p), "--dim", "batch=2"]) == 0
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("op", ["MatMul", "Gemm", "Add", "Div", "ReduceSum"])
def test_the_reference_computes_on_nan_and_inf_without_warnings(op):
    """Fuzz seed 63989: a weight of inf times an input of 0 made numpy warn (invalid value in
    matmul) on stderr beside the result; the reference follows IEEE silently, as the other backends."""
    from ridgeline.backends.numpy import Interpreter
    g = Graph("g")
    x = g.add_input("x", TensorType(DTYPES["f32"], (2, 2)))
    w = g.add_constant("w", np.array([[np.inf, -np.inf], [np.nan, 0.0]], np.float32))
    y = g.add_node(op, [x, w] if op != "ReduceSum" else [w]).outputs[0]
    g.outputs = [y]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = Interpreter(g).run({"x": np.array([[0.0, 1e38], [0.0, -0.0]], np.float32)})
    assert np.isnan(out[y.name]).any()


def test_llvm_buffers_beyond_the_memory_limit_are_one_line(tmp_path):
    """Fuzz seed 69187: a Reshape to (2^31, 100) that cannot bind made llvm's memory plan allocate
    16 GiB for the Gather after it; under the harness's 3 GiB address-space limit that was a
    MemoryError traceback. The case is rebuilt from its seed and run as the soak ran it."""
    import random
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
    import fuzz_inputs
    case = fuzz_inputs.make_case(random.Random(69187))
    assert case.args[:1] == ["run"] and "llvm" in case.args
    o = fuzz_inputs.run_case(case, tmp_path / "ws", 120, isolation="spawn")
    assert o.outcome in ("ok", "error"), (o.outcome, o.detail)
