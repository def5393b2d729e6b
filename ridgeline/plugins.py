"""Entry-point plugins: the groups ``ridgeline.passes``, ``ridgeline.backends``, ``ridgeline.targets``.

A leaf utility (it imports only ``ridgeline.ir.errors``), so every layer may use it. Plugins are
listed eagerly (cheap metadata) but imported only when asked for; an import failure becomes a
``PluginError`` naming the plugin, its distribution and the cause, and never hides the
built-ins or other plugins.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata
from typing import Any

from .ir.errors import PluginError

__all__ = ["PluginRef", "discover", "discover_lenient", "load", "GROUPS"]

log = logging.getLogger(__name__)

GROUPS = ("ridgeline.passes", "ridgeline.backends", "ridgeline.targets")


@dataclass(frozen=True)
class PluginRef:
    """An entry point not yet imported: its name, ``module:attr`` and the package providing it."""

    group: str
    name: str
    value: str
    distribution: str

    @property
    def origin(self) -> str:
        return f"plugin {self.distribution}"


@lru_cache(maxsize=None)
def _scan(group: str) -> tuple[tuple[PluginRef, ...], dict[str, PluginError]]:
    refs: dict[str, PluginRef] = {}
    clashes: dict[str, PluginError] = {}
    for ep in metadata.entry_points(group=group):
        dist = getattr(getattr(ep, "dist", None), "name", None) or "?"
        ref = PluginRef(group, ep.name, ep.value, dist)
        if ep.name in refs and refs[ep.name].value != ep.value:
            other = refs[ep.name]
            clashes[ep.name] = PluginError(
                f"{group} plugin name {ep.name!r} is registered twice: by {other.distribution} "
                f"({other.value}) and by {dist} ({ep.value}); uninstall one")
        refs.setdefault(ep.name, ref)
    return tuple(r for n, r in refs.items() if n not in clashes), clashes


def discover(group: str) -> tuple[PluginRef, ...]:
    """The plugins registered in ``group``; two with one name (from any packages) are an error."""
    refs, clashes = _scan(group)
    if clashes:
        raise next(iter(clashes.values()))
    return refs


def discover_lenient(group: str) -> tuple[tuple[PluginRef, ...], dict[str, PluginError]]:
    """Like ``discover``, but a name clash only disables that name: ``(refs, {name: error})``."""
    return _scan(group)


def load(ref: PluginRef) -> Any:
    """Import the object an entry point names; failures name the plugin and its package."""
    module, _, attr = ref.value.partition(":")
    try:
        import importlib
        obj = importlib.import_module(module.strip())
        for part in filter(None, attr.strip().split(".")):
            obj = getattr(obj, part)
    except Exception as e:  # any failure inside third-party code is reported, not raised raw
        raise PluginError(f"{ref.group} plugin {ref.name!r} from package {ref.distribution} failed to load "
                          f"({ref.value}): {type(e).__name__}: {e}") from None
    return obj
