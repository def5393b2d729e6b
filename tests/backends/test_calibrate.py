"""``ridgeline calibrate``: measurements, the target file it writes, and what it refuses."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

pytest.importorskip("llvmlite")

import ridgeline  # noqa: E402
from ridgeline.cli import main  # noqa: E402


def cli(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_quick_calibration_writes_a_cpu_target(capsys, tmp_path):
    out = tmp_path / "host.toml"
    code, stdout, err = cli(capsys, "calibrate", "--quick", "--output", out, "--name", "my-host", "--json")
    assert code == 0, err
    data = json.loads(stdout)
    assert data["gemm_flops"]["f32"] > 1e9 and data["stream"]["triad"] > 1e8
    assert data["level_bandwidth"] and data["vector_flops"] > 1e8
    assert 0 < data["kernel_overhead_s"] < 1e-2
    doc = tomllib.loads(out.read_text())
    assert doc["name"] == "my-host" and doc["family"] == "cpu"
    assert [m["name"] for m in doc["memory"]][0] == "dram"
    assert doc["array"]["cores"] == data["cores"]
    from ridgeline.cost_models.targets import load_target_file
    t = load_target_file(out)   # the cost models' own validation of the schema
    assert t.peak("f32") == pytest.approx(data["gemm_flops"]["f32"], rel=0.01)
    assert t.device_memory.bandwidth == pytest.approx(data["stream"]["triad"], rel=0.01)
    assert t.overheads["kernel"] == pytest.approx(data["kernel_overhead_s"], rel=0.01)
    assert t.overheads["run"] == pytest.approx(data["run_overhead_s"], rel=0.01, abs=1e-9)
    assert t.overheads["node"] == pytest.approx(data["view_overhead_s"], rel=0.01, abs=1e-9)
    assert t.overheads["parallel"] == pytest.approx(data["parallel_dispatch_s"], rel=0.01, abs=1e-9)
    assert dict(t.overheads["ops"]) == pytest.approx(data["op_overhead_s"], rel=0.01)
    assert t.array["attention_score"] + t.array["attention_channel"] * 16 > 0   # attention costs something per score


def test_refuses_to_overwrite_or_touch_packaged_targets(capsys, tmp_path):
    out = tmp_path / "host.toml"
    out.write_text("mine")
    packaged = Path(ridgeline.__file__).parent / "cost_models" / "targets" / "host-cpu.toml"
    before = packaged.read_bytes()
    for args, fragment in (((out,), "exists"), ((packaged, "--force"), "packaged targets"),
                           ((tmp_path / "host.txt",), ".toml"), ((tmp_path / "no" / "h.toml",), "does not exist")):
        code, _, err = cli(capsys, "calibrate", "--quick", "-o", *args)
        assert code == 2 and fragment in err and len(err.strip().splitlines()) == 1, err
    assert out.read_text() == "mine" and packaged.read_bytes() == before
