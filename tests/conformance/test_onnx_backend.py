"""ONNX backend conformance: ``onnx.backend.test``'s node tests against the ridgeline numpy backend.

onnx (>= 1.23) builds its ~1,900 node test cases in memory; ``BackendTest`` turns each into a
unittest method that imports the one-op model with ``load_onnx`` (so the importer, legacy-form
upgrades, specs and verifier all run) and compares our numpy outputs with the reference outputs.
Only the node suite runs, on CPU: the real-model suites need downloads.

A test is skipped, never failed, when

* its model uses an op ridgeline does not claim (no spec; see ``claimed_ops``), or
* it matches a row of ``UNSUPPORTED``: a claimed op exercised with a feature ridgeline lacks on
  purpose. Each row is narrow (it names the feature) and ``test_unsupported_rows_are_needed``
  checks that every row still matches some test, so a fixed feature cannot stay hidden.

Everything else must pass. Run and count with::

    python -m pytest tests/conformance -n 2 -q
"""

from __future__ import annotations

import re
import unittest
import warnings

import onnx.backend.test
import pytest
from onnx.backend.test.loader import load_model_tests

from ridgeline.testing.onnx_backend import RidgelineBackend, claimed_ops, unclaimed_ops

# (pattern on the test name, reason): claimed ops used with a feature we deliberately lack.
UNSUPPORTED: list[tuple[str, str]] = [
    (r"(?i)fnuz", "float8 e4m3fnuz/e5m2fnuz are not IR dtypes (ridgeline has f8e4m3 = e4m3fn and f8e5m2)"),
    (r"(?i)float4e2m1", "float4e2m1 is not an IR dtype"),
    (r"(?i)u?int2(_|$)", "int2/uint2 are not IR dtypes"),
    (r"(?i)e8m0", "float8e8m0 is not an IR dtype"),
    (r"^test_equal_string", "string tensors are not IR values"),
    (r"^test_identity_(sequence|opt)$", "sequence and optional values are not IR values (tensors only)"),
    (r"^test_not_[234]d$", "opset-1 model: the importer reads opset 7 and later"),
    (r"^test_training_dropout(_default)?(_mask)?$",
     "training-mode Dropout draws random numbers; ridgeline is inference-only"),
    (r"^test_batchnorm_\w+_training_mode$",
     "training-mode BatchNormalization (batch statistics, running-mean outputs); inference form only"),
]

with warnings.catch_warnings():  # the case generators overflow casts and divide by zero on purpose
    warnings.simplefilter("ignore")
    _CASES = {c.name: c for c in load_model_tests(kind="node")}


def _skip_reason(name: str) -> str | None:
    case = _CASES.get(name)
    if case is None or case.model is None:
        return "not an in-memory node test"
    missing = unclaimed_ops(case.model)
    if missing:
        return f"op not claimed by ridgeline: {', '.join(missing)}"
    for pattern, reason in UNSUPPORTED:
        if re.search(pattern, name):
            return f"unsupported feature: {reason}"
    return None


def _node_tests() -> type[unittest.TestCase]:
    with warnings.catch_warnings():  # the case generators overflow casts on purpose
        warnings.simplefilter("ignore")
        suite = onnx.backend.test.BackendTest(RidgelineBackend, __name__).test_cases
    generated = suite["OnnxBackendNodeModelTest"]
    methods = {}
    for attr in sorted(vars(generated)):
        if not (attr.startswith("test_") and attr.endswith("_cpu")):
            continue  # the CUDA twins would only be skipped
        fn = getattr(generated, attr)
        reason = _skip_reason(attr[: -len("_cpu")])
        methods[attr] = unittest.skip(reason)(fn) if reason else fn
    return type("OnnxBackendNodeModelTest", (unittest.TestCase,), {**methods, "__module__": __name__})


OnnxBackendNodeModelTest = _node_tests()


def test_unsupported_rows_are_needed():
    """Every UNSUPPORTED row matches a test of a claimed op (a stale row would hide a pass)."""
    claimed_names = [n for n, c in _CASES.items() if c.model is not None and not unclaimed_ops(c.model)]
    for pattern, reason in UNSUPPORTED:
        assert any(re.search(pattern, n) for n in claimed_names), f"row {pattern!r} ({reason}) matches nothing"


def test_suite_covers_the_node_cases():
    """The generated class holds one CPU test per in-memory node case, and claims are nonempty."""
    names = {a[: -len("_cpu")] for a in vars(OnnxBackendNodeModelTest) if a.startswith("test_")}
    assert names == set(_CASES)
    assert len(names) > 1500
    assert {"MatMul", "Attention", "Softmax", "Cast"} <= claimed_ops()


@pytest.mark.parametrize("name", ["test_add", "test_matmul_2d", "test_softmax_axis_0"])
def test_claimed_case_runs_not_skips(name):
    assert _skip_reason(name) is None
