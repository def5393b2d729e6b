"""Prefill admission over generated workloads: token budgets, whole prompts, no-evict reservation, warm-up.

Each example draws a workload (open loop at a rate, or a closed loop of users; fixed or
log-normal lengths), an admission rule (chunked as vLLM V1, whole prompts and KV reserved for the
whole output as TensorRT-LLM), a token budget and a KV pool, runs it on a recording stub step and
checks what must hold whatever the numbers: every step within its budget, whole prompts when
chunking is off, nothing preempted under the no-evict rule, each request's tokens all delivered,
TTFT at least its own prefill, Little's law, and warm-up touching the latencies only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ridgeline.serving import Deployment, LinearStepTime, Workload, simulate
from ridgeline.serving.workload import Lengths


@dataclass
class Recording:
    """A LinearStepTime that keeps every step it prices: (decode batch, prefill chunks)."""

    base: LinearStepTime
    steps: list = field(default_factory=list)

    def time(self, batch, context, chunks=()):
        self.steps.append((batch, list(chunks)))
        return self.base.time(batch, context, chunks)


lengths = st.one_of(st.integers(1, 700).map(lambda n: Lengths("fixed", n)),
                    st.tuples(st.integers(2, 400), st.floats(0.1, 1.2)).map(lambda a: Lengths("lognormal", *a, 1, 900)))
workloads = st.one_of(
    st.builds(lambda r, p, o: Workload("g", "poisson", rate=r, prompt=p, output=o), st.floats(0.5, 300), lengths, lengths),
    st.builds(lambda u, p, o: Workload("g", "closed", users=u, prompt=p, output=o), st.integers(1, 12), lengths, lengths))
steps = st.builds(LinearStepTime, fixed=st.floats(1e-3, 0.05), per_seq=st.floats(0, 2e-3), per_ctx=st.floats(0, 1e-6),
                  per_token=st.floats(1e-6, 1e-4))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(w=workloads, step=steps, chunk=st.booleans(), reserve=st.booleans(), budget=st.integers(64, 4096),
       kv=st.one_of(st.none(), st.integers(1200, 30000)), max_batch=st.integers(1, 32), seed=st.integers(0, 2 ** 16))
def test_admission_keeps_its_budget_and_its_promises(w, step, chunk, reserve, budget, kv, max_batch, seed):
    rec = Recording(step)
    r = simulate("stub", "stub", workload=w, requests=30, step_time=rec, seed=seed, scheduler="chunked",
                 deployment=Deployment("stub", kv_tokens=kv), token_budget=budget, max_batch=max_batch,
                 chunk_prefill=chunk, reserve_output=reserve, block_size=16)
    m = r.metrics
    assert m.requests + m.rejected == 30
    for batch, chunks in rec.steps:
        assert batch <= max_batch
        tokens = batch + sum(n for n, _ in chunks)
        # within the budget, or one prompt longer than any step running whole beside its decodes
        assert tokens <= budget or (not chunk and len(chunks) == 1 and chunks[0][0] > budget - batch)
        if not chunk:
            # whole prompts: a chunk starts an empty context (a recompute prefills prompt + tokens so far)
            assert all(c == n for n, c in chunks)
    if reserve:
        assert m.preemptions == 0        # KV for the whole sequence was there before it started
    if m.requests:
        # every token asked for is delivered unless a request was stopped at the KV capacity
        if not m.truncated:
            assert m.output_tokens_per_s * m.duration_s == pytest.approx(
                sum(s for s in _outputs(w, seed, r)), rel=1e-9)
        assert m.littles_law["L"] == pytest.approx(m.littles_law["lambda_W"], rel=1e-9)
        # a first token needs at least the prompt's own prefill (one step's fixed cost + its tokens)
        assert m.ttft["p50"] >= step.fixed * 0.999


def _outputs(w: Workload, seed: int, r) -> list[int]:
    """The output lengths the run asked for (open loop: the drawn requests; closed: the drawn lengths)."""
    if w.arrival == "closed":
        return [o for _, o, _ in w.closed_lengths(30, seed)][: r.metrics.requests]
    return [q.output for q in w.requests(30, seed)][: r.metrics.requests]


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(users=st.integers(1, 10), p=st.integers(1, 500), o=st.integers(1, 60), step=steps,
       warm=st.integers(0, 25), stack=st.sampled_from(["vllm", "trtllm"]))
def test_warmup_changes_the_latencies_only(users, p, o, step, warm, stack):
    w = Workload("c", "closed", users=users, prompt=Lengths("fixed", p), output=Lengths("fixed", o))
    kw = {"workload": w, "requests": 30, "step_time": step, "deployment": Deployment("stub", kv_tokens=50000),
          "stack": stack}
    a = simulate("stub", "stub", warmup=0, **kw).metrics
    b = simulate("stub", "stub", warmup=warm, **kw).metrics
    assert b.warmup == min(warm, 29)
    assert (a.throughput_rps, a.output_tokens_per_s, a.littles_law) == (b.throughput_rps, b.output_tokens_per_s,
                                                                         b.littles_law)
    if warm == 0:
        assert a.ttft == b.ttft
    # the default leaves out one request per user: the burst every closed loop starts with
    assert simulate("stub", "stub", **kw).metrics.warmup == min(users, 29)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(users=st.integers(2, 10), p=lengths, o=lengths, step=steps, seed=st.integers(0, 2 ** 16),
       sched=st.sampled_from([{"stack": "trtllm"}, {"stack": "vllm"}, {"scheduler": "continuous"}]))
def test_a_closed_loop_at_think_zero_is_the_limit_of_a_short_think(users, p, o, step, seed, sched):
    # a reply reaches its user after the engine has launched its next step, so a request sent on
    # the reply (think 0) joins the step after, as one sent a moment later does; joining the very
    # step the engine launches as the reply leaves kept identical users in a lockstep no real
    # client and server keep (NIM's TTFT at 50 users: 0.37 s simulated against 0.83 s published)
    w = Workload("c", "closed", users=users, prompt=p, output=o)
    kw = {"requests": 30, "step_time": step, "deployment": Deployment("stub", kv_tokens=50000), "seed": seed} | sched
    zero = simulate("stub", "stub", workload=w, **kw).metrics
    soon = simulate("stub", "stub", workload=Workload("c", "closed", users=users, prompt=p, output=o, think=1e-9),
                    **kw).metrics
    for key in ("mean", "p50", "p99"):
        assert zero.ttft[key] == pytest.approx(soon.ttft[key], rel=1e-6, abs=1e-6)
    if soon.itl["mean"] is not None:      # one-token outputs have no inter-token gaps
        assert zero.itl["mean"] == pytest.approx(soon.itl["mean"], rel=1e-6, abs=1e-6)
