"""``rl.generate`` against transformers' own ``generate(do_sample=False)`` on the same random-weight
models, exported with default settings as one prefill/decode graph: a Llama with GQA and no
position ids, a GPT-2 with position ids (absolute positions need them under left padding); batches
left-padded through the mask. Prompts are drawn by hypothesis; every executing backend and
onnxruntime must give transformers' tokens."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("onnxruntime")

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from decode_exports import GPT2, LLAMA, export_decode, prompts, torch_greedy

import ridgeline as rl
from ridgeline.ir.errors import ModelError
from ridgeline.runtime import kv_pairs, step_model

MODELS = {"llama": (LLAMA, False), "gpt2": (GPT2, True)}


def _path(which: str) -> Path:
    cfg, pos = MODELS[which]
    return export_decode(cfg, "legacy", 17, position_ids=pos)


@pytest.fixture(scope="module")
def steps():
    """Compiled once per backend and model (llvm is left to the test below: it compiles per shape)."""
    return {(w, b): step_model(_path(w), b) for w in MODELS for b in ("numpy", "torch", "onnxruntime")}


@pytest.mark.slow
@settings(max_examples=4, deadline=None)
@given(which=st.sampled_from(sorted(MODELS)), batch=st.integers(1, 3), seq=st.integers(1, 7),
       new=st.integers(1, 6), seed=st.integers(0, 2 ** 16))
def test_greedy_tokens_match_transformers(steps, which, batch, seq, new, seed):
    cfg, _ = MODELS[which]
    ids, mask = prompts(cfg, batch, seq, seed)
    want = torch_greedy(cfg, ids, mask, new)
    for backend in ("numpy", "torch", "onnxruntime"):
        got = rl.generate(steps[(which, backend)], None, ids, new, attention_mask=mask)
        assert got.new_tokens.tolist() == want.tolist(), f"{which} on {backend}"
        assert got.sequences[:, :seq].tolist() == ids.tolist()
        assert len(got.step_seconds) == new


@pytest.mark.slow
def test_greedy_tokens_match_transformers_on_llvm(monkeypatch):
    """The prefill and one cached step (llvm compiles each new shape: kept short for CI)."""
    monkeypatch.setenv("RIDGELINE_LLVM_CHECKED", "1")
    pytest.importorskip("llvmlite")
    ids, mask = prompts(LLAMA, 2, 5, seed=7)
    want = torch_greedy(LLAMA, ids, mask, 2)
    got = rl.generate(_path("llama"), input_ids=ids, max_new_tokens=2, attention_mask=mask, backend="llvm",
                      strict=True)
    assert got.new_tokens.tolist() == want.tolist()


def test_eos_stops_a_row_and_pads_it(steps):
    ids, mask = prompts(LLAMA, 2, 4, seed=3)
    free = rl.generate(steps[("llama", "numpy")], None, ids, 5, attention_mask=mask)
    eos = int(free.new_tokens[0, 1])  # row 0 emits it at step 2
    got = rl.generate(steps[("llama", "numpy")], None, ids, 5, attention_mask=mask, eos_token_id=eos, pad_token_id=0)
    row0 = got.new_tokens[0].tolist()
    assert row0[:2] == free.new_tokens[0, :2].tolist() and set(row0[2:]) <= {0}
    if eos not in free.new_tokens[1].tolist():  # the other row runs on to the end, unchanged
        assert got.new_tokens[1].tolist() == free.new_tokens[1].tolist()


def test_sampling_is_seeded_and_narrows_to_greedy(steps):
    step = steps[("gpt2", "numpy")]
    ids, mask = prompts(GPT2, 2, 3, seed=5)
    greedy = rl.generate(step, None, ids, 4, attention_mask=mask).new_tokens
    a = rl.generate(step, None, ids, 4, attention_mask=mask, temperature=1.5, seed=11).new_tokens
    b = rl.generate(step, None, ids, 4, attention_mask=mask, temperature=1.5, seed=11).new_tokens
    assert a.tolist() == b.tolist()
    for narrow in ({"top_k": 1}, {"top_p": 1e-9}):
        got = rl.generate(step, None, ids, 4, attention_mask=mask, temperature=0.7, seed=1, **narrow).new_tokens
        assert got.tolist() == greedy.tolist(), narrow


def test_cache_names_pair_by_every_convention():
    f32 = np.dtype(np.float32)
    t = (f32, ("batch", 2, "past", 8))
    ins = {"input_ids": (np.dtype(np.int64), ("b", "s")), "past_key_values.0.key": t, "past_key_values.0.value": t,
           "past_key_1": t, "past_value.2": t, "past.3": t}
    outs = ["logits", "present.0.key", "present.0.value", "present_key_1", "present_value.2", "present.3"]
    pairs = {p.past: (p.present, p.axis) for p in kv_pairs(ins, outs)}
    assert pairs == {"past_key_values.0.key": ("present.0.key", 2), "past_key_values.0.value": ("present.0.value", 2),
                     "past_key_1": ("present_key_1", 2), "past_value.2": ("present_value.2", 2),
                     "past.3": ("present.3", 2)}
    with pytest.raises(ModelError, match="past_key_values.0.key"):
        kv_pairs(ins, ["logits"])


def test_bad_arguments_are_one_line_errors(steps):
    step = steps[("llama", "numpy")]
    with pytest.raises(ModelError, match="attention_mask"):
        rl.generate(step, None, np.ones((2, 3), np.int64), 2, attention_mask=np.ones((2, 4), np.int64))
    with pytest.raises(ModelError, match="top_p"):
        rl.generate(step, None, np.ones((1, 3), np.int64), 2, temperature=1.0, top_p=2.0)
    with pytest.raises(ModelError, match="no weights"):
        rl.generate("llama-3-8b", input_ids=[[1, 2]], max_new_tokens=1)


def test_separate_decode_model_and_a_cacheless_prefill(steps):
    """A distinct decode executable (here torch after a numpy prefill) continues the same cache;
    a graph without a cache is re-run on the whole sequence and gives the same tokens."""
    ids, mask = prompts(GPT2, 2, 4, seed=9)
    one = rl.generate(steps[("gpt2", "numpy")], None, ids, 4, attention_mask=mask).new_tokens
    two = rl.generate(steps[("gpt2", "numpy")], steps[("gpt2", "torch")], ids, 4, attention_mask=mask).new_tokens
    assert two.tolist() == one.tolist()
    models = Path(__file__).resolve().parents[1] / "models"
    cached = rl.generate(models / "gpt2-legacy17-decode.onnx", input_ids=ids % 64, max_new_tokens=3,
                         attention_mask=mask).new_tokens
    rerun = rl.generate(models / "gpt2-legacy17-prefill.onnx", input_ids=ids % 64, max_new_tokens=3,
                        attention_mask=mask).new_tokens
    assert rerun.tolist() == cached.tolist()
