"""Recipes: how to add one op to a random graph, grouped like ``ridgeline.ir.ops``.

A recipe is ``fn(ctx, op)``: it picks (or creates) inputs that satisfy what the op needs, draws
attributes, and adds the node with ``ctx.add``, raising ``Skip`` when it cannot. What a spec says
(ports, type letters, attribute kinds and defaults) recipes read from the spec; a recipe adds only
what a spec cannot express — an element count a Reshape keeps, an index a Gather accepts, a
domain Log is finite on. Elementwise ops whose ports are plain need no recipe of their own: the
generic one builds them from the spec alone.

``coverage_table()`` lists every op with a spec and the recipe that generates it (None when
nothing does): the test suite fails when a new op arrives without generator support.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Callable

from ....ir.ops import all_specs, get_spec
from ....plugins import Registry
from .._context import GenContext

__all__ = ["recipe", "get_recipe", "coverage_table", "Recipe", "RECIPES"]

Recipe = Callable[[GenContext, str], None]
#: op name -> the recipe generating it (a clash between two recipe modules is an error naming both)
RECIPES: Registry[Recipe] = Registry("recipe")
_loaded = False


def recipe(*ops: str):
    """Register the decorated function as the recipe of each op in ``ops``."""
    def decorate(fn: Recipe) -> Recipe:
        for name in ops:
            RECIPES.add(name, lambda: fn, origin=f"{fn.__module__}.{fn.__name__}")
        return fn
    return decorate


def _load() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for mod in pkgutil.iter_modules(__path__):
        if not mod.name.startswith("_"):
            importlib.import_module(f"{__name__}.{mod.name}")


def get_recipe(op: str) -> Recipe | None:
    """The recipe for ``op``: its own, the generic elementwise one if its spec allows, else None."""
    _load()
    if op in RECIPES:
        return RECIPES.get(op)
    from .elementwise import generic_applies, generic_elementwise
    try:
        spec = get_spec(op)
    except Exception:
        return None
    return generic_elementwise if generic_applies(spec) else None


def coverage_table() -> dict[str, str | None]:
    """Every op with a spec -> the name of the recipe that generates it (None: unsupported)."""
    out = {}
    for name in sorted(all_specs()):
        fn = get_recipe(name)
        out[name] = None if fn is None else f"{fn.__module__.rsplit('.', 1)[-1]}.{fn.__name__}"
    return out
