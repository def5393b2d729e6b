"""Trust checks on generated configurations: Little's law, causality, low-rate limits, saturation, seeds."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ridgeline.serving import Deployment, LinearStepTime, Request, Workload, simulate
from ridgeline.serving.workload import Lengths

steps = st.builds(LinearStepTime, fixed=st.floats(1e-3, 0.05), per_seq=st.floats(0, 2e-3),
                  per_ctx=st.floats(0, 1e-6), per_token=st.floats(0, 1e-4), per_token_ctx=st.floats(0, 1e-8))
lengths = st.one_of(st.integers(1, 600).map(lambda n: Lengths("fixed", n)),
                    st.tuples(st.integers(2, 400), st.floats(0.1, 1.2)).map(lambda a: Lengths("lognormal", *a)))


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(step=steps, prompt=lengths, output=lengths, rate=st.floats(0.5, 200), sched=st.sampled_from(
    ["static", "continuous", "chunked", "disaggregated", "pipeline"]), kv=st.one_of(st.none(), st.integers(800, 20000)),
    mode=st.sampled_from(["recompute", "swap"]), seed=st.integers(0, 2 ** 16), arrival=st.sampled_from(["poisson", "gamma"]),
    spec=st.sampled_from([(0, 0.0), (3, 0.6), (2, 1.0)]), prefix_hit=st.sampled_from([0.0, 0.4]),
    stack=st.sampled_from([None, "vllm-v0"]))
def test_littles_law_and_causality(step, prompt, output, rate, sched, kv, mode, seed, arrival, spec, prefix_hit, stack):
    w = Workload("g", arrival, rate=rate, cv=2.0, prompt=prompt, output=output)
    dep = Deployment("stub", family="dataflow" if sched == "pipeline" else "stub", devices=4, layers=8,
                     kv_tokens=kv, kv_bytes_per_token=1e5, link_bandwidth=1e10)
    r = simulate("stub", "stub", workload=w, requests=40, step_time=step, deployment=dep, scheduler=sched,
                 replicas=2 if sched == "disaggregated" else 1, preemption=mode, seed=seed, max_batch=16,
                 token_budget=256 if sched == "chunked" else None, slo="ttft=1,tpot=0.1",
                 spec_k=spec[0], spec_acceptance=spec[1], prefix_hit=prefix_hit, stack=stack)
    m = r.metrics
    assert m.requests + m.rejected == 40
    # every served request got all its tokens, or was stopped at the KV capacity
    assert m.output_tokens_per_s * m.duration_s <= 40 * 1e6
    if m.requests:
        # the time integral of requests in the system equals arrival rate x mean time in system
        assert m.littles_law["L"] == pytest.approx(m.littles_law["lambda_W"], rel=1e-9)
        # causality: nothing before its arrival, tokens after the first, at least one step each
        assert m.ttft["p50"] >= step.fixed * 0.999 and m.e2e["mean"] >= m.ttft["mean"] - 1e-12
        assert 0 <= m.utilization <= 1 + 1e-9
        assert 0 <= m.kv_occupancy["peak"] <= 1 + 1e-9
        assert 0 <= m.goodput_rps <= m.throughput_rps + 1e-12


@pytest.mark.parametrize("sched, stack", [("static", None), ("continuous", None), ("chunked", None), (None, "vllm"),
                                         (None, "trtllm"), (None, "vllm-v0")])
def test_low_rate_limits_are_the_prefill_and_the_batch_one_step(sched, stack):
    # one request at a time: TTFT is the prompt's prefill, TPOT the batch-1 decode step (each plus
    # the stack's host time per step; batch 1 is a captured CUDA-graph size, never padded). vLLM V0
    # hands a step's tokens out from the next step's callback, once that step's host time is spent:
    # every token, the first too, goes out one host time later, so TPOT keeps its value
    from ridgeline.serving.stacks import get_stack
    host = get_stack(stack, "stub").host if stack else 0.0
    lag = host * (stack == "vllm-v0")
    step = LinearStepTime(fixed=0.02, per_seq=0.001, per_ctx=2e-7, per_token=5e-5, per_token_ctx=1e-9)
    w = Workload("slow", "poisson", rate=0.01, prompt=Lengths("fixed", 500), output=Lengths("fixed", 51))
    r = simulate("stub", "stub", workload=w, requests=30, step_time=step, deployment=Deployment("stub"),
                 scheduler=sched, token_budget=4096, stack=stack)
    m = r.metrics
    assert m.ttft["p50"] == pytest.approx(step.time(0, 0, [(500, 500)]) + host + lag, rel=1e-6)
    # decode contexts run 501..550: TPOT is the mean of those batch-1 steps
    mean_step = sum(step.time(1, c) for c in range(501, 551)) / 50 + host
    assert m.tpot["p50"] == pytest.approx(mean_step, rel=1e-6)


@pytest.mark.parametrize("sched, stack", [("continuous", None), ("static", None), (None, "trtllm"), (None, "vllm-v0")])
@given(b=st.integers(1, 24), p=st.integers(1, 300), o=st.integers(2, 60))
@settings(max_examples=5, deadline=None)
def test_throughput_saturates_at_the_offline_maximum(sched, stack, b, p, o):
    # everything arrives at once: the engine cycles prefill(b x p) + (o - 1) decodes of batch b
    # (vllm-v0: decodes at the CUDA-graph batch b pads to, every step plus its host time)
    from ridgeline.serving.stacks import get_stack
    host = get_stack(stack, "stub").host if stack else 0.0
    padded = b if stack != "vllm-v0" or b <= 2 else 4 if b <= 4 else -(-b // 8) * 8
    step = LinearStepTime(fixed=0.01, per_seq=1e-3, per_token=2e-5)
    w = Workload("flood", "trace", trace=tuple(Request(i, 0.0, p, o) for i in range(4 * b)))
    r = simulate("stub", "stub", workload=w, requests=4 * b, step_time=step, deployment=Deployment("stub"),
                 scheduler=sched, max_batch=b, token_budget=10 ** 6, stack=stack)
    cycle = step.time(0, 0, [(b * p, p)]) + host + (o - 1) * (step.time(padded, 0) + host)
    # vllm-v0 finds a batch finished only in the next step, so it decodes it once more: beside the
    # next batch's prefill (a mixed step, not padded), and after the last batch in a step of its own
    extra = (3 * step.time(b, 0) - 3 * step.fixed + step.time(padded, 0) + host) * (stack == "vllm-v0")
    assert r.metrics.throughput_rps == pytest.approx(4 * b / (4 * cycle + extra), rel=1e-3)


def test_deterministic_for_a_seed():
    kw = {"workload": "chat", "rate": 20.0, "requests": 300, "step_time": LinearStepTime(0.02, 1e-3, 0, 2e-5),
              "deployment": Deployment("stub", kv_tokens=60000), "spec_k": 3, "spec_acceptance": 0.6}
    a = simulate("stub", "stub", seed=7, **kw).metrics.to_json()
    b = simulate("stub", "stub", seed=7, **kw).metrics.to_json()
    c = simulate("stub", "stub", seed=8, **kw).metrics.to_json()
    assert a == b
    assert a != c


def test_closed_loop_keeps_n_users_in_the_system():
    step = LinearStepTime(fixed=0.01, per_seq=1e-3)
    w = Workload("closed", "closed", users=5, prompt=Lengths("fixed", 10), output=Lengths("fixed", 10))
    r = simulate("stub", "stub", workload=w, requests=50, step_time=step, deployment=Deployment("stub"))
    assert r.metrics.requests == 50
    # zero think time: 5 in the system at every instant until the last few
    assert r.metrics.littles_law["L"] == pytest.approx(5, rel=0.1)


def test_a_v0_user_asks_again_only_once_the_reply_is_out():
    # V0's last token goes out a host time after its step ends; the user's next request follows it,
    # so one user is never in the system twice (time-average requests in the system <= users)
    w = Workload("closed", "closed", users=1, prompt=Lengths("fixed", 10), output=Lengths("fixed", 3))
    m = simulate("stub", "stub", workload=w, requests=20, step_time=LinearStepTime(fixed=0.01, per_seq=1e-3),
                 deployment=Deployment("stub"), stack="vllm-v0", warmup=0).metrics
    assert m.littles_law["L"] <= 1 + 1e-12


def test_max_rate_meets_the_slo_and_grows_with_a_looser_one():
    from ridgeline.serving import SimulationError, max_rate
    kw = {"model": "x", "target": "stub", "step_time": LinearStepTime(0.014, 2e-4, 0, 3e-5),
              "deployment": Deployment("stub", kv_tokens=300000), "workload": "chat", "requests": 150}
    tight = max_rate("ttft=0.8,tpot=0.03", **kw)
    loose = max_rate("ttft=2,tpot=0.06", **kw)
    assert tight["at_max"].metrics.slo_met and loose["at_max"].metrics.slo_met
    assert 0 < tight["max_rate"] <= loose["max_rate"] <= 1.5 * loose["offline_max_rps"]
    with pytest.raises(SimulationError, match="no arrival rate meets"):
        max_rate("ttft=0.001,tpot=0.001", **kw)


def test_engine_cpu_time_is_not_busy_device_time_but_draws_stepping_power():
    # vllm-v0's 4 ms of host time per step leaves the GPUs without work: saturated by 1 ms steps, the
    # devices are busy 1/5 of the time (utilization), but a GPU's clocks and power state do not drop
    # to idle in a 4 ms gap, so energy bills the whole step at the stepping power
    from ridgeline.serving.stacks import get_stack
    host = get_stack("vllm-v0", "stub").host
    w = Workload("sat", "poisson", rate=1e9, prompt=Lengths("fixed", 10), output=Lengths("fixed", 50))
    m = simulate("stub", "stub", workload=w, requests=40, step_time=LinearStepTime(fixed=1e-3),
                 deployment=Deployment("stub", power_w=100.0), stack="vllm-v0").metrics
    assert m.utilization == pytest.approx(1e-3 / (1e-3 + host))
    assert m.energy["average_w"] == pytest.approx(100.0, rel=0.02)
