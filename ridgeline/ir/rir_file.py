"""``.rir`` files: the text form, complete and runnable (in `ir`: the pass manager saves the IR
before a failing pass, and passes sit below the frontends).

Large constants go to a sidecar ``model.rir.npz`` beside the text (``@sidecar`` references) or
inline as base64 blobs; nothing is silently dropped. Writes go through a temporary file and a
rename, so an interrupted save never leaves a half-written model.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

from .errors import ModelError
from .graph import Graph
from .parser import parse_graph
from .printer import print_graph
from .safe_files import read_npz, resolve_inside, write_atomic

__all__ = ["load_rir", "save_rir", "sidecar_path"]


def sidecar_path(path: str | os.PathLike) -> Path:
    p = Path(path)
    return p.with_name(p.name + ".npz")


def load_rir(path: str | os.PathLike) -> Graph:
    """Parse a ``.rir`` file (and its ``.rir.npz`` sidecar when present).

    The sidecar is a file the model names, so it is read under the file-access policy of
    ``ir.safe_files``: after symlinks it must be a regular file inside the model's folder, and each
    array's header must match its stored size before the array is allocated.
    """
    p = Path(path)
    if p.is_dir():
        raise ModelError(f"{p}: is a directory, not a .rir file")
    if not p.is_file():
        raise ModelError(f"{p}: not a regular file" if p.exists() else f"{p}: no such file")
    try:
        with open(p, "rb") as f:
            raw = f.read(MAX_TEXT_BYTES + 1)
    except OSError as e:
        raise ModelError(f"{p}: cannot read the file: {e.strerror or e}") from None
    if len(raw) > MAX_TEXT_BYTES:
        raise ModelError(f"{p}: more than {MAX_TEXT_BYTES} bytes of IR text; store large constants in the sidecar")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ModelError(f"{p}: not a text IR file (not UTF-8)") from None
    side = sidecar_path(p)
    if not os.path.lexists(side):
        return parse_graph(text, sidecar=None, source=str(p))
    real = resolve_inside(p.parent, side.name, f"{p}: sidecar")
    with read_npz(real, str(side)) as z:
        # lazily: only the arrays the text refers to are read
        return parse_graph(text, sidecar=z, source=str(p))


#: IR text beyond this is not something a person or the printer writes (constants go to the sidecar)
MAX_TEXT_BYTES = 2 ** 30


def save_rir(graph: Graph, path: str | os.PathLike, *, constants: str = "sidecar") -> Path:
    """Write ``graph`` as text; large constants to the sidecar (default) or ``inline``."""
    p = Path(path)
    if constants not in ("sidecar", "inline"):
        raise ModelError(f"constants must be 'sidecar' or 'inline', got {constants!r}")
    text = print_graph(graph, constants=constants)  # type: ignore[arg-type]
    big = {}
    if constants == "sidecar":
        from .printer import INLINE_LIMIT
        big = {c.name: c.data for c in graph.constants.values() if c.data is not None and c.data.size > INLINE_LIMIT}
    side = sidecar_path(p)
    if big:
        buf = io.BytesIO()
        np.savez(buf, **big)
        write_atomic(side, buf.getvalue(), "sidecar")
    elif os.path.lexists(side):
        side.unlink()  # a stale sidecar would otherwise shadow nothing but confuse readers
    write_atomic(p, text.encode("utf-8"))
    return p
