"""``ridgeline quantize-report``: accuracy against the unquantized model next to estimated speed."""

from __future__ import annotations

import json

import pytest
from exported_models import MODELS
from helpers import assert_user_error

LLAMA = MODELS / "llama-dynamo23-decode.onnx"


def test_report_on_an_exported_model(run_cli):
    proc = run_cli("quantize-report", LLAMA, "--schemes", "int8,int4-g128,w8a8,int8+kv-int8", "--targets", "h100",
                   "--dim", "batch=2", "--dim", "seq=1", "--dim", "past=7", "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    rows = {r["scheme"]: r for r in data["rows"]}
    assert list(rows) == ["baseline", "int8", "int4-g128", "w8a8", "int8+kv-int8"]
    assert rows["baseline"]["accuracy"]["cosine"] == pytest.approx(1.0) and rows["baseline"]["accuracy"]["max_abs"] == 0.0
    assert rows["int8"]["accuracy"]["cosine"] >= 0.999
    assert rows["int4-g128"]["accuracy"]["mean_abs"] > rows["int8"]["accuracy"]["mean_abs"]
    assert 0.0 <= rows["int4-g128"]["accuracy"]["top1"] <= 1.0
    assert rows["int4-g128"]["weight_bytes"] < rows["int8"]["weight_bytes"] < rows["baseline"]["weight_bytes"]
    for r in rows.values():
        h = r["targets"]["h100"]
        assert h["time_s"] > 0 and h["tokens_per_s"] > 0 and isinstance(h["pareto"], bool)
    assert rows["int8+kv-int8"]["quantized"]["kv_layers"] == 2
    # nothing is both more accurate and faster than the baseline's accuracy
    assert rows["baseline"]["targets"]["h100"]["pareto"] is True


def test_report_on_a_preset_prices_quantized_bytes(run_cli):
    proc = run_cli("quantize-report", "llama-3-8b", "--schemes", "int8,int4-g128,kv-int8", "--targets", "h100",
                   "--context", "4096", "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["accuracy_note"] and data["samples"] == 0
    rows = {r["scheme"]: r["targets"]["h100"] for r in data["rows"]}
    assert rows["int4-g128"]["bytes_per_token"] < rows["int8"]["bytes_per_token"] < rows["baseline"]["bytes_per_token"]
    assert rows["int4-g128"]["tpot_s"] < rows["baseline"]["tpot_s"]
    assert rows["kv-int8"]["kv_bytes_per_token"] == rows["baseline"]["kv_bytes_per_token"] / 2
    assert rows["baseline"]["ttft_s"] > 0


def test_report_table(run_cli):
    proc = run_cli("quantize-report", LLAMA, "--schemes", "int8,int4", "--targets", "h100,tpu-v6e",
                   "--dim", "batch=1", "--dim", "seq=1", "--dim", "past=3")
    assert proc.returncode == 0, proc.stderr
    for text in ("cosine", "top-1", "on h100", "Pareto", "int4", "tpu-v6e"):
        assert text in proc.stdout


def test_bad_inputs_are_one_line_exit_2(run_cli):
    assert_user_error(run_cli("quantize-report", "llama-3-8b", "--schemes", "int8,int3"),
                      "unknown quantization scheme 'int3'")
    assert_user_error(run_cli("quantize-report", "llama-3-8b", "--schemes", "int4:best", "--targets", "h100"),
                      "unknown method 'best'")
    assert_user_error(run_cli("quantize-report", "llama-3-8b", "--tokenizer", "x.gguf"), "presets have no weights")
    assert_user_error(run_cli("quantize-report", "llama-3-8b", "--targets", "h1000"), "h1000")
    assert_user_error(run_cli("quantize-report", LLAMA, "--phase", "decode"), "apply to presets")
