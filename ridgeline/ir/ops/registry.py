"""The op registry: every ``@op`` declaration lands here, keyed by op name.

It owns the table and fills it lazily: the first lookup imports every op module of the package,
whose ``@op`` decorators call ``register_spec``. So ``Graph.add_node`` can infer types whenever
it runs, and ``spec.py`` needs no hook to reach it.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import TYPE_CHECKING

from ..errors import IRError, UnsupportedOpError
from ..plugins import Registry

if TYPE_CHECKING:
    from .spec import OpSpec

__all__ = ["OPS", "all_specs", "find_spec", "get_spec", "register_spec"]

#: op name -> its spec (the one ``Registry`` of the package, with no entry-point group: a plugin's
#: ops register when its module is imported)
OPS: Registry[OpSpec] = Registry("op", error=IRError)
_loaded = False


def register_spec(spec: OpSpec) -> None:
    """Add a spec; a second spec for the same op name is an error naming both modules (one op, one spec)."""
    if OPS.registered(spec.name) and OPS.get(spec.name) is spec:
        return  # the same declaration again (a module imported twice, importlib.reload)
    OPS.add(spec.name, lambda: spec, origin=f"module {getattr(spec.infer, '__module__', None) or '?'}")


def _load_builtin() -> None:
    """Import every module of ``ridgeline.ir.ops`` once: each declares its family's specs."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    from .. import ops as pkg
    for mod in pkgutil.iter_modules(pkg.__path__):
        if mod.name not in ("spec", "registry") and not mod.name.startswith("_"):
            importlib.import_module(f"{pkg.__name__}.{mod.name}")


def find_spec(name: str) -> OpSpec | None:
    _load_builtin()
    return OPS.find(name)


def get_spec(name: str) -> OpSpec:
    spec = find_spec(name)
    if spec is None:
        raise UnsupportedOpError({name: 1}, where="graph")
    return spec


def all_specs() -> dict[str, OpSpec]:
    _load_builtin()
    return {name: OPS.get(name) for name in sorted(OPS.names())}
