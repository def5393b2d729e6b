"""A killed sweep loses nothing and repeats nothing: ``--resume`` evaluates exactly the points no
finished chunk holds, and the final table equals an uninterrupted run's."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[2]


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def test_killed_run_resumes_without_losing_or_repeating_points(tmp_path, small_toml, run_cli):
    small_toml.write_text(small_toml.read_text().replace('["gpt2", "llama-2-7b"]', '["gpt2"]'))
    out = tmp_path / "r.parquet"
    parts = tmp_path / "r.parquet.parts"
    proc = subprocess.Popen([sys.executable, "-m", "ridgeline", "sweep", str(small_toml), "-o", str(out),
                             "--workers", "1", "--chunk", "2"], env=_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    while len(list(parts.glob("chunk-*.parquet"))) < 2:
        assert proc.poll() is None, f"the sweep ended before it could be killed: {proc.stderr.read()}"
        assert time.monotonic() < deadline, "no chunk written in time"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not out.exists()
    written = [p for f in sorted(parts.glob("chunk-*.parquet")) for p in pq.read_table(f)["point"].to_pylist()]
    assert written and len(written) == len(set(written))

    r = run_cli("sweep", small_toml, "-o", out, "--resume", "--json", "--workers", "1")
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["skipped"] == len(written)
    assert summary["evaluated"] == summary["points"] - len(written)
    assert not parts.exists()
    resumed = pq.read_table(out)
    assert resumed["point"].to_pylist() == sorted(set(resumed["point"].to_pylist()))

    fresh = tmp_path / "fresh.parquet"
    assert run_cli("sweep", small_toml, "-o", fresh, "--workers", "1").returncode == 0
    assert resumed.to_pylist() == pq.read_table(fresh).to_pylist()

    again = run_cli("sweep", small_toml, "-o", out, "--resume", "--json")      # nothing left to do
    assert again.returncode == 0 and json.loads(again.stdout)["evaluated"] == 0
    assert pq.read_table(out).to_pylist() == resumed.to_pylist()


def test_interrupted_parts_need_resume_and_the_same_spec(tmp_path, small_toml, run_cli):
    out = tmp_path / "r.parquet"
    parts = tmp_path / "r.parquet.parts"
    parts.mkdir()
    (parts / "spec.json").write_text(json.dumps({"fingerprint": "0123456789abcdef"}))
    r = run_cli("sweep", small_toml, "-o", out)
    assert r.returncode == 2 and "--resume" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = run_cli("sweep", small_toml, "-o", out, "--resume")
    assert r.returncode == 2 and "different spec" in r.stderr and "Traceback" not in r.stderr
