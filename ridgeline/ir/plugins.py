"""Entry-point plugins (the groups ``ridgeline.passes``, ``ridgeline.backends``,
``ridgeline.targets``) and ``Registry[T]``, the one registry behind ops, passes, backends,
targets, families, kernel tables and strategy recipes: the plugin rules live here only.

It lives in ``ir`` (it imports only ``ir.errors``) so that every layer, the op registry too, may
use it; ``ridgeline.plugins`` re-exports it. Plugins are
listed eagerly (cheap metadata) but imported only when asked for; an import failure becomes a
``PluginError`` naming the plugin, its distribution and the cause, and never hides the
built-ins or other plugins. A name given twice (two packages, or a package and a built-in) is an
error naming both, raised when that name is asked for.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata
from typing import Any, Generic, TypeVar

from .errors import PluginError, RidgelineError

__all__ = ["GROUPS", "PluginRef", "Registry", "discover", "discover_lenient", "import_ref", "load"]

T = TypeVar("T")

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
    try:
        obj = import_ref(ref.value)
    except Exception as e:  # any failure inside third-party code is reported, not raised raw
        raise PluginError(f"{ref.group} plugin {ref.name!r} from package {ref.distribution} failed to load "
                          f"({ref.value}): {type(e).__name__}: {e}") from None
    return obj


def import_ref(ref: str) -> Any:
    """The object ``"package.module:attr.sub"`` names (imports the module)."""
    module, _, attr = ref.partition(":")
    obj = importlib.import_module(module.strip())
    for part in filter(None, attr.strip().split(".")):
        obj = getattr(obj, part)
    return obj


class Registry(Generic[T]):
    """Named things of one ``kind``: built-ins and in-process registrations (each a lazy factory,
    called once on first ``get``) and the plugins of an entry-point ``group``.

    ``convert(obj, ref)`` turns a loaded plugin object into a ``T``. A clash (two registrations,
    two packages, or a package and a registration under one name) and a broken plugin are
    ``PluginError``s naming both sides; an unknown name is an ``error`` listing near matches.
    """

    def __init__(self, kind: str, *, group: str | None = None, error: type[RidgelineError] = PluginError,
                 convert: Callable[[Any, PluginRef], T] | None = None, plural: str = ""):
        self.kind, self.group, self.error = kind, group, error
        self.plural = plural or f"{kind}s"
        self._convert = convert
        self._entries: dict[str, tuple[Callable[[], T], str]] = {}   # name -> (factory, origin)
        self._loaded: dict[str, T] = {}

    def add(self, name: str, factory: Callable[[], T] | str, *, origin: str = "built-in",
            replace: bool = False) -> None:
        """Register ``name``: a zero-argument factory, or ``"module:attr"`` imported on first use."""
        old = self._entries.get(name)
        if old is not None and not replace:
            raise PluginError(f"{self.kind} {name!r} is already registered ({old[1]}); the {origin} one "
                              f"needs another name")
        if isinstance(factory, str):
            ref = factory
            factory = lambda: import_ref(ref)  # imported on first get
        self._entries[name] = (factory, origin)
        self._loaded.pop(name, None)

    def remove(self, name: str) -> None:
        """Forget an in-process registration (tests and notebooks)."""
        self._entries.pop(name, None)
        self._loaded.pop(name, None)

    def plugins(self) -> dict[str, PluginRef]:
        """The group's plugins by name (two packages giving one name are left out: see ``get``)."""
        return {r.name: r for r in discover_lenient(self.group)[0]} if self.group else {}

    def names(self) -> list[str]:
        """Registered names, then plugin names (a clashing one too: ``get`` says why), in order."""
        plugin_names = [*self.plugins(), *(discover_lenient(self.group)[1] if self.group else ())]
        return [*self._entries, *dict.fromkeys(n for n in plugin_names if n not in self._entries)]

    def registered(self, name: str) -> bool:
        """True for a built-in or in-process registration (plugins not counted)."""
        return name in self._entries

    def __contains__(self, name: object) -> bool:
        return name in self._entries or name in self.names()

    def origin(self, name: str) -> str:
        entry = self._entries.get(name)
        return entry[1] if entry is not None else self._ref(name).origin

    def get(self, name: str) -> T:
        """The thing called ``name``, loaded on first use."""
        if name in self._loaded:
            return self._loaded[name]
        entry = self._entries.get(name)
        ref = self._plugin(name)
        if entry is not None and ref is not None:
            raise PluginError(f"{self.kind} {name!r} is given twice: {entry[1]} and {ref.origin} "
                              f"({ref.value}); uninstall or rename one")
        if entry is not None:
            obj = entry[0]()
        else:
            ref = self._ref(name)
            loaded = load(ref)
            try:
                obj = self._convert(loaded, ref) if self._convert is not None else loaded
            except RidgelineError:
                raise
            except Exception as e:  # noqa: BLE001 - a malformed object inside third-party code
                raise PluginError(f"{ref.group} plugin {name!r} from package {ref.distribution} is not a "
                                  f"valid {self.kind}: {type(e).__name__}: {e}") from None
        self._loaded[name] = obj
        return obj

    def find(self, name: str) -> T | None:
        """Like ``get`` for a registered name; None for any other (plugins are not consulted)."""
        if name in self._loaded:
            return self._loaded[name]
        return self.get(name) if name in self._entries else None

    def unknown(self, name: str, known: list[str] | None = None) -> RidgelineError:
        """The error for a name nobody registered: near matches first, then every known name."""
        known = self.names() if known is None else known
        near = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
        hint = f" (did you mean {' or '.join(repr(n) for n in near)}?)" if near else ""
        return self.error(f"unknown {self.kind} {name!r}{hint}; known {self.plural}: {', '.join(known) or '(none)'}")

    def _plugin(self, name: str) -> PluginRef | None:
        if not self.group:
            return None
        refs, clashes = discover_lenient(self.group)
        if name in clashes:
            raise clashes[name]
        return next((r for r in refs if r.name == name), None)

    def _ref(self, name: str) -> PluginRef:
        ref = self._plugin(name)
        if ref is None:
            raise self.unknown(name)
        return ref
