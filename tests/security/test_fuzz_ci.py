"""The CI profile of tools/fuzz_inputs.py: a few hostile commands, each in a child process with a
memory limit and a timeout; none may read outside the model's folder, write outside its named
output, change an input, print a traceback, die of a signal, run out of memory or hang."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
import fuzz_inputs


def test_fuzz_ci_profile_finds_no_failure(tmp_path):
    res = fuzz_inputs.campaign(8, seed=20_000, jobs=2, timeout=120, repro=str(tmp_path))
    assert res["runs"] == 8 and sum(res["outcomes"].values()) == 8
    assert res["failures"] == 0, res["distinct_failures"]


@pytest.mark.parametrize("seed", range(40))
def test_every_mutator_builds_a_runnable_case(seed):
    import random
    case = fuzz_inputs.make_case(random.Random(seed))
    assert case.args and case.args[0] in {"show", "opt", "run", "ir", "estimate"}


def test_the_classifier_sees_a_breach(tmp_path):
    """The harness would notice: a run that reads a secret is a failure, not an error."""
    case = fuzz_inputs.Case("self-test", ["show", "gpt2"], {})
    ws = tmp_path / "ws"
    fuzz_inputs._setup(ws, case)
    before = fuzz_inputs._snapshot(ws)
    log = tmp_path / "log"
    log.write_text(f'["{ws / "secret" / "secret.bin"}", false]\n')
    assert fuzz_inputs._classify(case, ws, 0, "", before, before, log)[0] == "read-outside"
    log.write_text("")
    (ws / "model" / "new").write_bytes(b"x")
    assert fuzz_inputs._classify(case, ws, 0, "", before, fuzz_inputs._snapshot(ws), log)[0] == "modified-input"
    assert fuzz_inputs._classify(case, ws, 1, "Traceback (most recent call last):\nX", before, before, log)[0] == \
        "traceback"
    assert fuzz_inputs._classify(case, ws, -8, "", before, before, log)[0] == "signal"
    assert fuzz_inputs._classify(case, ws, None, "", before, before, log)[0] == "hang"
    # over the CPU-time limit (RLIMIT_CPU sends SIGXCPU) is a hang, whatever the wall time was
    assert fuzz_inputs._classify(case, ws, -signal.SIGXCPU, "", before, before, log)[0] == "hang"


def test_fork_and_spawn_isolation_give_the_same_outcome_per_seed():
    """The fork servers (the default, ~5x cheaper) must judge each case as a fresh interpreter would."""
    fork = fuzz_inputs.campaign(6, seed=100, jobs=2, timeout=120, isolation="fork")
    spawn = fuzz_inputs.campaign(6, seed=100, jobs=2, timeout=120, isolation="spawn")
    assert sorted(fork["per_seed"]) == list(range(100, 106))
    assert fork["per_seed"] == spawn["per_seed"]
    assert all(r is not None and r > 0 for r in [fork["slowest_cpu_s"]])  # fork mode measures the child's CPU


def test_the_rir_token_mutator_starts_from_parseable_text():
    """Mutations must start from text the parser accepts, or they only ever test the lexer."""
    import random

    import numpy as np

    from ridgeline.ir import parse_graph
    text, _ = fuzz_inputs._rir_seed(random.Random(0))
    n = int(text.split("f32[batch, ")[1].split("]")[0])
    parse_graph(" ".join(fuzz_inputs._RIR_TOKEN.findall(text)), sidecar={"w": np.eye(n, dtype=np.float32)})


def test_the_soak_table_counts_every_logged_run(tmp_path):
    import json
    log = tmp_path / "log.jsonl"
    rows = [{"seed": 5, "kind": "cli/run", "outcome": "ok", "seconds": 1.5, "cpu": 0.5, "args": ["run", "m"]},
            {"seed": 6, "kind": "toml/nest", "outcome": "hang", "seconds": 600.0, "cpu": 0.1, "args": ["estimate"]}]
    log.write_text("".join(json.dumps(r) + "\n" for r in rows))
    text = fuzz_inputs.table(str(log))
    assert "| hang | 1 | 0 | 1 |" in text and "| runs | 2 | 1 | 1 |" in text and "Seeds 5–6" in text
