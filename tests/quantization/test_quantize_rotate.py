"""``quantize{rotate=…}``: a block-Hadamard rotation in front of a GEMM (QuaRot) keeps the function,
runs in onnxruntime, lowers int4's output error on outlier-heavy activations and is priced."""

from __future__ import annotations

import fnmatch
import re

import numpy as np
import onnxruntime as ort
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ridgeline as rl
from ridgeline.backends.numpy import Interpreter
from ridgeline.frontends.onnx import save_onnx
from ridgeline.ir import Graph, tensor
from ridgeline.ir.errors import PassError
from ridgeline.passes.transforms.quantize import quantize_graph
from ridgeline.passes.transforms.quantize_rewrite import find_candidates
from ridgeline.passes.transforms.quantize_rotate import rotate_gemms, rotation

EVAL = rl.api.reference_evaluator()


def _graph(rng, shape: tuple[int, ...], k: int, ns: list[int], trans_b: list[bool]) -> Graph:
    """GEMMs reading one input ``x`` (``shape + (k,)``), with heavy-tailed weights; ``y{i}`` out."""
    g = Graph("gemms")
    x = g.add_input("x", tensor("f32", *shape, k))
    outs = []
    for i, (n, tb) in enumerate(zip(ns, trans_b)):
        w = (rng.standard_normal((k, n)) * rng.lognormal(0, 1, (k, n))).astype(np.float32)
        if tb and len(shape) == 1:     # Gemm is 2-D only
            node = g.add_node("Gemm", [x, g.add_constant(f"w{i}", np.ascontiguousarray(w.T))], {"transB": 1},
                              names=[f"y{i}"])
        else:
            node = g.add_node("MatMul", [x, g.add_constant(f"w{i}", w)], names=[f"y{i}"])
        outs.append(node.outputs[0])
    g.outputs = outs
    return g


def _tol(x: np.ndarray, w: np.ndarray, k: int) -> float:
    """fp32 rounding of a length-``K`` dot product (and of ``x·R``): ``1e-5·√K·max|x|·max|W|``."""
    return 1e-5 * np.sqrt(k) * float(np.abs(x).max()) * float(np.abs(w).max())


def _ort(graph: Graph, path, feeds) -> list[np.ndarray]:
    save_onnx(graph, path)
    so = ort.SessionOptions()      # basic: ONNX semantics (ORT's default fuses symmetric DQ→MatMul
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC   # with int8 activations)
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"]).run(None, feeds)


@settings(max_examples=12, deadline=None)
@given(k=st.integers(1, 300), group=st.sampled_from([0, 8, 13, 32, 96, 128]), seed=st.integers(0, 9))
def test_rotation_is_orthogonal_and_never_straddles_a_group(k, group, seed):
    r = rotation(k, group, seed)
    np.testing.assert_allclose(r @ r.T, np.eye(k), atol=1e-12)
    if group and group < k:
        i, j = np.nonzero(r)
        assert np.all(i // group == j // group)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**16), lead=st.sampled_from([(3,), (2, 3)]), k=st.integers(1, 300),
       ns=st.lists(st.integers(1, 9), min_size=1, max_size=2), group=st.sampled_from([0, 13, 32, 128]),
       trans_b=st.lists(st.booleans(), min_size=2, max_size=2))
def test_rotated_graph_computes_the_same_function(tmp_path, seed, lead, k, ns, group, trans_b):
    """Unquantized, ``(x·R)·(Rᵀ·W)`` is ``x·W`` within fp32 rounding on the numpy backend and in
    onnxruntime from the saved file: any K (a last partial block), rank 2 or 3 inputs, MatMul and
    Gemm with transB; GEMMs sharing an input share one rotation."""
    rng = np.random.default_rng(seed)
    g = _graph(rng, lead, k, ns, trans_b)
    x = rng.standard_normal((*lead, k)).astype(np.float32)
    x[..., rng.integers(0, k)] *= 50                  # an outlier channel
    ref = Interpreter(g).run({"x": x})
    ws = [g.constants[f"w{i}"].data for i in range(len(ns))]
    cands, _ = find_candidates(g)
    assert rotate_gemms(g, cands, group, seed) == len(ns)
    assert 1 <= sum(n.meta.get("quantize") == "rotation" for n in g) <= 2     # the blocks, a tail
    got = Interpreter(g).run({"x": x})
    onnx = _ort(g, tmp_path / "r.onnx", {"x": x})
    for i, name in enumerate(f"y{i}" for i in range(len(ns))):
        tol = _tol(x, ws[i], k)
        np.testing.assert_allclose(got[name], ref[name], atol=tol)
        np.testing.assert_allclose(onnx[i], ref[name], atol=tol)
    assert not find_candidates(g)[0][0].node.meta       # a later quantize pass leaves x·R alone


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**16), blocks=st.integers(2, 12), n=st.integers(8, 24),
       scheme=st.sampled_from(["int4-g32", "int4-asym-g32", "int4-asym-g128"]), trans_b=st.booleans())
def test_rotation_lowers_int4_error_on_outlier_activations(seed, blocks, n, scheme, trans_b):
    """Activations with a few channels 20–100× the rest and heavy-tailed weights (an LLM's
    down_proj input): rounded to nearest, the rotated GEMM's output error on the calibration rows
    is below the unrotated one's."""
    rng = np.random.default_rng(seed)
    k = 32 * blocks
    g = _graph(rng, (128,), k, [n], [trans_b])
    x = rng.standard_normal((128, k))
    hot = rng.choice(k, max(1, k // 64), replace=False)
    x[:, hot] *= rng.uniform(20, 100, hot.size)
    x = x.astype(np.float32)
    ref = Interpreter(g).run({"x": x})["y0"].astype(np.float64)
    err = {}
    for rot in ("", "y0"):
        gq = g.copy()
        quantize_graph(gq, scheme, samples=[{"x": x}], evaluator=EVAL, rotate=rot)
        err[rot] = float(np.square(Interpreter(gq).run({"x": x})["y0"] - ref).sum())
    assert err["y0"] < err[""]


def test_rotation_composes_with_calibrated_methods_and_is_recorded_and_priced(tmp_path):
    """``awq-gptq`` + ``clip=output`` on a rotated GEMM: the record names the rotation, a second
    quantize pass keeps ``x·R`` in full precision, onnxruntime runs the saved file, and the cost
    model counts the rotation's multiply-adds."""
    rng = np.random.default_rng(0)
    g = _graph(rng, (16,), 256, [24, 8], [False, True])
    x = rng.standard_normal((16, 256)).astype(np.float32)
    x[:, 7] *= 60
    gq = g.copy()
    s = quantize_graph(gq, "int4-asym-g128", method="awq-gptq", clip="output", samples=[{"x": x}],
                       evaluator=EVAL, rotate="y0,y1")
    assert s.gemms == 2 and gq.meta["quantization"]["rotate"] == "y0,y1"
    assert quantize_graph(gq, "int8", evaluator=EVAL).gemms == 0          # x·R stays fp32
    got = Interpreter(gq).run({"x": x})
    onnx = _ort(gq, tmp_path / "q.onnx", {"x": x})
    np.testing.assert_allclose(onnx[0], got["y0"], rtol=1e-4, atol=1e-4 * float(np.abs(got["y0"]).max()))
    rotated = g.copy()
    rotate_gemms(rotated, find_candidates(rotated)[0], 128)
    extra = rl.estimate(rotated, target="h100").flops - rl.estimate(g, target="h100").flops
    assert extra >= 2 * 16 * 256 * 128 * 0.99          # x·R: 16 rows × 256 channels × a 128-block


@settings(max_examples=8, deadline=None)
@given(m=st.integers(1, 40), r=st.integers(0, 127), group=st.sampled_from([0, 128]), rank=st.sampled_from([2, 3]))
def test_rotation_constants_stay_block_sized_for_any_k(m, r, group, rank):
    """``K = 128·m + r``: the ``x·R`` constants are one ``128×128`` block and at most one
    ``r×r`` tail — ``O(b² + tail²)``, never ``K×K`` — and the folded weight is ``Rᵀ·W``."""
    k = 128 * m + r
    g = Graph("wide")
    x = g.add_input("x", tensor("f32", *([2] * (rank - 1)), k))
    w = np.random.default_rng(k).standard_normal((k, 3)).astype(np.float32)
    g.outputs = [g.add_node("MatMul", [x, g.add_constant("w", w)], names=["y"]).outputs[0]]
    before = {v.name for v in g.constants.values()}
    assert rotate_gemms(g, find_candidates(g)[0], group, 3) == 1
    floats = [v.data for v in g.constants.values()
              if v.name not in before and v.data.dtype == np.float32 and v.data.ndim == 2 and v.data.shape[1] != 3]
    assert sum(a.size for a in floats) <= 128 ** 2 + r ** 2
    assert sum(n.op == "MatMul" and n.meta.get("quantize") == "rotation" for n in g) == 1 + (r > 0 and m > 0)
    folded = next(v.data for v in g.constants.values() if v.name not in before and v.data.shape == (k, 3))
    np.testing.assert_allclose(folded, rotation(k, group, 3).T @ w.astype(np.float64), atol=1e-5)
    # readable names (saved files and messages say %x.rotated), and one [-1] axes constant
    mm = next(n for n in g if n.op == "MatMul" and n.meta.get("quantize") != "rotation")
    assert mm.inputs[0].name == "x.rotated"
    assert sum(v.data.dtype == np.int64 and v.data.tolist() == [-1] for v in g.constants.values()) <= 1


def test_a_rotated_input_keeps_its_name_through_smoothing():
    """SmoothQuant after rotation divides ``%x.rotated``: its constant reads ``x.rotated.inv_smooth``."""
    rng = np.random.default_rng(0)
    g = _graph(rng, (8,), 32, [5], [False])
    feeds = [{"x": rng.standard_normal((8, 32)).astype(np.float32)}]
    quantize_graph(g, "w8a8", method="smoothquant", rotate="y0", samples=feeds, evaluator=EVAL)
    assert "x.rotated.inv_smooth" in g.constants


def test_the_tolerance_catches_a_wrong_fold():
    """``R·W`` in place of ``Rᵀ·W`` (R is not symmetric: seeded signs) fails the function check's
    tolerance; the right fold passes it."""
    rng = np.random.default_rng(1)
    g = _graph(rng, (3,), 200, [5], [False])
    x = rng.standard_normal((3, 200)).astype(np.float32)
    w = g.constants["w0"].data
    ref = Interpreter(g).run({"x": x})["y0"]
    r = rotation(200, 0, 0)
    xr = (x.astype(np.float64) @ r).astype(np.float32)
    right, wrong = (xr @ (m @ w.astype(np.float64)).astype(np.float32) for m in (r.T, r))
    tol = _tol(x, w, 200)
    assert np.abs(right - ref).max() <= tol < np.abs(wrong - ref).max()


def test_a_second_quantize_pass_keeps_the_rotate_record():
    """The bench's ``--then`` recipe: a second pass rewrites the record but the rotation an
    earlier pass applied is still in the graph, so ``rotate`` stays (and new ones join it)."""
    rng = np.random.default_rng(2)
    g = _graph(rng, (16,), 256, [8, 8], [False, False])
    x = rng.standard_normal((16, 256)).astype(np.float32)
    assert quantize_graph(g, "int4-asym-g128", skip="y1", rotate="y0", samples=[{"x": x}], evaluator=EVAL).gemms == 1
    assert quantize_graph(g, "int8", samples=[{"x": x}], evaluator=EVAL).gemms == 1
    assert g.meta["quantization"]["scheme"] == "int8" and g.meta["quantization"]["rotate"] == "y0"


@settings(max_examples=20, deadline=None)
@given(n=st.integers(1, 4), typo=st.text("abcdxyz_*?", min_size=1, max_size=6),
       option=st.sampled_from(["skip", "rotate"]), good=st.booleans())
def test_a_pattern_matching_no_gemm_is_an_error_naming_the_gemms(n, typo, option, good):
    """``skip=``/``rotate=``: a pattern that matches no GEMM (a typo would silently quantize, or
    not rotate, what it meant) is refused, naming the pattern and the GEMMs there are; a pattern
    list whose every entry matches something is not."""
    rng = np.random.default_rng(n)
    g = _graph(rng, (4,), 32, [3] * n, [False] * n)
    names = [f"y{i}" for i in range(n)]
    matches = any(fnmatch.fnmatchcase(nm, typo) if any(c in typo for c in "*?") else typo in nm
                  for nm in names + [f"w{i}" for i in range(n)])
    patterns = ",".join(["y0"] * good + [typo])
    if matches:
        quantize_graph(g, "int8", **{option: patterns})
        return
    with pytest.raises(PassError, match=rf"{option} pattern {re.escape(repr(typo))} matches none of the {n} GEMMs "
                                        r"\(named like yN\)"):     # numbers shown as N: y0, y1, … are one
        quantize_graph(g, "int8", **{option: patterns})


def test_the_cli_refuses_an_unmatched_pattern_in_one_line(run_cli):
    proc = run_cli("opt", "llama-3-8b", "-p", 'quantize{scheme=int8,rotate="lm_head,q_prj"}')
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "ridgeline opt: error: quantize: rotate pattern 'q_prj' matches none of the 225 GEMMs (named like "
        "layers.N.mlp.down_proj, layers.N.mlp.gate_proj, layers.N.mlp.up_proj, layers.N.self_attn.k_proj, "
        "layers.N.self_attn.o_proj, layers.N.self_attn.q_proj, layers.N.self_attn.v_proj, lm_head)"]


@settings(max_examples=12, deadline=None)
@given(n=st.integers(2, 5), data=st.data())
def test_rotate_patterns_match_all_gemms_then_leave_the_skipped(n, data):
    """``rotate=`` is matched against every GEMM, then ``skip=``'s are left out: in a chain of
    GEMMs ``lm_head`` is the last one even when ``skip`` keeps it (so nothing else is rotated in
    its place), and a pattern whose GEMMs are all kept by skip is refused saying so."""
    rng = np.random.default_rng(n)
    g = Graph("chain")
    v = g.add_input("x", tensor("f32", 4, 16))
    for i in range(n):
        v = g.add_node("MatMul", [v, g.add_constant(f"w{i}", rng.standard_normal((16, 16)).astype(np.float32))],
                       names=[f"y{i}"]).outputs[0]
    g.outputs = [v]
    skipped = data.draw(st.sets(st.integers(0, n - 1), max_size=n - 1))
    target = data.draw(st.sampled_from(["lm_head", *(f"y{i}" for i in range(n))]))
    hit = n - 1 if target == "lm_head" else int(target[1:])
    skip = ",".join(f"y{i}" for i in sorted(skipped))
    if hit in skipped:
        with pytest.raises(PassError, match=rf"rotate pattern '{target}' .*all kept by skip"):
            quantize_graph(g, "int8", skip=skip, rotate=target)
        return
    assert quantize_graph(g, "int8", skip=skip, rotate=target).gemms == n - len(skipped)
    rotated = {n.outputs[0].name for n in g if n.inputs and n.inputs[0].name.endswith(".rotated")}
    assert rotated == {f"y{hit}"}


def test_a_weightless_graph_records_no_rotation_it_did_not_do():
    """rotate_gemms skips weights without data; the record and notes must not claim a rotation."""
    g = Graph("weightless")
    x = g.add_input("x", tensor("f32", 4, 64))
    w = g.add_constant("w0", type=tensor("f32", 64, 32))
    g.outputs = list(g.add_node("MatMul", [x, w], names=["y0"]).outputs)
    summary = quantize_graph(g, "int8", rotate="y0")
    assert "rotate" not in (g.meta.get("quantization") or {})
    assert any("not rotated" in n for n in summary.notes)
