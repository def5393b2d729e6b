"""Where passes live: built-ins, in-process registrations, and plugins from entry points.

``register_pass`` is a decorator for a ``Pass`` subclass, any small class with a
``run(graph, ctx)`` method, or a function ``fn(graph, *, option=default)``. Built-in passes are
the modules of ``ridgeline.passes.transforms`` (imported on first use); plugin passes come from
the ``ridgeline.passes`` entry-point group and are imported only when named (or listed), so a
broken plugin never hides the others. Names are unique: a clash is an error naming both sides.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from dataclasses import dataclass
from typing import Any, Sequence, TypeVar

from ..ir.errors import PipelineError, PluginError
from ..plugins import PluginRef, Registry
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


_PIPELINES: dict[str, tuple[str, str, str]] = {}   # name -> (text, summary, origin)
_builtin_loaded = False


def _plugin_pass(obj: Any, ref: PluginRef) -> type[Pass]:
    """The pass class a ``ridgeline.passes`` entry point names (its module may have registered
    it in-process while importing: that registration becomes the plugin's)."""
    made = obj if isinstance(obj, type) else getattr(obj, "pass_class", None)
    if (isinstance(made, type) and issubclass(made, Pass) and made.name == ref.name
            and PASSES.registered(ref.name)):  # registered by its own module's import
        PASSES.remove(ref.name)
        cls = made
    else:
        cls = _as_pass_class(obj, ref.name)
    if cls.name != ref.name:
        raise PluginError(f"{PLUGIN_GROUP} plugin {ref.name!r} from package {ref.distribution}: the entry "
                          f"point is named {ref.name!r} but the pass calls itself {cls.name!r}")
    if ref.name in _PIPELINES:
        raise PluginError(f"{PLUGIN_GROUP} plugin {ref.name!r} from package {ref.distribution} clashes with "
                          f"the {_PIPELINES[ref.name][2]} pipeline of the same name; uninstall or rename one")
    cls.origin = ref.origin
    return cls


#: pass name -> pass class: built-ins, in-process registrations and ``ridgeline.passes`` plugins
PASSES: Registry[type[Pass]] = Registry("pass", group=PLUGIN_GROUP, error=PipelineError, convert=_plugin_pass,
                                     plural="passes")


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
    old = PASSES.get(name) if PASSES.registered(name) else None
    if old is not None and not replace and not _same_definition(old, cls):
        raise PluginError(f"pass {name!r} is already registered ({old.origin}: {old.__module__}); "
                          f"choose another name or register with replace=True")
    cls.origin = origin
    PASSES.add(name, lambda: cls, origin=origin, replace=True)


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
    PASSES.remove(name)
    _PIPELINES.pop(name, None)


def register_pipeline(name: str, text: str, *, summary: str = "", replace: bool = False,
                      origin: str | None = None) -> None:
    """Name a pipeline: ``register_pipeline("cleanup", "canonicalize,cse,dce")``."""
    if PASSES.registered(name):
        raise PluginError(f"pipeline name {name!r} is taken by a pass ({PASSES.origin(name)})")
    if name in _PIPELINES and not replace and _PIPELINES[name][0] != text:
        raise PluginError(f"pipeline {name!r} is already registered ({_PIPELINES[name][2]})")
    caller = sys._getframe(1).f_globals.get("__name__", "?")
    _PIPELINES[name] = (text, summary, origin or _origin_for(caller))


def get_pipeline(name: str) -> str | None:
    """The text of a named pipeline (``default``), or None."""
    _load_builtin()
    entry = _PIPELINES.get(name)
    return entry[0] if entry else None


def pass_names() -> list[str]:
    """Every known pass and pipeline name (plugins by entry-point name, without importing them)."""
    _load_builtin()
    return sorted({*PASSES.names(), *_PIPELINES})


def get_pass(name: str) -> type[Pass]:
    """The pass class called ``name``; unknown names list the known ones."""
    _load_builtin()
    if name in _PIPELINES and name not in PASSES:
        raise PipelineError(f"{name!r} is a pipeline, not a single pass ({_PIPELINES[name][0]})")
    if name not in PASSES:
        raise PASSES.unknown(name, pass_names())
    return PASSES.get(name)  # a plugin clashing with a built-in or local pass raises here


def _info(cls: type[Pass]) -> PassInfo:
    return PassInfo(cls.name, cls.summary(), cls.options(), cls.origin, cls=cls)


def list_passes() -> list[PassInfo]:
    """Every pass and named pipeline with summary, options and origin (plugins are imported)."""
    _load_builtin()
    out: dict[str, PassInfo] = {}
    for name in PASSES.names():
        try:
            out[name] = _info(PASSES.get(name))
        except PluginError as e:
            ref = PASSES.plugins().get(name)
            out[name] = PassInfo(name, "", (), ref.origin if ref else "plugin", error=str(e))
    for name, (text, summary, origin) in _PIPELINES.items():
        out.setdefault(name, PassInfo(name, summary, (), origin, kind="pipeline", expansion=text))
    order = {"built-in": 0}
    return sorted(out.values(), key=lambda i: (i.kind != "pipeline", order.get(i.origin, 1), i.name))


