"""The sweep spec: axes (lists or ranges), constraints, target variants, read from TOML.

    [sweep]
    constraints = ["tp * pp <= 64", "batch * context <= 2 ** 22"]
    chunk = 64                       # points per task (optional)

    [axes]
    model = ["llama-2-7b", "llama-3-70b"]
    target = ["h100", "h100-2x-hbm"]         # or "all": every registered target
    phase = ["prefill", "decode"]
    batch = { start = 1, stop = 256, factor = 2 }    # 1, 2, 4, … 256
    context = { start = 1024, stop = 8192, step = 1024 }
    dtype = ["bf16", "fp8"]
    tp = [1, 2, 4, 8]
    "option.cuda_graphs" = [false, true]     # a cost-model option (families that lack it: error rows)

    [variants.h100-2x-hbm]
    base = "h100"
    "memory.hbm.bandwidth" = "x2"

``model`` and ``target`` are required; other axes default to the estimate's defaults. Every
problem is a ``SpecError`` naming the spec file and the key.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomllib

from ..ir.errors import RidgelineError
from .expr import Constraint, ExprError
from .variants import VariantError, apply_overrides, flatten_overrides

__all__ = ["BUILD_AXES", "ESTIMATE_AXES", "MAX_POINTS", "SpecError", "SweepSpec", "load_spec", "parse_spec"]

#: axes that shape the graph (``models.build`` arguments); their order is the chunking order
BUILD_AXES = ("model", "batch", "context", "prompt", "dtype", "weight_dtype", "act_dtype", "kv_dtype",
              "weight_group", "logits", "phase")
#: axes that configure the estimate of a built graph
ESTIMATE_AXES = ("target", "tp", "pp")
OPTION_PREFIX = "option."
#: what a constraint reads for an axis the spec leaves out (the estimate's own defaults; None: the
#: preset decides, and a comparison with it does not exclude the point)
DEFAULTS = {"batch": 1, "tp": 1, "pp": 1, "logits": "last"}
#: a grid larger than this is refused before any work (10⁷ points is days of CPU)
MAX_POINTS = 10_000_000
_SWEEP_KEYS = {"constraints", "chunk", "name", "description"}
_TOP_KEYS = {"sweep", "axes", "variants", "metrics"}


class SpecError(RidgelineError):
    """A sweep spec that cannot be run: unknown axis, target, field or preset; an empty grid."""


@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep: ``axes`` in spec order (name → values), constraints, target variants."""

    axes: dict[str, tuple[Any, ...]]
    constraints: tuple[Constraint, ...] = ()
    variants: dict[str, dict[str, Any]] = field(default_factory=dict)   # name -> {"base": .., path: value}
    chunk: int | None = None
    name: str = "sweep"
    source: str = "<dict>"
    serve: dict[str, Any] | None = None      # [metrics.serve]: serve-sim columns per point (serve_columns)

    @property
    def size(self) -> int:
        """Points in the full product, before constraints."""
        return math.prod(len(v) for v in self.axes.values())

    def payload(self) -> dict[str, Any]:
        """What workers need (plain data, cheap to pickle): axis names and the variants."""
        out: dict[str, Any] = {"axes": list(self.axes), "variants": self.variants}
        if self.serve is not None:
            out["serve"] = self.serve
        return out

    def fingerprint(self) -> str:
        """A hash of everything that decides the points and their results (resume checks it)."""
        doc = {"axes": {k: list(v) for k, v in self.axes.items()}, "constraints": [c.text for c in self.constraints],
               "variants": self.variants}
        if self.serve is not None:
            doc["serve"] = self.serve
        return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()[:16]


def load_spec(path: str | os.PathLike) -> SweepSpec:
    """Read and validate a TOML spec file."""
    p = Path(path)
    if not p.is_file():
        raise SpecError(f"{p}: no such sweep spec")
    try:
        with open(p, "rb") as f:
            data = tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise SpecError(f"{p.name}: not valid TOML: {e}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise SpecError(f"{p}: cannot read: {e}") from None
    return parse_spec(data, source=p.name)


def parse_spec(data: Mapping[str, Any] | SweepSpec, *, source: str = "<dict>") -> SweepSpec:
    """Validate a spec given as parsed TOML (a dict); a ``SweepSpec`` passes through."""
    if isinstance(data, SweepSpec):
        return data
    if not isinstance(data, Mapping):
        raise SpecError(f"{source}: expected a table with [axes], got {type(data).__name__}")
    _unknown(data, _TOP_KEYS, source)
    sweep = _table(data.get("sweep", {}), f"{source}: [sweep]")
    _unknown(sweep, _SWEEP_KEYS, f"{source}: [sweep]")
    variants = _variants(_table(data.get("variants", {}), f"{source}: [variants]"), source)
    raw_axes = _table(data.get("axes"), f"{source}: [axes]") if "axes" in data else None
    if not raw_axes:
        raise SpecError(f"{source}: [axes] is missing or empty (at least model and target)")
    axes: dict[str, tuple[Any, ...]] = {}
    for name, raw in raw_axes.items():
        where = f"{source}: axes.{name}"
        if isinstance(raw, Mapping) and name not in BUILD_AXES + ESTIMATE_AXES and name == "option":
            for opt, vals in flatten_overrides(raw).items():        # [axes.option] cuda_graphs = [...]
                axes[OPTION_PREFIX + opt] = _values(vals, f"{where}.{opt}")
            continue
        if name not in BUILD_AXES + ESTIMATE_AXES and not name.startswith(OPTION_PREFIX):
            raise SpecError(f"{where}: unknown axis (axes: {', '.join(BUILD_AXES + ESTIMATE_AXES)}, "
                            f"or option.NAME for a cost-model option)")
        axes[name] = _values(raw, where)
    for required in ("model", "target"):
        if required not in axes:
            raise SpecError(f"{source}: axes.{required} is required")
    axes["target"] = _targets(axes["target"], variants, source)
    _check_models(axes["model"], source)
    _check_build_values(axes, source)
    for key in ("tp", "pp"):
        if key in axes:
            for v in axes[key]:
                if v != "auto" and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
                    raise SpecError(f"{source}: axes.{key}: expected positive integers or 'auto', got {v!r}")
    constraints = []
    for i, text in enumerate(_list(sweep.get("constraints", []), f"{source}: sweep.constraints")):
        try:
            constraints.append(Constraint(text, allowed=[*axes, *(a for a in BUILD_AXES + ESTIMATE_AXES
                                                                   if a not in axes)]))
        except ExprError as e:
            raise SpecError(f"{source}: sweep.constraints[{i}]: {e}") from None
    serve = _serve(data.get("metrics"), source)
    chunk = sweep.get("chunk")
    if chunk is not None and (isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1):
        raise SpecError(f"{source}: sweep.chunk: expected a positive integer, got {chunk!r}")
    spec = SweepSpec(axes=axes, constraints=tuple(constraints), variants=variants, chunk=chunk,
                     name=str(sweep.get("name", Path(source).stem if source != "<dict>" else "sweep")),
                     source=source, serve=serve)
    if spec.size > MAX_POINTS:
        raise SpecError(f"{source}: the grid has {spec.size:,} points; the limit is {MAX_POINTS:,} (split the sweep)")
    return spec


def _values(raw: Any, where: str) -> tuple[Any, ...]:
    """An axis' values: a list, one scalar, or a range table {start, stop, step|factor} (stop included)."""
    if isinstance(raw, Mapping):
        _unknown(raw, {"start", "stop", "step", "factor"}, where)
        if "start" not in raw or "stop" not in raw or ("step" in raw) == ("factor" in raw):
            raise SpecError(f"{where}: a range is {{start, stop, step}} or {{start, stop, factor}} (stop included)")
        start, stop = raw["start"], raw["stop"]
        for k in ("start", "stop", "step", "factor"):
            v = raw.get(k)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))):
                raise SpecError(f"{where}.{k}: expected a number, got {v!r}")
        out, x = [], start
        if "step" in raw:
            if raw["step"] <= 0 or stop < start:
                raise SpecError(f"{where}: a range needs step > 0 and stop >= start")
            while x <= stop + 1e-9 * abs(stop) and len(out) <= MAX_POINTS:
                out.append(x)
                x = start + len(out) * raw["step"]
        else:
            if raw["factor"] <= 1 or start <= 0 or stop < start:
                raise SpecError(f"{where}: a geometric range needs factor > 1 and 0 < start <= stop")
            while x <= stop * (1 + 1e-12) and len(out) <= MAX_POINTS:
                out.append(x)
                x = x * raw["factor"]
        values = tuple(round(v) if all(isinstance(raw.get(k), int) for k in ("start", "step", "factor")
                                             if k in raw) else v for v in out)
    elif isinstance(raw, list):
        values = tuple(raw)
    elif isinstance(raw, (str, int, float, bool)):
        values = (raw,)
    else:
        raise SpecError(f"{where}: expected a list, a value or a range table, got {type(raw).__name__}")
    if not values:
        raise SpecError(f"{where}: no values (an empty axis makes an empty grid)")
    for v in values:
        if isinstance(v, (dict, list)):
            raise SpecError(f"{where}: values must be numbers, strings or booleans, got {v!r}")
    if len(set(map(repr, values))) != len(values):
        raise SpecError(f"{where}: repeated values in {list(values)}")
    return values


def _targets(values: tuple[Any, ...], variants: Mapping[str, Any], source: str) -> tuple[str, ...]:
    from ..cost_models import target_names
    known = target_names()
    out: list[str] = []
    for v in values:
        if v == "all":
            out += [n for n in known if n not in out]
            continue
        if not isinstance(v, str):
            raise SpecError(f"{source}: axes.target: expected target names, got {v!r}")
        if v not in known and v not in variants:
            raise SpecError(f"{source}: axes.target: unknown target {v!r} (targets: {', '.join(known)}; "
                            f"variants: {', '.join(variants) or 'none'})")
        if v not in out:
            out.append(v)
    return tuple(out)


def _check_models(values: tuple[Any, ...], source: str) -> None:
    from ..models import find_preset, preset_names
    for v in values:
        if not isinstance(v, str) or find_preset(v) is None:
            raise SpecError(f"{source}: axes.model: unknown preset {v!r} (presets: {', '.join(preset_names())})")


def _check_build_values(axes: Mapping[str, tuple[Any, ...]], source: str) -> None:
    """Values the preset builder would refuse at every point are refused once, here."""
    from ..models.builder import resolve_dtypes
    choices = {"phase": ("prefill", "decode"), "logits": ("last", "all")}
    for name, allowed in choices.items():
        for v in axes.get(name, ()):
            if v not in allowed:
                raise SpecError(f"{source}: axes.{name}: expected one of {', '.join(allowed)}, got {v!r}")
    for name in ("batch", "context", "prompt"):
        for v in axes.get(name, ()):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise SpecError(f"{source}: axes.{name}: expected positive integers, got {v!r}")
    for v in axes.get("weight_group", ()):
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise SpecError(f"{source}: axes.weight_group: expected integers >= 0, got {v!r}")
    for name in ("dtype", "weight_dtype", "act_dtype", "kv_dtype"):
        for v in axes.get(name, ()):
            try:
                resolve_dtypes(**{name: v})
            except RidgelineError as e:
                raise SpecError(f"{source}: axes.{name}: {e}") from None


def _variants(raw: Mapping[str, Any], source: str) -> dict[str, dict[str, Any]]:
    from ..cost_models import get_target, target_names
    out: dict[str, dict[str, Any]] = {}
    for name, table in raw.items():
        where = f"{source}: variants.{name}"
        table = dict(_table(table, where))
        base = table.pop("base", None)
        if not isinstance(base, str):
            raise SpecError(f"{where}.base: missing (the target this variant edits, e.g. base = \"h100\")")
        if name in target_names():
            raise SpecError(f"{where}: a variant may not reuse the name of target {name!r}")
        if base not in target_names():
            raise SpecError(f"{where}.base: unknown target {base!r} (targets: {', '.join(target_names())})")
        overrides = flatten_overrides(table)
        try:
            apply_overrides(get_target(base), overrides, name=name)    # validate now, not in a worker
        except (VariantError, RidgelineError) as e:
            raise SpecError(f"{source}: {e}") from None
        out[name] = {"base": base, **overrides}
    return out


def _serve(raw: Any, source: str) -> dict[str, Any] | None:
    """``[metrics]``: ``serve = {...}`` asks for serve-sim columns (see ``serve_columns``)."""
    if raw is None:
        return None
    metrics = _table(raw, f"{source}: [metrics]")
    _unknown(metrics, {"serve"}, f"{source}: [metrics]")
    from .serve_columns import ServeSettingsError, parse_serve
    try:
        return parse_serve(metrics["serve"], f"{source}: metrics.serve")
    except ServeSettingsError as e:
        raise SpecError(str(e)) from None


def _table(data: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise SpecError(f"{where}: expected a table, got {type(data).__name__}")
    return data


def _list(data: Any, where: str) -> list[Any]:
    if isinstance(data, str):
        return [data]
    if not isinstance(data, list):
        raise SpecError(f"{where}: expected a list of strings, got {type(data).__name__}")
    return data


def _unknown(data: Mapping[str, Any], allowed: set[str], where: str) -> None:
    extra = sorted(set(data) - allowed)
    if extra:
        raise SpecError(f"{where}: unknown key(s) {', '.join(map(str, extra))} (allowed: {', '.join(sorted(allowed))})")
