"""Backend registry: built-in executors, plugin backends, and one estimating backend per target.

``get_backend("numpy")`` gives the reference interpreter; ``get_backend("h100")`` the cost model of
the h100 target. Backends import lazily, so a missing optional dependency (torch, llvmlite) only
matters when that backend is asked for, and then the error names the extra to install.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Any

from ..ir.errors import BackendError, TargetError
from ..plugins import Registry

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

#: name -> backend class or factory: the built-ins, in-process registrations and plugins
BACKENDS: Registry[Any] = Registry("backend", group="ridgeline.backends", error=BackendError)
for _name, (_path, *_) in _BUILTIN.items():
    BACKENDS.add(_name, _path)


def register_backend(name: str, factory: Any) -> None:
    """Register an in-process backend (a class or a zero-argument factory)."""
    BACKENDS.add(name, lambda: factory, origin="local")


def _missing(mods: tuple[str, ...]) -> list[str]:
    return [m for m in mods if importlib.util.find_spec(m) is None]


def list_backends() -> list[BackendInfo]:
    """Every backend: built-ins (with availability), local ones, plugins, then one per target."""
    out = []
    for name in BACKENDS.names():
        origin = BACKENDS.origin(name)
        if name in _BUILTIN:
            _, kind, desc, req, extra = _BUILTIN[name]
            out.append(BackendInfo(name, kind, origin, desc, req, extra, not _missing(req)))
        elif origin == "local":
            factory = BACKENDS.get(name)
            out.append(BackendInfo(name, getattr(factory, "kind", "execute"), origin,
                                   (getattr(factory, "__doc__", "") or "").strip().split("\n")[0]))
        else:
            out.append(BackendInfo(name, "?", origin, f"from {BACKENDS.plugins()[name].value}"))
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
        _, _, _, req, extra = _BUILTIN[name]
        missing = _missing(req)
        if missing:
            raise BackendError(f"backend {name!r} needs {', '.join(missing)}, which is not installed: "
                               f"pip install 'ridgeline[{extra}]'")
    if name in BACKENDS:
        return BACKENDS.get(name)(**options)
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
    raise BACKENDS.unknown(name, [b.name for b in list_backends()])


def get_estimator(target: str, **options: Any):
    """The estimating backend of ``target``; an executing backend's name is a clear error."""
    be = get_backend(target, **options)
    if getattr(be, "kind", None) != "estimate":
        raise BackendError(f"{target!r} is an executing backend; estimate() takes a target "
                           f"(see `ridgeline targets`)")
    return be
