"""The one file-access policy: how ridgeline reads files a model names and writes files a user names.

Reading (``open_inside``/``read_inside``): a model may only name files by a relative path that,
after every symlink is resolved, stays inside the model's own folder; the target must be a regular
file (no FIFO, device or directory), and the caller states how many bytes it expects so a size
mismatch is refused before anything is read. Library helpers that resolve paths themselves (onnx's
``numpy_helper.to_array`` resolves external data against the *working directory*) are never used.

Writing (``write_atomic``): the bytes go to a fresh temporary file created exclusively
(``mkstemp``, ``O_EXCL``) in the target's folder and renamed over the target. A planted
``out.tmp → victim`` symlink is never followed, an interrupted write never leaves a half file, and
a symlink at the target itself is replaced, not written through.

This lives in ``ir`` because every layer that touches files (frontends, cost models, cli) may import it.
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import BinaryIO

from .errors import ModelError

__all__ = ["NpzArrays", "OutputError", "check_output_path", "map_inside", "read_inside", "read_npz", "resolve_inside", "write_atomic"]

#: longest relative name a model may use for a file (PATH_MAX on Linux)
MAX_NAME = 4096


class OutputError(ModelError):
    """An output path ridgeline cannot write (missing folder, a directory, a full disk); a
    ``ModelError`` so callers of the savers keep catching one type."""


def resolve_inside(base: Path, name: str, what: str) -> Path:
    """``base/name`` resolved through symlinks; a ``ModelError`` naming ``what`` unless it is a
    regular file inside ``base``."""
    if not isinstance(name, str) or not name or "\x00" in name or len(name) > MAX_NAME:
        raise ModelError(f"{what}: file name {str(name)[:64]!r} is malformed")
    if os.path.isabs(name) or name.startswith(("/", "\\")) or ":" in name.split("/")[0]:
        raise ModelError(f"{what}: file name {name!r} is absolute; only files inside the model's folder are read")
    if ".." in Path(name).parts or ".." in name.split("\\"):
        raise ModelError(f"{what}: file name {name!r} leaves the model's folder")
    root = Path(os.path.realpath(base))
    path = Path(os.path.realpath(root / name))
    if path != root and root not in path.parents:
        raise ModelError(f"{what}: file {name!r} resolves outside the model's folder (symlink?)")
    try:
        st = os.stat(path)
    except OSError:
        raise ModelError(f"{what}: file {name!r} does not exist") from None
    if not stat.S_ISREG(st.st_mode):
        raise ModelError(f"{what}: {name!r} is not a regular file")
    return path


def _open_checked(base: Path, name: str, offset: int, length: int | None, need: int, what: str):
    """The open file ``name`` inside ``base`` and the checked ``length``: exactly ``need`` bytes at
    ``offset``, inside the file (as ``fstat`` sees the file we opened, not the one we checked)."""
    path = resolve_inside(base, name, what)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError as e:
        raise ModelError(f"{what}: cannot open {name!r}: {e.strerror or e}") from None
    f = os.fdopen(fd, "rb")
    try:
        st = os.fstat(f.fileno())  # the file we opened, not the one we checked: no swap in between
        if not stat.S_ISREG(st.st_mode):
            raise ModelError(f"{what}: {name!r} is not a regular file")
        length = _checked_span(offset, length, need, st.st_size, name, what)
    except BaseException:
        f.close()
        raise
    return f, length, st


def _checked_span(offset: int, length: int | None, need: int, size: int, name: str, what: str) -> int:
    """``length`` (default: to the end), refused unless it is exactly ``need`` bytes inside the file."""
    if offset < 0 or offset > size:
        raise ModelError(f"{what}: offset {offset} is outside {name!r} ({size} bytes)")
    if length is None:
        length = size - offset
    if length != need:
        raise ModelError(f"{what}: {name!r} holds {length} bytes at offset {offset}, the declared type needs {need}")
    if offset + length > size:
        raise ModelError(f"{what}: {length} bytes at offset {offset} runs past the end of {name!r} ({size} bytes)")
    return length


def read_inside(base: Path, name: str, offset: int, length: int | None, need: int, what: str) -> bytes:
    """``length`` bytes (default: to the end) at ``offset`` of the file ``name`` inside ``base``,
    refused unless that is exactly ``need`` bytes and fits the file."""
    f, length, _ = _open_checked(base, name, offset, length, need, what)
    with f:
        try:
            f.seek(offset)
            raw = f.read(length)
        except OSError as e:
            raise ModelError(f"{what}: cannot read {name!r}: {e.strerror or e}") from None
    if len(raw) != length:  # the file shrank while we read it
        raise ModelError(f"{what}: {name!r} ended early")
    return raw


def map_inside(base: Path, name: str, offset: int, length: int | None, need: int, what: str,
               maps: dict | None = None) -> memoryview:
    """The same bytes as ``read_inside`` under the same checks, memory-mapped read-only instead of
    read: nothing is copied, the OS pages bytes in when they are used. ``maps`` (a dict the caller
    keeps for one model) shares one mapping per file. A file truncated *after* mapping faults on
    access, as with every memory-mapped weight file (onnxruntime's too)."""
    import mmap
    mapped = maps.get(("name", str(base), name)) if maps is not None else None
    if mapped is not None:  # this model's file of that name, checked and mapped before: its size is known
        mm, size = mapped
        length = _checked_span(offset, length, need, size, name, what)
        return memoryview(mm)[offset:offset + length]
    f, length, st = _open_checked(base, name, offset, length, need, what)
    with f:
        if length == 0:
            return memoryview(b"")
        key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        mm = maps.get(key) if maps is not None else None
        if mm is None:
            try:
                mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
            except (OSError, ValueError) as e:
                raise ModelError(f"{what}: cannot map {name!r}: {e}") from None
            if maps is not None:
                maps[key] = mm
        if maps is not None:
            maps[("name", str(base), name)] = (mm, st.st_size)
    return memoryview(mm)[offset:offset + length]


def check_output_path(path: str | os.PathLike, what: str = "output") -> Path:
    """``path`` as a ``Path`` if a file could be written there, else an ``OutputError``."""
    p = Path(path)
    if not str(path) or "\x00" in str(path):
        raise OutputError(f"{what} {str(path)[:64]!r}: not a file name")
    if p.is_dir():
        raise OutputError(f"{what} {p}: cannot write: it is a directory")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise OutputError(f"{what} {p}: cannot write: folder {parent} does not exist")
    if p.exists() and not p.is_symlink() and not stat.S_ISREG(os.stat(p).st_mode):
        raise OutputError(f"{what} {p}: cannot write: not a regular file (a device or a pipe); name a file")
    return p


def write_atomic(path: str | os.PathLike, data: bytes | Callable[[BinaryIO], object], what: str = "output") -> Path:
    """Write ``data`` (bytes, or a function that writes to a binary file) to ``path`` through an
    exclusive temporary file in the same folder and a rename."""
    p = check_output_path(path, what)
    parent = p.parent if str(p.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{p.name[:64]}.", suffix=".tmp", dir=parent)
    except OSError as e:
        raise OutputError(f"{what} {p}: cannot write in {parent}: {e.strerror or e}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            if callable(data):
                data(f)
            else:
                f.write(data)
            f.flush()
            os.fsync(f.fileno())
        # a model file is data, not a secret: the usual permissions, not mkstemp's 0600
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, p)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(e, OSError):
            raise OutputError(f"{what} {p}: cannot write: {e.strerror or e}") from None
        raise
    return p


class NpzArrays(Mapping):
    """The arrays of an ``.npz`` by name, each read on first use after its ``.npy`` header is checked:
    a declared shape and dtype must match the member's stored size before anything is allocated,
    and pickled objects are never loaded. Errors are a ``ModelError`` naming ``what``."""

    def __init__(self, source, what: str):
        import zipfile
        self._what = what
        try:
            self._zip = zipfile.ZipFile(source)
            infos = self._zip.infolist()
        except (zipfile.BadZipFile, ValueError, OSError, EOFError, NotImplementedError) as e:
            raise ModelError(f"{what}: not a readable .npz file ({e})") from None
        self._file = None
        self._info = {}
        for info in infos:
            if info.file_size > _MAX_INFLATION * max(info.compress_size, 1) + 2 ** 20:
                raise ModelError(f"{what}: member {info.filename[:64]!r} inflates {info.compress_size} bytes to "
                                 f"{info.file_size}; refusing it")
            name = info.filename.removesuffix(".npy")
            self._info[name] = info

    def __getitem__(self, name: str):
        import zipfile

        import numpy as np
        from numpy.lib import format as npf
        info = self._info[name]
        try:
            with self._zip.open(info) as f:
                version = npf.read_magic(f)
                if version not in ((1, 0), (2, 0), (3, 0)):
                    raise ValueError(f"unknown .npy version {version}")
                read_header = npf.read_array_header_1_0 if version == (1, 0) else npf.read_array_header_2_0
                try:
                    shape, fortran, dtype = read_header(f)
                except Exception as e:  # noqa: BLE001 - numpy parses hostile header text with the
                    # tokenizer and ast: it can raise TokenError, SyntaxError, ... on any bytes
                    raise ValueError(f"its .npy header is malformed ({type(e).__name__})") from None
                if dtype.hasobject:
                    raise ValueError("holds Python objects (pickles are never loaded)")
                numel = 1
                for d in shape:
                    numel *= int(d)
                need = numel * dtype.itemsize
                have = info.file_size - f.tell()
                if need != have:
                    raise ValueError(f"its header declares {dtype}{list(shape)[:8]} ({need} bytes) but it stores {have}")
                raw = f.read(need)
            arr = np.frombuffer(raw, dtype=dtype).copy()
            return arr.reshape(shape, order="F" if fortran else "C")
        except (ValueError, OSError, zipfile.BadZipFile, EOFError, TypeError, SyntaxError, MemoryError,
                OverflowError, NotImplementedError) as e:
            raise ModelError(f"{self._what}: array {name[:64]!r} is unreadable ({e})") from None

    def __contains__(self, name: object) -> bool:
        return name in self._info

    def __iter__(self):
        return iter(self._info)

    def __len__(self) -> int:
        return len(self._info)

    def close(self) -> None:
        self._zip.close()
        if self._file is not None:
            self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


#: np.savez stores arrays uncompressed; a member that inflates more than this is a zip bomb
_MAX_INFLATION = 100


def read_npz(path: str | os.PathLike, what: str) -> NpzArrays:
    """The arrays of the ``.npz`` at ``path`` (a regular file), each checked when first read;
    close it (or use it in a ``with``) when done."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as e:
        raise ModelError(f"{what}: cannot open {path}: {e.strerror or e}") from None
    f = os.fdopen(fd, "rb")
    if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
        f.close()
        raise ModelError(f"{what}: {path} is not a regular file")
    try:
        z = NpzArrays(f, what)
    except BaseException:
        f.close()
        raise
    z._file = f
    return z
