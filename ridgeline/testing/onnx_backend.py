"""ridgeline as an ``onnx.backend`` backend, for ONNX's backend conformance suite.

``RidgelineBackend.prepare(model)`` imports the model with ``ridgeline.frontends.onnx.load_onnx``
(so the importer, the legacy-form upgrades, the op specs and the verifier are all exercised) and
returns a rep that runs the graph on the numpy reference backend::

    import onnx.backend.test
    from ridgeline.testing.onnx_backend import RidgelineBackend
    globals().update(onnx.backend.test.BackendTest(RidgelineBackend, __name__).test_cases)

``claimed_ops()`` is the set of ONNX ops ridgeline claims to implement (one spec each, plus the
ops the importer rewrites away); ``unclaimed_ops(model)`` says which ops of a model fall outside
it. The conformance test module uses both to skip, not fail, tests of ops we do not claim.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import onnx
from onnx.backend.base import Backend, BackendRep

from ..backends.numpy import Interpreter, NumpyBackend
from ..frontends.onnx import load_onnx
from ..ir import Graph
from ..ir.errors import BackendError
from ..ir.ops import all_specs

__all__ = ["RidgelineBackend", "RidgelineRep", "StrictInterpreter", "claimed_ops", "unclaimed_ops", "IMPORTER_OPS"]

#: ops the importer handles without a spec of their own: Constant becomes a graph constant.
IMPORTER_OPS = frozenset({"Constant"})

_ONNX_DOMAINS = ("", "ai.onnx")


def claimed_ops() -> frozenset[str]:
    """ONNX-domain ops ridgeline implements: every spec outside the ``ridgeline`` domain, plus
    the ops the importer rewrites (``IMPORTER_OPS``)."""
    return frozenset(name for name, s in all_specs().items() if s.domain in _ONNX_DOMAINS) | IMPORTER_OPS


def unclaimed_ops(model: onnx.ModelProto) -> list[str]:
    """The ops of ``model``'s main graph that ridgeline does not claim (``domain.op`` outside ONNX)."""
    claimed = claimed_ops()
    missing = set()
    for n in model.graph.node:
        if n.domain not in _ONNX_DOMAINS:
            missing.add(f"{n.domain}.{n.op_type}")
        elif n.op_type not in claimed:
            missing.add(n.op_type)
    return sorted(missing)


class StrictInterpreter(Interpreter):
    """The reference interpreter, also failing when a kernel's result dtype differs from the
    dtype the op's spec inferred (the plain interpreter converts it silently)."""

    def call_kernel(self, node, args):
        result = super().call_kernel(node, args)
        if node.op != "Fused":
            outs = result if isinstance(result, (tuple, list)) else (result,)
            for v, a in zip(node.outputs, outs):
                got = np.asarray(a).dtype
                if got != v.type.dtype.np_dtype:
                    raise BackendError(f"{node.op} kernel returned {got} for %{v.name}, its spec says {v.type}")
        return result


class RidgelineRep(BackendRep):
    """An imported graph bound to the numpy reference interpreter (strict about dtypes)."""

    def __init__(self, graph: Graph):
        self.graph = graph
        self.executable = NumpyBackend().compile(graph)
        self.executable.interpreter = StrictInterpreter(graph)

    def run(self, inputs: Any, **kwargs: Any) -> tuple[np.ndarray, ...]:
        """Run on ``inputs`` (a sequence in graph-input order, a mapping, or one array)."""
        if isinstance(inputs, np.ndarray):
            inputs = [inputs]
        if not isinstance(inputs, dict):
            inputs = list(inputs)
        out = self.executable.run(inputs)
        return tuple(out[v.name] for v in self.graph.outputs)


class RidgelineBackend(Backend):
    """The ridgeline numpy backend behind ONNX's ``Backend`` interface (CPU only)."""

    @classmethod
    def prepare(cls, model: onnx.ModelProto, device: str = "CPU", **kwargs: Any) -> RidgelineRep:
        return RidgelineRep(load_onnx(model))

    @classmethod
    def run_model(cls, model: onnx.ModelProto, inputs: Any, device: str = "CPU",
                  **kwargs: Any) -> tuple[np.ndarray, ...]:
        return cls.prepare(model, device, **kwargs).run(inputs)

    @classmethod
    def run_node(cls, node: onnx.NodeProto, inputs: Sequence[np.ndarray], device: str = "CPU",
                 outputs_info: Sequence[tuple[np.dtype, tuple[int, ...]]] | None = None,
                 **kwargs: Any) -> tuple[np.ndarray, ...]:
        """Run one node on ``inputs`` by wrapping it in a one-node model."""
        from onnx import helper
        ins = [helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(np.asarray(a).dtype),
                                             np.shape(a))
               for name, a in zip(node.input, inputs) if name]
        outs = [helper.make_tensor_value_info(name, onnx.TensorProto.UNDEFINED, None) for name in node.output]
        opset = kwargs.get("opset_version", onnx.defs.onnx_opset_version())
        model = helper.make_model(helper.make_graph([node], "node", ins, outs),
                                  opset_imports=[helper.make_opsetid("", opset)])
        return cls.prepare(model, device).run([np.asarray(a) for name, a in zip(node.input, inputs) if name])

    @classmethod
    def supports_device(cls, device: str) -> bool:
        return device.split(":")[0] == "CPU"
