"""No llvm kernel reads or writes outside its buffers (guard pages; see guard_pages.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("llvmlite")

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses mmap/mprotect guard pages")


def _run(*args):
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, str(HERE / "guard_pages.py"), *args], capture_output=True, text=True,
                          env=env, timeout=600)


@pytest.mark.parametrize("where", ["end", "start"])
def test_guard_pages_catch_a_stray_read(where):
    proc = _run(f"--self-test-{where}")
    assert proc.returncode == -11, (proc.returncode, proc.stdout, proc.stderr[-500:])


@pytest.mark.slow
def test_kernels_stay_inside_their_buffers():
    proc = _run()
    assert proc.returncode == 0, (f"exit {proc.returncode} (-11: a kernel touched a guard page)\n"
                                  f"{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    checked = int(proc.stdout.split("checked ")[1].split()[0])
    assert checked >= 100, proc.stdout
