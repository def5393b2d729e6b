"""The other phase's estimate is priced once, by ``cost_models.estimate_pair``: where it does not
fit, every command that shows an LLM estimate says the same thing about the missing TTFT."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st


@pytest.mark.parametrize("target", ["h100", "tpu-v5p"])
@settings(max_examples=2, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from(("llama-2-7b", "llama-3-8b")), st.sampled_from((64, 128)))
def test_every_command_attaches_the_same_companion_note(run_cli, target, preset, batch):
    # a whole batch of 131k-token prompts in one prefill can hold more activations than any h100
    # count fits, while its decode step is priced at tp 8 (tpu-v5p fits both: no note)
    shape = ["--phase", "decode", "--batch", str(batch), "--context", "131072", "--tp", "8", "--json"]
    runs = {name: run_cli(*args, *shape) for name, args in (
        ("estimate", ["estimate", preset, "--target", target]),
        ("compare", ["compare", preset, "--targets", target]),
        ("quantize-report", ["quantize-report", preset, "--schemes", "int8", "--targets", target]))}
    for name, r in runs.items():
        assert r.returncode == 0, (name, r.stderr)
    est = json.loads(runs["estimate"].stdout)
    notes = [n for n in est["notes"] if n.startswith("no prefill estimate")]
    assert (est["ttft_s"] is None) == bool(notes)
    row = json.loads(runs["compare"].stdout)["rows"][0]
    assert row.get("note") == (notes[0] if notes else None)
    assert (row.get("ttft_s") is None) == bool(notes)
    cost = [c for s in json.loads(runs["quantize-report"].stdout)["rows"] for c in s["targets"].values()]
    assert cost and all(c.get("note", "").startswith("no prefill estimate") == bool(notes) for c in cost)
