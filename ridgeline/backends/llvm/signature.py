"""A lowering's structural signature: everything its emitted LLVM IR can depend on, as a key.

The executor emits a kernel's IR only the first time a signature is seen in the process (30
layers of a model lower to the same few kernels; building llvmlite IR and printing it is most of
compile time). The signature is the lowering's whole state, frozen: its class, every attribute
(shapes, strides, dtypes, tile sizes, epilogue structure), the nodes it holds encoded by
structure (op, attributes, types, the body's data flow with values numbered in order — names are
left out), plus checked mode. Small arrays (constants the kernel may embed) enter with their
bytes; a large array only with its dtype and shape, on the assumption — checked by
``RIDGELINE_LLVM_VERIFY_SIGNATURES=1``, which the tests set — that kernels read large arrays
through pointers and never bake their values into code. Anything it does not know how to freeze
gives no signature, and that lowering is simply emitted every time.
"""

from __future__ import annotations

import math
import types
from typing import Any

import llvmlite.ir as llir
import numpy as np

from ...ir import Graph, Node, TensorType, Value
from ...ir.dtypes import DType
from .irutil import checked_mode

__all__ = ["SMALL_ARRAY", "lowering_signature"]

#: arrays up to this many elements are part of a signature by value (a constant a kernel may
#: emit, such as a scalar), larger ones by dtype and shape only (an operand read through a pointer)
SMALL_ARRAY = 16
#: CPython ids are addresses: an int dict key this large that names no object of the lowering is
#: an id the signature cannot resolve, so it gives up rather than guess
_ID_LIKE = 1 << 32


class _Unfreezable(Exception):
    pass


class _Freezer:
    def __init__(self) -> None:
        self.ids: dict[int, int] = {}   # id(value or node) -> its number in this signature
        self.keep: list[object] = []    # the numbered objects, alive while their ids are in use
        self.spelled: set[int] = set()  # numbers already encoded in full

    # -- numbering: every node and value the lowering can reach, before anything is encoded,
    #    so that dicts keyed by id() (an epilogue's environment) resolve to numbers
    def _number(self, obj: object) -> int:
        k = self.ids.get(id(obj))
        if k is None:
            k = self.ids[id(obj)] = len(self.ids)
            self.keep.append(obj)
        return k

    def collect(self, x: Any, depth: int = 0) -> None:
        if depth > 50:
            raise _Unfreezable("too deep")
        if isinstance(x, Value):
            self._number(x)
        elif isinstance(x, Node):
            if id(x) in self.ids:
                return
            self._number(x)
            for v in (*x.inputs, *x.outputs):
                if v is not None:
                    self._number(v)
            if x.body is not None:
                self.collect(x.body, depth + 1)
        elif isinstance(x, Graph):
            for v in (*x.inputs, *x.constants.values()):
                self._number(v)
            for n in x:
                self.collect(n, depth + 1)
        elif isinstance(x, (list, tuple, set, frozenset)):
            for e in x:
                self.collect(e, depth + 1)
        elif isinstance(x, dict):
            for e in x.values():
                self.collect(e, depth + 1)
        elif _is_helper(x):
            for e in vars(x).values():
                self.collect(e, depth + 1)

    # -- encoding
    def value(self, v: Value) -> tuple:
        k = self._number(v)
        if k in self.spelled:
            return ("v", k)
        self.spelled.add(k)
        data = v.stored if v.const else None
        return ("v", k, self.freeze(v.type), v.const, None if data is None else self.array(data))

    def node(self, n: Node) -> tuple:
        k = self._number(n)
        if k in self.spelled:
            return ("n", k)
        self.spelled.add(k)
        return ("n", k, n.op, self.freeze(dict(n.attrs)),
                tuple(None if v is None else self.value(v) for v in n.inputs),
                tuple(self.value(v) for v in n.outputs),
                None if n.body is None else self.graph(n.body), self.freeze(n.meta))

    def graph(self, g: Graph) -> tuple:
        return ("g", tuple(self.value(v) for v in g.inputs),
                tuple(sorted((self.value(v) for v in g.constants.values()), key=repr)),
                tuple(self.node(n) for n in g), tuple(self.value(v) for v in g.outputs))

    def array(self, a) -> tuple:
        shape = tuple(int(d) for d in a.shape)
        if math.prod(shape) <= SMALL_ARRAY:
            a = np.ascontiguousarray(a.numpy() if not isinstance(a, np.ndarray) and hasattr(a, "numpy") else a)
            return ("a", str(a.dtype), shape, a.tobytes())
        return ("A", str(a.dtype), shape)

    def freeze(self, x: Any) -> Any:
        if x is None or isinstance(x, (bool, int, str, bytes)):
            return (type(x).__name__, x)
        if isinstance(x, float):
            return ("float", x.hex())
        if isinstance(x, (np.integer, np.bool_)):
            return ("np", str(x.dtype), x.item())
        if isinstance(x, np.floating):
            return ("np", str(x.dtype), float(x).hex())
        if isinstance(x, (tuple, list)):
            return (type(x).__name__, tuple(self.freeze(e) for e in x))
        if isinstance(x, (dict, types.MappingProxyType)):
            items = []
            for k, v in x.items():
                if isinstance(k, int) and not isinstance(k, bool) and k >= _ID_LIKE:
                    if k not in self.ids:
                        raise _Unfreezable("an id-like key")
                    fk = ("#", self.ids[k])
                else:
                    fk = self.freeze(k)
                items.append((fk, self.freeze(v)))
            return ("dict", tuple(sorted(items, key=repr)))
        if isinstance(x, (set, frozenset)):
            return ("set", tuple(sorted((self.freeze(e) for e in x), key=repr)))
        if isinstance(x, np.ndarray) or type(x).__name__ == "LazyTensor":
            return self.array(x)
        if isinstance(x, np.dtype):
            return ("dtype", str(x))
        if isinstance(x, (llir.Type, llir.Constant)):
            return ("llvm", str(x))   # its IR spelling ("float", "<8 x float>", "float 0x3FE0000000000000")
        if isinstance(x, DType):
            return ("DType", x.name)
        if isinstance(x, TensorType):
            return ("T", x.dtype.name, tuple(self.freeze(d) for d in x.shape))
        if isinstance(x, Value):
            return self.value(x)
        if isinstance(x, Node):
            return self.node(x)
        if isinstance(x, Graph):
            return self.graph(x)
        if isinstance(x, types.FunctionType) and "<locals>" not in x.__qualname__:
            return ("fn", x.__module__, x.__qualname__)
        if _is_helper(x):
            return ("obj", type(x).__module__, type(x).__qualname__,
                    tuple((a, self.freeze(v)) for a, v in vars(x).items()))
        raise _Unfreezable(type(x).__name__)


def _is_helper(x: object) -> bool:
    """An object of ours a lowering holds (a GEMM's epilogue), frozen by its attributes."""
    return hasattr(x, "__dict__") and not isinstance(x, type) and type(x).__module__.startswith("ridgeline.")


def lowering_signature(lowering: object) -> tuple | None:
    """What ``lowering.emit`` depends on, as a hashable key; None when some part of its state has
    no structural form (then it is emitted every time)."""
    f = _Freezer()
    try:
        f.collect(vars(lowering))
        return ("checked" if checked_mode() else "plain", f.freeze(lowering))
    except _Unfreezable:
        return None
