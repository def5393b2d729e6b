"""Target variants: a built-in (or plugin) target with some fields overridden.

A variant is written in the sweep spec as ``[variants.NAME]`` with ``base = "h100"`` and dotted field
paths set to a new value (``"6.7 TB/s"``) or a factor (``"x2"``, ``"×0.5"``)::

    [variants.h100-2x-hbm]
    base = "h100"
    "memory.hbm.bandwidth" = "x2"
    "units.tensor_core.peak.bf16" = "1.5 PFLOP/s"
    "interconnect.nvlink4.max_devices" = 16

Paths: ``clock``, ``power``; ``memory.LEVEL.{capacity,bandwidth,latency,count}``;
``units.UNIT.peak.DTYPE`` (or ``units.UNIT.peak`` to scale every dtype), ``units.UNIT.count``;
``interconnect.LINK.{bandwidth,latency,max_devices}``; ``array|overheads|efficiency.KEY`` as the
target's family declares them. Values are checked as the target loader checks a TOML file.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from types import MappingProxyType
from typing import Any

from ..cost_models import Target, get_target
from ..cost_models.families import find_family
from ..cost_models.quantities import parse_quantity
from ..ir.errors import RidgelineError

__all__ = ["VariantError", "apply_overrides", "flatten_overrides"]

_FACTOR = re.compile(r"\s*[x×*]\s*([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)\s*\Z")
_MEM_FIELDS = {"capacity": "size", "bandwidth": "bandwidth", "latency": "time", "count": "int"}
_LINK_FIELDS = {"bandwidth": "bandwidth", "latency": "time", "max_devices": "int"}
_TOP_FIELDS = {"clock": ("clock_hz", "frequency"), "power": ("power_w", "power")}


class VariantError(RidgelineError):
    """An override naming a field the target does not have, or a value of the wrong kind."""


def flatten_overrides(table: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"memory": {"hbm": {"bandwidth": "x2"}}}`` (TOML dotted keys) → ``{"memory.hbm.bandwidth": "x2"}``."""
    out: dict[str, Any] = {}
    for k, v in table.items():
        path = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(flatten_overrides(v, path + "."))
        else:
            out[path] = v
    return out


def _value(old: Any, new: Any, kind: str, where: str) -> Any:
    """``new`` parsed as ``kind``; a factor string scales ``old``."""
    if isinstance(new, str):
        m = _FACTOR.match(new)
        if m:
            if not isinstance(old, (int, float)) or isinstance(old, bool) or old is None:
                raise VariantError(f"{where}: a factor ({new!r}) needs a numeric field, but it is {old!r}")
            f = float(m.group(1))
            if f <= 0:
                raise VariantError(f"{where}: factor must be positive, got {new!r}")
            return max(1, round(old * f)) if kind == "int" else old * f
    if kind == "int":
        if isinstance(new, bool) or not isinstance(new, int) or new < 1:
            raise VariantError(f"{where}: expected a positive integer or a factor such as 'x2', got {new!r}")
        return new
    try:
        x = parse_quantity(new, kind)
    except ValueError as e:
        raise VariantError(f"{where}: {e} (or a factor such as 'x2')") from None
    if kind in ("bandwidth", "size", "rate", "frequency") and x <= 0:
        raise VariantError(f"{where}: must be positive, got {new!r}")
    return x


def _named(items, name: str, what: str, where: str):
    for i, it in enumerate(items):
        if it.name == name or name == str(i):
            return i, it
    raise VariantError(f"{where}: the target has no {what} {name!r} ({what}s: {', '.join(x.name for x in items)})")


def apply_overrides(base: Target | str, overrides: Mapping[str, Any], *, name: str | None = None) -> Target:
    """A copy of ``base`` with ``overrides`` (dotted path → value or factor) applied, named ``name``."""
    t = base if isinstance(base, Target) else get_target(base)
    label = name or t.name
    for path, new in flatten_overrides(overrides).items():
        where = f"variant {label}: {path}"
        parts = path.split(".")
        head = parts[0]
        if head in _TOP_FIELDS and len(parts) == 1:
            attr, kind = _TOP_FIELDS[head]
            t = replace(t, **{attr: _value(getattr(t, attr), new, kind, where)})
        elif head == "memory" and len(parts) == 3 and parts[2] in _MEM_FIELDS:
            i, lvl = _named(t.memory, parts[1], "memory level", where)
            lvl = replace(lvl, **{parts[2]: _value(getattr(lvl, parts[2]), new, _MEM_FIELDS[parts[2]], where)})
            t = replace(t, memory=t.memory[:i] + (lvl,) + t.memory[i + 1:])
        elif head == "interconnect" and len(parts) == 3 and parts[2] in _LINK_FIELDS:
            i, link = _named(t.interconnect, parts[1], "link", where)
            link = replace(link, **{parts[2]: _value(getattr(link, parts[2]), new, _LINK_FIELDS[parts[2]], where)})
            t = replace(t, interconnect=t.interconnect[:i] + (link,) + t.interconnect[i + 1:])
        elif head == "units" and len(parts) in (3, 4) and parts[2] in ("peak", "count"):
            t = _unit(t, parts, new, where)
        elif head in ("array", "overheads", "efficiency") and len(parts) == 2:
            t = _section(t, head, parts[1], new, where)
        else:
            raise VariantError(f"{where}: unknown field (use clock, power, memory.LEVEL.bandwidth|capacity|latency, "
                               f"units.UNIT.peak[.DTYPE], interconnect.LINK.bandwidth|latency|max_devices, "
                               f"array|overheads|efficiency.KEY)")
    if t.interconnect and any(b.max_devices < a.max_devices for a, b in zip(t.interconnect, t.interconnect[1:])):
        raise VariantError(f"variant {label}: links must go from the innermost domain outward (max_devices must "
                           f"not shrink)")
    return replace(t, name=label, title=f"{t.title} ({label})" if name and name != t.name else t.title)


def _unit(t: Target, parts: list[str], new: Any, where: str) -> Target:
    if parts[1] not in t.units:
        raise VariantError(f"{where}: the target has no unit {parts[1]!r} (units: {', '.join(t.units)})")
    u = t.units[parts[1]]
    if parts[2] == "count":
        if len(parts) != 3:
            raise VariantError(f"{where}: unknown field")
        u = replace(u, count=_value(u.count, new, "int", where))
    elif len(parts) == 3:       # scale every dtype's peak
        if not isinstance(new, str) or not _FACTOR.match(new):
            raise VariantError(f"{where}: a whole peak table takes a factor such as 'x2'; set one dtype with "
                               f"{'.'.join(parts)}.bf16")
        u = replace(u, peak=MappingProxyType({k: _value(v, new, "rate", where) for k, v in u.peak.items()}))
    else:
        from ..cost_models.target import dtype_key
        try:
            key = dtype_key(parts[3])
        except RidgelineError:
            raise VariantError(f"{where}: unknown dtype {parts[3]!r}") from None
        peak = dict(u.peak)
        if key not in peak and isinstance(new, str) and _FACTOR.match(new):
            raise VariantError(f"{where}: unit {u.name} lists no {key} peak to scale (it lists {', '.join(peak)})")
        peak[key] = _value(peak.get(key), new, "rate", where)
        u = replace(u, peak=MappingProxyType(peak))
    return replace(t, units=MappingProxyType({**t.units, u.name: u}))


def _section(t: Target, section: str, key: str, new: Any, where: str) -> Target:
    cls = find_family(t.family)
    fields = cls.full_schema().get(section, {}) if cls is not None else {}
    current: Mapping[str, Any] = getattr(t, section)
    if key not in fields and key not in current:
        known = sorted(set(fields) | set(current))
        raise VariantError(f"{where}: the {t.family} family reads no {section} key {key!r} "
                           f"(keys: {', '.join(known) or 'none'})")
    f = fields.get(key)
    old = current.get(key)
    if isinstance(new, str) and _FACTOR.match(new):
        value = _value(old, new, "int" if isinstance(old, int) and not isinstance(old, bool) else "float", where)
        if f is not None and f.kind == "fraction" and not 0 < value <= 1:
            raise VariantError(f"{where}: {value:g} is not a fraction in (0, 1]")
    elif f is not None:
        try:
            value = f.parse(new, where)
        except RidgelineError as e:
            raise VariantError(str(e)) from None
    else:
        value = new
    return replace(t, **{section: MappingProxyType({**current, key: value})})
