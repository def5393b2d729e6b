"""Design-space sweeps: a grid of models × targets (and variants) × phases × batch × context ×
dtypes × parallel splits, estimated on a process pool, Ray or Dask, into one table.

    import ridgeline as rl
    table = rl.sweep("sweep.toml", output="results.parquet")     # a pyarrow Table
    fronts = rl.sweep_report(table)                              # Pareto fronts per model

``spec.py`` (the TOML spec), ``expr.py`` (safe constraints), ``variants.py`` (target overrides),
``grid.py`` (points and chunks), ``cache.py`` + ``evaluate.py`` (the per-worker cache and rows),
``engines/`` (local, ray, dask), ``results.py`` (Parquet parts, resume), ``report.py`` (Pareto
fronts, plots). This package sits above cost_models, models and backends and below cli.
"""

from __future__ import annotations

from .engines import ENGINES, EngineError
from .expr import Constraint
from .results import ResultsError, read_results
from .run import SweepStats, sweep
from .spec import SpecError, SweepSpec, load_spec, parse_spec
from .variants import VariantError, apply_overrides

__all__ = [
           "ENGINES",
           "Constraint",
           "EngineError",
           "ResultsError",
           "SpecError",
           "SweepSpec",
           "SweepStats",
           "VariantError",
           "apply_overrides",
           "load_spec",
           "parse_spec",
           "read_results",
           "sweep",
]
