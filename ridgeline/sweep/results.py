"""Sweep results: one row per point, written as it arrives so a killed run loses nothing.

While a sweep runs, each finished chunk is one Parquet file in ``OUT.parts/`` (written to a
temporary name and renamed, so a file there is always whole). ``--resume`` reads the points
those files (and a finished ``OUT``) hold and skips them; a point is either in a part or
evaluated again, never both. At the end the parts are merged, sorted by point id, into ``OUT``
(Parquet, or CSV when OUT ends in ``.csv``), again by rename, and the parts are removed.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from ..ir.errors import RidgelineError

__all__ = ["ResultStore", "ResultsError", "diff_tables", "read_results", "rows_to_table", "write_table"]

SPEC_FILE = "spec.json"


class ResultsError(RidgelineError):
    """Results that cannot be written or resumed (a different spec, an unreadable file)."""


def _pa():
    try:
        import pyarrow as pa
        import pyarrow.compute
        import pyarrow.parquet
    except ImportError:
        raise ResultsError("sweeps write tables with pyarrow: pip install 'ridgeline[sweep]'") from None
    return pa


def rows_to_table(rows: Sequence[dict[str, Any]], axes: Sequence[str] = ()):
    """A pyarrow table of ``rows``: point, the axes, error, then metrics in name order."""
    pa = _pa()
    keys: dict[str, None] = {"point": None, **{a: None for a in axes}, "error": None}
    metrics = sorted({k for r in rows for k in r if k not in keys})
    cols = list(keys) + metrics
    arrays = []
    for c in cols:
        vals = [r.get(c) for r in rows]
        try:
            arrays.append(pa.array(vals))
        except (pa.ArrowInvalid, pa.ArrowTypeError):   # mixed kinds (e.g. tp = 8 and "auto")
            arrays.append(pa.array([None if v is None else str(v) for v in vals], pa.string()))
    return pa.table(arrays, names=cols)


def concat(tables: Iterable[Any], axes: Sequence[str] = ()):
    """Tables with possibly different columns (targets name their memory levels) as one, sorted
    by point id, columns in a fixed order."""
    pa = _pa()
    tables = [t for t in tables if t.num_rows]
    if not tables:
        return rows_to_table([], axes)
    t = pa.concat_tables(tables, promote_options="permissive")
    head = ["point", *axes, "error"]
    order = [c for c in head if c in t.column_names] + sorted(c for c in t.column_names if c not in head)
    t = t.select(order)
    return t.take(pa.compute.sort_indices(t, [("point", "ascending")]))


def write_table(table, path: str | os.PathLike) -> None:
    """Write ``table`` to ``path`` (Parquet, or CSV by suffix) through a temporary file and a rename."""
    pa = _pa()
    p = Path(path)
    tmp = p.with_name(f".{p.name}.tmp-{os.getpid()}")
    try:
        if p.suffix.lower() == ".csv":
            import pyarrow.csv as pacsv
            pacsv.write_csv(table, tmp)
        else:
            pa.parquet.write_table(table, tmp)
        os.replace(tmp, p)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise ResultsError(f"cannot write {p}: {e.strerror or e}") from None


def read_results(path: str | os.PathLike):
    """A results table from Parquet (or CSV by suffix)."""
    pa = _pa()
    p = Path(path)
    if not p.is_file():
        raise ResultsError(f"{p}: no such results file")
    try:
        if p.suffix.lower() == ".csv":
            import pyarrow.csv as pacsv
            return pacsv.read_csv(p, convert_options=pacsv.ConvertOptions(strings_can_be_null=True))
        return pa.parquet.read_table(p)
    except (pa.ArrowInvalid, OSError) as e:
        raise ResultsError(f"{p}: not a readable results table ({' '.join(str(e).split())[:200]})") from None


def diff_tables(a, b) -> list[str]:
    """What differs between two result tables (pyarrow), one line per column, ignoring row and
    column order: empty when they hold the same content. NaN equals NaN; nothing else is fuzzy."""
    out = []
    if set(a.column_names) != set(b.column_names):
        out.append(f"columns only in the first: {sorted(set(a.column_names) - set(b.column_names))}; "
                   f"only in the second: {sorted(set(b.column_names) - set(a.column_names))}")
    a, b = (t.sort_by("point") for t in (a, b))
    points = a.column("point").to_pylist()
    if points != b.column("point").to_pylist():
        only = sorted(set(points) ^ set(b.column("point").to_pylist()))[:3]
        return [*out, f"different points: {a.num_rows} rows against {b.num_rows}, first ids in one only {only}"]
    for col in sorted(set(a.column_names) & set(b.column_names)):
        if a.schema.field(col).type != b.schema.field(col).type:
            out.append(f"column {col}: type {a.schema.field(col).type} against {b.schema.field(col).type}")
            continue
        bad = [p for p, x, y in zip(points, a.column(col).to_pylist(), b.column(col).to_pylist()) if not _same(x, y)]
        if bad:
            out.append(f"column {col}: {len(bad)} row(s) differ, first at point {bad[0]}")
    return out


def _same(x: Any, y: Any) -> bool:
    return x == y or (isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y))


class ResultStore:
    """Rows of one sweep, on disk (``path``) or in memory (``path=None``, no resume)."""

    def __init__(self, path: str | os.PathLike | None, fingerprint: str, axes: Sequence[str], *,
                 resume: bool = False):
        self.path = Path(path) if path is not None else None
        self.axes = list(axes)
        self.fingerprint = fingerprint
        self._memory: list[Any] = []
        self.done: set[int] = set()
        if self.path is None:
            return
        if self.path.suffix.lower() not in (".parquet", ".pq", ".csv"):
            raise ResultsError(f"{self.path}: results go to a .parquet (or .csv) file")
        if not self.path.parent.is_dir():
            raise ResultsError(f"{self.path.parent}: no such directory for the results")
        self.parts = self.path.with_name(self.path.name + ".parts")
        if self.parts.exists() and not resume:
            raise ResultsError(f"{self.parts} holds an interrupted sweep: pass --resume to continue it, or delete "
                               f"it to start again")
        if resume:
            self._load_done()

    def _open_parts(self) -> None:
        # created with the first finished chunk: a sweep that fails to start leaves nothing behind
        if not (self.parts / SPEC_FILE).is_file():
            self.parts.mkdir(exist_ok=True)
            (self.parts / SPEC_FILE).write_text(json.dumps({"fingerprint": self.fingerprint, "axes": self.axes}))

    def _load_done(self) -> None:
        pa = _pa()
        meta = self.parts / SPEC_FILE
        if meta.is_file():
            try:
                fp = json.loads(meta.read_text()).get("fingerprint")
            except (OSError, ValueError):
                fp = None
            if fp != self.fingerprint:
                raise ResultsError(f"{self.parts} was written by a different spec; delete it or run that spec")
        for f in sorted(self.parts.glob("chunk-*.parquet")) if self.parts.is_dir() else ():
            try:
                ids = pa.parquet.read_table(f, columns=["point"]).column("point").to_pylist()
            except (pa.ArrowInvalid, OSError):
                f.unlink()               # cannot happen with renames; a foreign file is not trusted
                continue
            self.done.update(ids)
        if self.path.is_file():
            prev = read_results(self.path)
            if (prev.schema.metadata or {}).get(b"ridgeline.sweep") not in (None, self.fingerprint.encode()):
                raise ResultsError(f"{self.path} was written by a different spec; choose another -o")
            self._previous = prev
            self.done.update(prev.column("point").to_pylist())

    def add(self, index: int, rows: list[dict[str, Any]]) -> None:
        """Keep one finished chunk (atomically on disk)."""
        if not rows:
            return
        table = rows_to_table(rows, self.axes)
        if self.path is None:
            self._memory.append(table)
            return
        self._open_parts()
        first = min(r["point"] for r in rows)
        f = self.parts / f"chunk-{first:012d}.parquet"
        tmp = self.parts / f".{f.name}.tmp"
        _pa().parquet.write_table(table, tmp)
        os.replace(tmp, f)

    def finish(self):
        """Every row of the sweep as one table (written to ``path`` when given); parts removed."""
        if self.path is None:
            return concat(self._memory, self.axes)
        pa = _pa()
        tables = [pa.parquet.read_table(f) for f in sorted(self.parts.glob("chunk-*.parquet"))
                  if self.parts.is_dir()]
        prev = getattr(self, "_previous", None)
        if prev is not None:
            tables.append(prev)
        table = concat(tables, self.axes)
        table = table.replace_schema_metadata({**(table.schema.metadata or {}),
                                               b"ridgeline.sweep": self.fingerprint.encode()})
        write_table(table, self.path)
        shutil.rmtree(self.parts, ignore_errors=True)
        return table
