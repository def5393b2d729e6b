"""Capabilities: tile search and the llvm GEMM read what a family declares, never its name."""

from __future__ import annotations

from dataclasses import replace
from importlib import resources

import pytest
import tomllib

from ridgeline.cost_models.capabilities import Capabilities, Traits, capabilities
from ridgeline.cost_models.families import FAMILIES, register_family
from ridgeline.cost_models.families.cpu import CpuModel
from ridgeline.cost_models.families.gpu_simt import GpuSimtModel
from ridgeline.cost_models.families.systolic import SystolicModel
from ridgeline.cost_models.targets import get_target, load_target_dict, target_names
from ridgeline.passes.transforms.tile_search import hierarchy


@pytest.mark.parametrize("name", target_names())
def test_every_target_has_capabilities_the_tile_hierarchy_follows(name):
    t = get_target(name)
    caps = capabilities(t)
    assert isinstance(caps, Capabilities) and caps.target == name
    assert caps.row_granule >= 1 and caps.multicast >= 1 and caps.scratchpad_bytes > 0
    assert caps.scratchpad == t.memory[-1].name and set(caps.dtypes) == set(t.dtypes())
    h = hierarchy(t)
    assert (h.granule[0], h.acc_in_registers, h.multicast) == (caps.row_granule, caps.accumulators_in_registers,
                                                       caps.multicast)
    assert caps.accumulators_in_registers == (t.family == "gpu_simt")  # the built-in families' traits
    assert caps.host_code == (t.family == "cpu")


def _renamed(target: str, family: str, cls: type) -> object:
    """``target``'s own file, under another family name whose class is ``cls``."""
    register_family(family, type(f"{family}Model", (cls,), {"family": family}))
    data = tomllib.loads((resources.files("ridgeline.cost_models.targets") / f"{target}.toml").read_text())
    return load_target_dict({**data, "name": f"{target}-{family}", "family": family})


@pytest.mark.parametrize("target,cls", [("h100", GpuSimtModel), ("host-cpu", CpuModel)])
def test_a_family_under_another_name_keeps_its_capabilities(target, cls):
    """A plugin family deriving a built-in one (or declaring the same ``traits``) gets the same
    decisions: nothing compares family names."""
    family = f"renamed_{cls.__name__.lower()}"
    try:
        t = _renamed(target, family, cls)
        same, orig = capabilities(t), capabilities(get_target(target))
        assert same == Capabilities(**{**orig.__dict__, "target": t.name})
        assert replace(hierarchy(t), target=target) == hierarchy(get_target(target))
    finally:
        FAMILIES.remove(family)


def test_a_family_without_traits_gets_the_defaults():
    family = "plain_family_without_traits"
    try:
        t = _renamed("tpu-v5e", family, SystolicModel)  # declares no traits
        caps = capabilities(t)
        assert (caps.row_granule, caps.accumulators_in_registers, caps.host_code, caps.multicast) == (8, False, False, 1)
        assert Traits() == Traits(False, False, "", "")
    finally:
        FAMILIES.remove(family)
