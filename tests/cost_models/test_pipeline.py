"""Pipeline parallelism with micro-batches: the schedule's arithmetic over generated stage times,
and whole estimates against one stage."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ridgeline import models
from ridgeline.cost_models import estimate
from ridgeline.cost_models.estimate import NodeCost
from ridgeline.testing.cost_invariants import Case, check
from ridgeline.cost_models.pipeline import default_microbatches, pipeline_step
from ridgeline.ir.errors import BackendError


def _records(stage_times):
    return [NodeCost(f"n{i}", "MatMul", "matmul", t, 1.0, {"hbm": 1.0}, "memory", stage=i)
            for i, t in enumerate(stage_times)]


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.lists(st.floats(1e-6, 1e-2), min_size=2, max_size=8), st.integers(1, 16),
       st.sampled_from(("decode", "prefill")))
def test_the_step_is_a_pipeline_of_micro_batches(stage_times, m, phase):
    p = len(stage_times)
    recs = _records(stage_times)
    step, info = pipeline_step(recs, p, m, phase)
    total, worst = sum(stage_times), max(stage_times)
    # never faster than one micro-batch crossing every stage, nor than the bottleneck serving all m
    assert step >= total * (1 - 1e-12) and step >= m * worst * (1 - 1e-12)
    # never slower than running the micro-batches one after another
    assert step <= m * total * (1 + 1e-12)
    assert sum(r.time_s for r in recs) == pytest.approx(step)
    assert 0.0 <= info["bubble_fraction"] < 1.0
    assert sum(r.flops for r in recs) == pytest.approx(m * p)       # every micro-batch's work is counted
    if m == 1:
        assert step == pytest.approx(total)                          # one stage works at a time
    if len(set(stage_times)) == 1:
        t = stage_times[0]
        if phase == "prefill":                                       # (m + p - 1) turns; GPipe's bubble
            assert step == pytest.approx((m + p - 1) * t)
            assert info["bubble_fraction"] == pytest.approx((p - 1) / (m + p - 1))
        elif m >= p:                                                 # enough in flight: no bubble
            assert info["bubble_fraction"] == pytest.approx(0.0, abs=1e-9)


def test_default_fills_the_pipeline_and_a_bad_count_says_what_divides():
    g = models.build("gpt2", batch=12, context=128)
    assert default_microbatches(g, 4, None) == 4
    assert default_microbatches(g, 8, None) == 6          # the largest divisor of 12 up to 8
    with pytest.raises(BackendError, match="must divide the batch"):
        default_microbatches(g, 4, 5)


@settings(max_examples=12, deadline=None, derandomize=True)
@given(st.sampled_from(("llama-2-7b", "llama-3-8b", "llama-2-13b")), st.sampled_from(("h100", "tpu-v5p", "a100")),
       st.sampled_from(("decode", "prefill")), st.sampled_from((1, 4, 16, 64)), st.sampled_from((2, 4)))
def test_pp_never_more_than_k_times_one_stage(preset, target, phase, batch, pp):
    case = Case(preset, target, phase, batch, 512, "bf16", None, 1, pp)
    broken = check(case, ("pp", "bandwidth", "flop_rate"))
    assert not broken, "\n".join(broken)


def test_micro_batches_fill_a_decode_pipeline():
    g = models.build("llama-3-70b", batch=8, context=2048)
    one = estimate(g, "h100", tp=2, pp=4, microbatches=1, companion=None)
    full = estimate(g, "h100", tp=2, pp=4, companion=None)
    assert one.detail["pipeline"]["bubble_fraction"] == pytest.approx(0.75, abs=0.02)    # one stage at a time
    assert full.detail["pipeline"]["microbatches"] == 4 and full.detail["pipeline"]["bubble_fraction"] < 0.1
    assert any("bubble" in n for n in full.notes)
    # weight-bound decode: each micro-batch reads its stage's weights again, so filling the
    # pipeline keeps every device busy without making a token cheaper than one stage-sum
    assert full.time_s >= 0.9 * one.time_s
