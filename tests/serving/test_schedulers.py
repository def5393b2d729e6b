"""Each scheduler on a case small enough to compute by hand (a LinearStepTime stub, not today's cost models)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


def test_whole_prompt_admission_waits_for_room_in_the_token_budget():
    # TRT-LLM's default (no chunked context), budget 10: A (P=10, O=3) prefills alone (1.1); B (P=10)
    # arrived at 0.5 but 10 > 10 - 1 decode token, so A decodes (1.1, t=2.2) and finishes (1.1,
    # t=3.3); B prefills whole (1.1) -> first token at 4.4, one decode (1.1) -> 5.5
    w = trace((0, 10, 3), (0.5, 10, 2))
    r = run(w, scheduler="chunked", token_budget=10, chunk_prefill=False)
    m = r.metrics
    assert m.ttft["mean"] == pytest.approx((1.1 + (4.4 - 0.5)) / 2)
    assert m.duration_s == pytest.approx(5.5)
    # with chunking (vLLM V1) B's first 9 tokens ride in A's first decode step (1 + 0.1 + 0.09), its
    # last one in the second (1.11): B's first token at 3.4
    c = run(w, scheduler="chunked", token_budget=10)
    assert c.metrics.ttft["mean"] == pytest.approx((1.1 + (3.4 - 0.5)) / 2)


def test_no_evict_admission_reserves_the_whole_output():
    # 12 KV tokens in blocks of 1; A and B each need 4 + 4. Reserving prompt + output (TRT-LLM's
    # GUARANTEED_NO_EVICT) admits A only: prefill (1.04), 3 decodes (1.1 each, t=4.34); then B
    # prefills (1.04) and decodes 3 times: 8.68, and nothing is ever preempted
    w = trace((0, 4, 4), (0, 4, 4))
    r = run(w, scheduler="chunked", token_budget=64, block_size=1, deployment=Deployment("stub", kv_tokens=12),
            chunk_prefill=False, reserve_output=True)
    assert r.metrics.preemptions == 0
    assert r.metrics.duration_s == pytest.approx(2 * (1.04 + 3 * 1.1))
    assert r.metrics.ttft["mean"] == pytest.approx((1.04 + 1.04 + 3 * 1.1 + 1.04) / 2)
    # allocating as tokens arrive (vLLM) admits both and preempts B when the pool runs out
    v = run(w, scheduler="chunked", token_budget=64, block_size=1, deployment=Deployment("stub", kv_tokens=12))
    assert v.metrics.preemptions >= 1


def test_stack_presets_set_the_engine_defaults():
    from ridgeline.serving import SimulationError
    from ridgeline.serving.stacks import get_stack
    assert (get_stack("vllm", "h100").token_budget, get_stack("vllm", "h100").max_batch) == (8192, 1024)
    assert (get_stack("vllm", "a100").token_budget, get_stack("vllm", "a100").max_batch) == (2048, 256)
    trt = get_stack("trtllm", "h100")
    assert (trt.token_budget, trt.chunk_prefill, trt.reserve_output) == (8192, False, True)
    r = run(trace((0, 10, 2)), stack="trtllm")
    assert r.options["token_budget"] == 8192 and r.options["reserve_output"] is True
    # a flag the user gives wins over the stack's default
    assert run(trace((0, 10, 2)), stack="vllm", token_budget=64).options["token_budget"] == 64
    with pytest.raises(SimulationError, match="unknown serving stack"):
        run(trace((0, 10, 2)), stack="nope")


def test_v0_host_time_is_one_charge_per_step_at_every_pp_and_batch():
    # vLLM V0 waits ~4 ms per step for its scheduler, input preparation and output processing (RFC
    # #6854's bubble holds all three): not more for more sequences, not more under pp (at pp 1 every
    # token also goes out a host time later: test_v0_outputs_go_out_a_host_time_into_the_next_step)
    from ridgeline.serving.stacks import get_stack
    h0 = get_stack("vllm-v0", "a100").host
    assert h0 > 0 and get_stack("vllm", "a100").host == 0.0
    one = trace((0, 10, 6), (100, 10, 6))
    two = trace((0, 10, 6), (0, 10, 6))                   # two sequences in every step
    for w in (one, two):
        v1 = run(w, stack="vllm").metrics
        for pp in (1, 2, 4):
            v0 = run(w, stack="vllm-v0", pp=pp).metrics
            assert v0.tpot["p50"] - v1.tpot["p50"] == pytest.approx(h0)
            assert v0.ttft["p50"] - v1.ttft["p50"] == pytest.approx(h0 * (1 + (pp == 1)))


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 300), st.integers(1, 12)), min_size=1, max_size=8), st.sampled_from([1, 2]))
def test_v0_outputs_go_out_a_host_time_into_the_next_step(reqs, pp):
    # V0 hands a step's tokens out from the next step's output callback, which the model runner calls
    # once that step's host work is done and its forward launched: one request at a time, every
    # token (the first, the last) goes out one host time after its own step ends, so TTFT and
    # end-to-end time grow by exactly that and TPOT not at all; under pp (no async output) nothing moves
    import dataclasses

    from ridgeline.serving import stacks
    w = trace(*((1000.0 * i, p, o) for i, (p, o) in enumerate(reqs)))
    base = stacks.STACKS["vllm-v0"]
    lagged = run(w, stack="vllm-v0", pp=pp).metrics
    try:
        stacks.STACKS["vllm-v0"] = lambda t: dataclasses.replace(base(t), output_lag=False)
        plain = run(w, stack="vllm-v0", pp=pp).metrics
    finally:
        stacks.STACKS["vllm-v0"] = base
    lag = stacks.get_stack("vllm-v0", "stub").host * (pp == 1)
    for q in ("p50", "p99", "mean"):
        assert lagged.ttft[q] == pytest.approx(plain.ttft[q] + lag, abs=1e-9)
        assert lagged.e2e[q] == pytest.approx(plain.e2e[q] + lag, abs=1e-9)
        assert lagged.tpot[q] == pytest.approx(plain.tpot[q], abs=1e-9)


@pytest.mark.parametrize("sched, b_ttft", [("chunked", 2.25), ("continuous", 2.15)])
def test_v0_decodes_a_finished_sequence_once_more_beside_the_next_work(sched, b_ttft):
    # V0 finds A finished only in the next step's callback, so that step decodes A again beside B's
    # prompt (core/scheduler.py _schedule_running: "an extra decode run"). Steps cost 1 s + 0.1 s a
    # decode + 0.01 s a prompt token + h of host time; every token goes out h after its step ends.
    # A: prefill 1.1 + h, first token at 1.1 + 2h; decode 1.1 + h, last token at 2.2 + 3h.
    # B (at 1.15) waits; step 3 holds its 10 tokens and A's extra decode: 1.2 + h, so B's only
    # token goes out at 3.4 + 4h, 2.25 + 4h after it arrived. V0's default scheduler (continuous)
    # runs B's prefill alone (1.1 + h), and A is found finished in that step's callback
    from ridgeline.serving.stacks import get_stack
    h = get_stack("vllm-v0", "stub").host
    m = run(trace((0, 10, 2), (1.15, 10, 1)), stack="vllm-v0", scheduler=sched).metrics
    assert m.ttft["mean"] == pytest.approx((1.1 + 2 * h + b_ttft + 4 * h) / 2)
    assert m.e2e["mean"] == pytest.approx((2.2 + 3 * h + b_ttft + 4 * h) / 2)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 600), st.integers(0, 3), st.sampled_from([0, 8, 256, 512]), st.integers(0, 5000))
def test_decode_only_steps_are_priced_at_the_cuda_graph_batch_they_pad_to(b, chunks, pad, ctx):
    # vLLM replays graphs captured at 1, 2, 4, 8, 16, 24, ... sequences: a decode-only step of b <= pad
    # sequences costs the captured size it rounds up to, each padded slot a sequence of length 1; a
    # step with a prefill chunk (eager) or larger than every captured graph costs its own batch
    from ridgeline.serving.schedulers import ContinuousScheduler, EngineConfig, Seq
    sched = ContinuousScheduler(EngineConfig(LinearStepTime(fixed=0.0, per_seq=1.0, per_ctx=1e-3), graph_pad=pad))
    seqs = [Seq(Request(i, 0.0, 4, 4)) for i in range(b)]
    for i, s in enumerate(seqs):
        s.ctx = ctx + i % 7
    priced = sched.price(seqs, [(Seq(Request(b, 0.0, 4, 4)), 0)] * chunks).duration
    captured = [1, 2, 4] + list(range(8, 1024, 8))
    attention = 1e-3 * sum(s.ctx + 1 for s in seqs)       # each real sequence at its context + the new token
    if chunks or b > pad:
        assert priced == pytest.approx(b + attention)
    else:
        size = min(c for c in captured if c >= b)
        assert size - b < 8 and priced == pytest.approx(size + attention + 1e-3 * (size - b))


@pytest.mark.parametrize("n, prompt, max_batch, priced", [(9, 100, None, 16), (3, 100, None, 4), (2, 100, None, 2),
                                                     (300, 10, 300, 304), (3, 8000, None, 4), (3, 8300, None, 3)])
def test_vllm_v0_decodes_at_the_cuda_graph_batch(n, prompt, max_batch, priced):
    # n sequences decode together; V0 replays the graph of the captured batch size n pads to, captured
    # up to the first size >= max_num_seqs; past max_seq_len_to_capture (8192) the step runs eager
    from ridgeline.serving.stacks import get_stack
    step = LinearStepTime(fixed=0.0, per_seq=1.0)
    w = trace(*[(0, prompt, 4)] * n)
    m = run(w, step=step, stack="vllm-v0", max_batch=max_batch, token_budget=10 ** 6).metrics
    assert m.tpot["p50"] == pytest.approx(priced + get_stack("vllm-v0", "stub").host)


def test_closed_loop_warmup_leaves_out_each_users_first_request():
    # 2 users, P=10, O=1, think 0: the first two arrive together and prefill together (1.2);
    # from then on each request is alone in the engine (1.1). Warm-up (default: one per user)
    # leaves the two first ones out of TTFT
    w = Workload("c", "closed", users=2, prompt=Lengths("fixed", 10), output=Lengths("fixed", 1))
    r = simulate("stub", "stub", workload=w, requests=6, step_time=STEP, deployment=Deployment("stub"))
    assert r.metrics.warmup == 2
    all_in = simulate("stub", "stub", workload=w, requests=6, step_time=STEP, deployment=Deployment("stub"), warmup=0)
    assert all_in.metrics.ttft["mean"] == pytest.approx((2 * 1.2 + 4 * 1.2) / 6)
    assert r.metrics.ttft["mean"] == pytest.approx(1.2)
    assert r.metrics.throughput_rps == all_in.metrics.throughput_rps     # throughput covers the whole run


def test_an_auto_layout_with_a_given_step_table_is_read_back_before_the_stack_is_picked():
    """With ``table=`` the simulator does not resolve ``tp``/``pp="auto"`` itself: the deployment
    does, and the stack must see the resolved numbers."""
    from ridgeline.serving import EstimateTable, simulate
    from ridgeline.serving.simulator import _parallel, preset_estimator

    table = EstimateTable(preset_estimator("llama-3-8b", "h100", _parallel("h100", 1, 1), {}))
    r = simulate("llama-3-8b", "h100", workload="chat", rate=1.0, requests=20, tp="auto", pp="auto",
                 table=table, stack="vllm-v0")
    assert r.metrics.throughput_rps > 0


def test_v0_output_lag_stays_out_of_disaggregated_pools():
    # V0 has no prefill and decode pools: a handed-off sequence's first token is not held back for
    # the prefill pool's next step while the decode pool already generates its next ones
    import dataclasses

    from ridgeline.serving import stacks
    w = trace((0, 10, 4), (0.5, 300, 4), (0.6, 10, 4))
    kw = {"workload": w, "requests": 3, "step_time": STEP, "stack": "vllm-v0", "scheduler": "disaggregated",
          "replicas": 2, "deployment": Deployment("stub", link_bandwidth=1e10, kv_bytes_per_token=1e3)}
    base = stacks.STACKS["vllm-v0"]
    lagged = simulate("stub", "stub", **kw).metrics
    try:
        stacks.STACKS["vllm-v0"] = lambda t: dataclasses.replace(base(t), output_lag=False)
        assert simulate("stub", "stub", **kw).metrics.to_json() == lagged.to_json()
    finally:
        stacks.STACKS["vllm-v0"] = base


@pytest.mark.parametrize("stack", ["vllm", "vllm-v0"])
def test_host_terms_follow_the_family(stack):
    # CUDA graphs are GPUs'. V0's host time per step and output lag are its Python LLMEngine's, which
    # drove GPUs, TPUs and Neuron alike but not a wafer or a dataflow chip. Every family keeps the
    # stack's scheduling policy; a deployment's family decides over its target's
    from ridgeline.cost_models import get_target
    from ridgeline.serving.stacks import get_stack

    def terms(s):
        return s.graph_pad, s.graph_ctx, s.host, s.output_lag
    gpu = get_stack(stack, "h100")
    v0 = stack == "vllm-v0"
    assert gpu.graph_pad > 0 and gpu.graph_ctx == 8192 * v0 and (gpu.host > 0, gpu.output_lag) == (v0, v0)
    for target in ("groq-lpu", "tpu-v6e", "wse-3"):
        st = get_stack(stack, target)
        assert terms(st) == (0, 0, *((gpu.host, gpu.output_lag) if target == "tpu-v6e" else (0.0, False))), target
        assert st.scheduler == gpu.scheduler and st.name == gpu.name
        assert terms(get_stack(stack, "h100", get_target(target).family)) == terms(st), target
    # simulate takes the family from the deployment: one request's TTFT is its prefill (1.1 s), plus
    # V0's host time and output lag wherever its engine runs
    h = get_stack("vllm-v0", "stub").host * v0
    for family, ttft in (("gpu_simt", 1.1 + 2 * h), ("systolic", 1.1 + 2 * h), ("dataflow", 1.1), ("wafer_scale", 1.1)):
        r = simulate("stub", "h100", workload=trace((0, 10, 3)), requests=1, step_time=STEP,
                     deployment=Deployment("x", family=family), stack=stack)
        assert r.metrics.ttft["p50"] == pytest.approx(ttft), family
