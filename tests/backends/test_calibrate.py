"""``ridgeline calibrate``: measurements, the target file it writes, and what it refuses."""

from __future__ import annotations

import tomllib

import pytest

pytest.importorskip("llvmlite")

from helpers import assert_user_error  # noqa: E402


def test_quick_calibration_writes_a_cpu_target(run_cli, tmp_path):
    out = tmp_path / "host.toml"
    proc = run_cli("calibrate", "--quick", "--output", out, "--name", "my-host", "--json")
    assert proc.returncode == 0, proc.stderr
    import json
    data = json.loads(proc.stdout)
    assert data["gemm_flops"]["f32"] > 1e9 and data["stream"]["triad"] > 1e8
    assert 0 < data["kernel_overhead_s"] < 1e-2
    doc = tomllib.loads(out.read_text())
    assert doc["name"] == "my-host" and doc["family"] == "cpu"
    assert doc["units"]["fma"]["peak"]["f32"].endswith("GFLOP/s")
    assert [m["name"] for m in doc["memory"]][0] == "dram"
    assert doc["array"]["cores"] == data["cores"]
    try:
        from ridgeline.cost_models.targets import load_target_file
    except ImportError:
        return  # the cost models are not in this tree yet
    t = load_target_file(out)
    assert t.peak("f32") == pytest.approx(data["gemm_flops"]["f32"], rel=0.01)


def test_refuses_to_overwrite_or_touch_packaged_targets(run_cli, tmp_path):
    out = tmp_path / "host.toml"
    out.write_text("mine")
    assert_user_error(run_cli("calibrate", "--quick", "-o", out), "exists", "--force")
    assert out.read_text() == "mine"
    import ridgeline
    from pathlib import Path
    packaged = Path(ridgeline.__file__).parent / "cost_models" / "targets" / "host-cpu.toml"
    assert_user_error(run_cli("calibrate", "--quick", "-o", packaged), "packaged targets")
    assert_user_error(run_cli("calibrate", "--quick", "-o", tmp_path / "host.txt"), ".toml")
    assert_user_error(run_cli("calibrate", "--quick", "-o", tmp_path / "no" / "host.toml"), "does not exist")
