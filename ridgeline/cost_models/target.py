"""A hardware target as data: the schema of ``targets/*.toml`` and its validated form, ``Target``.

A target file names its cost-model ``family`` and gives the machine's numbers, each with units::

    name = "h100"
    family = "gpu_simt"
    clock = "1.83 GHz"
    [units.tensor_core]                  # one table per compute unit
    kind = "matrix"                      # matrix | vector | scalar
    peak = { bf16 = "989 TFLOP/s", f8e4m3 = "1979 TFLOP/s" }
    [[memory]]                           # outermost (device memory) first, then inward
    name = "hbm"
    capacity = "80 GiB"
    bandwidth = "3.35 TB/s"
    [[interconnect]]                     # the fastest domain first, then scale-out
    name = "nvlink4"
    bandwidth = "450 GB/s"               # per device, per direction
    latency = "1.5 us"
    max_devices = 8
    [array] / [overheads] / [efficiency] # family-specific: the family's schema validates them

Every problem is a ``TargetError`` naming the file and the field (``h100.toml: memory[0].bandwidth:
expected a bandwidth such as "3.35 TB/s", got 'fast'``). Families declare the keys they read in
``[array]``, ``[overheads]``, ``[efficiency]`` and in unit tables as ``Field``s with defaults.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping, Sequence

from ..ir.dtypes import bits
from ..ir.dtypes import dtype as to_dtype
from ..ir.errors import IRError, TargetError
from .quantities import KINDS, parse_quantity

__all__ = ["Field", "ComputeUnit", "MemoryLevel", "Link", "Target", "parse_target", "UNIT_KINDS",
           "FAMILY_SECTIONS", "dtype_bits", "dtype_bytes", "dtype_key"]

UNIT_KINDS = ("matrix", "vector", "scalar")
FAMILY_SECTIONS = ("array", "overheads", "efficiency")
_TOP_KEYS = {"name", "title", "family", "vendor", "clock", "power", "calibrated_on", "notes", "units",
             "memory", "interconnect", *FAMILY_SECTIONS}
_UNIT_KEYS = {"kind", "peak", "count", "shape"}
_MEM_KEYS = {"name", "capacity", "bandwidth", "latency", "per", "count"}
_LINK_KEYS = {"name", "bandwidth", "latency", "max_devices", "topology"}
TOPOLOGIES = ("switch", "ring", "torus-2d", "torus-3d", "mesh", "point-to-point")


@dataclass(frozen=True)
class Field:
    """A family-specific key: ``kind`` is a quantity kind (size, time, …) or int, float,
    fraction (0..1], bool, str, ints, times (a table of name = time); ``default`` None means required."""

    kind: str
    default: Any = None
    doc: str = ""

    def parse(self, value: Any, where: str) -> Any:
        k = self.kind
        try:
            if k in KINDS:
                return parse_quantity(value, k)
            if k == "int":
                if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                    raise ValueError(f"expected a non-negative integer, got {value!r}")
                return value
            if k in ("float", "fraction"):
                if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
                    raise ValueError(f"expected a number, got {value!r}")
                if k == "fraction" and not 0 < value <= 1:
                    raise ValueError(f"expected a fraction in (0, 1], got {value!r}")
                if value < 0:
                    raise ValueError(f"expected a non-negative number, got {value!r}")
                return float(value)
            if k == "bool":
                if not isinstance(value, bool):
                    raise ValueError(f"expected true or false, got {value!r}")
                return value
            if k == "str":
                if not isinstance(value, str):
                    raise ValueError(f"expected a string, got {value!r}")
                return value
            if k == "times":
                if not isinstance(value, dict):
                    raise ValueError(f"expected a table of times, got {value!r}")
                return MappingProxyType({str(n): parse_quantity(t, "time") for n, t in value.items()})
            if k == "ints":
                if not isinstance(value, list) or not all(isinstance(x, int) and not isinstance(x, bool)
                                                          and x > 0 for x in value):
                    raise ValueError(f"expected a list of positive integers, got {value!r}")
                return tuple(value)
        except ValueError as e:
            raise TargetError(f"{where}: {e}") from None
        raise AssertionError(f"unknown field kind {k}")  # pragma: no cover - a family bug


@dataclass(frozen=True)
class ComputeUnit:
    """A compute unit of the device: its peak FLOP/s (whole device, dense) per dtype.

    ``peak`` keys are IR dtype names (``bf16``, ``f8e4m3``, ``i8``) plus ``tf32`` (f32 inputs run
    at TF32 on a matrix unit). ``count`` instances and ``shape`` (e.g. 128×128 PEs) are for
    families that model the units' geometry; ``extra`` holds family-specific keys.
    """

    name: str
    kind: str
    peak: Mapping[str, float]
    count: int = 1
    shape: tuple[int, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)

    def rate(self, dt: str) -> float | None:
        return self.peak.get(dt)


@dataclass(frozen=True)
class MemoryLevel:
    """One level of the memory hierarchy: ``capacity`` per instance, ``bandwidth`` aggregate."""

    name: str
    capacity: float
    bandwidth: float
    latency: float = 0.0
    per: str = "device"
    count: int = 1

    @property
    def total_capacity(self) -> float:
        return self.capacity * self.count


@dataclass(frozen=True)
class Link:
    """A device-to-device link domain: ``bandwidth`` per device and direction, ``latency`` per hop,
    up to ``max_devices`` devices in one domain."""

    name: str
    bandwidth: float
    latency: float
    max_devices: int
    topology: str = "switch"


@dataclass(frozen=True)
class Target:
    """A validated target spec (see the module docstring); built by ``parse_target``."""

    name: str
    family: str
    title: str
    vendor: str
    clock_hz: float | None
    power_w: float | None
    units: Mapping[str, ComputeUnit]
    memory: tuple[MemoryLevel, ...]
    interconnect: tuple[Link, ...]
    array: Mapping[str, Any]
    overheads: Mapping[str, Any]
    efficiency: Mapping[str, Any]
    calibrated_on: tuple[str, ...] = ()
    notes: str = ""
    source: str = "<memory>"

    # ----------------------------------------------------------------- memory
    @property
    def device_memory(self) -> MemoryLevel:
        """The outermost level: what weights and the KV cache live in (HBM, DRAM, or SRAM)."""
        return self.memory[0]

    def level(self, name: str) -> MemoryLevel:
        for m in self.memory:
            if m.name == name:
                return m
        raise TargetError(f"target {self.name} has no memory level {name!r} "
                          f"(levels: {', '.join(m.name for m in self.memory)})")

    def has_level(self, name: str) -> bool:
        return any(m.name == name for m in self.memory)

    # ----------------------------------------------------------------- compute
    def units_of(self, kind: str) -> list[ComputeUnit]:
        return [u for u in self.units.values() if u.kind == kind]

    def best_unit(self, dt: str,
                  kinds: Sequence[str] = ("matrix", "vector", "scalar")) -> tuple[ComputeUnit, str] | None:
        """The fastest unit among ``kinds`` (in preference order) that runs ``dt``, and the key it
        runs it as (``tf32`` for f32 on a matrix unit that lists it); None if none does."""
        for kind in kinds:
            best: tuple[ComputeUnit, str] | None = None
            for u in self.units_of(kind):
                for key in _keys_for(dt, kind):
                    r = u.rate(key)
                    if r and (best is None or r > best[0].peak[best[1]]):
                        best = (u, key)
            if best is not None:
                return best
        return None

    def upcast_unit(self, dt: str, kind: str = "matrix") -> tuple[ComputeUnit, str] | None:
        """The unit of ``kind`` a ``dt`` product runs on when no such unit lists ``dt``: the nearest
        wider precision one lists (fp8 weights upcast to bf16 on an A100, int4 widens to int8), as
        real kernels do; None when it lists ``dt`` itself or nothing wider."""
        if self.best_unit(dt, (kind,)) is not None:
            return None
        width = dtype_bits(dt)
        integer = dt.startswith(("i", "u"))
        best: tuple[tuple, ComputeUnit, str] | None = None
        for u in self.units_of(kind):
            for key, rate in u.peak.items():
                kb = dtype_bits(key)
                if kb < width or not rate or (key.startswith("i") and not integer):
                    continue
                if integer and not key.startswith(("i", "u")) and _SIGNIFICAND.get(key, 0) < width:
                    continue        # int8 is not exact in fp8 (4 significant bits): it widens to bf16
                # nearest width first; an integer product stays integer when it can; then speed
                rank = (kb, 0 if key.startswith("i") == integer else 1, -rate)
                if best is None or rank < best[0]:
                    best = (rank, u, key)
        return (best[1], best[2]) if best else None

    def peak(self, dt: str, kinds: Sequence[str] = ("matrix", "vector", "scalar")) -> float:
        """Peak FLOP/s for ``dt`` on the best unit of ``kinds`` (0 when no unit runs it), or of the
        precision a matrix unit upcasts it to."""
        hit = self.best_unit(dt, kinds)
        if hit is None and "matrix" in kinds:
            hit = self.upcast_unit(dt)
        return hit[0].peak[hit[1]] if hit else 0.0

    def dtypes(self) -> list[str]:
        """Every dtype key some unit lists, widest first."""
        seen: dict[str, None] = {}
        for u in self.units.values():
            for k in u.peak:
                seen.setdefault(k, None)
        order = {k: i for i, k in enumerate(("f64", "f32", "tf32", "bf16", "f16", "f8e4m3", "f8e5m2", "i8", "i4"))}
        return sorted(seen, key=lambda k: order.get(k, 99))

    def ridge(self, dt: str = "bf16", level: str | None = None) -> float:
        """The ridge point in FLOP/byte: peak compute for ``dt`` over the bandwidth of ``level``
        (default: device memory). Kernels of lower arithmetic intensity are memory-bound."""
        bw = (self.level(level) if level else self.device_memory).bandwidth
        return self.peak(dt) / bw if bw else math.inf

    # ----------------------------------------------------------------- scale-out
    @property
    def max_devices(self) -> int:
        """How many devices the links can join (1 when the target has no interconnect)."""
        return max((l.max_devices for l in self.interconnect), default=1)

    def link_for(self, devices: int) -> Link | None:
        """The innermost link whose domain holds ``devices`` devices (None for one device)."""
        if devices <= 1:
            return None
        for l in self.interconnect:
            if devices <= l.max_devices:
                return l
        return None

    def describe(self) -> dict[str, Any]:
        """A plain summary (peaks, levels, links, ridge per dtype) for tables and JSON."""
        return {
            "name": self.name, "family": self.family, "title": self.title, "vendor": self.vendor,
            "clock_hz": self.clock_hz, "power_w": self.power_w, "source": self.source,
            "units": {u.name: {"kind": u.kind, "count": u.count, "shape": list(u.shape),
                               "peak_flop_per_s": dict(u.peak)} for u in self.units.values()},
            "memory": [{"name": m.name, "capacity_bytes": m.capacity, "count": m.count, "per": m.per,
                        "bandwidth_bytes_per_s": m.bandwidth, "latency_s": m.latency} for m in self.memory],
            "interconnect": [{"name": l.name, "bandwidth_bytes_per_s": l.bandwidth, "latency_s": l.latency,
                              "max_devices": l.max_devices, "topology": l.topology} for l in self.interconnect],
            "ridge_flop_per_byte": {dt: self.ridge(dt) for dt in self.dtypes()},
            "calibrated_on": list(self.calibrated_on),
        }


#: significant bits of a float format (an integer product may run on it only when they hold it)
_SIGNIFICAND = {"f8e5m2": 3, "f8e4m3": 4, "bf16": 8, "f16": 11, "tf32": 11, "f32": 24, "f64": 53}


def dtype_bits(key: str) -> int:
    """Bits per element of a dtype a cost model prices: an IR dtype, or ``tf32`` (a matrix unit's
    precision whose operands are stored as f32). An unknown name raises ``IRError``."""
    return 32 if key == "tf32" else bits(key)


def dtype_bytes(key: str) -> float:
    """Bytes per element (``dtype_bits / 8``: 0.5 for i4)."""
    return dtype_bits(key) / 8


def _keys_for(dt: str, kind: str) -> tuple[str, ...]:
    # f32 matmuls run as TF32 on matrix units that list it (cuBLAS' default for f32 GEMMs with
    # TF32 enabled); a unit listing plain f32 is preferred when it has both.
    if dt == "f32" and kind == "matrix":
        return ("f32", "tf32")
    if dt in ("u8", "u4"):     # unsigned integers run at their signed width's rate (IMMA takes both)
        return (dt, "i" + dt[1:])
    return (dt,)


def dtype_key(name: str) -> str:
    """The canonical peak key for a dtype spelling (``fp8`` → ``f8e4m3``, ``tf32`` stays)."""
    if name.strip().lower() == "tf32":
        return "tf32"
    return to_dtype(name).name


# --------------------------------------------------------------------- parsing
def _table(data: Any, where: str) -> dict:
    if not isinstance(data, dict):
        raise TargetError(f"{where}: expected a table, got {type(data).__name__} {data!r}")
    return data


def _unknown(keys, allowed, where: str) -> None:
    extra = sorted(set(keys) - set(allowed))
    if extra:
        raise TargetError(f"{where}: unknown key(s) {', '.join(extra)} (allowed: {', '.join(sorted(allowed))})")


def _q(value: Any, kind: str, where: str) -> float:
    try:
        return parse_quantity(value, kind)
    except ValueError as e:
        raise TargetError(f"{where}: {e}") from None


def _str(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise TargetError(f"{where}: expected a non-empty string, got {value!r}")
    return value


def _posint(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise TargetError(f"{where}: expected a positive integer, got {value!r}")
    return value


def parse_target(data: Mapping[str, Any], *, source: str, default_name: str | None = None,
                 schema: Mapping[str, Mapping[str, Field]] | None = None) -> Target:
    """Validate a parsed TOML document into a ``Target``.

    ``schema`` (from the family) maps ``array``/``overheads``/``efficiency``/``units`` to the
    ``Field``s it reads; without one (a family not implemented yet) those tables are kept as given.
    """
    data = _table(dict(data), source)
    _unknown(data, _TOP_KEYS, source)
    if "family" not in data:
        raise TargetError(f"{source}: family: missing (one of gpu_simt, systolic, wafer_scale, dataflow, cpu)")
    family = _str(data["family"], f"{source}: family")
    name = data.get("name", default_name)
    if name is None:
        raise TargetError(f"{source}: name: missing")
    name = _str(name, f"{source}: name")

    units: dict[str, ComputeUnit] = {}
    raw_units = _table(data.get("units", {}), f"{source}: units")
    if not raw_units:
        raise TargetError(f"{source}: units: at least one compute unit is needed ([units.NAME] with kind and peak)")
    unit_schema = (schema or {}).get("units")
    for uname, u in raw_units.items():
        where = f"{source}: units.{uname}"
        u = _table(u, where)
        if schema is not None:
            _unknown(u, _UNIT_KEYS | set(unit_schema or ()), where)
        kind = u.get("kind")
        if kind not in UNIT_KINDS:
            raise TargetError(f"{where}.kind: expected one of {', '.join(UNIT_KINDS)}, got {kind!r}")
        if "peak" not in u:
            raise TargetError(f"{where}.peak: missing (a table of dtype = \"N TFLOP/s\")")
        peaks_raw = _table(u["peak"], f"{where}.peak")
        if not peaks_raw:
            raise TargetError(f"{where}.peak: empty (a table of dtype = \"N TFLOP/s\")")
        peaks: dict[str, float] = {}
        for dt, rate in peaks_raw.items():
            try:
                key = dtype_key(dt)
            except IRError:
                raise TargetError(f"{where}.peak.{dt}: unknown dtype (use IR names such as bf16, f16, f32, "
                                  f"tf32, f8e4m3, i8, i4)") from None
            peaks[key] = _q(rate, "rate", f"{where}.peak.{dt}")
        count = _posint(u.get("count", 1), f"{where}.count")
        shape = ()
        if "shape" in u:
            shape = Field("ints").parse(u["shape"], f"{where}.shape")
        rest = {k: v for k, v in u.items() if k not in _UNIT_KEYS}
        extra = _apply_schema(rest, unit_schema or {}, where) if schema is not None else rest
        units[uname] = ComputeUnit(uname, kind, MappingProxyType(peaks), count, tuple(shape),
                                   MappingProxyType(extra))

    raw_mem = data.get("memory")
    if not isinstance(raw_mem, list) or not raw_mem:
        raise TargetError(f"{source}: memory: expected at least one [[memory]] level (device memory first)")
    memory = []
    seen_levels: set[str] = set()
    for i, m in enumerate(raw_mem):
        where = f"{source}: memory[{i}]"
        m = _table(m, where)
        _unknown(m, _MEM_KEYS, where)
        for req in ("name", "capacity", "bandwidth"):
            if req not in m:
                raise TargetError(f"{where}.{req}: missing")
        lname = _str(m["name"], f"{where}.name")
        if lname in seen_levels:
            raise TargetError(f"{where}.name: level {lname!r} is listed twice")
        seen_levels.add(lname)
        level = MemoryLevel(lname, _q(m["capacity"], "size", f"{where}.capacity"),
                            _q(m["bandwidth"], "bandwidth", f"{where}.bandwidth"),
                            _q(m.get("latency", 0), "time", f"{where}.latency"),
                            _str(m.get("per", "device"), f"{where}.per"),
                            _posint(m.get("count", 1), f"{where}.count"))
        if level.bandwidth <= 0 or level.capacity <= 0:
            raise TargetError(f"{where}: capacity and bandwidth must be positive")
        memory.append(level)

    links = []
    raw_links = data.get("interconnect", [])
    if not isinstance(raw_links, list):
        raise TargetError(f"{source}: interconnect: expected a list of [[interconnect]] tables")
    for i, l in enumerate(raw_links):
        where = f"{source}: interconnect[{i}]"
        l = _table(l, where)
        _unknown(l, _LINK_KEYS, where)
        for req in ("name", "bandwidth", "latency", "max_devices"):
            if req not in l:
                raise TargetError(f"{where}.{req}: missing")
        topo = l.get("topology", "switch")
        if topo not in TOPOLOGIES:
            raise TargetError(f"{where}.topology: expected one of {', '.join(TOPOLOGIES)}, got {topo!r}")
        link = Link(_str(l["name"], f"{where}.name"), _q(l["bandwidth"], "bandwidth", f"{where}.bandwidth"),
                    _q(l["latency"], "time", f"{where}.latency"), _posint(l["max_devices"], f"{where}.max_devices"),
                    topo)
        if link.bandwidth <= 0:
            raise TargetError(f"{where}.bandwidth: must be positive")
        if links and link.max_devices < links[-1].max_devices:
            raise TargetError(f"{where}.max_devices: links go from the innermost domain outward, so "
                              f"max_devices must not shrink ({link.max_devices} < {links[-1].max_devices})")
        links.append(link)

    sections: dict[str, Mapping[str, Any]] = {}
    for sec in FAMILY_SECTIONS:
        raw = _table(data.get(sec, {}), f"{source}: {sec}")
        if schema is not None:
            sections[sec] = MappingProxyType(_apply_schema(raw, schema.get(sec, {}), f"{source}: {sec}"))
        else:
            sections[sec] = MappingProxyType(dict(raw))

    cal = data.get("calibrated_on", [])
    if not isinstance(cal, list) or not all(isinstance(c, str) for c in cal):
        raise TargetError(f"{source}: calibrated_on: expected a list of strings")
    clock = _q(data["clock"], "frequency", f"{source}: clock") if "clock" in data else None
    power = _q(data["power"], "power", f"{source}: power") if "power" in data else None
    return Target(name=name, family=family, title=str(data.get("title", name)), vendor=str(data.get("vendor", "")),
                  clock_hz=clock, power_w=power, units=MappingProxyType(units), memory=tuple(memory),
                  interconnect=tuple(links), array=sections["array"], overheads=sections["overheads"],
                  efficiency=sections["efficiency"], calibrated_on=tuple(cal), notes=str(data.get("notes", "")),
                  source=source)


def _apply_schema(raw: Mapping[str, Any], fields: Mapping[str, Field], where: str) -> dict[str, Any]:
    _unknown(raw, fields, where)
    out: dict[str, Any] = {}
    for key, f in fields.items():
        if key in raw:
            out[key] = f.parse(raw[key], f"{where}.{key}")
        elif f.default is None:
            raise TargetError(f"{where}.{key}: missing ({f.doc or f.kind})")
        else:
            default = list(f.default) if isinstance(f.default, tuple) else f.default
            out[key] = f.parse(default, f"{where}.{key} (default)")
    return out

