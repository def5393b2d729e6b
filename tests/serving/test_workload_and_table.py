"""Workloads (arrival statistics, traces, named mixes) and the interpolated step-time table."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ridgeline.serving import NAMED, EstimateTable, WorkloadError, get_workload, parse_slo, read_trace
from ridgeline.serving.step_table import compose


@settings(max_examples=15, deadline=None)
@given(rate=st.floats(0.1, 1000), cv=st.floats(0.3, 4), seed=st.integers(0, 2 ** 20),
       arrival=st.sampled_from(["poisson", "gamma"]))
def test_arrivals_have_the_asked_rate_and_burstiness(rate, cv, seed, arrival):
    w = get_workload("chat", rate=rate, arrival=arrival, cv=cv)
    reqs = w.requests(4000, seed)
    gaps = np.diff([r.arrival for r in reqs])
    assert np.all(gaps >= 0) and reqs[0].arrival == 0
    # 4000 samples: the mean gap within ~6 standard errors, the CV within 20%
    want_cv = 1.0 if arrival == "poisson" else cv
    assert gaps.mean() == pytest.approx(1 / rate, rel=6 * want_cv / math.sqrt(len(gaps)))
    assert gaps.std() / gaps.mean() == pytest.approx(want_cv, rel=0.2)


@pytest.mark.parametrize("name", sorted(NAMED))
def test_named_workloads_state_their_source_and_median(name):
    w = NAMED[name]
    assert w.source
    reqs = w.with_rate(10).requests(4000, 1)
    med = np.median([r.prompt for r in reqs])
    assert med == pytest.approx(min(w.prompt.value, w.prompt.hi), rel=0.1)
    assert all(r.prompt >= 1 and r.output >= 1 for r in reqs)


def test_trace_reads_aliases_sorts_and_rebases(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("timestamp,input_tokens,output_tokens\n10.5,100,5\n10.0,20,3\n")
    w = read_trace(p)
    assert [(r.arrival, r.prompt, r.output) for r in w.trace] == [(0.0, 20, 3), (0.5, 100, 5)]


@pytest.mark.parametrize("text, needle", [
    ("arrival,prompt\n0,1\n", "missing output"),
    ("arrival,prompt,output\n0,x,1\n", "expected numbers"),
    ("arrival,prompt,output\n0,0,1\n", "prompt >= 1"),
    ("arrival,prompt,output\n", "no requests"),
])
def test_bad_traces_are_named(tmp_path, text, needle):
    p = tmp_path / "bad.csv"
    p.write_text(text)
    with pytest.raises(WorkloadError, match=needle):
        read_trace(p)


def test_unknown_names_and_bad_slos_are_errors():
    with pytest.raises(WorkloadError, match="unknown workload"):
        get_workload("nosuch")
    with pytest.raises(WorkloadError, match="--slo"):
        parse_slo("ttft=-1")
    assert parse_slo("ttft=200ms,tpot=0.05,p=90").ttft == pytest.approx(0.2)


def _fake(calls):
    # decode: 10 ms + 0.1 ms per sequence + 1 ns per sequence-token of context; prefill: 10 ms + 20 us/token
    def est(phase, batch, context, prompt):
        calls.append((phase, batch, context, prompt))
        if phase == "decode":
            return 0.01 + 1e-4 * batch + 1e-9 * batch * context * (1 + 0.1 * math.log2(batch))
        return 0.01 + 2e-5 * prompt + 1e-9 * prompt * context
    return est


@settings(max_examples=30, deadline=None)
@given(b=st.integers(1, 1024), c=st.integers(1, 40000), n=st.integers(1, 8192))
def test_table_is_exact_on_the_grid_and_between_its_neighbours(b, c, n):
    calls: list = []
    t = EstimateTable(_fake(calls))
    est = _fake([])
    lo_b, hi_b = 2 ** int(math.log2(b)), 2 ** math.ceil(math.log2(b))
    got = t.decode(b, c)
    cc = max(c, 128)
    lo = min(est("decode", x, y, 1) for x in (lo_b, hi_b) for y in (128 * 4 ** int(math.log(cc / 128, 4)),
                                                                       128 * 4 ** math.ceil(math.log(cc / 128, 4))))
    hi = max(est("decode", x, y, 1) for x in (lo_b, hi_b) for y in (128 * 4 ** int(math.log(cc / 128, 4)),
                                                                       128 * 4 ** math.ceil(math.log(cc / 128, 4))))
    assert lo * (1 - 1e-9) <= got <= hi * (1 + 1e-9)
    assert t.decode(lo_b, 512) == pytest.approx(est("decode", lo_b, 512, 1))
    # monotone in batch and tokens, as the estimates are
    assert t.decode(b + 1, c) >= got - 1e-15
    assert t.prefill(n + 1, n + 1) >= t.prefill(n, n) - 1e-15
    # each grid point is estimated once
    assert len(calls) == len(set(calls)) == t.points


def test_composition_shares_the_weight_read():
    assert compose(0.05, [], 0.01) == 0.05
    assert compose(None, [0.03], 0.01) == 0.03
    # decode 50 ms + a 30 ms prefill sharing a 10 ms weight floor: 70 ms, never below either part
    assert compose(0.05, [0.03], 0.01) == pytest.approx(0.07)
    assert compose(0.05, [0.005], 0.01) == pytest.approx(0.05)
