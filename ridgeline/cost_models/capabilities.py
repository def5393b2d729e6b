"""What code generators and tile search may assume about a target, instead of its family's name.

A family class declares what all its chips share in one attribute, ``traits`` (a ``Traits``);
``capabilities(target)`` joins that with the target file's own figures (matrix-unit shape, memory
levels, dtypes) into one frozen ``Capabilities`` record, as tinygrad's renderer declares what a
device can do. A family without ``traits`` (a plugin's) gets the defaults: no register-file
accumulators, no host code, M padded to 8.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..ir.errors import TargetError
from .target import Target

__all__ = ["Capabilities", "Traits", "capabilities"]


@dataclass(frozen=True)
class Traits:
    """What every chip of a family shares (a family class's ``traits``)."""

    accumulators_in_registers: bool = False  # GEMM accumulators live in the register file (GPUs)
    host_code: bool = False                  # the chip is the host CPU: its tiles drive the llvm GEMM
    row_granule_key: str = ""                # the ``[array]`` key giving the M granule of a matrix op
    multicast_key: str = ""                  # the ``[array]`` key giving CTAs per shared tile load


@dataclass(frozen=True)
class Capabilities:
    """One target's chip as tile search and the llvm GEMM see it."""

    target: str
    matrix_shape: tuple[int, ...]        # (k, n) PEs of the matrix unit; () when not given
    row_granule: int                     # rows (M) one matrix op covers: M is padded to it
    accumulators_in_registers: bool
    host_code: bool
    multicast: int                       # tiles sharing one operand load (1: no multicast)
    scratchpad: str                      # the memory level nearest the compute units
    scratchpad_bytes: float              # its capacity per instance
    dtypes: tuple[str, ...]              # dtype keys some unit runs, widest first


def capabilities(target: Target) -> Capabilities:
    """The ``Capabilities`` of ``target``: its family's ``traits`` with the target file's figures."""
    from .families import find_family
    try:
        family = find_family(target.family)
    except TargetError:
        family = None
    traits: Traits = getattr(family, "traits", None) or Traits()
    arr = target.array
    rows = arr.get(traits.row_granule_key) if traits.row_granule_key else None
    multicast = arr.get(traits.multicast_key) if traits.multicast_key else None
    shape = next((tuple(int(s) for s in u.shape) for u in target.units_of("matrix") if u.shape), ())
    near = target.memory[-1]
    return Capabilities(target.name, shape, int(rows or 8), traits.accumulators_in_registers, traits.host_code,
                        max(1, int(multicast or 1)), near.name, float(near.capacity), tuple(target.dtypes()))
