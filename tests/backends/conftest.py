"""Make the shared case catalogue (``cases.py``) importable from this folder's tests."""

from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = str(Path(__file__).resolve().parent)
if HERE not in sys.path:
    sys.path.insert(0, HERE)


import pytest


@pytest.fixture(autouse=True)
def _llvm_checked(monkeypatch):
    """The llvm JIT bounds-checks every load and store and NaN-fills the buffers it hands to
    kernels in these tests (``RIDGELINE_LLVM_CHECKED=1``; CLI subprocesses inherit it)."""
    monkeypatch.setenv("RIDGELINE_LLVM_CHECKED", "1")


@pytest.fixture(autouse=True)
def _llvm_object_cache(tmp_path_factory, monkeypatch):
    """Compiled llvm objects go to a cache of this test session, never the user's
    ``~/.cache/ridgeline`` (tests of the cache itself point it at their own folder). Under
    pytest-xdist the workers share it (the run's folder holds each worker's): a kernel one worker
    compiled the other loads instead of compiling it again; entries are written atomically."""
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent
    monkeypatch.setenv("RIDGELINE_CACHE_DIR", str(base / "ridgeline-cache"))


@pytest.fixture(autouse=True)
def _llvm_verify_signatures(monkeypatch):
    """Every lowering is emitted even when a kernel with its signature was emitted before, and a
    signature that hides different IR fails the test (``RIDGELINE_LLVM_VERIFY_SIGNATURES=1``)."""
    monkeypatch.setenv("RIDGELINE_LLVM_VERIFY_SIGNATURES", "1")
