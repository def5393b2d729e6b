"""``ridgeline compare MODEL --decode-steps N``: per-token times of a KV-cache decode loop on each
executing backend and onnxruntime, the host model's prediction beside them, tokens checked
against numpy's; a model without a cache is a one-line error."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("onnxruntime")

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from decode_exports import LLAMA, export_decode

from ridgeline.cli import main

MODELS = Path(__file__).resolve().parents[1] / "models"


@pytest.mark.slow
def test_decode_steps_side_by_side(capsys):
    path = export_decode(LLAMA, "legacy", 17)
    rc = main(["compare", str(path), "--backends", "numpy,host-cpu", "--decode-steps", "3", "--dim", "batch=2",
               "--dim", "seq=5", "--repeat", "1", "--json"])
    out = capsys.readouterr()
    assert rc == 0, out.err
    data = json.loads(out.out)
    rows = {r["name"]: r for r in data["rows"]}
    assert set(rows) == {"numpy", "onnxruntime"}
    for r in rows.values():
        assert r["same_tokens"], r
        assert len(r["tokens"]) == 2 and len(r["tokens"][0]) == 4  # the prefill's token and 3 decoded
        assert r["per_token_s"] > 0 and r["prefill_s"] > 0
        assert r["host_model"] == "host-cpu" and r["host_predicted_s"] > 0
        assert r["predicted_over_measured"] == pytest.approx(r["host_predicted_s"] / r["per_token_s"])


def test_a_model_without_a_cache_is_a_one_line_error(capsys):
    rc = main(["compare", str(MODELS / "gpt2-legacy17-prefill.onnx"), "--backends", "numpy", "--decode-steps", "2"])
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert rc == 2 and len(err) == 1 and "no KV-cache inputs" in err[0], err
