"""ridgeline: a compiler toolkit for transformer inference.

ONNX models (or weightless models built from a config) become one IR; passes fuse, tile and
quantize; backends execute it (numpy, torch, an LLVM JIT) or estimate it on hardware we do not
have (GPU SIMT, systolic arrays, wafer-scale SRAM, deterministic dataflow).

    import ridgeline as rl
    g = rl.load("model.onnx", dims={"batch": 1, "seq": 128})
    rl.optimize(g, "default")
    outputs = rl.compile(g, backend="numpy").run(inputs)
    report = rl.estimate(rl.load("llama-3-70b", phase="decode"), target="h100")
"""

from __future__ import annotations

from .api import compile, estimate, load, optimize, simulate, sweep
from .runtime import generate  # a decode loop over the API: above it, like the CLI
from .ir import Graph, Node, TensorType, Value
from .ir.errors import RidgelineError

__version__ = "0.1.0"

__all__ = [
    "Graph",
    "Node",
    "RidgelineError",
    "TensorType",
    "Value",
    "__version__",
    "compile",
    "estimate",
    "generate",
    "load",
    "models",
    "optimize",
    "simulate",
    "sweep",
]


def __getattr__(name: str):
    # `ridgeline.models` and friends import on first touch, keeping `import ridgeline` light.
    if name in ("models", "passes", "backends", "cost_models", "frontends", "testing", "serving"):
        import importlib
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'ridgeline' has no attribute {name!r}")
