"""Shared fixtures: small graphs and ONNX models built in memory, and a CLI runner."""

from __future__ import annotations

import os
import subprocess as _subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import settings

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "tests" / "models"

# hypothesis profiles (ci, soak) and the check_pass fixtures; installed ridgeline also loads the
# plugin through its pytest11 entry point, which is registered under this same module name
pytest_plugins = ["ridgeline.testing.pytest_plugin"]
# bounded and derandomized unless --hypothesis-profile says otherwise (e.g. =soak)
settings.load_profile("ci")
# the llvm backend's on-disk object cache: a folder of this run, never the user's ~/.cache
os.environ.setdefault("RIDGELINE_CACHE_DIR", tempfile.mkdtemp(prefix="ridgeline-cache-"))


@pytest.fixture(autouse=True)
def _verify_each(request, monkeypatch):
    """Every pipeline in the tests verifies the graph after each pass (in-process and in CLI
    subprocesses, through the environment); ``@pytest.mark.no_verify_each`` opts out."""
    if request.node.get_closest_marker("no_verify_each") is None:
        monkeypatch.setenv("RIDGELINE_VERIFY_EACH", "1")
    else:
        monkeypatch.delenv("RIDGELINE_VERIFY_EACH", raising=False)


@pytest.fixture
def run_cli():
    """Run ``ridgeline ARGS``; returns the CompletedProcess. In this process through the CLI's
    ``main`` (an interpreter start costs ~0.6 s of CPU per call); ``subprocess=True`` runs
    ``python -m ridgeline`` for real, as the tests of the entry point's own exit statuses do."""
    def run(*args: str, cwd: str | os.PathLike | None = None, timeout: float = 300, subprocess: bool = False):
        if not subprocess:
            from helpers import cli_in_process
            return cli_in_process(args, cwd)
        env = dict(os.environ)
        env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
        env.setdefault("COLUMNS", "160")
        return _subprocess.run([sys.executable, "-m", "ridgeline", *map(str, args)], capture_output=True, check=False,
                               text=True, cwd=cwd, env=env, timeout=timeout)
    return run
