"""The llvm object cache: compiled modules are written once and loaded by later compiles (across
processes), damaged entries are ignored and rewritten, and it can be turned off."""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("llvmlite")

from ridgeline.backends.llvm import objcache
from ridgeline.backends.llvm.jit import compile_ir, finalize_text

ROOT = Path(__file__).resolve().parents[2]


def _module(k: int) -> str:
    """A one-function module computing ``x * k + 1`` (k makes a distinct entry per test)."""
    return finalize_text(f"""define i64 @f(i64 %x) {{
  %y = mul i64 %x, {k}
  %z = add i64 %y, 1
  ret i64 %z
}}""")


def _call(mod, x: int) -> int:
    return ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_int64)(mod.address("f"))(x)


def _entries(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.o") if not p.name.startswith(".tmp"))


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("RIDGELINE_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("RIDGELINE_LLVM_CACHE", raising=False)
    return tmp_path / "llvm"


def test_written_once_then_loaded(cache):
    before = dict(objcache.STATS)
    assert _call(compile_ir(_module(7)), 5) == 36
    (entry,) = _entries(cache)
    assert objcache.STATS["writes"] == before["writes"] + 1
    assert _call(compile_ir(_module(7)), 6) == 43
    assert objcache.STATS["hits"] == before["hits"] + 1
    assert _entries(cache) == [entry]
    assert _call(compile_ir(_module(8)), 1) == 9   # other code, another entry
    assert len(_entries(cache)) == 2


@pytest.mark.parametrize("damage", ["truncate", "flip", "empty"])
def test_damaged_entries_are_ignored_and_rewritten(cache, damage):
    k = {"truncate": 11, "flip": 12, "empty": 13}[damage]
    compile_ir(_module(k))
    (entry,) = _entries(cache)
    good = entry.read_bytes()
    bad = {"truncate": good[:len(good) // 2], "flip": good[:-1] + bytes([good[-1] ^ 0xFF]), "empty": b""}[damage]
    entry.write_bytes(bad)
    corrupt = objcache.STATS["corrupt"]
    assert _call(compile_ir(_module(k)), 2) == 2 * k + 1
    assert objcache.STATS["corrupt"] == corrupt + 1
    assert entry.read_bytes() == good


def test_turned_off(cache, monkeypatch):
    monkeypatch.setenv("RIDGELINE_LLVM_CACHE", "0")
    assert objcache.cache_dir() is None
    assert _call(compile_ir(_module(21)), 1) == 22
    assert not cache.exists() or not _entries(cache)


def test_an_unwritable_cache_costs_nothing_but_the_cache(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("RIDGELINE_CACHE_DIR", str(blocker))
    assert _call(compile_ir(_module(31)), 1) == 32


def test_the_key_names_the_cpu_and_llvm():
    base = {"triple": "x86_64-unknown-linux-gnu", "cpu": "znver4", "features": "+avx2", "optimize": True,
            "llvmlite_version": "0.50"}
    k = objcache.entry_key("ir", **base)
    for field, other in [("cpu", "skylake"), ("features", "+avx2,+avx512f"), ("llvmlite_version", "0.51"),
                         ("triple", "aarch64-unknown-linux-gnu"), ("optimize", False)]:
        assert objcache.entry_key("ir", **{**base, field: other}) != k
    assert objcache.entry_key("ir2", **base) != k


def test_a_second_process_loads_what_the_first_compiled(cache):
    code = ("from ridgeline.backends.llvm import objcache; from ridgeline.backends.llvm.jit import compile_ir, "
            "finalize_text; import ctypes; "
            "m = compile_ir(finalize_text('define i64 @f(i64 %x) {\\n  %y = mul i64 %x, 41\\n  ret i64 %y\\n}')); "
            "f = ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_int64)(m.address('f')); "
            "print(f(2), objcache.STATS['hits'], objcache.STATS['writes'])")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    runs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120,
                           check=False)
            for _ in range(2)]
    assert [r.stdout.split() for r in runs] == [["82", "0", "1"], ["82", "1", "0"]], [r.stderr[-500:] for r in runs]
