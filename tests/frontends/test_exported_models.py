"""Every exported model in tests/models/ against onnxruntime.

Each one imports and verifies, keeps its symbolic dims (no unknown ``_u`` dims), becomes fully
static under ``bind``, round-trips exactly through the text form and ``.rir`` files, and runs on
the numpy backend within 1e-4 (relative, fp32) of onnxruntime at several dim bindings, prefill
and decode, with left-padded attention masks; ``save_onnx`` of the imported graph runs in
onnxruntime with the same outputs.
"""

from __future__ import annotations

import functools
import hashlib

import numpy as np
import onnx
import pytest

import ridgeline
from ridgeline.frontends.onnx import load_onnx, save_onnx
from ridgeline.ir.rir_file import load_rir, save_rir
from ridgeline.ir import parse_graph, print_graph
from ridgeline.ir.infer import is_unknown

from exported_models import (MODELS, accuracy_entries, assert_outputs_close, dims_for, entries, entry, feeds_for, ort_run)

ALL = entries()
IDS = [e["file"] for e in ALL]
# (batch, seq, past): a single-token decode step, and a wider batch with padding in the cache
BINDINGS = [(1, 1, 4), (3, 6, 5)]


@functools.lru_cache(maxsize=None)
def imported(file: str):
    """The imported graph (shared: tests must not modify it; bind() returns a copy)."""
    return load_onnx(MODELS / file)


def test_manifest_describes_every_model_file():
    files = {p.name for p in MODELS.glob("*.onnx")}
    accuracy = accuracy_entries()
    listed = {e["file"] for e in ALL + accuracy}
    assert files - listed == {"gpt2.onnx"}  # the demo default, a copy of the legacy GPT-2 prefill
    assert listed <= files
    assert accuracy and all(e["init_std"] == 0.02 for e in accuracy)
    for e in ALL + accuracy:
        assert hashlib.sha256((MODELS / e["file"]).read_bytes()).hexdigest() == e["sha256"], e["file"]
    # every family and exporter variant the issue names is there
    have = {(e["family"], e["exporter"], e["opset"], e["phase"]) for e in ALL}
    for fam, phases in (("gpt2", ("prefill", "decode")), ("bert", ("prefill",)), ("llama", ("prefill", "decode"))):
        for variant in (("legacy", 17), ("legacy", 18), ("dynamo", 18), ("dynamo", 23)):
            for phase in phases:
                assert (fam, *variant, phase) in have


def test_opset23_exports_use_the_fused_onnx_ops():
    llama = imported("llama-dynamo23-decode.onnx").op_histogram()
    assert {"Attention", "RMSNormalization", "RotaryEmbedding"} <= set(llama)
    for f in ("gpt2-dynamo23-prefill.onnx", "bert-dynamo23-prefill.onnx"):
        assert "Attention" in imported(f).op_histogram()
    # GQA inside the op: keys keep fewer heads than queries
    g = imported("llama-dynamo23-prefill.onnx")
    att = next(n for n in g if n.op == "Attention")
    assert att.inputs[0].type.shape[1] == 4 and att.inputs[1].type.shape[1] == 2


@pytest.mark.parametrize("e", ALL, ids=IDS)
def test_imports_verifies_and_keeps_the_signature(e):
    g = imported(e["file"])
    g.verify()
    assert [v.name for v in g.inputs] == [p["name"] for p in e["inputs"]]
    assert [v.name for v in g.outputs] == [p["name"] for p in e["outputs"]]
    for v, p in zip(list(g.inputs) + list(g.outputs), e["inputs"] + e["outputs"]):
        assert v.type.dtype.name == p["dtype"], v.name
        assert list(v.type.shape) == p["dims"], (v.name, v.type)


@pytest.mark.parametrize("e", ALL, ids=IDS)
def test_no_unknown_dims_after_import(e):
    g = imported(e["file"])
    unknown = [f"{n.op} %{v.name}: {v.type}" for n in g for v in n.outputs
               if any(is_unknown(d) for d in v.type.shape)]
    assert not unknown, f"{len(unknown)} values with unknown dims, first: {unknown[:3]}"
    allowed = {"batch", "seq"} | ({"past"} if e["phase"] == "decode" else set())
    assert g.symbols() == allowed


@pytest.mark.parametrize("e", ALL, ids=IDS)
def test_bind_makes_every_type_static(e):
    g = imported(e["file"])
    for batch, seq, past in BINDINGS:
        dims = dims_for(e, batch, seq, past)
        b = g.bind(dims)
        b.verify()
        loose = [f"%{v.name}: {v.type}" for v in b.values() if not v.type.is_static]
        assert not loose, loose[:3]
        # binding substitutes the symbolic types: nothing inferred before contradicts it
        for v in g.values():
            assert b.value(v.name).type == v.type.bind(dims), v.name


@pytest.mark.parametrize("e", ALL, ids=IDS)
def test_text_form_round_trips_exactly(e, tmp_path):
    g = imported(e["file"])
    text = print_graph(g)
    assert print_graph(parse_graph(text)) == text
    path = save_rir(g, tmp_path / "m.rir")
    again = load_rir(path)
    assert print_graph(again) == text
    dims = dims_for(e, 2, 3, 2)
    feeds = feeds_for(e, dims, seed=3)
    a = ridgeline.compile(g, backend="numpy").run(feeds)
    b = ridgeline.compile(again, backend="numpy").run(feeds)
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


@pytest.mark.parametrize("binding", BINDINGS, ids=lambda b: "b{}s{}p{}".format(*b))
@pytest.mark.parametrize("e", ALL, ids=IDS)
def test_numpy_backend_matches_onnxruntime(e, binding):
    dims = dims_for(e, *binding)
    feeds = feeds_for(e, dims, seed=sum(binding))
    ref = ort_run(MODELS / e["file"], feeds)
    # the bound graph: the interpreter then checks every result against a static type too
    g = ridgeline.load(MODELS / e["file"], dims=dims)
    got = ridgeline.compile(g, backend="numpy").run(feeds)
    assert_outputs_close(e, got, ref, feeds, dims, what="numpy vs onnxruntime")


@pytest.mark.parametrize("e", ALL, ids=IDS)
def test_unpadded_batch_matches_everywhere(e):
    """Without padding every position is attended: the whole output is compared."""
    dims = dims_for(e, 2, 5, 3)
    feeds = feeds_for(e, dims, seed=11, left_pad=False)
    got = ridgeline.compile(imported(e["file"]), backend="numpy").run(feeds)
    assert_outputs_close(e, got, ort_run(MODELS / e["file"], feeds), feeds, dims)


@pytest.mark.parametrize("e", ALL, ids=IDS)
def test_save_onnx_runs_in_onnxruntime(e, tmp_path):
    g = imported(e["file"])
    out = tmp_path / "again.onnx"
    save_onnx(g, out)
    m = onnx.load(out)
    onnx.checker.check_model(m, full_check=True)
    # symbolic dims survive the trip out and back
    assert [v.type for v in load_onnx(out).inputs] == [v.type for v in g.inputs]
    dims = dims_for(e, 3, 4, 2)
    feeds = feeds_for(e, dims, seed=5)
    assert_outputs_close(e, ort_run(out.read_bytes(), feeds), ort_run(MODELS / e["file"], feeds), feeds, dims,
                         what="save_onnx in onnxruntime")


@pytest.mark.parametrize("file", ["gpt2-legacy17-decode.onnx", "llama-dynamo23-decode.onnx"])
def test_cli_run_matches_onnxruntime(file, tmp_path, run_cli):
    e = entry(file)
    dims = dims_for(e, 2, 3, 4)
    feeds = feeds_for(e, dims, seed=7)
    np.savez(tmp_path / "in.npz", **feeds)
    proc = run_cli("run", MODELS / file, "--backend", "numpy", "--inputs", tmp_path / "in.npz",
                   "-o", tmp_path / "out.npz", "--json")
    assert proc.returncode == 0, proc.stderr
    with np.load(tmp_path / "out.npz") as z:
        got = {k: z[k] for k in z.files}
    assert_outputs_close(e, got, ort_run(MODELS / file, feeds), feeds, dims, what="ridgeline run")


def test_demo_model_runs_from_the_cli(run_cli):
    import json
    proc = run_cli("run", MODELS / "gpt2.onnx", "--dim", "batch=1", "--dim", "seq=16", "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)["outputs"]
    assert out[0]["name"] == "logits" and out[0]["shape"] == [1, 16, 256]
    assert np.isfinite(out[0]["mean"])
