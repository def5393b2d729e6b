"""The CLI: a bad spec or cluster address is one line and exit status 2; CSV on request;
sweep-report prints fronts and writes plots."""

from __future__ import annotations

import importlib.util
import json

import pytest

from tests.sweep.conftest import SMALL_TOML


def _spec(tmp_path, text: str):
    p = tmp_path / "s.toml"
    p.write_text(text)
    return p


BASE = '[axes]\nmodel = ["gpt2"]\ntarget = ["h100"]\n'


@pytest.mark.parametrize("text, args, needle", [
    (BASE + 'batchsize = [1]\n', (), "unknown axis"),
    ('[axes]\nmodel = ["gpt2"]\ntarget = ["h1000"]\n', (), "unknown target"),
    ('[axes]\nmodel = ["gpt2"]\ntarget = ["v"]\n[variants.v]\nbase = "h100"\nmemory.hbm.speed = "x2"\n', (),
     "unknown field"),
    ('[sweep]\nconstraints = ["batch > 4"]\n' + BASE + 'batch = [1, 2]\n', (), "grid is empty"),
    (BASE + 'batch = []\n', (), "empty"),
    ('[axes\n', (), "not valid TOML"),
    ('[sweep]\nconstraints = ["__import__(\'os\')"]\n' + BASE, (), "not allowed"),
    (BASE, ("--engine", "dask", "--address", "tcp://127.0.0.1:9"), "cannot reach the Dask cluster"),
    pytest.param(BASE, ("--engine", "ray", "--address", "127.0.0.1:9"), "cannot reach the Ray cluster",
                 marks=pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="ray is not installed")),
    pytest.param(BASE, ("--engine", "ray"), "pip install 'ridgeline[ray]'",
                 marks=pytest.mark.skipif(importlib.util.find_spec("ray") is not None, reason="ray is installed")),
    (BASE, ("--engine", "local", "--address", "127.0.0.1:9"), "--address applies"),
    (BASE, ("-o", "out.json"), ".parquet"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys, text, args, needle):
    from ridgeline.cli import main
    monkeypatch.chdir(tmp_path)
    assert main(["sweep", str(_spec(tmp_path, text)), *args]) == 2
    err = capsys.readouterr().err
    assert needle in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not list(tmp_path.glob("*.parts")) and not list(tmp_path.glob("*.parquet"))


def test_bad_input_in_a_subprocess(tmp_path, run_cli):
    r = run_cli("sweep", _spec(tmp_path, BASE + 'batchsize = [1]\n'), cwd=tmp_path)
    assert r.returncode == 2 and "unknown axis" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_missing_spec_and_results_are_one_line(tmp_path, capsys):
    from ridgeline.cli import main
    for args in (("sweep", tmp_path / "nope.toml"), ("sweep-report", tmp_path / "nope.parquet"),
                 ("sweep-report", _spec(tmp_path, "not parquet"))):
        assert main([str(a) for a in args]) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err


def test_csv_output_and_report(tmp_path, run_cli):
    spec = _spec(tmp_path, SMALL_TOML.replace('["gpt2", "llama-2-7b"]', '["gpt2"]'))
    r = run_cli("sweep", spec, "-o", tmp_path / "r.csv", "--json", "--workers", "1")
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["points"] == 24 and 0 <= summary["startup_s"] <= summary["seconds"]
    header = (tmp_path / "r.csv").read_text().splitlines()[0]
    assert header.startswith('"point","model","target"') and '"tokens_per_s"' in header
    rep = run_cli("sweep-report", tmp_path / "r.csv", "--plots", tmp_path / "plots", "--json")
    assert rep.returncode == 0, rep.stderr
    data = json.loads(rep.stdout)
    assert set(data["fronts"]) == {"gpt2"} and data["fronts"]["gpt2"]
    assert {p.name for p in (tmp_path / "plots").iterdir()} >= {"pareto_gpt2.png", "roofline.png"}
    bad = run_cli("sweep-report", tmp_path / "r.csv", "--y", "nonsense")
    assert bad.returncode == 2 and "no column 'nonsense'" in bad.stderr
