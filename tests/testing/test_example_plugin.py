"""The example plugin's own test, run the way its author's CI would: pytest with ridgeline's
pytest plugin, the plugin's sources on the path. It passes as written, and a broken fuse-relu6
fails it with a shrunk graph and a repro.

Both run in one pytest subprocess (each start imports all of ridgeline, torch included); the
tests below read its per-test outcomes."""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PLUGIN = ROOT / "examples" / "plugin"

BROKEN = '''
import numpy as np
from ridgeline.passes import register_pass
from ridgeline.passes.rewriter import RewritePass, Rule
from ridgeline.testing import strategies as rs
from ridgeline_example_plugin.relu6 import PATTERN


def _clip_at_five(m, b):
    dt = m["x"].type.dtype.np_dtype
    return b.Clip(m["x"], b.constant(np.zeros((), dt)), b.constant(np.full((), 5, dt)))


@register_pass("fuse-relu5")
class FuseRelu5(RewritePass):
    def rules(self):
        return [Rule("relu5", PATTERN, _clip_at_five)]


relu6 = rs.pattern(lambda b, x: b.Min(b.Relu(x), 6.0), within=(-10.0, 10.0))


def test_fuse_relu5(check_pass):
    check_pass("fuse-relu5", graphs=relu6)
'''


@pytest.fixture(scope="module")
def plugin_run(tmp_path_factory):
    """One ``pytest`` run of the plugin's tests and of a broken fusion's: (process, outcomes by
    test name, the broken test's report, the folder of the run)."""
    tmp = tmp_path_factory.mktemp("plugin-run")
    (tmp / "test_broken.py").write_text(BROKEN)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(PLUGIN / "src"), env.get("PYTHONPATH", "")])
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "ridgeline.testing.pytest_plugin",
                           "--hypothesis-profile=ci", "--rootdir", str(tmp), "-p", "no:cacheprovider",
                           f"--junitxml={tmp / 'junit.xml'}", f"--ridgeline-repro-dir={tmp / 'repro'}",
                           str(PLUGIN / "tests"), str(tmp / "test_broken.py")],
                          capture_output=True, text=True, cwd=tmp, env=env, timeout=600)
    outcomes, reports = {}, {}
    for case in ET.parse(tmp / "junit.xml").iter("testcase"):
        failed = case.find("failure")
        outcomes[case.get("name")] = "failed" if failed is not None else \
            "skipped" if case.find("skipped") is not None else "passed"
        reports[case.get("name")] = (failed.text or "") if failed is not None else ""
    return proc, outcomes, reports, tmp


def test_the_example_plugin_test_passes(plugin_run):
    proc, outcomes, _, _ = plugin_run
    assert outcomes.get("test_fuse_relu6") == "passed", proc.stdout + proc.stderr


def test_a_broken_relu6_fusion_fails_the_same_three_lines(plugin_run):
    proc, outcomes, reports, tmp = plugin_run
    assert proc.returncode == 1, proc.stdout + proc.stderr   # tests failed (not a usage error, 2+)
    assert outcomes.get("test_fuse_relu5") == "failed", proc.stdout + proc.stderr
    out = reports["test_fuse_relu5"]
    assert "check_pass(fuse-relu5): outputs differ after the pass" in out
    assert "Clip" in out and "python -m ridgeline run" in out
    saved = list((tmp / "repro").glob("fuse-relu5-*.rir"))
    assert saved, out
    assert saved[0].read_text().count(" = ") <= 6  # shrunk: the pattern and little else
