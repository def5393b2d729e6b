"""The spatial families keep no state between estimates: the layout a step is priced on travels as
a value (``price_layout``), so one model instance estimating other graphs in between gives the
same numbers as a fresh one, and its attributes do not change."""

from __future__ import annotations

import copy

import pytest

from ridgeline import models
from ridgeline.cost_models import get_target
from ridgeline.cost_models.families.dataflow import DataflowLayout, DataflowModel, UnitOp
from ridgeline.cost_models.families.wafer_scale import WaferScaleModel
from ridgeline.cost_models.model import GraphAnalysis


def _state(model) -> dict:
    # containers copied one level, so that a change made in place shows too
    return {k: copy.copy(v) if isinstance(v, (dict, list, set)) else v for k, v in vars(model).items()}


def _times(est) -> list:
    return [est.time_s, est.devices, *[(r.name, r.time_s) for r in est.nodes]]


@pytest.mark.parametrize("cls,target", [(DataflowModel, "groq-lpu"), (WaferScaleModel, "wse-3")])
def test_one_instance_repeats_a_fresh_one_with_other_steps_in_between(cls, target):
    decode = models.build("gpt2", phase="decode", batch=2, context=256)
    prefill = models.build("gpt2", phase="prefill", context=64, weight_dtype="int8")   # two weight forms tried
    model = cls(get_target(target))
    first = model.estimate(decode, companion=None)
    state = _state(model)
    other = model.estimate(prefill, companion=None)
    again = model.estimate(decode, companion=None)
    assert _times(again) == _times(first) == _times(cls(get_target(target)).estimate(decode, companion=None))
    assert _times(other) == _times(cls(get_target(target)).estimate(prefill, companion=None))
    assert _state(model) == state


def test_the_dataflow_layout_is_returned_with_the_records():
    g = models.build("gpt2", phase="decode", context=128)
    model = DataflowModel(get_target("groq-lpu"))
    a = GraphAnalysis(g)
    records, layout = model.price_layout(g, a.plan(1, 1), a)
    assert isinstance(layout, DataflowLayout)
    assert layout.partition.chips == len(layout.partition.resident) >= 1
    # the records' ends are the schedule's ops' ends; their times add up to the micro-batch makespan
    # stretched by the pipeline's further turns
    assert max(r.detail.get("end_cycle", 0) for r in records) == layout.schedule.makespan
    assert sum(r.time_s for r in records) * model.clock == pytest.approx(layout.pipeline["step_cycles"], rel=1e-9)
    ops = [op for n in g for op in model.lower(model.node_work(n))]
    assert ops and all(isinstance(o, UnitOp) and o.cycles >= 0 for o in ops)
