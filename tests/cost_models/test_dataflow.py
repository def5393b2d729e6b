"""The dataflow family (Groq LPU): every schedule it makes is valid and deterministic."""

from __future__ import annotations

import itertools
import json

import pytest
from helpers import assert_user_error
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st
from schedule_checker import check_schedule

from ridgeline import models
from ridgeline.cost_models import estimate, get_target
from ridgeline.cost_models.families import dataflow as df_mod
from ridgeline.cost_models.schedule import Op, Schedule, list_schedule
from ridgeline.ir.errors import BackendError, RidgelineError

CASES = [
    ("gpt2", {"phase": "decode", "context": 512}),
    ("gpt2", {"phase": "prefill", "context": 128}),
    ("llama-2-7b", {"phase": "decode", "context": 2048, "dtype": "fp16"}),
    ("llama-2-7b", {"phase": "decode", "context": 512, "weight_dtype": "int4"}),     # dequantizing prologues
    ("llama-3-8b", {"phase": "prefill", "context": 256, "batch": 2}),
]


def _est(preset, **kw):
    return estimate(models.build(preset, **kw), "groq-lpu", companion=None)


@pytest.mark.parametrize("preset,kw", CASES, ids=[f"{p}-{'-'.join(f'{k}{v}' for k, v in kw.items())}" for p, kw in CASES])
def test_every_schedule_is_valid(preset, kw):
    est = _est(preset, **kw)
    data = est.schedule.to_json()
    check_schedule(data)
    # the schedule is one micro-batch's; the step adds (k - 1) turns of the busiest unit
    pipe = est.detail["pipeline"]
    assert data["makespan_cycles"] == pipe["microbatch_cycles"]
    assert (pipe["microbatch_cycles"] + (pipe["microbatches"] - 1) * pipe["bottleneck_cycles"]) / data["clock_hz"] \
        == pytest.approx(est.time_s)
    assert 0 <= pipe["bubble_fraction"] < 1
    # node records are increments of the schedule's end: they sum to the makespan
    assert sum(r.time_s for r in est.nodes) == pytest.approx(est.time_s)
    # the partition holds every resident byte within each chip's SRAM
    assert est.memory.fits and est.devices == data["chips"]
    assert est.memory.total_weights_bytes <= data["chips"] * get_target("groq-lpu").device_memory.capacity


def test_same_input_same_schedule_in_process():
    a = _est("llama-2-7b", context=1024, dtype="fp16")
    b = _est("llama-2-7b", context=1024, dtype="fp16")
    assert a.time_s == b.time_s
    assert a.schedule.to_json() == b.schedule.to_json()


def test_same_schedule_in_a_fresh_process(run_cli, tmp_path):
    out = tmp_path / "s.json"
    proc = run_cli("estimate", "llama-2-7b", "--target", "groq-lpu", "--context", "1024", "--dtype", "fp16",
                   "--schedule", out, "--json")
    assert proc.returncode == 0, proc.stderr
    fresh = json.loads(out.read_text())
    check_schedule(fresh)
    here = _est("llama-2-7b", context=1024, dtype="fp16").schedule.to_json()
    assert fresh == json.loads(json.dumps(here))
    assert json.loads(proc.stdout)["time_s"] == pytest.approx(fresh["seconds"], rel=0, abs=0)


def test_replicated_layers_equal_the_exact_schedule(monkeypatch):
    g = models.build("llama-2-7b", context=512, dtype="fp16")
    exact = estimate(g, "groq-lpu", companion=None, replicate=False)
    monkeypatch.setattr(df_mod, "REPLICATE_ABOVE", 100)
    rep = estimate(g, "groq-lpu", companion=None)
    assert rep.schedule.replicated and rep.schedule.replicated["copies"] == 29    # layers 3..31
    assert exact.schedule.replicated is None
    check_schedule(rep.schedule.to_json())
    assert rep.schedule.makespan == exact.schedule.makespan
    assert [(o.node, o.start, o.chip, o.unit, o.deps) for o in rep.schedule.ops] == \
        [(o.node, o.start, o.chip, o.unit, o.deps) for o in exact.schedule.ops]
    assert sorted((r.name, r.time_s, r.bound) for r in rep.nodes) == sorted((r.name, r.time_s, r.bound) for r in exact.nodes)


@settings(max_examples=6, deadline=None, derandomize=True)
@given(st.sampled_from(("llama-2-7b", "llama-3-8b")), st.sampled_from(("int8", "int4")), st.sampled_from((1, 8, 64)),
       st.sampled_from((1024, 32768)), st.integers(4, 28))
def test_a_partly_widened_layout_is_replicated_per_layer_form(preset, wd, batch, ctx, widened):
    # the layers below ``widened`` hold 16-bit weights, the rest int8/int4: two runs of identical
    # layers, each scheduled from three of its layers and replicated (a 405B corner took 18.8 s
    # CPU when a mixed layout fell back to scheduling every layer), to the same ops and records
    from ridgeline.cost_models import cost_model
    from ridgeline.cost_models.spatial import require_no_degrees
    g = models.build(preset, phase="decode", batch=batch, context=ctx, dtype="bf16", weight_dtype=wd)
    ests = {}
    for rep in (True, False):
        m = cost_model("groq-lpu", replicate=rep)
        require_no_degrees(m)
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(df_mod, "REPLICATE_ABOVE", 100)
            ests[rep] = m._estimate(g, None, None, widened)
    rep, exact = ests[True], ests[False]
    assert rep.schedule.replicated["forms"] == 2
    assert rep.schedule.replicated["copies"] == 32 - 6 == (widened - 3) + (32 - widened - 3)
    assert rep.schedule.makespan == exact.schedule.makespan and rep.time_s == exact.time_s
    assert [(o.node, o.start, o.chip, o.unit, o.deps) for o in rep.schedule.ops] == \
        [(o.node, o.start, o.chip, o.unit, o.deps) for o in exact.schedule.ops]
    assert sorted((r.name, r.time_s, r.bound) for r in rep.nodes) == \
        sorted((r.name, r.time_s, r.bound) for r in exact.nodes)


@settings(max_examples=4, deadline=None, derandomize=True)
@given(st.sampled_from(("llama-2-7b", "llama-3-8b")), st.sampled_from((1, 8, 64)), st.sampled_from((32768, 131072)))
@example("llama-2-7b", 16, 32768)
def test_a_step_past_the_window_reads_each_chips_cache_once(preset, batch, ctx):
    # the layout's chips read the window's cache and the KV-only chips the rest, once a step (plus
    # the query, scores and output, a few percent): the far share is the window's, not one
    # micro-batch's bytes over the step's (that put 1/4 of the window's reads on its chips at k=4)
    from ridgeline.cost_models import cost_model
    g = models.build(preset, phase="decode", batch=batch, context=ctx, dtype="bf16", weight_dtype="int4")
    est, layout = cost_model("groq-lpu").estimate_layout(g)
    part = layout.partition
    assume(part.window.overflows)
    kv = [(next(iter(r.bytes.values())), r.detail["far_share"]) for r in est.nodes if "far_share" in r.detail]
    near, far = sum(b * (1 - f) for b, f in kv), sum(b * f for b, f in kv)
    assert 1 <= near / sum(part.kv[:part.chips - part.kv_only]) < 1.1
    assert 1 <= far / part.window.overflow_bytes < 1.1


def test_decode_is_install_bound_prefill_compute_bound(monkeypatch):
    dec = _est("llama-2-7b", context=2048, dtype="fp16")
    # the whole prompt as one chunk (the pipeline's chunks are as small as keeps the MXM fed:
    # near the install/compute balance, ``test_a_prompt_streams_through_the_chips_in_chunks``)
    monkeypatch.setattr(df_mod, "_microbatch_counts", lambda g: [1])
    pre = _est("llama-2-7b", phase="prefill", context=2048, dtype="fp16")
    proj = [r for r in dec.nodes if r.op == "MatMul"]
    assert proj and all(r.bound == "memory" for r in proj)                        # weights from SRAM
    big = [r for r in pre.nodes if r.op == "MatMul" and r.name.endswith("gate_proj")]
    assert big and all(r.bound == "compute" for r in big)
    assert dec.bound == "memory"


def test_quantized_weights_need_fewer_chips_and_decode_faster():
    fp16 = _est("llama-2-7b", context=2048, dtype="fp16")
    int8 = _est("llama-2-7b", context=2048, dtype="int8")
    assert int8.devices < fp16.devices
    assert int8.time_s < fp16.time_s


def test_chip_count_follows_sram_capacity():
    est = _est("llama-2-7b", context=2048, dtype="fp16")
    cap = get_target("groq-lpu").device_memory.capacity
    total = est.memory.total_weights_bytes + est.memory.total_kv_cache_bytes
    assert est.devices >= total / cap
    assert est.devices <= 2 * total / cap + 4          # layer-aligned packing wastes less than half


def test_tensor_parallel_degrees_do_not_apply():
    g = models.build("gpt2")
    with pytest.raises(BackendError, match="--tp does not apply"):
        estimate(g, "groq-lpu", tp=2)
    estimate(g, "groq-lpu", tp="auto", pp="auto", companion=None)   # compare's defaults are fine


def test_list_scheduler_capacity_and_dependencies():
    def ops():
        return [Op(0, "a", "X", "vector", "vxm", 0, 10), Op(1, "b", "X", "vector", "vxm", 0, 10),
                Op(2, "c", "X", "matmul", "mxm", 0, 5, deps=(0, 1))]
    one = ops()
    assert list_schedule(one, {"vxm": 1, "mxm": 1}) == 25          # a and b share one vector unit
    two = ops()
    assert list_schedule(two, {"vxm": 2, "mxm": 1}) == 15          # two instances: side by side
    assert two[0].start == two[1].start == 0 and two[2].start == 10
    with pytest.raises(RidgelineError, match="does not precede"):
        list_schedule([Op(0, "a", "X", "vector", "vxm", 0, 1, deps=(1,)), Op(1, "b", "X", "vector", "vxm", 0, 1)],
                      {"vxm": 1})
    with pytest.raises(RidgelineError, match="unit 'tpu'"):
        list_schedule([Op(0, "a", "X", "vector", "tpu", 0, 1)], {"vxm": 1})


def test_schedule_json_round_trip():
    s = _est("gpt2", context=256).schedule
    back = Schedule.from_json(json.loads(json.dumps(s.to_json())))
    assert back.to_json() == s.to_json()
    with pytest.raises(RidgelineError, match="not a ridgeline schedule"):
        Schedule.from_json({"format": "other"})


def test_cli_schedule_and_gantt(run_cli, tmp_path):
    sj, png = tmp_path / "s.json", tmp_path / "s.svg"
    proc = run_cli("estimate", "gpt2", "--target", "groq-lpu", "--schedule", str(sj), "--gantt", str(png))
    assert proc.returncode == 0, proc.stderr
    check_schedule(json.loads(sj.read_text()))
    assert png.read_text().lstrip().startswith("<?xml")
    assert_user_error(run_cli("estimate", "gpt2", "--target", "h100", "--schedule", str(sj)),
                      "--schedule applies to", "dataflow", "h100")
    assert_user_error(run_cli("estimate", "gpt2", "--target", "groq-lpu", "--gantt", str(tmp_path / "g.txt")),
                      "--gantt", ".png")


def test_tile_records_are_read_and_checked():
    from ridgeline.cost_models.traffic import flash_attention_tile
    from ridgeline.ir.errors import TargetError
    t = get_target("groq-lpu")
    g = models.build("llama-2-7b", phase="prefill", context=1024, dtype="fp16")
    plain = estimate(g, t, companion=None)
    for n in g:
        if n.op == "Attention":
            n.meta["tile"] = flash_attention_tile(n, t)
    tiled = estimate(g, t, companion=None)
    check_schedule(tiled.schedule.to_json())
    att = lambda e: sum(r.compute_s + r.memory_s for r in e.nodes if r.op == "Attention")
    assert att(tiled) < att(plain)                      # causal blocks above the diagonal are skipped
    next(n for n in g if n.op == "Attention").meta["tile"] = {"traffic": {"hbm": 1e6}}
    with pytest.raises(TargetError, match="level 'hbm'.*groq-lpu"):
        estimate(g, t, companion=None)


def test_target_schema_errors_name_the_field(tmp_path):
    from pathlib import Path

    from ridgeline.cost_models import targets as targets_pkg
    from ridgeline.cost_models.targets import load_target_file
    from ridgeline.ir.errors import TargetError
    src = Path(targets_pkg.__file__).with_name("groq-lpu.toml").read_text()
    bad = tmp_path / "bad.toml"
    bad.write_text(src.replace("install_streams = 32", 'install_streams = "many"'))
    with pytest.raises(TargetError, match=r"bad.toml: array.install_streams: expected a non-negative integer"):
        load_target_file(bad)
    bad.write_text(src.replace('c2c_latency = "500 ns"', 'c2c_latency = "fast"'))
    with pytest.raises(TargetError, match=r"overheads.c2c_latency"):
        load_target_file(bad)


def test_compare_runs_every_family(run_cli):
    proc = run_cli("compare", "llama-2-7b", "--targets", "tpu-v5e,trainium2,wse-3,groq-lpu,h100", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = {r["name"]: r for r in json.loads(proc.stdout)["rows"]}
    for name in ("tpu-v5e", "trainium2", "wse-3", "groq-lpu", "h100"):
        assert "error" not in rows[name], rows[name]
        assert rows[name]["tokens_per_s_per_user"] > 0 and rows[name]["fits"]
    # SRAM machines decode a 7B model per user far faster than one HBM chip can stream it
    assert rows["wse-3"]["tokens_per_s_per_user"] > rows["groq-lpu"]["tokens_per_s_per_user"] \
        > 5 * rows["tpu-v5e"]["tokens_per_s_per_user"]


def test_a_prompt_streams_through_the_chips_in_chunks(monkeypatch):
    # batch 1 prefill: the prompt flows through the layer pipeline in chunks (fill + (k-1) turns of
    # the busiest chip), never slower than the whole prompt crossing the chips at once, never
    # faster than the FLOPs at every chip's peak or one token crossing every layer
    kw = {"phase": "prefill", "context": 512, "dtype": "fp16"}
    est = _est("llama-2-7b", **kw)
    pipe = est.detail["pipeline"]
    assert pipe["microbatches"] > 1
    assert pipe["step_cycles"] == pipe["microbatch_cycles"] + (pipe["microbatches"] - 1) * pipe["bottleneck_cycles"]
    monkeypatch.setattr(df_mod, "_microbatch_counts", lambda g: [1])
    whole = _est("llama-2-7b", **kw)
    monkeypatch.undo()
    assert est.time_s < whole.time_s
    peak = get_target("groq-lpu").peak("f16")
    assert est.time_s >= est.flops / (est.devices * peak)
    one = _est("llama-2-7b", phase="prefill", context=512, prompt=1, dtype="fp16")
    assert est.time_s >= one.time_s


@pytest.mark.parametrize("preset", ["gpt2", "llama-2-7b"])
def test_time_to_first_token_grows_with_the_prompt(preset):
    times = [_est(preset, phase="prefill", context=1024, prompt=p).time_s for p in (1, 2, 129, 1024)]
    assert all(b >= a for a, b in itertools.pairwise(times)), times


def test_a_layer_keeps_its_parallel_products_apart_at_every_batch():
    # llama-3-8b fp8 spans two chips a layer; packing by bytes let the KV cache (which grows with
    # batch) decide whether gate and up shared a chip's MXM, so batch 2 -> 4 gave 1.55x tokens/s
    # while weight-bound. Placed for latency, gate and up sit apart at every batch the room allows
    steps = {}
    for batch in (2, 4):
        est = _est("llama-3-8b", phase="decode", batch=batch, context=512, dtype="fp8")
        chips = est.schedule.placement
        assert chips["layers.3.mlp.gate_proj"] != chips["layers.3.mlp.up_proj"], batch
        steps[batch] = est.time_s
    assert steps[2] / steps[4] * 2 >= 1.6


@settings(max_examples=3, deadline=None, derandomize=True)
@given(st.sampled_from(("llama-2-7b", "llama-3-8b", "llama-2-13b")), st.sampled_from(("fp16", "fp8", "int8")),
       st.sampled_from((1, 4, 16, 64)), st.sampled_from(("decode", "prefill")), st.sampled_from((128, 256)))
def test_a_latency_placement_uses_the_chips_packing_needs_and_is_never_slower(preset, dtype, batch, phase, context):
    from ridgeline.cost_models.model import GraphAnalysis
    model = df_mod.DataflowModel(get_target("groq-lpu"))
    g = models.build(preset, phase=phase, context=context, dtype=dtype, batch=batch if phase == "decode" else 1)
    analysis = GraphAnalysis(g)
    works = model.step_works(analysis, False)
    packed, placed = model.partition(g), model.partition(g, works=works)
    assert placed.first_layer_chip == packed.first_layer_chip
    assert max(placed.resident) <= model._usable() * (1 + 1e-9)
    # the reported step (the faster layout) against the step compiled on packing alone
    est = estimate(g, "groq-lpu", companion=None, analysis=analysis)
    pack = estimate(g, "groq-lpu", companion=None, analysis=analysis, spread=False)
    assert est.time_s <= pack.time_s
    assert est.devices <= pack.devices


def test_spread_false_is_packing_and_the_choice_is_the_reported_step():
    # llama-2-7b fp16 decode, context 128: packing keeps gate and up on one chip at batch 16;
    # the step on the spread layout is faster, and that is the one reported and placed
    g = models.build("llama-2-7b", phase="decode", batch=16, context=128, dtype="fp16")
    est = estimate(g, "groq-lpu", companion=None)
    pack = estimate(g, "groq-lpu", companion=None, spread=False)
    assert est.time_s < pack.time_s
    chips, packed = est.schedule.placement, pack.schedule.placement
    assert packed["layers.3.mlp.gate_proj"] == packed["layers.3.mlp.up_proj"]
    assert chips["layers.3.mlp.gate_proj"] != chips["layers.3.mlp.up_proj"]


@pytest.mark.parametrize("preset,dtype", [("llama-2-7b", "fp16"), ("llama-3-8b", "fp8"), ("llama-2-7b", "int8")])
def test_weight_bound_decode_scales_over_batch_pairs(preset, dtype):
    # the invariant itself (cost_invariants: >= 1.6x tokens/s per doubling while weight-bound),
    # over 1 -> 2 -> ... -> 32. That each step is never slower than packing alone is asserted by the
    # two tests above (the reported step is the faster layout's by construction); pricing packing
    # again here at every batch made this test about 1.4x slower
    from ridgeline.testing import cost_invariants as inv
    bad = []
    for batch in (1, 2, 4, 8, 16):
        bad += inv.check(inv.Case(preset, "groq-lpu", "decode", batch=batch, context=128, dtype=dtype), ("batch",))
    assert not bad, bad
