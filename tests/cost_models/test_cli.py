"""``ridgeline estimate / compare / targets``: output, --json, --plot, and every bad input as one line."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from helpers import assert_user_error
from onnx_builders import mlp_model


@pytest.fixture
def cli():
    """``ridgeline ARGS`` in this process (the same entry point as the subprocess, without the
    interpreter start-up: most of these tests only need the exit status and the output)."""
    from ridgeline.cli import main

    def run(*args):
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                rc = main([str(a) for a in args])
            except SystemExit as e:
                rc = e.code
        return subprocess.CompletedProcess(args, rc, out.getvalue(), err.getvalue())
    return run


@pytest.fixture
def mlp(tmp_path):
    p = tmp_path / "mlp.onnx"
    p.write_bytes(mlp_model().SerializeToString())
    return p


def test_estimate_table_and_plot(cli, tmp_path):
    png, svg = tmp_path / "roof.png", tmp_path / "roof.svg"
    proc = cli("estimate", "llama-3-8b", "--target", "h100", "--context", "1024", "--plot", png)
    assert proc.returncode == 0, proc.stderr
    for text in ("TTFT", "TPOT", "tokens/s", "KV cache", "128.00 KiB per token", "fits", "slowest nodes",
                 "memory"):
        assert text in proc.stdout, text
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    proc = cli("estimate", "gpt2", "--target", "a100", "--phase", "prefill", "--by-op", "--plot", svg)
    assert proc.returncode == 0, proc.stderr
    assert "time by op" in proc.stdout and svg.read_text().lstrip().startswith("<?xml")


def test_estimate_onnx_file_json(cli, mlp):
    proc = cli("estimate", mlp, "--target", "h100", "--dim", "batch=64", "--json")
    assert proc.returncode == 0, proc.stderr
    d = json.loads(proc.stdout)
    assert d["target"] == "h100" and d["time_s"] > 0 and d["bound"] in ("compute", "memory", "overhead")
    assert "ttft_s" not in d                                      # not an LLM graph
    assert all("roofline_bound" in n for n in d["nodes"])
    # an imported model is fused first (the backend's default pipeline); -p "" estimates it as given
    fused = [n for n in d["nodes"] if n["op"] == "Fused"]
    assert fused and fused[0]["unit"] == "tensor_core:tf32"
    raw = json.loads(cli("estimate", mlp, "--target", "h100", "--dim", "batch=64", "-p", "", "--json").stdout)
    assert {n["op"] for n in raw["nodes"]} >= {"MatMul", "Add", "Tanh"}
    assert raw["time_s"] > d["time_s"]                           # fusion saves launches and bytes


def test_estimate_with_user_target_file(cli, tmp_path):
    from ridgeline.cost_models.targets import BUILTIN_DIR
    text = (BUILTIN_DIR / "h100.toml").read_text().replace('name = "h100"', 'name = "h100-slow"') \
        .replace('bandwidth = "3.35 TB/s"', 'bandwidth = "1.675 TB/s"')
    f = tmp_path / "slow.toml"
    f.write_text(text)
    fast = json.loads(cli("estimate", "llama-3-8b", "--target", "h100", "--json").stdout)
    proc = cli("estimate", "llama-3-8b", "--target-file", f, "--json")
    assert proc.returncode == 0, proc.stderr
    slow = json.loads(proc.stdout)
    assert slow["target"] == "h100-slow"
    assert 1.6 < slow["tpot_s"] / fast["tpot_s"] < 2.05            # half the bandwidth, decode ~2x slower


def test_targets_command(cli, tmp_path):
    proc = cli("targets")
    assert proc.returncode == 0, proc.stderr
    for name in ("h100", "tpu-v6e", "wse-3", "groq-lpu", "host-cpu"):
        assert name in proc.stdout
    one = cli("targets", "h100")
    assert one.returncode == 0 and "tensor_core" in one.stdout and "nvlink4" in one.stdout
    d = json.loads(cli("targets", "b200", "--json").stdout)
    assert d["ridge_flop_per_byte"]["bf16"] == pytest.approx(2250 / 8, rel=1e-3)


def test_compare_targets(cli):
    proc = cli("compare", "llama-3-70b", "--targets", "h100,a100,b200,host-cpu,tpu-v6e", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = {r["name"]: r for r in json.loads(proc.stdout)["rows"]}
    assert rows["h100"]["devices"] == 2 and rows["h100"]["fits"] is True         # auto: smallest fitting
    assert rows["b200"]["devices"] == 1
    assert rows["b200"]["tokens_per_s"] > rows["h100"]["tokens_per_s"] > rows["a100"]["tokens_per_s"]
    assert "fits no device count" in rows["host-cpu"]["error"]
    if "error" in rows["tpu-v6e"]:
        assert "not implemented" in rows["tpu-v6e"]["error"]
    table = cli("compare", "llama-3-8b", "--targets", "h100,b200")
    assert table.returncode == 0 and "TPOT" in table.stdout and "tok/s" in table.stdout


def test_compare_executing_backends_against_host_model(cli, mlp):
    proc = cli("compare", mlp, "--backends", "numpy,host-cpu,h100", "--dim", "batch=256", "--per-node",
                   "--repeat", "2", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = {r["name"]: r for r in json.loads(proc.stdout)["rows"]}
    num = rows["numpy"]
    assert num["kind"] == "execute" and num["measured_s"] > 0 and num["max_abs_error"] == 0
    assert num["host_cpu_predicted_s"] > 0
    assert num["predicted_over_measured"] == pytest.approx(num["host_cpu_predicted_s"] / num["measured_s"])
    assert {p["op"] for p in num["per_node"]} >= {"Fused", "ReduceMean"}
    assert all(p["measured_s"] and p["measured_s"] > 0 for p in num["per_node"])
    assert rows["h100"]["kind"] == "estimate" and rows["host-cpu"]["time_s"] > 0
    text = cli("compare", mlp, "--backends", "numpy,host-cpu", "--dim", "batch=8")
    assert text.returncode == 0 and "predicted / measured" in text.stdout


@pytest.mark.parametrize("args, fragments", [
    (["estimate", "llama-3-8b", "--target", "h900"], ["unknown target 'h900'", "h100", "groq-lpu"]),
    (["compare", "llama-3-8b", "--targets", "h100,h900"], ["h900", "h100"]),
    (["estimate", "llama-3.1-405b", "--target", "host-cpu"], ["fits no device count of host-cpu"]),
    (["estimate", "llama-3-70b", "--target", "h100", "--tp", "3"], ["tp=3", "64 attention heads"]),
    (["estimate", "llama-3-70b", "--target", "h100", "--pp", "200"], ["pp=200", "80 layers"]),
    (["estimate", "gpt2", "--target", "host-cpu", "--tp", "2"], ["joins at most 1"]),
    (["estimate", "gpt2", "--target", "h100", "--tp", "zero"], ["--tp", "positive integer"]),
    (["estimate", "gpt2", "--target", "h100", "-O", "warp_speed=9"], ["unknown option", "warp_speed"]),
    (["estimate", "gpt2", "--target", "host-cpu", "--cuda-graphs"], ["--cuda-graphs", "cpu"]),
    (["estimate", "gpt2"], ["--target"]),
    (["estimate", "bert-base", "--target", "h100", "--phase", "decode"], ["no decode phase"]),
    (["estimate", "nonsense-model", "--target", "h100"], ["not a preset"]),
    (["compare", "gpt2", "--backends", "numpy"], ["weightless preset", "numpy"]),
    (["compare", "gpt2"], ["--targets"]),
    (["targets", "h900"], ["unknown target"]),
])
def test_bad_input_one_line_exit_2(cli, args, fragments):
    assert_user_error(cli(*args), *fragments)


BROKEN_TOML = ('name = "bad"\nfamily = "gpu_simt"\n[units.tc]\nkind = "matrix"\npeak = { bf16 = "1 TFLOP/s" }\n'
               '[[memory]]\nname = "hbm"\ncapacity = "1 GB"\nbandwidth = "quick"\n[array]\nsms = 1\n')


@pytest.mark.parametrize("case", ["unknown target", "malformed toml", "fits no device count", "impossible degrees"])
def test_bad_input_end_to_end(run_cli, tmp_path, case):
    # the four bad inputs through a real process: one line on stderr, status 2, no traceback
    if case == "unknown target":
        proc, frags = run_cli("estimate", "llama-3-8b", "--target", "tpu-v9"), ["unknown target 'tpu-v9'", "h100"]
    elif case == "malformed toml":
        bad = tmp_path / "bad.toml"
        bad.write_text(BROKEN_TOML)
        proc, frags = run_cli("estimate", "gpt2", "--target-file", bad), ["bad.toml", "memory[0].bandwidth"]
    elif case == "fits no device count":
        proc, frags = run_cli("estimate", "llama-3.1-405b", "--target", "host-cpu"), ["fits no device count"]
    else:
        proc, frags = run_cli("estimate", "llama-3-70b", "--target", "h100", "--tp", "3"), ["tp=3", "heads"]
    assert_user_error(proc, *frags)


def test_bad_input_with_files(cli, tmp_path, mlp):
    bad = tmp_path / "bad.toml"
    bad.write_text(BROKEN_TOML)
    before = bad.read_bytes()
    assert_user_error(cli("estimate", "gpt2", "--target-file", bad), "bad.toml", "memory[0].bandwidth")
    assert_user_error(cli("targets", "--file", bad), "memory[0].bandwidth")
    assert bad.read_bytes() == before
    assert_user_error(cli("estimate", mlp, "--target", "h100"), "unbound dims", "--dim")
    assert_user_error(cli("estimate", mlp, "--target", "h100", "--phase", "decode", "--dim", "batch=1"),
                      "--phase", "presets")
    assert_user_error(cli("estimate", "gpt2", "--target", "h100", "--plot", tmp_path / "x.gif"), "png")


def test_microbatches_flag(cli):
    r = cli("estimate", "llama-2-7b", "--target", "h100", "--pp", "2", "--batch", "8", "--microbatches", "4", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["detail"]["pipeline"]["microbatches"] == 4
    assert_user_error(cli("estimate", "llama-2-7b", "--target", "h100", "--pp", "2", "--batch", "8",
                          "--microbatches", "3"), "microbatches=3", "divide the batch")
    assert_user_error(cli("estimate", "gpt2", "--target", "groq-lpu", "--microbatches", "2"), "does not apply")


@settings(max_examples=4, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from(("llama-2-7b", "llama-3-8b")), st.sampled_from(("h100", "tpu-v5p")), st.sampled_from((64, 128)))
def test_decode_estimated_where_its_prefill_does_not_fit(cli, preset, target, batch):
    # a whole batch of 131k-token prompts in one prefill can hold more activations than any device
    # count fits (h100), while its decode step fits (tp 8 pp 2+): the decode estimate stands, and
    # says why it has no TTFT
    r = cli("estimate", preset, "--target", target, "--phase", "decode", "--batch", batch, "--context", 131072,
            "--tp", "auto", "--pp", "auto", "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["fits"] and d["tpot_s"] > 0
    assert (d["ttft_s"] is None) == any(n.startswith("no prefill estimate") for n in d["notes"])
