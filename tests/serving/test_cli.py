"""serve-sim on the command line: bad input is one line and exit status 2; a small run prints JSON."""

from __future__ import annotations

import argparse
import json

import pytest

from ridgeline.cli.commands.serve_sim import register


def test_kv_tokens_beyond_a_spatial_layout_is_refused(run_cli):
    """A spatial layout holds the KV cache it was priced for; a larger --kv-tokens was simulated silently."""
    base = ("serve-sim", "gpt2", "--target", "groq-lpu", "--workload", "chat", "--rate", "1", "--requests", "5",
            "--prompt-len", "100", "--output-len", "10", "--kv-tokens")
    r = run_cli(*base, str(10 ** 10))
    assert r.returncode == 2 and "raise --max-batch" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert run_cli(*base, "8000").returncode == 0


@pytest.mark.parametrize("args, needle", [
    (["--workload", "nosuch", "--rate", "1"], "unknown workload"),
    (["--workload", "chat", "--rate", "1", "--scheduler", "fifo"], "unknown scheduler"),
    (["--workload", "/nonexistent/trace.csv"], "cannot read trace"),
    (["--workload", "chat", "--rate", "1", "--slo", "ttft=fast"], "--slo"),
    (["--workload", "chat", "--rate", "1", "--stack", "tgi"], "unknown serving stack"),
    *((["--workload", "chat", "--rate", "1", "--kv-tokens", v], "--kv-tokens") for v in ("0", "-5", "1e5", "many")),
    (["--workload", "chat", "--rate", "1", "--prompt-len", "100", "--output-len", "10", "--kv-tokens", str(10 ** 12)],
     "its memory holds"),
    # sizes that allocated GiBs, hung or built 1e9 engines: requests and users at 10^7, devices at the degree cap
    *((["--workload", "chat", "--rate", "1", flag, str(cap + 1)], flag) for flag, cap in (
        ("--requests", 10 ** 7), ("--replicas", 65536), ("--prefill-replicas", 65536), ("--stages", 65536))),
    (["--workload", "chat", "--users", str(10 ** 7 + 1)], "--users"),
])
def test_bad_input_is_one_line_exit_2(run_cli, args, needle):
    r = run_cli("serve-sim", "gpt2", "--target", "h100", "--requests", "5", *args)
    assert r.returncode == 2, r.stderr
    assert needle in r.stderr and len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


@pytest.mark.parametrize("flag", ["--max-batch", "--token-budget", "--requests", "--users", "--block-size",
                                  "--shared-prefix", "--prefix-groups"])
def test_counts_are_counts_not_parallel_degrees(run_cli, flag):
    # they went through the tp/pp parser: capped at 65536, and its message offered 'auto'
    r = run_cli("serve-sim", "gpt2", "--rate", "1", flag, "0")
    assert r.returncode == 2 and flag in r.stderr and "auto" not in r.stderr, r.stderr
    p = argparse.ArgumentParser()
    register(p.add_subparsers())
    assert getattr(p.parse_args(["serve-sim", "gpt2", flag, "100000"]), flag[2:].replace("-", "_")) == 100000


def test_kv_tokens_sizes_the_cache_of_the_workloads_own_deployment(run_cli):
    # a capacity above the parallel-degree cap; and on gpt2 (1,024 positions) the deployment is sized
    # at the workload's context, as without the flag (it was rebuilt at 4,096 tokens and refused)
    for model, kv in (("llama-3-8b", "100000"), ("gpt2", "5000")):
        r = run_cli("serve-sim", model, "--target", "h100", "--workload", "chat", "--rate", "1", "--requests", "5",
                    "--prompt-len", "100", "--output-len", "10", "--kv-tokens", kv, "--json")
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["deployment"]["kv_tokens"] == int(kv)


def test_auto_layouts_need_the_cost_models_or_a_deployment():
    from ridgeline.serving import Deployment, LinearStepTime, SimulationError, simulate
    kw = {"workload": "chat", "rate": 1, "requests": 5, "step_time": LinearStepTime()}
    for par in ({"tp": "auto"}, {"pp": "auto"}):
        with pytest.raises(SimulationError, match="'auto' needs the cost models"):
            simulate("stub", "stub", **kw, **par)
        r = simulate("stub", "stub", **kw, **par, deployment=Deployment("stub", tp=2, pp=3))
        assert (r.deployment["tp"], r.deployment["pp"]) == (2, 3)
    with pytest.raises(SimulationError, match="--kv-tokens"):
        simulate("stub", "stub", **kw, kv_tokens=0)
    for par in ({"replicas": "auto"}, {"kv_tokens": "auto"}):   # no cost model resolves these: no hint
        with pytest.raises(SimulationError, match=r"got 'auto'$"):
            simulate("stub", "stub", **kw, **par)


def test_an_slo_no_rate_meets_is_one_line(run_cli):
    r = run_cli("serve-sim", "gpt2", "--target", "h100", "--workload", "chat", "--prompt-len", "100", "--output-len", "10", "--requests", "20",
                "--slo", "ttft=1e-7,tpot=1e-7", "--max-rate")
    assert r.returncode == 2 and "no arrival rate meets the SLO" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_trace_file_runs_and_prints_json(run_cli, tmp_path):
    trace = tmp_path / "t.csv"
    trace.write_text("arrival,prompt,output\n0,100,5\n0.5,200,3\n1.0,50,8\n")
    before = trace.read_bytes()
    png = tmp_path / "timeline.png"
    r = run_cli("serve-sim", "gpt2", "--target", "h100", "--workload", str(trace), "--json", "--plot", str(png))
    assert r.returncode == 0, r.stderr
    assert png.read_bytes()[:4] == b"\x89PNG"
    data = json.loads(r.stdout)
    assert data["metrics"]["requests"] == 3 and data["workload"]["arrival"] == "trace"
    assert data["metrics"]["ttft"]["p50"] > 0
    assert trace.read_bytes() == before


def test_compare_targets_as_servers(run_cli, tmp_path):
    trace = tmp_path / "t.csv"
    trace.write_text("arrival,prompt,output\n" + "".join(f"{i * 0.05},{64 + i},{4 + i % 5}\n" for i in range(40)))
    png = tmp_path / "lat.png"
    r = run_cli("compare", "gpt2", "--targets", "h100,a100", "--workload", str(trace), "--rate", "2",
                "--requests", "40", "--json", "--sweep", "1,4", "--plot", str(png))
    assert r.returncode == 0, r.stderr
    assert png.read_bytes()[:4] == b"\x89PNG"
    rows = {row["target"]: row for row in json.loads(r.stdout)["rows"]}
    assert set(rows) == {"h100", "a100"}
    # same requests on both: the faster target's median TTFT is not the slower one's
    assert rows["h100"]["ttft"]["p50"] <= rows["a100"]["ttft"]["p50"]


def test_stack_flag_sets_the_engine_and_says_so(run_cli):
    out = run_cli("serve-sim", "gpt2", "--target", "h100", "--workload", "chat", "--prompt-len", "100", "--output-len",
                  "10", "--rate", "2", "--requests", "20", "--stack", "trtllm", "--json")
    data = json.loads(out.stdout)
    assert out.returncode == 0, out.stderr
    assert data["options"]["stack"] == "trtllm" and data["options"]["reserve_output"] is True
    assert data["options"]["token_budget"] == 8192


def test_max_rate_not_strict_reports_a_missed_slo():
    from ridgeline.serving import Deployment, LinearStepTime, max_rate
    kw = {"model": "x", "target": "stub", "step_time": LinearStepTime(0.014, 2e-4, 0, 3e-5),
          "deployment": Deployment("stub", kv_tokens=300000), "workload": "chat", "requests": 40}
    out = max_rate("ttft=0.001,tpot=0.001", strict=False, **kw)
    assert out["max_rate"] == 0.0 and "no arrival rate meets" in out["missed"]
    assert not out["at_max"].metrics.slo_met


@pytest.mark.parametrize("text", ["0,1", "1,nan", "inf", "-2", ",", "1,fast"])
def test_sweep_rates_are_finite_and_positive(text):
    """serve-sim and compare --workload read --sweep with one parser, which names --sweep."""
    from ridgeline.cli.common import parse_rates
    from ridgeline.cli.common import UsageError
    with pytest.raises(UsageError, match="--sweep"):
        parse_rates(text)
    assert parse_rates("0.5, 1,2") == [0.5, 1.0, 2.0]
