"""Older ONNX op forms rewritten to the form the IR's spec follows (the spec's ``since`` opset).

ONNX moved many attributes into inputs over the years (``axes`` of Squeeze at 13 and of the
Reduce ops at 18, ``split`` at 13, Slice's starts/ends at 10, Pad and Clip at 11). The IR keeps one
form per op; this table upgrades the older ones as they are imported, so no later stage sees them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ...ir import Graph, Value
from ...ir.dtypes import from_onnx
from ...ir.errors import IRError, ModelError

__all__ = ["ImportedNode", "upgrade"]


@dataclass
class ImportedNode:
    """A node as read from ONNX, before it becomes an IR node."""

    op: str
    inputs: list[Value | None]
    attrs: dict[str, Any]
    outputs: list[str]
    name: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def where(self) -> str:
        return f"{self.op} node {self.name!r}" if self.name else f"{self.op} node"


Upgrade = Callable[[ImportedNode, int, Graph], ImportedNode]
_UPGRADES: dict[str, list[tuple[float, Upgrade]]] = {}


def upgrades(*ops: str, before: float = math.inf):
    """Register an upgrade applied to ``ops`` imported at an opset lower than ``before`` (default:
    at every opset); upgrades run in the order they are registered."""
    def decorate(fn: Upgrade) -> Upgrade:
        for op in ops:
            _UPGRADES.setdefault(op, []).append((before, fn))
        return fn
    return decorate


def upgrade(node: ImportedNode, opset: int, graph: Graph) -> ImportedNode:
    """Apply every registered upgrade for ``node.op`` at this opset."""
    for before, fn in _UPGRADES.get(node.op, ()):
        if opset < before:
            node = fn(node, opset, graph)
    return node


def _const(graph: Graph, node: ImportedNode, what: str, data) -> Value:
    hint = f"{node.name or node.op}_{what}".replace("/", "_").strip("_")
    return graph.add_constant(hint, np.asarray(data))


def _attr_to_input(node: ImportedNode, graph: Graph, attr: str, position: int, dtype=np.int64) -> ImportedNode:
    if attr in node.attrs:
        value = node.attrs.pop(attr)
        while len(node.inputs) < position:
            node.inputs.append(None)
        node.inputs.insert(position, _const(graph, node, attr, np.asarray(value, dtype=dtype)))
    return node


def _dtype_attr_to_name(node: ImportedNode, *attrs: str) -> ImportedNode:
    # The IR spells dtype-valued attributes by IR dtype name ("f16"); ONNX uses TensorProto codes,
    # where 0 means "not given".
    for attr in attrs:
        code = node.attrs.get(attr)
        if isinstance(code, int):
            if code == 0 and attr != "to":
                del node.attrs[attr]
                continue
            try:
                node.attrs[attr] = from_onnx(code).name
            except IRError as e:
                raise ModelError(f"{node.where()}: {attr}: {e}") from None
    return node


# Dtype-valued attributes at every opset: (ops, attributes).
for _ops, _attrs in ((("Cast", "BitCast"), ("to",)), (("EyeLike",), ("dtype",)),
                     (("HannWindow", "HammingWindow", "BlackmanWindow"), ("output_datatype",)),
                     (("QuantizeLinear", "DequantizeLinear"), ("output_dtype", "precision"))):
    upgrades(*_ops)(lambda node, opset, graph, _attrs=_attrs: _dtype_attr_to_name(node, *_attrs))


@upgrades("Dropout", before=12)
def _dropout_ratio(node: ImportedNode, opset: int, graph: Graph) -> ImportedNode:
    # Before opset 12 the ratio was an attribute and `is_test` (before 7) chose inference.
    node.attrs.pop("is_test", None)
    ratio = node.attrs.pop("ratio", None)
    if ratio is not None:
        node.inputs = node.inputs[:1] + [_const(graph, node, "ratio", np.asarray(ratio, np.float32))]
    return node


@upgrades("Dropout")
def _dropout_is_identity(node: ImportedNode, opset: int, graph: Graph) -> ImportedNode:
    # Inference: Dropout passes its input through, so it becomes Identity unless its mask is used
    # or a training_mode input is given (then the Dropout op itself says what happens).
    if (len(node.outputs) > 1 and node.outputs[1]) or (len(node.inputs) > 2 and node.inputs[2] is not None):
        return node
    node.op, node.inputs, node.attrs, node.outputs = "Identity", node.inputs[:1], {}, node.outputs[:1]
    return node


_REDUCE = ("ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
           "ReduceSumSquare", "ReduceLogSum", "ReduceLogSumExp")

# Attributes that became the second input: (ops, attribute, the opset that moved it).
for _ops, _attr, _before in ((("ReduceSum",), "axes", 13), (_REDUCE, "axes", 18),
                             (("Squeeze", "Unsqueeze"), "axes", 13), (("Split",), "split", 13)):
    upgrades(*_ops, before=_before)(lambda node, opset, graph, _attr=_attr: _attr_to_input(node, graph, _attr, 1))


@upgrades("Slice", before=10)
def _slice_attrs(node: ImportedNode, opset: int, graph: Graph) -> ImportedNode:
    starts, ends = node.attrs.pop("starts", None), node.attrs.pop("ends", None)
    axes = node.attrs.pop("axes", None)
    if starts is None or ends is None:
        raise ModelError(f"{node.where()}: opset-{opset} Slice needs starts and ends attributes")
    node.inputs = node.inputs[:1] + [_const(graph, node, "starts", np.asarray(starts, np.int64)),
                                     _const(graph, node, "ends", np.asarray(ends, np.int64))]
    if axes is not None:
        node.inputs.append(_const(graph, node, "axes", np.asarray(axes, np.int64)))
    return node


@upgrades("Pad", before=11)
def _pad_attrs(node: ImportedNode, opset: int, graph: Graph) -> ImportedNode:
    pads = node.attrs.pop("pads", None)
    value = node.attrs.pop("value", 0.0)
    if pads is None:
        raise ModelError(f"{node.where()}: opset-{opset} Pad needs a pads attribute")
    x = node.inputs[0]
    node.inputs = [x, _const(graph, node, "pads", np.asarray(pads, np.int64)),
                   _const(graph, node, "value", np.asarray(value, dtype=x.type.dtype.np_dtype))]
    return node


@upgrades("Clip", before=11)
def _clip_attrs(node: ImportedNode, opset: int, graph: Graph) -> ImportedNode:
    x = node.inputs[0]
    lo, hi = node.attrs.pop("min", None), node.attrs.pop("max", None)
    dt = x.type.dtype.np_dtype
    node.inputs = [x, _const(graph, node, "min", np.asarray(lo, dt)) if lo is not None else None,
                   _const(graph, node, "max", np.asarray(hi, dt)) if hi is not None else None]
    return node


@upgrades("Softmax", "LogSoftmax", "Hardmax", before=13)
def _softmax_axis(node: ImportedNode, opset: int, graph: Graph) -> ImportedNode:
    # Before opset 13 Softmax flattened the input to 2-D at `axis` (default 1). That equals the
    # new per-axis form only when `axis` is the last dim.
    rank = node.inputs[0].type.rank
    axis = node.attrs.get("axis", 1)
    if axis % max(rank, 1) != rank - 1:
        raise ModelError(f"{node.where()}: opset-{opset} {node.op} over axis {axis} of a rank-{rank} "
                         f"input (2-D coercion) is not supported; re-export at opset >= 13")
    node.attrs["axis"] = -1
    return node


@upgrades("TopK", before=10)
def _topk_k_input(node: ImportedNode, opset: int, graph: Graph) -> ImportedNode:
    # Before opset 10 k was an attribute.
    k = node.attrs.pop("k", None)
    if k is None:
        raise ModelError(f"{node.where()}: opset-{opset} TopK needs a k attribute")
    node.inputs = node.inputs[:1] + [_const(graph, node, "k", np.asarray([k], np.int64))]
    return node


@upgrades("BatchNormalization", before=9)
def _batch_norm_spatial(node: ImportedNode, opset: int, graph: Graph) -> ImportedNode:
    # Opsets 7-8 had `spatial` (1: per-channel statistics, the only form later opsets kept).
    if node.attrs.pop("spatial", 1) != 1:
        raise ModelError(f"{node.where()}: BatchNormalization with spatial=0 (per-element statistics) "
                         f"is not supported; re-export at opset >= 9")
    return node


@upgrades("GroupNormalization", before=21)
def _group_norm_per_channel(node: ImportedNode, opset: int, graph: Graph) -> ImportedNode:
    # Opset 18 gave scale and bias one entry per group; opset 21 one per channel. A group's
    # value applies to each of its C / num_groups channels, so constant tensors are repeated.
    x = node.inputs[0]
    channels, groups = x.type.shape[1], node.attrs.get("num_groups")
    if not isinstance(channels, int) or not groups or channels % groups:
        raise ModelError(f"{node.where()}: opset-{opset} GroupNormalization needs a static channel count "
                         f"divisible by num_groups")
    for i, what in ((1, "scale"), (2, "bias")):
        v = node.inputs[i]
        if v is None or not v.const or v.data is None:
            raise ModelError(f"{node.where()}: opset-{opset} GroupNormalization with a computed {what} "
                             f"(per group) is not supported; re-export at opset >= 21")
        node.inputs[i] = _const(graph, node, what, np.repeat(v.data.reshape(-1), channels // groups))
    return node
