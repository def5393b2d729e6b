"""What the spatial families share: the deployment's context window and the weight form."""

from __future__ import annotations

import functools
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ridgeline import models
from ridgeline.cost_models import estimate
from ridgeline.cost_models.spatial import Window, _weight_only, at_keys, context_window
from ridgeline.cost_models.work import node_work
from ridgeline.ir.errors import RidgelineError


def _graph(ctx, top):
    return SimpleNamespace(meta={"llm": {"context": ctx, "max_context": top}})


@settings(max_examples=80, deadline=None, derandomize=True)
@given(st.integers(7, 17), st.integers(-6, 6), st.integers(-6, 6), st.floats(1e6, 1e12), st.floats(1e3, 1e9),
       st.floats(1e8, 1e14))
def test_the_window_does_not_follow_the_context(log_top, a, b, weights, kv_per_token, system):
    # the layout a step runs on is sized for a window that does not depend on the step's
    # context (within the learned window or past it, as RoPE models run): the learned window
    # when the system holds it, else its largest halving that does
    top = 2 ** log_top
    c1, c2 = max(2, top >> a if a >= 0 else top << -a), max(2, top >> b if b >= 0 else top << -b)
    w1 = context_window(_graph(c1, top), {0: (weights, kv_per_token * c1)}, system)
    w2 = context_window(_graph(c2, top), {0: (weights, kv_per_token * c2)}, system)
    assert w1 == w2 and w1 <= top
    assert w1 == 1 or weights + kv_per_token * w1 <= system * (1 + 1e-9)
    assert w1 == top or weights + kv_per_token * w1 * 2 > system


@settings(max_examples=80, deadline=None, derandomize=True)
@given(st.integers(64, 1 << 16), st.integers(2, 1 << 18), st.integers(1, 64), st.integers(1, 80))
def test_past_the_window_the_layout_reads_its_keys_and_the_rest_is_remote(window, context, heads, layers):
    # what a step past its window puts on KV-only devices: exactly the positions past it, spread
    # so that no device holds more than it can, and the layout's attention reads the window's keys
    per_position = 2.0 * heads * 128 * 2              # one layer's K and V of one position, 16-bit
    res = {i: (1e6, per_position * context) for i in range(layers)}
    over = sum(kv for _, kv in res.values()) * max(0, context - window) / context
    win = Window(window, context, over)
    cap = 2e8
    assert win.overflows == (context > window)
    assert win.devices(cap) * cap >= over
    keys = win.remote_keys(res, cap)
    assert 0 <= keys <= max(0, context - window)
    assert keys * per_position <= cap or keys == 1
    w = _attention_work()
    near = at_keys(w, min(window, 4096))
    qk = next(c for c in near.contractions if c.role == "attention.qk")
    pv = next(c for c in near.contractions if c.role == "attention.pv")
    assert qk.n == pv.k == min(window, 4096)
    assert near.flops <= w.flops


@functools.lru_cache(maxsize=1)
def _attention_work():
    g = models.build("llama-2-7b", phase="decode", context=4096)
    return node_work(next(n for n in g if n.op == "Attention"))


SPATIAL = ("groq-lpu", "wse-3")


@settings(max_examples=8, deadline=None, derandomize=True)
@given(st.sampled_from(SPATIAL), st.sampled_from(("llama-2-7b", "llama-3-8b", "llama-2-13b")),
       st.sampled_from((1, 2, 8, 32)), st.integers(7, 15), st.floats(1.0, 4.0))
def test_time_per_token_never_falls_as_the_context_grows(target, preset, batch, log_c, grow):
    # at a fixed batch, a longer context reads more keys on the same or a larger deployment:
    # within the learned window, at its edge and past it (RoPE models run longer)
    c1 = 2 ** log_c + (log_c * 37) % 97
    c2 = int(c1 * grow) + 1
    times = []
    for c in (c1, c2):
        try:
            times.append(estimate(models.build(preset, phase="decode", batch=batch, context=c), target,
                                  companion=None).time_s)
        except RidgelineError:
            return              # no deployment of the machine holds it: nothing to compare
    assert times[1] >= times[0] * (1 - 1e-9), f"{preset} on {target}, batch {batch}: {c1} -> {c2} tokens " \
                                              f"takes {times[0] * 1e3:.4f} -> {times[1] * 1e3:.4f} ms per step"


@pytest.mark.parametrize("target", SPATIAL)
def test_one_position_past_the_window_costs_a_round_trip_not_a_new_layout(target):
    # the soak's groq-lpu llama-2-7b case: past 4,096 learned positions the step kept the layout
    # it had and sized it for a million positions (2,693 chips): time per token fell
    at, past = (estimate(models.build("llama-2-7b", phase="decode", context=c), target, companion=None)
                for c in (4096, 4097))
    assert past.time_s > at.time_s
    assert past.devices >= at.devices and past.devices <= at.devices + 16
    assert at.memory.fits and past.memory.fits


def test_only_weight_only_models_are_widened_at_load():
    assert _weight_only(models.build("gpt2", weight_dtype="int8"))
    assert _weight_only(models.build("gpt2", dtype="int4"))
    assert not _weight_only(models.build("gpt2", dtype="int8"))       # W8A8: the products stay narrow
    assert not _weight_only(models.build("gpt2"))
