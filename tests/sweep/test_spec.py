"""The spec: axes and ranges, safe constraints (checked against Python's own evaluation of the
same arithmetic on generated grids), chunks that partition the grid, target variants."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ridgeline.sweep import Constraint, SpecError, apply_overrides, parse_spec
from ridgeline.sweep.expr import ExprError
from ridgeline.sweep.grid import chunks, points
from ridgeline.sweep.variants import VariantError

# ---------------------------------------------------------------- constraints
names = st.sampled_from(["batch", "context", "tp", "pp"])
leaf = st.one_of(names, st.integers(0, 64).map(str))
arith = st.recursive(leaf, lambda e: st.tuples(e, st.sampled_from(["+", "-", "*", "//", "%"]), e)
                     .map(lambda t: f"({t[0]} {t[1]} {t[2]})"), max_leaves=4)
comparison = st.tuples(arith, st.sampled_from(["<", "<=", "==", "!=", ">", ">="]), arith).map(" ".join)
boolean = st.recursive(comparison, lambda e: st.one_of(
    st.tuples(e, st.sampled_from(["and", "or"]), e).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
    e.map(lambda x: f"not {x}")), max_leaves=3)


@settings(max_examples=60, deadline=None)
@given(text=boolean, batch=st.sampled_from([[1, 2, 4], [8, 16]]), tp=st.sampled_from([[1, 2], [1, 4, 8]]))
def test_constraints_select_what_python_arithmetic_selects(text, batch, tp):
    axes = {"model": ["gpt2"], "target": ["h100"], "batch": batch, "context": [128, 1024], "tp": tp, "pp": [1, 2]}
    try:
        spec = parse_spec({"axes": axes, "sweep": {"constraints": [text]}})
    except SpecError:
        return
    expected = []
    for i, vals in enumerate(itertools.product(*axes.values())):
        env = dict(zip(axes, vals))
        try:
            ok = eval(text, {"__builtins__": {}}, env)     # the oracle, on generated arithmetic only
        except ZeroDivisionError:
            with pytest.raises(ExprError, match="division"):
                list(points(spec))
            return
        if ok:
            expected.append(i)
    assert [i for i, _ in points(spec)] == expected


@pytest.mark.parametrize("text", ["__import__('os').system('true')", "batch.__class__", "open('x')",
                                  "[x for x in range(3)]", "lambda: 1", "batch[0]", "tp if", "", "2 ** 2 ** 99 > 1"])
def test_unsafe_or_malformed_constraints_are_refused(text):
    spec = {"axes": {"model": ["gpt2"], "target": ["h100"], "batch": [1]}, "sweep": {"constraints": [text]}}
    with pytest.raises((SpecError, ExprError)):
        list(points(parse_spec(spec)))


def test_constraint_names_must_be_axes():
    with pytest.raises(ExprError, match="unknown name"):
        Constraint("tpp * 2 < 8", allowed=["tp", "pp"])


# ---------------------------------------------------------------- axes, grid, chunks
@settings(max_examples=40, deadline=None)
@given(start=st.integers(1, 50), n=st.integers(0, 20), step=st.integers(1, 9), factor=st.integers(2, 4))
def test_ranges_include_stop_and_nothing_past_it(start, n, step, factor):
    stop = start + n * step
    spec = parse_spec({"axes": {"model": ["gpt2"], "target": ["h100"], "batch": {"start": start, "stop": stop,
                                                                                 "step": step}}})
    assert spec.axes["batch"] == tuple(range(start, stop + 1, step))
    gstop = start * factor ** min(n, 6)
    geo = parse_spec({"axes": {"model": ["gpt2"], "target": ["h100"],
                               "batch": {"start": start, "stop": gstop, "factor": factor}}}).axes["batch"]
    assert geo[0] == start and geo[-1] == gstop and all(b == a * factor for a, b in itertools.pairwise(geo))


@settings(max_examples=40, deadline=None)
@given(batches=st.lists(st.integers(1, 512), min_size=1, max_size=4, unique=True),
       tps=st.lists(st.sampled_from([1, 2, 4, 8, "auto"]), min_size=1, max_size=3, unique=True),
       phases=st.sampled_from([["decode"], ["prefill", "decode"]]), size=st.integers(1, 40))
def test_chunks_partition_the_grid_and_keep_shared_work_together(batches, tps, phases, size):
    spec = parse_spec({"axes": {"model": ["gpt2", "llama-2-7b"], "target": ["h100", "tpu-v6e"], "phase": phases,
                                "batch": batches, "tp": tps}})
    pts = list(points(spec))
    cs = chunks(spec, pts, size)
    flat = [p for c in cs for p in c]
    assert sorted(flat) == pts and len(flat) == len({p[0] for p in flat}) == math.prod(map(len, spec.axes.values()))
    assert all(len(c) <= size for c in cs)
    names = list(spec.axes)
    unit = [names.index(a) for a in ("model", "batch", "target")]
    per_unit = len(phases) * len(tps)
    if per_unit <= size:    # a unit (graph × target) smaller than a chunk is never split
        seen = {}
        for k, c in enumerate(cs):
            for _, vals in c:
                assert seen.setdefault(tuple(vals[i] for i in unit), k) == k


@pytest.mark.parametrize("bad, match", [
    ({"axes": {"model": ["gpt2"], "target": ["h100"], "batchsize": [1]}}, "unknown axis"),
    ({"axes": {"model": ["gpt2"], "target": ["h1000"]}}, "unknown target"),
    ({"axes": {"model": ["gpt-5"], "target": ["h100"]}}, "unknown preset"),
    ({"axes": {"model": ["gpt2"]}}, "target is required"),
    ({"axes": {"model": ["gpt2"], "target": ["h100"], "batch": []}}, "empty"),
    ({"axes": {"model": ["gpt2"], "target": ["v"]}, "variants": {"v": {"base": "h100", "memory.hbm.speed": "x2"}}},
     "unknown field"),
    ({"axes": {"model": ["gpt2"], "target": ["v"]}, "variants": {"v": {"base": "h100", "memory.dram.bandwidth": 1}}},
     "no memory level"),
    ({"axes": {"model": ["gpt2"], "target": ["v"]}, "variants": {"v": {"base": "h100", "overheads.nope": 1}}},
     "reads no overheads key"),
    ({"axes": {"model": ["gpt2"], "target": ["v"]}, "variants": {"v": {"memory.hbm.bandwidth": "x2"}}}, "base"),
    ({"axes": {"model": ["gpt2"], "target": ["h100"], "tp": [0]}}, "positive"),
    ({"axes": {"model": ["gpt2"], "target": ["h100"], "phase": ["decoding"]}}, "prefill, decode"),
    ({"axes": {"model": ["gpt2"], "target": ["h100"], "kv_dtype": ["int3"]}}, "kv_dtype"),
    ({"axes": {"model": ["gpt2"], "target": ["h100"], "context": [0.5]}}, "positive integers"),
    ({"axes": {"model": ["gpt2"], "target": ["h100"]}, "sweep": {"chunks": 3}}, "unknown key"),
])
def test_bad_specs_name_the_problem(bad, match):
    with pytest.raises(SpecError, match=match):
        parse_spec(bad)


# ---------------------------------------------------------------- target variants
@settings(max_examples=25, deadline=None)
@given(target=st.sampled_from(["h100", "tpu-v6e", "b200", "trainium2"]), f=st.floats(1.01, 8.0))
def test_more_bandwidth_and_compute_never_make_a_step_slower(target, f):
    """A physical invariant of any roofline-like model: a faster memory and faster units cannot
    lengthen a step; the variant's fields scale exactly by the factor."""
    from ridgeline.cost_models import estimate, get_target
    from ridgeline.models import build
    base = get_target(target)
    level = base.device_memory.name
    unit = next(iter(base.units))
    fast = apply_overrides(base, {f"memory.{level}.bandwidth": f"x{f}", f"units.{unit}.peak": f"×{f}"},
                           name=f"{target}-fast")
    assert fast.device_memory.bandwidth == pytest.approx(base.device_memory.bandwidth * f)
    assert all(fast.units[unit].peak[k] == pytest.approx(v * f) for k, v in base.units[unit].peak.items())
    assert base.device_memory.bandwidth == get_target(target).device_memory.bandwidth   # base untouched
    g = build("gpt2", phase="decode", batch=4, context=512)
    assert estimate(g, fast).time_s <= estimate(g, base).time_s * (1 + 1e-12)


def test_variant_values_are_checked_like_target_files():
    with pytest.raises(VariantError, match="bandwidth"):
        apply_overrides("h100", {"memory.hbm.bandwidth": "fast"})
    with pytest.raises(VariantError, match="fraction"):
        apply_overrides("h100", {"efficiency.capacity_usable": "x3"})
    t = apply_overrides("h100", {"interconnect.nvlink4.max_devices": 16, "clock": "2 GHz"}, name="h100-nvl16")
    assert t.name == "h100-nvl16" and t.interconnect[0].max_devices == 16 and t.clock_hz == 2e9
