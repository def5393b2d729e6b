"""Backend registry: built-in executors, plugin backends, and one estimating backend per target.

``get_backend("numpy")`` gives the reference interpreter; ``get_backend("h100")`` the cost model of
the h100 target. Backends import lazily, so a missing optional dependency (torch, llvmlite) only
matters when that backend is asked for, and then the error names the extra to install.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from typing import Any

from ..ir.errors import BackendError, PluginError, TargetError
from ..plugins import discover, load

__all__ = ["BackendInfo", "get_backend", "get_estimator", "list_backends", "register_backend"]


@dataclass(frozen=True)
class BackendInfo:
    name: str
    kind: str               # "execute" or "estimate"
    origin: str             # "built-in", "plugin <dist>", "target"
    description: str
    requires: tuple[str, ...] = ()   # importable modules it needs
    extra: str = ""                  # the pip extra providing them
    available: bool = True


# name -> (module:class, kind, description, required modules, extra)
_BUILTIN: dict[str, tuple[str, str, str, tuple[str, ...], str]] = {
    "numpy": ("ridgeline.backends.numpy:NumpyBackend", "execute",
              "reference interpreter: one plain numpy kernel per op; defines meaning", (), ""),
    "torch": ("ridgeline.backends.torch:TorchBackend", "execute",
              "maps the IR to torch ops on cpu or cuda, optionally torch.compile", ("torch",), "torch"),
    "llvm": ("ridgeline.backends.llvm:LLVMBackend", "execute",
             "JIT-compiles fused kernels for the host CPU with llvmlite", ("llvmlite",), "llvm"),
}

_LOCAL: dict[str, Any] = {}


def register_backend(name: str, factory: Any) -> None:
    """Register an in-process backend (a class or a zero-argument factory)."""
    if name in _BUILTIN or name in _LOCAL:
        raise PluginError(f"backend {name!r} is already registered")
    _LOCAL[name] = factory


def _missing(mods: tuple[str, ...]) -> list[str]:
    return [m for m in mods if importlib.util.find_spec(m) is None]


def list_backends() -> list[BackendInfo]:
    """Every backend: built-ins (with availability), plugins, then one per target."""
    out = []
    for name, (_, kind, desc, req, extra) in _BUILTIN.items():
        out.append(BackendInfo(name, kind, "built-in", desc, req, extra, not _missing(req)))
    for name, factory in _LOCAL.items():
        out.append(BackendInfo(name, getattr(factory, "kind", "execute"), "local",
                               (getattr(factory, "__doc__", "") or "").strip().split("\n")[0]))
    for ref in discover("ridgeline.backends"):
        out.append(BackendInfo(ref.name, "?", ref.origin, f"from {ref.value}"))
    try:
        from ..cost_models.targets import list_targets
        for t in list_targets():
            out.append(BackendInfo(t.name, "estimate", "target", f"{t.family} cost model: {t.title}"))
    except ImportError:
        pass
    return out


def get_backend(name: str, **options: Any):
    """The backend called ``name`` (an executor, a plugin, or a target's estimator)."""
    if name in _BUILTIN:
        path, _, _, req, extra = _BUILTIN[name]
        missing = _missing(req)
        if missing:
            raise BackendError(f"backend {name!r} needs {', '.join(missing)}, which is not installed: "
                               f"pip install 'ridgeline[{extra}]'")
        module, _, cls = path.partition(":")
        return getattr(importlib.import_module(module), cls)(**options)
    if name in _LOCAL:
        return _LOCAL[name](**options)
    for ref in discover("ridgeline.backends"):
        if ref.name == name:
            return load(ref)(**options)
    try:
        from ..cost_models.targets import get_target
    except ImportError:
        get_target = None
    if get_target is not None:
        try:
            target = get_target(name)
        except TargetError:
            target = None
        if target is not None:
            from .estimate import EstimateBackend
            return EstimateBackend(target, **options)
    known = [b.name for b in list_backends()]
    raise BackendError(f"unknown backend {name!r}; known: {', '.join(known)}")


def get_estimator(target: str, **options: Any):
    """The estimating backend of ``target``; an executing backend's name is a clear error."""
    be = get_backend(target, **options)
    if getattr(be, "kind", None) != "estimate":
        raise BackendError(f"{target!r} is an executing backend; estimate() takes a target "
                           f"(see `ridgeline targets`)")
    return be
