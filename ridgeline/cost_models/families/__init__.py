"""The architecture families: one module per family, each a ``CostModel`` subclass.

A target file's ``family`` key picks one: a built-in name below, a name registered in-process
with ``register_family``, or ``"package.module:Class"`` for a family shipped by a plugin.
Built-in families are imported on first use. A family that is planned but not written yet gives
a clear ``TargetError`` when a target needs it (its targets still list and validate).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from ...ir.errors import TargetError
from ...plugins import Registry

if TYPE_CHECKING:
    from ..model import CostModel

__all__ = [
    "BUILTIN_FAMILIES",
    "FAMILIES",
    "add_family",
    "family_names",
    "find_family",
    "get_family",
    "is_implemented",
    "register_family",
]

#: family name -> "module:Class" of its cost model
BUILTIN_FAMILIES: dict[str, str] = {
    "gpu_simt": "ridgeline.cost_models.families.gpu_simt:GpuSimtModel",
    "systolic": "ridgeline.cost_models.families.systolic:SystolicModel",
    "wafer_scale": "ridgeline.cost_models.families.wafer_scale:WaferScaleModel",
    "dataflow": "ridgeline.cost_models.families.dataflow:DataflowModel",
    "cpu": "ridgeline.cost_models.families.cpu:CpuModel",
}


def add_family(name: str, ref: str, *, origin: str = "built-in") -> None:
    """Name a family whose class ``"module:Class"`` is imported on first use (None if the module
    does not exist yet: a planned family)."""
    FAMILIES.add(name, lambda: _import(ref, name), origin=origin)


def family_names() -> list[str]:
    return sorted(FAMILIES.names())


def register_family(name: str, cls: type) -> None:
    """Register a family class in-process (notebooks, tests, plugins)."""
    FAMILIES.add(name, lambda: cls, origin="local")


def _import(ref: str, name: str) -> type | None:
    module, _, attr = ref.partition(":")
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name == module:  # the family's module does not exist (yet)
            return None
        raise TargetError(f"family {name!r} failed to import ({ref}): {e}") from None
    except Exception as e:  # a plugin's family raising on import
        raise TargetError(f"family {name!r} failed to import ({ref}): {type(e).__name__}: {e}") from None
    cls = getattr(mod, attr, None)
    if cls is None:
        raise TargetError(f"family {name!r}: {module} has no {attr}")
    return cls


#: family name -> its cost model class (None: planned, not written yet)
FAMILIES: Registry[type | None] = Registry("family", error=TargetError, plural="families")
for _name, _ref in BUILTIN_FAMILIES.items():
    add_family(_name, _ref)


def find_family(name: str) -> "type[CostModel] | None":
    """The family's class; None when it is a known family not implemented yet.

    Raises ``TargetError`` for a name that is no family at all.
    """
    if name not in FAMILIES and ":" in name:
        add_family(name, name, origin=f"module {name}")
        if FAMILIES.get(name) is None:
            FAMILIES.remove(name)
            raise TargetError(f"family {name!r}: module not found")
    if name not in FAMILIES:
        raise TargetError(f"{FAMILIES.unknown(name, family_names())} (or 'package.module:Class' for a plugin family)")
    return FAMILIES.get(name)


def is_implemented(name: str) -> bool:
    try:
        return find_family(name) is not None
    except TargetError:
        return False


def get_family(name: str) -> "type[CostModel]":
    """The family's class; a clear error when it is not implemented yet."""
    cls = find_family(name)
    if cls is None:
        raise TargetError(f"the {name} cost model is not implemented yet; targets of this family are listed "
                          f"but cannot be estimated (implemented: "
                          f"{', '.join(n for n in family_names() if is_implemented(n))})")
    return cls
