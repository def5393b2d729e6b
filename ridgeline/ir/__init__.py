"""The ridgeline IR: typed SSA graphs of ONNX-style ops, one spec per op.

``ir`` imports nothing else of ridgeline; everything else imports it.
"""

from . import dims, dtypes
from .dtypes import DType, dtype
from .errors import (IRError, ParseError, RidgelineError, UnsupportedOpError, VerifyError)
from .graph import Builder, Graph, Node, Value
from .infer import infer_node, refine_types
from .ops import all_specs, find_spec, get_spec
from .parser import parse_graph
from .printer import print_graph
from .types import TensorType, tensor

__all__ = [
    "Graph", "Node", "Value", "Builder", "TensorType", "tensor", "DType", "dtype", "dims", "dtypes",
    "get_spec", "find_spec", "all_specs", "infer_node", "refine_types", "parse_graph", "print_graph",
    "RidgelineError", "IRError", "VerifyError", "ParseError", "UnsupportedOpError",
]
