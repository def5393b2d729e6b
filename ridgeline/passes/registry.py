"""Where passes live: built-ins, in-process registrations, and plugins from entry points.

``register_pass`` is a decorator for a ``Pass`` subclass, any small class with a
``run(graph, ctx)`` method, or a function ``fn(graph, *, option=default)``. Built-in passes are
the modules of ``ridgeline.passes.transforms`` (imported on first use); plugin passes come from
the ``ridgeline.passes`` entry-point group and are imported only when named (or listed), so a
broken plugin never hides the others. Names are unique: a clash is an error naming both sides.
"""

from __future__ import annotations

import difflib
import importlib
import pkgutil
import sys
from dataclasses import dataclass
from typing import Any, Sequence, TypeVar

from ..ir.errors import PipelineError, PluginError
from ..plugins import PluginRef, discover_lenient, load
from .base import OptionSpec, Pass, ensure_dataclass, kebab, options_of, pass_from_function

__all__ = ["PassInfo", "register_pass", "register_pipeline", "get_pass", "get_pipeline", "list_passes",
           "pass_names", "unregister_pass", "BUILTIN_PACKAGE"]

BUILTIN_PACKAGE = "ridgeline.passes.transforms"
PLUGIN_GROUP = "ridgeline.passes"

T = TypeVar("T")


@dataclass(frozen=True)
class PassInfo:
    """A row of ``ridgeline passes``: a pass or a named pipeline, its options and origin."""

    name: str
    summary: str
    options: tuple[OptionSpec, ...]
    origin: str                       # "built-in", "plugin <package>", "local <module>"
    kind: str = "pass"                # "pass" or "pipeline"
    expansion: str = ""               # a pipeline's passes
    error: str = ""                   # why a plugin could not be loaded
    cls: type[Pass] | None = None


_PASSES: dict[str, type[Pass]] = {}
_PIPELINES: dict[str, tuple[str, str, str]] = {}   # name -> (text, summary, origin)
_PLUGIN_FAILURES: dict[str, PluginError] = {}
_builtin_loaded = False


def _load_builtin() -> None:
    global _builtin_loaded
    if _builtin_loaded:
        return
    _builtin_loaded = True
    pkg = importlib.import_module(BUILTIN_PACKAGE)
    for mod in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
        if not mod.name.startswith("_"):
            importlib.import_module(f"{BUILTIN_PACKAGE}.{mod.name}")


def _origin_for(module: str) -> str:
    return "built-in" if module.startswith(BUILTIN_PACKAGE) else f"local {module}"


def _same_definition(a: type, b: type) -> bool:
    # Re-running a notebook cell re-creates the class: same module and name is the same pass.
    fa, fb = getattr(a, "_fn", None), getattr(b, "_fn", None)
    qa = fa.__qualname__ if fa is not None else a.__qualname__
    qb = fb.__qualname__ if fb is not None else b.__qualname__
    return a.__module__ == b.__module__ and qa == qb


def _as_pass_class(obj: Any, name: str | None) -> type[Pass]:
    if isinstance(obj, type):
        cls = obj
        if not issubclass(cls, Pass):
            if not callable(getattr(cls, "run", None)):
                raise TypeError(f"{cls.__qualname__} is not a pass: give it a run(graph, ctx) method")
            cls = type(cls.__name__, (ensure_dataclass(cls), Pass),
                       {"__doc__": cls.__doc__, "__module__": cls.__module__, "__qualname__": cls.__qualname__})
        cls = ensure_dataclass(cls)
        pass_name = name or cls.__dict__.get("name") or kebab(cls.__name__)
    elif callable(obj):
        pass_name = name or obj.__name__.replace("_", "-")
        cls = pass_from_function(obj, pass_name)
    else:
        raise TypeError(f"cannot register {obj!r} as a pass: expected a class or a function")
    cls.name = pass_name
    options_of(cls)  # unsupported option types fail here, at registration, not at first use
    return cls


def _register(cls: type[Pass], *, replace: bool, origin: str) -> None:
    name = cls.name
    if not name or not all(ch.isalnum() or ch in "-_." for ch in name) or not name[0].isalnum():
        raise PipelineError(f"invalid pass name {name!r}: use kebab-case letters, digits and dashes")
    if name in _PIPELINES:
        raise PluginError(f"pass name {name!r} is taken by a pipeline ({_PIPELINES[name][2]})")
    old = _PASSES.get(name)
    if old is not None and not replace and not _same_definition(old, cls):
        raise PluginError(f"pass {name!r} is already registered ({old.origin}: {old.__module__}); "
                          f"choose another name or register with replace=True")
    cls.origin = origin
    _PASSES[name] = cls


def register_pass(obj: Any = None, /, name: str | None = None, *, replace: bool = False,
                  touches: Sequence[str] | None = None) -> Any:
    """Register a pass class or function under ``name`` (default: its name in kebab case).

    Usable bare (``@register_pass``) or with a name (``@register_pass("my-pass")``). Returns the
    decorated object unchanged (a function keeps working as a function; its pass class is
    ``fn.pass_class``). ``touches`` names the idioms and ops the pass rewrites (``Pass.touches``),
    which ``check_pass`` generates for it.
    """
    if isinstance(obj, str) and name is None:
        obj, name = None, obj

    def decorate(target: T) -> T:
        if name is None and not isinstance(target, type):
            _load_builtin()
        cls = _as_pass_class(target, name)
        if touches is not None:
            cls.touches = tuple(touches)
        module = target.__module__ if hasattr(target, "__module__") else cls.__module__
        _register(cls, replace=replace, origin=_origin_for(module))
        if not isinstance(target, type):
            try:
                target.pass_class = cls  # type: ignore[attr-defined]
            except AttributeError:
                pass
            return target
        return cls  # type: ignore[return-value]

    return decorate(obj) if obj is not None else decorate


def unregister_pass(name: str) -> None:
    """Remove an in-process registration (tests and notebooks)."""
    _PASSES.pop(name, None)
    _PIPELINES.pop(name, None)


def register_pipeline(name: str, text: str, *, summary: str = "", replace: bool = False,
                      origin: str | None = None) -> None:
    """Name a pipeline: ``register_pipeline("cleanup", "canonicalize,cse,dce")``."""
    if name in _PASSES:
        raise PluginError(f"pipeline name {name!r} is taken by a pass ({_PASSES[name].origin})")
    if name in _PIPELINES and not replace and _PIPELINES[name][0] != text:
        raise PluginError(f"pipeline {name!r} is already registered ({_PIPELINES[name][2]})")
    caller = sys._getframe(1).f_globals.get("__name__", "?")
    _PIPELINES[name] = (text, summary, origin or _origin_for(caller))


def _plugin_refs() -> dict[str, PluginRef]:
    refs, clashes = discover_lenient(PLUGIN_GROUP)
    _PLUGIN_FAILURES.update({n: e for n, e in clashes.items() if n not in _PLUGIN_FAILURES})
    out = {r.name: r for r in refs}
    for n, e in clashes.items():
        out.setdefault(n, PluginRef(PLUGIN_GROUP, n, "", str(e)))
    return out


def _load_plugin(ref: PluginRef) -> type[Pass]:
    if ref.name in _PLUGIN_FAILURES:
        raise _PLUGIN_FAILURES[ref.name]
    existing = _PASSES.get(ref.name)
    if existing is not None and existing.origin.startswith("plugin "):
        return existing
    if existing is not None or ref.name in _PIPELINES:
        what = existing.origin if existing is not None else _PIPELINES[ref.name][2]
        err = PluginError(f"{PLUGIN_GROUP} plugin {ref.name!r} from package {ref.distribution} clashes with "
                          f"the {what} pass of the same name; uninstall or rename one")
        _PLUGIN_FAILURES[ref.name] = err
        raise err
    try:
        obj = load(ref)
        already = {id(c): n for n, c in _PASSES.items()}
        if isinstance(obj, type) and id(obj) in already:
            cls = obj
        elif getattr(obj, "pass_class", None) is not None and id(obj.pass_class) in already:
            cls = obj.pass_class
        else:
            cls = _as_pass_class(obj, ref.name)
        if cls.name != ref.name:
            raise PluginError(f"{PLUGIN_GROUP} plugin {ref.name!r} from package {ref.distribution}: the entry "
                              f"point is named {ref.name!r} but the pass calls itself {cls.name!r}")
        _register(cls, replace=True, origin=ref.origin)
    except PluginError as e:
        _PLUGIN_FAILURES[ref.name] = e
        raise
    except Exception as e:  # a malformed pass object inside third-party code
        err = PluginError(f"{PLUGIN_GROUP} plugin {ref.name!r} from package {ref.distribution} is not a valid "
                          f"pass: {type(e).__name__}: {e}")
        _PLUGIN_FAILURES[ref.name] = err
        raise err from None
    return cls


def get_pipeline(name: str) -> str | None:
    """The text of a named pipeline (``default``), or None."""
    _load_builtin()
    entry = _PIPELINES.get(name)
    return entry[0] if entry else None


def pass_names() -> list[str]:
    """Every known pass and pipeline name (plugins by entry-point name, without importing them)."""
    _load_builtin()
    names = set(_PASSES) | set(_PIPELINES)
    try:
        names |= set(_plugin_refs())
    except PluginError:  # pragma: no cover - lenient discovery does not raise
        pass
    return sorted(names)


def get_pass(name: str) -> type[Pass]:
    """The pass class called ``name``; unknown names list the known ones."""
    _load_builtin()
    cls = _PASSES.get(name)
    if cls is not None and cls.origin.startswith("plugin "):
        return cls
    refs = _plugin_refs()
    if name in refs:
        return _load_plugin(refs[name])  # a clash with a built-in or local pass raises here
    if cls is not None:
        return cls
    if name in _PIPELINES:
        raise PipelineError(f"{name!r} is a pipeline, not a single pass ({_PIPELINES[name][0]})")
    known = pass_names()
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise PipelineError(f"unknown pass {name!r}; {hint}known passes: {', '.join(known)}")


def _info(cls: type[Pass]) -> PassInfo:
    return PassInfo(cls.name, cls.summary(), cls.options(), cls.origin, cls=cls)


def list_passes() -> list[PassInfo]:
    """Every pass and named pipeline with summary, options and origin (plugins are imported)."""
    _load_builtin()
    out: dict[str, PassInfo] = {}
    for ref in _plugin_refs().values():
        try:
            cls = _load_plugin(ref)
            out[ref.name] = _info(cls)
        except PluginError as e:
            out[f"{ref.name}\0{ref.distribution}"] = PassInfo(ref.name, "", (), ref.origin, error=str(e))
    for name, cls in _PASSES.items():
        out.setdefault(name, _info(cls))
    for name, (text, summary, origin) in _PIPELINES.items():
        out.setdefault(name, PassInfo(name, summary, (), origin, kind="pipeline", expansion=text))
    order = {"built-in": 0}
    return sorted(out.values(), key=lambda i: (i.kind != "pipeline", order.get(i.origin, 1), i.name))


