"""The Python API: ``load``, ``optimize``, ``compile``, ``estimate``.

Each call is a thin door onto the layer that does the work, imported when first used so that
``import ridgeline`` stays cheap and optional extras stay optional.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .ir import Graph
from .ir.errors import ModelError

__all__ = ["compile", "estimate", "load", "optimize", "reference_evaluator", "simulate", "sweep"]


def load(model: str | os.PathLike | Graph, *, dims: Mapping[str, int | str] | None = None,
         **preset_options: Any) -> Graph:
    """A graph from an ``.onnx`` file, a ``.rir`` text file, or a preset name (``llama-3-70b``).

    ``dims`` binds symbolic dims; ``preset_options`` (phase, batch, context, dtypes, …) go to
    ``ridgeline.models.build`` when ``model`` names a preset.
    """
    if isinstance(model, Graph):
        return model.bind(dims) if dims else model
    text = os.fspath(model)
    path = Path(text)
    suffix = path.suffix.lower()
    if suffix == ".onnx" or (suffix in (".pb", ".model") and path.is_file()):
        from .frontends.onnx import load_onnx
        if preset_options:
            raise ModelError(f"options {', '.join(preset_options)} apply to presets, not to ONNX files")
        return load_onnx(path, dims=dims)
    if suffix == ".rir":
        from .ir.rir_file import load_rir
        if preset_options:
            raise ModelError(f"options {', '.join(preset_options)} apply to presets, not to .rir files")
        g = load_rir(path)
        return g.bind(dims) if dims else g
    if path.exists() and path.is_file():
        raise ModelError(f"{text}: unknown model format (expected .onnx, .rir or a preset name)")
    if path.is_dir():
        raise ModelError(f"{text}: is a directory; name an .onnx or .rir file inside it")
    if path.exists():
        raise ModelError(f"{text}: not a regular file (a device or a pipe); name an .onnx or .rir file")
    from . import models
    if models.find_preset(text) is None:
        raise ModelError(f"{text}: no such file, and not a preset (presets: {', '.join(models.preset_names())})")
    g = models.build(text, **preset_options)
    return g.bind(dims) if dims else g


def optimize(graph: Graph, pipeline: str = "default", **options: Any) -> Graph:
    """Run a pass pipeline (``"canonicalize,fuse-attention,dce"``) on ``graph`` in place; returns it.

    ``options`` go to ``ridgeline.passes.run_pipeline``; constant folding evaluates with the numpy
    reference unless ``evaluator=`` says otherwise.
    """
    from .passes import run_pipeline
    options.setdefault("evaluator", reference_evaluator())
    run_pipeline(graph, pipeline, **options)
    return graph


def reference_evaluator():
    """``fn(node, arrays) -> arrays`` by the numpy reference kernels, for ``fold-constants``
    (``ridgeline.backends.numpy.reference_evaluator``)."""
    from .backends.numpy import reference_evaluator as numpy_reference
    return numpy_reference()


def compile(graph: Graph, backend: str = "numpy", *, pipeline: str | None = None, **options: Any):
    """Compile for a backend: an ``Executable`` for executors, an ``Estimate`` for targets.

    The backend's ``default_pipeline`` runs first (on a copy) unless ``pipeline`` overrides it;
    ``pipeline=""`` compiles the graph as given.
    """
    from .backends.registry import get_backend
    be = get_backend(backend)
    pipe = be.default_pipeline if pipeline is None else pipeline
    if pipe:
        graph = optimize(graph.copy(), pipe)
    if getattr(be, "kind", None) == "estimate":
        options = _with_companion(graph, options)
    return be.compile(graph, **options)


def estimate(graph: Graph, target: str = "h100", **options: Any):
    """Estimate ``graph`` on a hardware target; returns an ``Estimate``."""
    from .backends.registry import get_estimator
    return get_estimator(target).compile(graph, **_with_companion(graph, options))


def _with_companion(graph: Graph, options: dict[str, Any]) -> dict[str, Any]:
    """``companion="auto"`` (the default) becomes the other phase of a preset graph, built here
    because the estimating backend sits below the preset zoo; None for any other graph."""
    if isinstance(options.get("companion", "auto"), str) and options.get("companion", "auto") == "auto":
        from .models import companion
        options = {**options, "companion": companion(graph)}
    return options


def simulate(model: str, target: str = "h100", **options: Any):
    """Simulate serving a preset on a target under a workload; returns a ``ServeResult``.

    ``options`` go to ``ridgeline.serving.simulate`` (workload, rate, scheduler, tp, pp, replicas,
    slo, seed, …; see docs/serving.md).
    """
    from .serving import simulate as _simulate
    return _simulate(model, target, **options)


def sweep(spec: Any, engine: str = "local", **options: Any):
    """Run a design-space sweep (a TOML path, its dict, or a ``SweepSpec``) on ``engine`` (local,
    ray, dask); returns a pyarrow Table, one row per point. See ``ridgeline.sweep.sweep``."""
    from .sweep import sweep as run_sweep
    return run_sweep(spec, engine=engine, **options)
