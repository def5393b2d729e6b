"""Small sweep specs shared by the sweep tests (cheap presets so CI stays fast)."""

from __future__ import annotations

import pytest

#: 2 models × 3 targets (one a variant) × 2 phases × 2 batches × 2 tp = 48 points, a few failing
SMALL = {
    "sweep": {"constraints": ["tp * pp <= 8"]},
    "axes": {"model": ["gpt2", "llama-2-7b"], "target": ["h100", "tpu-v6e", "h100-fast"],
             "phase": ["prefill", "decode"], "batch": [1, 8], "context": [1024], "tp": [1, 2]},
    "variants": {"h100-fast": {"base": "h100", "memory.hbm.bandwidth": "x2", "units.tensor_core.peak": "x1.5"}},
}

SMALL_TOML = """
[sweep]
constraints = ["tp * pp <= 8"]

[axes]
model = ["gpt2", "llama-2-7b"]
target = ["h100", "tpu-v6e", "h100-fast"]
phase = ["prefill", "decode"]
batch = [1, 8]
context = [1024]
tp = [1, 2]

[variants.h100-fast]
base = "h100"
memory.hbm.bandwidth = "x2"
"units.tensor_core.peak" = "x1.5"
"""


@pytest.fixture
def small_spec():
    import copy
    return copy.deepcopy(SMALL)


@pytest.fixture
def small_toml(tmp_path):
    p = tmp_path / "small.toml"
    p.write_text(SMALL_TOML)
    return p
