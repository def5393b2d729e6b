"""Cycle counts of GEMMs on an R×C systolic array: folds, fill, drain, padding waste.

A GEMM ``C[m×n] = A[m×k] · B[k×n]`` is mapped onto the array by its *dataflow* — which operand
stays in the processing elements while the others stream through (SCALE-Sim's names):

=========  ==============================  =======================  ================
dataflow   stays in the PEs                array rows × cols cover  streamed (T)
=========  ==============================  =======================  ================
``ws``     weights: a k×n tile of B        k × n                    m rows of A
``os``     outputs: an m×n tile of C       m × n                    k (the reduction)
``is``     inputs: a k×m tile of A         k × m                    n columns of B
=========  ==============================  =======================  ================

The two spatial sizes (``sr`` along the array's rows, ``sc`` along its columns) are cut into
``ceil(sr/R) × ceil(sc/C)`` **folds**; edge folds leave PEs idle (**padding waste**) but take as
long as full ones. Each fold pays **fill** (the skewed wavefront entering, R-1 cycles; for ws/is
also R cycles to shift the stationary tile in) and **drain** (C-1 cycles for the last partial sums
to leave), plus T cycles of streaming.

``scalesim_cycles`` reproduces SCALE-Sim 3.0's stall-free "Total Cycles" exactly (checked against
a reference table produced by ``tools/scalesim_reference.py``). SCALE-Sim runs the folds one after
another and each pays its own fill and drain:

- ws / is: ``folds × (2R + C + T - 2)``  (R to load the stationary tile, R-1 skew, C-1 drain)
- os:      ``folds × (R + C + T - 2)``   (no stationary load; R-1 skew, C-1 drain)

and reports the 0-based index of the cycle that writes the last output, i.e. that product minus 1.

Real chips overlap consecutive folds, which SCALE-Sim does not (``pipelined_cycles``):

- **Double-buffered stationary tiles.** The TPU's matrix unit holds the active weight tile plus a
  second one being shifted in, "to hide the 256 cycles it takes to shift a tile in" (Jouppi et
  al., ISCA 2017, §2); Trainium's tensor engine likewise loads the next stationary tile while the
  current one computes. So a ws fold costs ``max(T, R)`` — a GEMV (T = 1) waits on weight loads,
  which is why decode on a systolic chip runs at a small share of its MAC peak.
- **Back-to-back wavefronts.** The next fold's inputs enter right behind the current fold's (the
  skew is paid once), so fill and drain are paid once per run of folds, not per fold.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["DATAFLOWS", "ArrayMapping", "canonical_dataflow", "map_gemm", "pipelined_cycles", "scalesim_cycles"]

#: SCALE-Sim's dataflow names; the long spellings are accepted too
DATAFLOWS = ("ws", "os", "is")
_ALIASES = {"weight_stationary": "ws", "output_stationary": "os", "input_stationary": "is",
            "weight-stationary": "ws", "output-stationary": "os", "input-stationary": "is"}


def canonical_dataflow(name: str) -> str:
    """``ws``/``os``/``is`` for any accepted spelling; ``ValueError`` otherwise."""
    key = str(name).strip().lower()
    key = _ALIASES.get(key, key)
    if key not in DATAFLOWS:
        raise ValueError(f"unknown dataflow {name!r}; use one of ws (weight_stationary), os (output_stationary), "
                         f"is (input_stationary)")
    return key


@dataclass(frozen=True)
class ArrayMapping:
    """One GEMM mapped onto one R×C array (see the module docstring)."""

    dataflow: str
    rows: int           # R
    cols: int           # C
    sr: int             # GEMM size mapped along the array's rows
    sc: int             # GEMM size mapped along the array's columns
    t: int              # streamed (temporal) size per fold

    @property
    def row_folds(self) -> int:
        return math.ceil(self.sr / self.rows)

    @property
    def col_folds(self) -> int:
        return math.ceil(self.sc / self.cols)

    @property
    def folds(self) -> int:
        return self.row_folds * self.col_folds

    @property
    def load_cycles(self) -> int:
        """Cycles to shift a stationary tile in (0 for output-stationary: outputs start at zero)."""
        return 0 if self.dataflow == "os" else self.rows

    @property
    def fill_cycles(self) -> int:
        """Skew of the wavefront entering the array."""
        return self.rows - 1

    @property
    def drain_cycles(self) -> int:
        """Cycles for the last partial sums to leave the array."""
        return self.cols - 1

    @property
    def fold_cycles(self) -> int:
        """One fold as SCALE-Sim runs it: load + fill + stream + drain."""
        return self.load_cycles + self.fill_cycles + self.t + self.drain_cycles

    @property
    def mapping_efficiency(self) -> float:
        """Share of PE-slots the folds actually use (1 - padding waste)."""
        return (self.sr * self.sc) / (self.folds * self.rows * self.cols)

    @property
    def macs(self) -> int:
        return self.sr * self.sc * self.t


def map_gemm(m: int, n: int, k: int, rows: int, cols: int, dataflow: str = "ws") -> ArrayMapping:
    """The mapping of an (m×k)·(k×n) GEMM onto a rows×cols array (SCALE-Sim's conventions)."""
    df = canonical_dataflow(dataflow)
    if min(m, n, k) < 1 or rows < 1 or cols < 1:
        raise ValueError(f"GEMM and array sizes must be positive, got m={m} n={n} k={k} array={rows}x{cols}")
    if df == "ws":
        return ArrayMapping(df, rows, cols, sr=k, sc=n, t=m)
    if df == "os":
        return ArrayMapping(df, rows, cols, sr=m, sc=n, t=k)
    return ArrayMapping(df, rows, cols, sr=k, sc=m, t=n)


def scalesim_cycles(m: int, n: int, k: int, rows: int, cols: int, dataflow: str = "ws") -> int:
    """SCALE-Sim 3.0's stall-free "Total Cycles" for the GEMM (its GEMM topology: M, N, K)."""
    mp = map_gemm(m, n, k, rows, cols, dataflow)
    return mp.folds * mp.fold_cycles - 1


def pipelined_cycles(mp: ArrayMapping, folds: int | None = None, *, double_buffered: bool = True) -> int:
    """Cycles for ``folds`` folds of ``mp`` (default: all of them) run back to back on one array
    the way the hardware does (module docstring): one stationary load, fill and drain per run;
    with ``double_buffered`` stationary tiles, each further fold costs ``max(T, load)``."""
    f = mp.folds if folds is None else folds
    if f <= 0:
        return 0
    if mp.dataflow == "os":
        # outputs drain on their own path while the next tile's operands stream in
        return f * mp.t + mp.fill_cycles + mp.drain_cycles
    if not double_buffered:
        return f * (mp.load_cycles + mp.t) + mp.fill_cycles + mp.drain_cycles
    # the first tile loads alone; each fold then streams while the next tile shifts in
    step = max(mp.t, mp.load_cycles)
    return mp.load_cycles + (f - 1) * step + mp.t + mp.fill_cycles + mp.drain_cycles
