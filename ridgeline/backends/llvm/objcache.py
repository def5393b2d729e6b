"""Compiled machine code kept on disk across processes (llvmlite's MCJIT object cache).

A module's object file is stored under a key that hashes everything its code depends on: the
module's LLVM IR, the target triple, the CPU name and features, whether it was optimized, and the
llvmlite (so LLVM) version. A second process compiling the same kernels loads the object instead
of running the optimizer and code generator. Where: ``$RIDGELINE_CACHE_DIR/llvm``, else
``$XDG_CACHE_HOME/ridgeline/llvm`` (``~/.cache/ridgeline/llvm``); ``RIDGELINE_LLVM_CACHE=0``
turns it off. Entries are written atomically (a temporary file renamed into place) and carry
their length and SHA-256, so a truncated or corrupt entry is ignored and written again.
"""

from __future__ import annotations

import hashlib
import logging
import os
import struct
import tempfile
from pathlib import Path

__all__ = ["STATS", "cache_dir", "entry_key", "load", "store"]

log = logging.getLogger(__name__)

_MAGIC = b"RLOBJ1\0\0"
_HEADER = struct.Struct("<8sQ32s")   # magic, payload length, payload sha256

#: process-wide counts: entries loaded, misses (compiled here), entries written, bad entries seen
STATS = {"hits": 0, "misses": 0, "writes": 0, "corrupt": 0}


def cache_dir() -> Path | None:
    """The object cache's folder, or None when ``RIDGELINE_LLVM_CACHE=0`` turns it off."""
    if os.environ.get("RIDGELINE_LLVM_CACHE", "1").strip().lower() in ("0", "false", "no", "off"):
        return None
    base = os.environ.get("RIDGELINE_CACHE_DIR")
    if not base:
        base = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"),
                            "ridgeline")
    return Path(base) / "llvm"


def entry_key(ir_text: str, *, triple: str, cpu: str, features: str, optimize: bool, llvmlite_version: str) -> str:
    """The hash naming one module's object file."""
    h = hashlib.sha256()
    for part in (llvmlite_version, triple, cpu, features, "O3" if optimize else "O0", ir_text):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()


def _path(folder: Path, key: str) -> Path:
    return folder / key[:2] / f"{key}.o"


def load(folder: Path | None, key: str) -> bytes | None:
    """The object stored under ``key``, or None (absent, unreadable, truncated or corrupt)."""
    if folder is None:
        return None
    try:
        raw = _path(folder, key).read_bytes()
    except OSError:
        STATS["misses"] += 1
        return None
    if len(raw) >= _HEADER.size:
        magic, n, digest = _HEADER.unpack_from(raw)
        payload = raw[_HEADER.size:]
        if magic == _MAGIC and n == len(payload) and hashlib.sha256(payload).digest() == digest:
            STATS["hits"] += 1
            return payload
    STATS["corrupt"] += 1
    STATS["misses"] += 1
    log.warning("llvm object cache: ignoring a damaged entry %s (it is compiled and written again)", key[:16])
    return None


def store(folder: Path | None, key: str, payload: bytes) -> None:
    """Write ``payload`` under ``key`` atomically; a cache that cannot be written is skipped."""
    if folder is None:
        return
    path = _path(folder, key)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".o")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(_HEADER.pack(_MAGIC, len(payload), hashlib.sha256(payload).digest()))
                f.write(payload)
            os.replace(tmp, path)   # readers see the old entry or the whole new one, never half
        except BaseException:
            os.unlink(tmp)
            raise
        STATS["writes"] += 1
    except OSError as e:   # a read-only or full disk costs the cache, never the run
        log.info("llvm object cache: not written (%s)", e)
