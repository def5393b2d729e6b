"""Make the shared case catalogue (``cases.py``) importable from this folder's tests."""

from __future__ import annotations

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
