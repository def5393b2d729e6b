"""Property-based testing of passes and backends, for ridgeline and for plugin authors.

    from ridgeline.testing import check_pass, strategies
    check_pass("fuse-gelu", graphs=strategies.gelu_idioms())

* ``strategies`` — hypothesis strategies: random valid graphs over every op with a spec, the
  unfused idioms each fusion looks for, and well-conditioned inputs;
* ``check_pass`` / ``check_graph`` — a pass keeps the meaning of generated (or given) graphs;
* ``check_backend`` / ``check_onnxruntime`` — an executing backend, or an ONNX export run by
  onnxruntime, agrees with the numpy reference;
* ``compare`` — differential testing as a library function (a float64 oracle, per element);
* ``random_inputs`` — seeded inputs of the right dtypes, shapes and domains;
* ``ridgeline.testing.pytest_plugin`` — hypothesis profiles (``ci``, ``soak``) and fixtures.

See ``docs/testing.md``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["check_pass", "check_graph", "CheckReport", "PassCheckError", "Failure", "check_backend",
           "check_onnxruntime", "BackendCheckError", "random_inputs", "reference_run", "compare_outputs",
           "assert_outputs_close", "strategies", "VacuousCheckError"]

_LAZY = {
    "check_pass": "check", "check_graph": "check", "CheckReport": "check", "PassCheckError": "check",
    "Failure": "check", "check_backend": "differential", "check_onnxruntime": "differential",
    "BackendCheckError": "differential", "reference_run": "compare", "compare_outputs": "compare",
    "assert_outputs_close": "compare", "random_inputs": "inputs", "strategies": "strategies",
    "VacuousCheckError": "check",
}


def __getattr__(name: str) -> Any:
    # imported on first use: `ridgeline run` needs random_inputs, not hypothesis
    if name in _LAZY:
        import importlib
        mod = importlib.import_module(f"{__name__}.{_LAZY[name]}")
        return mod if name == "strategies" else getattr(mod, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
