"""Each scheduler on a case small enough to compute by hand (a LinearStepTime stub, not today's cost models)."""

from __future__ import annotations

import pytest

from ridgeline.serving import Deployment, LinearStepTime, Request, Workload, simulate
from ridgeline.serving.workload import Lengths

# fixed 1 s per step, 0.1 s per decoding sequence, 0.01 s per prefill token
STEP = LinearStepTime(fixed=1.0, per_seq=0.1, per_token=0.01)


def trace(*reqs: tuple[float, int, int], prefix: int = 0, group: int = -1) -> Workload:
    rs = tuple(Request(i, t, p, o, prefix, group) for i, (t, p, o) in enumerate(reqs))
    return Workload("t", "trace", trace=rs)


def run(w: Workload, step=STEP, **kw):
    kw.setdefault("deployment", Deployment("stub"))
    return simulate("stub", "stub", workload=w, requests=len(w.trace), step_time=step, **kw)


def test_static_batching_waits_for_the_whole_batch():
    # max_batch 2: A and B are prefilled together (20 tokens: 1.2 s), decoded twice at the padded
    # batch of 2 (1.2 s each); C waits for them, then 1.1 + 2 x 1.1
    w = trace((0, 10, 3), (0, 10, 3), (0, 10, 3))
    r = run(w, scheduler="static", max_batch=2)
    m = r.metrics
    assert m.ttft["p50"] == pytest.approx(1.2)
    assert m.ttft["mean"] == pytest.approx((1.2 + 1.2 + 4.7) / 3)
    assert m.duration_s == pytest.approx(3.6 + 1.1 + 2 * 1.1)
    assert m.e2e["mean"] == pytest.approx((3.6 + 3.6 + 6.9) / 3)


def test_static_batch_pads_finished_members():
    # A wants 1 token, B 3: the decode steps still price a batch of 2
    r = run(trace((0, 10, 1), (0, 10, 3)), scheduler="static", max_batch=2)
    assert r.metrics.duration_s == pytest.approx(1.2 + 2 * 1.2)


def test_continuous_prefills_first_and_joins_the_running_batch():
    # A prefills (1.1), B arrives at 0.5 and prefills next (A stalls: 1.1), both decode (1.2):
    # B is done at 3.4; A decodes alone (1.1) and is done at 4.5
    r = run(trace((0, 10, 3), (0.5, 10, 2)), scheduler="continuous")
    m = r.metrics
    assert m.ttft["mean"] == pytest.approx((1.1 + (2.2 - 0.5)) / 2)
    assert m.e2e["mean"] == pytest.approx((4.5 + (3.4 - 0.5)) / 2)
    assert m.duration_s == pytest.approx(4.5)


def test_chunked_prefill_splits_prompts_by_the_token_budget():
    # budget 8: chunks of 8 (1.08) then 2 (1.02) -> first token at 2.10; one decode (1.1) -> 3.2
    r = run(trace((0, 10, 2)), scheduler="chunked", token_budget=8)
    assert r.metrics.ttft["p50"] == pytest.approx(2.10)
    assert r.metrics.duration_s == pytest.approx(3.2)


def test_chunked_prefill_piggybacks_on_decodes():
    # A (P=4, O=3) decodes while B (P=10) prefills in chunks of budget - 1 = 7, then 3
    r = run(trace((0, 4, 3), (0, 10, 2)), scheduler="chunked", token_budget=8)
    m = r.metrics
    # step 1: A's 4 tokens + B's first 4 (1.08); step 2: A decodes + B's 6 (1 + 0.1 + 0.06)
    assert m.ttft["p50"] == pytest.approx((1.08 + 2.24) / 2)
    assert r.metrics.preemptions == 0


@pytest.mark.parametrize("mode, end", [("recompute", 6.64), ("swap", 6.68)])
def test_preemption_when_the_kv_pool_runs_out(mode, end):
    # 10 KV tokens in blocks of 1. Both prompts (4 tokens + 1 slot) fit: prefill 1.08 s, one decode
    # of both 1.2 s (t = 2.28); the next needs 12 slots: B (the newest) is preempted, A decodes
    # alone twice (1.1 s each, done at 4.48). recompute: B prefills prompt + 2 tokens again
    # (1.06 s, emitting its 3rd token) and decodes once (1.1 s): 6.64; swap (free here): B's
    # KV comes back and it decodes twice: 6.68
    w = trace((0, 4, 4), (0, 4, 4))
    r = run(w, scheduler="continuous", block_size=1, deployment=Deployment("stub", kv_tokens=10),
            preemption=mode)
    assert r.metrics.preemptions == 1
    assert r.metrics.duration_s == pytest.approx(end)
    assert r.metrics.output_tokens_per_s * r.metrics.duration_s == pytest.approx(8)


def test_disaggregated_pays_the_kv_transfer():
    # prefill replica: 1.1 s; KV of 10 tokens x 1 MB over 1 GB/s = 10 ms; decode replica: 2 x 1.1
    dep = Deployment("stub", kv_bytes_per_token=1e6, link_bandwidth=1e9, link_latency=0.0)
    r = run(trace((0, 10, 3)), scheduler="disaggregated", replicas=2, deployment=dep)
    assert r.metrics.ttft["p50"] == pytest.approx(1.1)
    assert r.metrics.duration_s == pytest.approx(1.1 + 0.01 + 2 * 1.1)


def test_pipeline_runs_micro_batch_groups_concurrently():
    # two stages, max_batch 2 -> two groups of one sequence, in flight at the same time
    dep = Deployment("stub", family="wafer_scale", devices=2, layers=8)
    r = run(trace((0, 10, 2), (0, 10, 2)), max_batch=2, deployment=dep)
    assert r.scheduler == "pipeline"
    assert r.metrics.ttft["p99"] == pytest.approx(1.1)
    assert r.metrics.duration_s == pytest.approx(2.2)


def test_speculative_decoding_all_accepted():
    # k = 3, acceptance 1, n-gram draft: after the prefill's token each step yields 4 tokens;
    # a step verifies 3 extra tokens (+0.03 s): 9 tokens = 1 + 4 + 4 -> 2 steps of 1.13
    r = run(trace((0, 10, 9)), spec_k=3, spec_acceptance=1.0)
    assert r.metrics.duration_s == pytest.approx(1.1 + 2 * 1.13)
    assert r.metrics.spec_tokens_per_step == pytest.approx(4.0)


def test_speculative_decoding_mean_tokens_per_step():
    from ridgeline.serving.schedulers import SpecDecode
    spec = SpecDecode(4, 0.6)
    w = Workload("w", "poisson", rate=1000, prompt=Lengths("fixed", 8), output=Lengths("fixed", 400))
    r = simulate("stub", "stub", workload=w, requests=200, step_time=STEP, spec_k=4, spec_acceptance=0.6,
                 deployment=Deployment("stub"))
    # truncation at each request's last step costs a little below the expectation
    assert r.metrics.spec_tokens_per_step == pytest.approx(spec.expected_tokens(), rel=0.05)


def test_prefix_cache_skips_a_shared_prefix():
    # both requests share an 8-token prefix; the second prefill computes only 2 tokens
    w = trace((0, 10, 1), (5, 10, 1), prefix=8, group=0)
    r = run(w)
    assert r.metrics.ttft["mean"] == pytest.approx((1.1 + 1.02) / 2)
    assert r.metrics.prefix_cached_tokens == 8
    hit = run(trace((0, 10, 1)), prefix_hit=0.5)
    assert hit.metrics.ttft["p50"] == pytest.approx(1.05)
