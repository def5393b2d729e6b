"""``.rir`` files: the text form, complete and runnable.

Large constants go to a sidecar ``model.rir.npz`` beside the text (``@sidecar`` references) or
inline as base64 blobs; nothing is silently dropped. Writes go through a temporary file and a
rename, so an interrupted save never leaves a half-written model.
"""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path
from collections.abc import Mapping

import numpy as np

from ..ir import Graph, parse_graph, print_graph
from ..ir.errors import ModelError

__all__ = ["load_rir", "save_rir", "sidecar_path"]


def sidecar_path(path: str | os.PathLike) -> Path:
    p = Path(path)
    return p.with_name(p.name + ".npz")


def load_rir(path: str | os.PathLike) -> Graph:
    """Parse a ``.rir`` file (and its ``.rir.npz`` sidecar when present)."""
    p = Path(path)
    if not p.is_file():
        raise ModelError(f"{p}: no such file")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ModelError(f"{p}: not a text IR file (not UTF-8)") from None
    except OSError as e:
        raise ModelError(f"{p}: cannot read the file: {e.strerror or e}") from None
    side = sidecar_path(p)
    if not side.is_file():
        return parse_graph(text, sidecar=None, source=str(p))
    try:
        with np.load(side, allow_pickle=False) as z:
            _check_sidecar(z, side)
            # lazily: only the arrays the text refers to are read
            return parse_graph(text, sidecar=_Sidecar(z, side), source=str(p))
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as e:
        raise ModelError(f"{side}: unreadable sidecar ({e})") from None


#: np.savez stores arrays uncompressed; a member that inflates more than this is a zip bomb
_MAX_INFLATION = 100


def _check_sidecar(z, side: Path) -> None:
    for info in z.zip.infolist():
        if info.file_size > _MAX_INFLATION * max(info.compress_size, 1) + 2 ** 20:
            raise ModelError(f"{side}: member {info.filename!r} inflates {info.compress_size} bytes to "
                             f"{info.file_size}; refusing it")


class _Sidecar(Mapping):
    """The sidecar's arrays by name, read on first use (errors become ``ModelError``)."""

    def __init__(self, z, side: Path):
        self._z, self._side = z, side

    def __getitem__(self, name: str) -> np.ndarray:
        try:
            return self._z[name]
        except KeyError:
            raise
        except (ValueError, OSError, zipfile.BadZipFile, EOFError) as e:
            raise ModelError(f"{self._side}: array {name!r} is unreadable ({e})") from None

    def __contains__(self, name: object) -> bool:
        return name in self._z.files

    def __iter__(self):
        return iter(self._z.files)

    def __len__(self) -> int:
        return len(self._z.files)


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise ModelError(f"{path}: cannot write: {e.strerror or e}") from None


def save_rir(graph: Graph, path: str | os.PathLike, *, constants: str = "sidecar") -> Path:
    """Write ``graph`` as text; large constants to the sidecar (default) or ``inline``."""
    p = Path(path)
    if constants not in ("sidecar", "inline"):
        raise ModelError(f"constants must be 'sidecar' or 'inline', got {constants!r}")
    text = print_graph(graph, constants=constants)  # type: ignore[arg-type]
    big = {}
    if constants == "sidecar":
        from ..ir.printer import INLINE_LIMIT
        big = {c.name: c.data for c in graph.constants.values() if c.data is not None and c.data.size > INLINE_LIMIT}
    side = sidecar_path(p)
    if big:
        buf = io.BytesIO()
        np.savez(buf, **big)
        _atomic_write(side, buf.getvalue())
    elif side.exists():
        side.unlink()  # a stale sidecar would otherwise shadow nothing but confuse readers
    _atomic_write(p, text.encode("utf-8"))
    return p
