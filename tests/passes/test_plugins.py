"""Plugins: the example package installs into a throwaway venv and its pass runs from the CLI;
a broken or clashing plugin is reported by name and package while everything else works."""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from helpers import assert_user_error

ROOT = Path(__file__).resolve().parents[2]

RELU6 = """
graph @m(%x: f32[2, 3]) -> (%y: f32[2, 3]) {
  const %six: f32[] = 6.0
  const %zero: f32[] = 0.0
  %r = Max(%x, %zero) : f32[2, 3]
  %y = Min(%six, %r) : f32[2, 3]
  return %y
}
"""


def _run(python: str, *args: str, pythonpath: list[str] = (), cwd: Path | None = None):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *map(str, pythonpath)])
    env.setdefault("COLUMNS", "200")
    return subprocess.run([python, "-m", "ridgeline", *args], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=300)


def _fake_distribution(site_dir: Path, dist: str, entry_points: str, modules: dict[str, str]) -> None:
    """An installed-looking distribution (dist-info + modules) without pip: enough for entry points."""
    info = site_dir / f"{dist.replace('-', '_')}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(textwrap.dedent(entry_points))
    for name, code in modules.items():
        (site_dir / f"{name}.py").write_text(textwrap.dedent(code))


@pytest.mark.slow
def test_example_plugin_installs_and_its_pass_runs_from_the_cli(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)], check=True)
    py = str(venv / "bin" / "python")
    purelib = subprocess.run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    # the throwaway venv sees this interpreter's packages (numpy, onnx, pip, setuptools, ...)
    Path(purelib, "_parent_site.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    src = tmp_path / "plugin"
    shutil.copytree(ROOT / "examples" / "plugin", src)  # build artifacts stay out of the repository
    subprocess.run([py, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", str(src)], check=True,
                   capture_output=True, cwd=tmp_path)

    listed = _run(py, "passes", "--json", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    (row,) = [p for p in json.loads(listed.stdout) if p["name"] == "fuse-relu6"]
    assert row["origin"] == "plugin ridgeline-example-plugin" and row["summary"].startswith("Fuse min(relu(x), 6)")

    model = tmp_path / "m.rir"
    model.write_text(RELU6)
    out = _run(py, "opt", str(model), "-p", "canonicalize,fuse-relu6,dce", "--verify-each", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "= Clip(%x, %zero" in out.stdout and "%six)" in out.stdout and "Min" not in out.stdout

    probe = subprocess.run([py, "-c", "import ridgeline.cost_models.targets as t; print(t.get_target('rpi5').name)"],
                           capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=tmp_path)
    if "No module named 'ridgeline.cost_models.targets'" not in probe.stderr:  # the cost models exist
        assert probe.returncode == 0 and probe.stdout.strip() == "rpi5", probe.stderr
        backends = _run(py, "backends", "--json", cwd=tmp_path)
        (rpi5,) = [b for b in json.loads(backends.stdout) if b["name"] == "rpi5"]
        assert rpi5["kind"] == "estimate" and "Raspberry Pi 5" in rpi5["description"]


def test_a_broken_plugin_is_named_while_other_passes_work(tmp_path):
    site_dir = tmp_path / "site"
    _fake_distribution(site_dir, "broken-plugin", """
        [ridgeline.passes]
        broken-pass = broken_plugin_mod:BrokenPass
        """, {"broken_plugin_mod": "import module_that_does_not_exist\n"})
    model = tmp_path / "m.rir"
    model.write_text(RELU6)

    bad = _run(sys.executable, "opt", str(model), "-p", "broken-pass", pythonpath=[site_dir])
    assert_user_error(bad, "plugin 'broken-pass'", "package broken-plugin", "module_that_does_not_exist")

    good = _run(sys.executable, "opt", str(model), "-p", "canonicalize,dce", pythonpath=[site_dir])
    assert good.returncode == 0, good.stderr

    listed = _run(sys.executable, "passes", "--json", pythonpath=[site_dir])
    assert listed.returncode == 0, listed.stderr
    rows = {p["name"]: p for p in json.loads(listed.stdout)}
    assert "failed to load" in rows["broken-pass"]["error"] and "dce" in rows and "fuse-attention" in rows


def test_clashing_plugins_are_errors_naming_both_packages(tmp_path):
    site_dir = tmp_path / "site"
    for dist, mod in (("clash-one", "clash_one"), ("clash-two", "clash_two")):
        _fake_distribution(site_dir, dist, f"""
            [ridgeline.passes]
            shared-name = {mod}:run
            dce = {mod}:run
            """, {mod: "def run(graph):\n    '''Does nothing.'''\n    return False\n"})
    model = tmp_path / "m.rir"
    model.write_text(RELU6)
    twice = _run(sys.executable, "opt", str(model), "-p", "shared-name", pythonpath=[site_dir])
    assert_user_error(twice, "'shared-name' is registered twice", "clash-one", "clash-two")
    builtin = _run(sys.executable, "opt", str(model), "-p", "cse", pythonpath=[site_dir])
    assert builtin.returncode == 0, builtin.stderr


def test_a_plugin_that_is_not_a_pass(tmp_path):
    site_dir = tmp_path / "site"
    _fake_distribution(site_dir, "odd-plugin", """
        [ridgeline.passes]
        odd = odd_plugin_mod:VALUE
        """, {"odd_plugin_mod": "VALUE = 42\n"})
    model = tmp_path / "m.rir"
    model.write_text(RELU6)
    bad = _run(sys.executable, "opt", str(model), "-p", "odd", pythonpath=[site_dir])
    assert_user_error(bad, "plugin 'odd'", "package odd-plugin", "not a valid pass")


def test_the_example_pass_in_process():
    sys.path.insert(0, str(ROOT / "examples" / "plugin" / "src"))
    try:
        from passes.golden import assert_same_outputs, optimize_text
        from ridgeline.passes import unregister_pass
        from ridgeline_example_plugin.relu6 import FuseRelu6  # registers itself as a local pass
        before = RELU6.replace("%r = Max(%x, %zero)", "%r = Relu(%x)").replace("  const %zero: f32[] = 0.0\n", "")
        for text in (RELU6, before):
            g, after = optimize_text(text, "fuse-relu6,dce")
            assert after.op_histogram() == {"Clip": 1}
            assert_same_outputs(g, after)
        assert FuseRelu6.name == "fuse-relu6"
        unregister_pass("fuse-relu6")
    finally:
        sys.path.remove(str(ROOT / "examples" / "plugin" / "src"))
