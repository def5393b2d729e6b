"""Physical quantities in target files: ``"80 GiB"``, ``"3.35 TB/s"``, ``"989 TFLOP/s"``, ``"2 us"``.

A target file is written for people, so sizes and rates carry their units; a bare number is taken
in the base unit (bytes, bytes/s, FLOP/s, seconds, Hz, watts). Decimal prefixes (k, M, G, T, P)
are powers of 1000, binary ones (Ki, Mi, Gi, Ti) powers of 1024, as vendors print them; a
lower-case ``b`` in a bandwidth means bits (``"214 Pb/s"``). Every parser raises ``ValueError``
with the accepted form; the target loader turns it into a ``TargetError`` naming the field.
"""

from __future__ import annotations

import re

__all__ = ["parse_quantity", "KINDS", "format_quantity"]

_DEC = {"": 1.0, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18}
_BIN = {"Ki": 2.0 ** 10, "Mi": 2.0 ** 20, "Gi": 2.0 ** 30, "Ti": 2.0 ** 40, "Pi": 2.0 ** 50}
_TIME = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9, "ps": 1e-12}

#: kind -> (example shown in errors, unit suffixes accepted after a prefix)
KINDS = {
    "size": ('"80 GiB" or "228 KiB"', ("B",)),
    "bandwidth": ('"3.35 TB/s"', ("B/s", "b/s")),
    "rate": ('"989 TFLOP/s"', ("FLOP/s", "OP/s", "FLOPS", "OPS")),
    "time": ('"5 us"', tuple(_TIME)),
    "frequency": ('"1.83 GHz"', ("Hz",)),
    "power": ('"700 W"', ("W",)),
}

_NUM = r"([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)"
_RE = re.compile(r"\s*" + _NUM + r"\s*([A-Za-zµ/]*)\s*\Z")


def parse_quantity(value: object, kind: str) -> float:
    """The value in base units; ``value`` is a number or a string such as ``"3.35 TB/s"``."""
    example = KINDS[kind][0]
    if isinstance(value, bool):
        raise ValueError(f"expected a {kind} such as {example}, got {value!r}")
    if isinstance(value, (int, float)):
        x = float(value)
    elif isinstance(value, str):
        m = _RE.match(value)
        if not m:
            raise ValueError(f"expected a {kind} such as {example}, got {value!r}")
        x = float(m.group(1)) * _unit_scale(m.group(2), kind, value)
    else:
        raise ValueError(f"expected a {kind} such as {example}, got {type(value).__name__} {value!r}")
    if x < 0 or x != x:
        raise ValueError(f"must be a non-negative {kind}, got {value!r}")
    return x


def _unit_scale(unit: str, kind: str, original: str) -> float:
    example = KINDS[kind][0]
    if unit == "":
        return 1.0
    if kind == "time":
        if unit in _TIME:
            return _TIME[unit]
        raise ValueError(f"unknown time unit in {original!r} (use s, ms, us, ns), e.g. {example}")
    for suffix in sorted(KINDS[kind][1], key=len, reverse=True):
        if unit.endswith(suffix):
            prefix = unit[: -len(suffix)]
            scale = _BIN.get(prefix, _DEC.get(prefix))
            if scale is None:
                break
            if suffix == "b/s":
                scale /= 8.0  # bits
            return scale
    raise ValueError(f"unknown unit {unit!r} in {original!r}; expected a {kind} such as {example}")


def format_quantity(x: float, kind: str) -> str:
    """A short human form of a base-unit value (``3.35 TB/s``)."""
    unit = {"size": "B", "bandwidth": "B/s", "rate": "FLOP/s", "frequency": "Hz", "power": "W"}.get(kind)
    if kind == "time":
        for u, s in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6), ("ns", 1e-9)):
            if x >= s:
                return f"{x / s:.3g} {u}"
        return f"{x:.3g} s"
    if kind == "size":
        for p, s in (("Pi", 2.0 ** 50), ("Ti", 2.0 ** 40), ("Gi", 2.0 ** 30), ("Mi", 2.0 ** 20), ("Ki", 2.0 ** 10)):
            if x >= s:
                return f"{x / s:.3g} {p}B"
        return f"{x:.0f} B"
    for p, s in (("E", 1e18), ("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if x >= s:
            return f"{x / s:.3g} {p}{unit}"
    return f"{x:.3g} {unit}"
