"""The example plugin's own test, run the way its author's CI would: pytest with ridgeline's
pytest plugin, the plugin's sources on the path. It passes as written, and a broken fuse-relu6
fails it with a shrunk graph and a repro."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PLUGIN = ROOT / "examples" / "plugin"


def _pytest(tmp_path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(PLUGIN / "src"), env.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "ridgeline.testing.pytest_plugin",
                           "--hypothesis-profile=ci", "--rootdir", str(tmp_path), "-p", "no:cacheprovider",
                           *args], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=600)


def test_the_example_plugin_test_passes(tmp_path):
    proc = _pytest(tmp_path, str(PLUGIN / "tests"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 passed" in proc.stdout


def test_a_broken_relu6_fusion_fails_the_same_three_lines(tmp_path):
    broken = tmp_path / "test_broken.py"
    broken.write_text('''
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
''')
    proc = _pytest(tmp_path, str(broken), f"--ridgeline-repro-dir={tmp_path / 'repro'}")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    out = proc.stdout
    assert "check_pass(fuse-relu5): outputs differ after the pass" in out
    assert "Clip" in out and "python -m ridgeline run" in out
    saved = list((tmp_path / "repro").glob("fuse-relu5-*.rir"))
    assert saved, out
    assert saved[0].read_text().count(" = ") <= 6  # shrunk: the pattern and little else
