"""Tied weights stay tied: an embedding read by a Gather and, transposed, by the LM head's MatMul
(``lm_head = embed_tokens.T``, how transformers ties them) must not be folded into a second copy.
Over generated vocab/hidden sizes and batch/seq: the optimized graph holds the weight once, its
outputs match the numpy reference on the unoptimized graph, and the saved file is not larger."""

from __future__ import annotations

import numpy as np
import onnx
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

import ridgeline as rl
from ridgeline.backends.registry import get_backend
from ridgeline.frontends.onnx import load_onnx, save_onnx


def _tied_lm(vocab: int, hidden: int, seed: int) -> onnx.ModelProto:
    rng = np.random.default_rng(seed)
    w = numpy_helper.from_array(rng.standard_normal((vocab, hidden)).astype(np.float32), "embed.weight")
    scale = numpy_helper.from_array(rng.standard_normal(hidden).astype(np.float32), "norm.weight")
    nodes = [helper.make_node("Gather", ["embed.weight", "input_ids"], ["h"], axis=0),
             helper.make_node("Mul", ["h", "norm.weight"], ["hn"]),
             helper.make_node("Transpose", ["embed.weight"], ["lm_head"], perm=[1, 0]),
             helper.make_node("MatMul", ["hn", "lm_head"], ["logits"])]
    g = helper.make_graph(nodes, "tied", [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["b", "s"])],
                          [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["b", "s", vocab])],
                          initializer=[w, scale])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


@settings(max_examples=5, deadline=None)
@given(vocab=st.integers(100, 700), hidden=st.integers(32, 96), batch=st.integers(1, 3), seq=st.integers(1, 5),
       seed=st.integers(0, 1000))
def test_tied_embedding_is_not_copied(tmp_path_factory, vocab, hidden, batch, seq, seed):
    proto = _tied_lm(vocab, hidden, seed)
    src = tmp_path_factory.mktemp("tied") / "tied.onnx"
    onnx.save(proto, str(src))
    before = load_onnx(src)
    g = rl.optimize(load_onnx(src), "default")
    big = [c for c in g.constants.values() if c.type.numel == vocab * hidden]
    assert len(big) == 1, [c.name for c in big]
    ids = np.random.default_rng(seed).integers(0, vocab, (batch, seq)).astype(np.int64)
    want = get_backend("numpy").compile(before).run({"input_ids": ids})["logits"]
    got = get_backend("numpy").compile(g).run({"input_ids": ids})["logits"]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    out = src.with_name("opt.onnx")
    save_onnx(g, out)
    weights = vocab * hidden * 4
    assert _weight_bytes(onnx.load(str(out))) <= _weight_bytes(proto)
    assert out.stat().st_size < src.stat().st_size + weights // 2  # no second copy, whatever the metadata


def _weight_bytes(m: onnx.ModelProto) -> int:
    return sum(numpy_helper.to_array(t).nbytes for t in m.graph.initializer)


def test_duplicate_shared_is_an_explicit_choice():
    g = load_onnx(_tied_lm(300, 64, 0))
    rl.optimize(g, "fold-constants{duplicate-shared=true}")
    assert sum(c.type.numel == 300 * 64 for c in g.constants.values()) == 2


def test_an_unshared_weight_still_folds():
    proto = _tied_lm(300, 64, 0)
    del proto.graph.node[0:2]  # no Gather: the Transpose is the weight's only reader
    proto.graph.input[0].CopyFrom(helper.make_tensor_value_info("hn", TensorProto.FLOAT, ["b", "s", 64]))
    g = rl.optimize(load_onnx(proto), "fold-constants,dce")
    assert "Transpose" not in g.op_histogram()
