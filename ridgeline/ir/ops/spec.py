"""The op spec: everything the compiler knows about an op, declared once.

A spec gives the op's signature (inputs and outputs with type-constraint letters, as ONNX does),
its attributes with kinds and defaults, type/shape inference (which may also publish the
*symbolic value* of small integer outputs, so Shape→Gather→Concat→Reshape chains resolve), and
FLOPs and bytes touched as functions of types and attributes. The verifier, printer, parser,
shape inference, random-graph generators and cost models all read the spec; hardware-dependent
costing lives in ``ridgeline.cost_models``, not here.

Declaring an op::

    @op("MatMul", inputs=["A: T", "B: T"], outputs=["Y: T"], types={"T": NUMERIC},
        category="matmul", flops=matmul_flops)
    def matmul(ctx: InferContext):
        ...  # return the output shapes (dtypes follow the constraint letters) or TensorTypes
"""

from __future__ import annotations

from functools import lru_cache

import math
import re
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import numpy as np

from .._lazy import is_sympy, sympy
from .. import dims as D
from ..dtypes import DTYPES, DType
from ..dtypes import dtype as _dtype
from ..errors import IRError, VerifyError
from ..types import TensorType
from .registry import register_spec

if TYPE_CHECKING:
    from ..graph import Graph, Node

__all__ = [
    "REQUIRED", "AttrSpec", "PortSpec", "OpSpec", "InferContext", "CostContext", "op",
    "FLOAT", "FLOAT8", "SIGNED", "INT", "INT4", "NUMERIC", "ALL", "ANY", "INDEX", "CATEGORIES",
]

REQUIRED = object()

FLOAT = frozenset({"f64", "f32", "f16", "bf16"})
FLOAT8 = frozenset({"f8e4m3", "f8e5m2"})
INT = frozenset({"i64", "i32", "i16", "i8", "u64", "u32", "u16", "u8"})
SIGNED = FLOAT | frozenset({"i64", "i32", "i16", "i8"})
INT4 = frozenset({"i4", "u4"})
NUMERIC = FLOAT | INT
ALL = NUMERIC | {"bool"}
#: every dtype of the IR, incl. fp8 and int4: for ops that only move or convert data
ANY = frozenset(DTYPES)
INDEX = frozenset({"i32", "i64"})

# What the cost models and fusion passes key on.
CATEGORIES = {
    "elementwise",    # one output element from the same-position input elements (with broadcast)
    "matmul",         # contractions: MatMul, Gemm, quantized matmul
    "reduction",      # reduces over axes: ReduceSum, ArgMax, Softmax-like row ops
    "normalization",  # LayerNormalization, RMSNormalization
    "attention",      # fused scaled-dot-product attention
    "movement",       # copies data: Transpose, Concat, Gather, Slice, Expand, Pad, Where-select
    "view",           # free re-interpretation: Reshape, Squeeze, Unsqueeze, Flatten, Identity
    "shape",          # tiny host-side shape arithmetic: Shape, Range, ConstantOfShape, Size
    "fused",          # a node with a ``body`` sub-graph
    "quant",          # QuantizeLinear / DequantizeLinear
    "other",
}

_ATTR_KINDS = {"int", "float", "str", "ints", "floats", "strs", "tensor"}
#: ONNX attributes that are 0/1 flags wherever they appear (the ONNX operator docs): a spec need not
#: repeat it, and ``allowzero = 100`` is refused instead of read as true
_FLAGS = frozenset({"allowzero", "keepdims", "noop_with_empty_axes", "is_causal", "interleaved", "transA",
                    "transB", "ceil_mode", "count_include_pad", "detect_negative", "detect_positive", "fmod",
                    "upper", "exclusive", "reverse", "largest", "sorted", "select_last_index", "saturate",
                    "training_mode", "periodic"})
#: attributes that are non-negative wherever they appear (a variance epsilon below 0 gives NaN)
_NON_NEGATIVE = frozenset({"epsilon"})


def _conventional(a: AttrSpec) -> AttrSpec:
    """``a`` with the constraints its name implies, unless the spec declared its own."""
    if a.choices is not None or a.lo is not None or a.hi is not None:
        return a
    if a.kind == "int" and a.name in _FLAGS:
        return replace(a, choices=(0, 1))
    if a.kind == "float" and a.name in _NON_NEGATIVE:
        return replace(a, lo=0.0)
    return a


@dataclass(frozen=True)
class AttrSpec:
    """An attribute: ``kind`` is one of int, float, str, ints, floats, strs, tensor."""

    name: str
    kind: str
    default: Any = REQUIRED
    doc: str = ""
    #: allowed values (e.g. ``(0, 1)`` for an ONNX flag), or None for any value of the kind
    choices: tuple | None = None
    #: inclusive bounds of an int/float attribute (each None for unbounded)
    lo: float | None = None
    hi: float | None = None

    @property
    def has_default(self) -> bool:
        return self.default is not REQUIRED

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    def check(self, value: Any) -> str | None:
        """None if ``value`` fits the kind, else a reason."""
        k = self.kind
        if k == "int":
            ok = isinstance(value, int)
        elif k == "float":
            ok = isinstance(value, (int, float))
        elif k == "str":
            ok = isinstance(value, str)
        elif k == "ints":
            ok = isinstance(value, tuple) and all(isinstance(x, int) for x in value)
        elif k == "floats":
            ok = isinstance(value, tuple) and all(isinstance(x, (int, float)) for x in value)
        elif k == "strs":
            ok = isinstance(value, tuple) and all(isinstance(x, str) for x in value)
        elif k == "tensor":
            ok = isinstance(value, np.ndarray)
        else:  # pragma: no cover - guarded at declaration
            ok = False
        if not ok:
            return f"expected {k}, got {type(value).__name__} {str(value)[:60]}"
        if k in ("int", "float") and not isinstance(value, bool):
            if k == "float" and math.isnan(value):
                return "is NaN"
            if self.choices is not None and value not in self.choices:
                return f"must be one of {', '.join(map(str, self.choices))}, got {value!r}"
            if self.lo is not None and not value >= self.lo:
                return f"must be at least {self.lo}, got {value!r}"
            if self.hi is not None and not value <= self.hi:
                return f"must be at most {self.hi}, got {value!r}"
        return None


@dataclass(frozen=True)
class PortSpec:
    """An input or output: ``"X: T"``, optional ``"bias?: T"``, variadic ``"inputs*: T"``."""

    name: str
    constraint: str  # a type-constraint letter from ``types``, or a dtype name such as "i64"
    optional: bool = False
    variadic: bool = False

    @staticmethod
    def parse(text: str) -> "PortSpec":
        m = re.fullmatch(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*([?*]?)\s*(?::\s*([A-Za-z0-9_]+))?\s*", text)
        if not m:
            raise ValueError(f"bad port declaration {text!r}")
        name, mark, constraint = m.group(1), m.group(2), m.group(3) or "T"
        return PortSpec(name, constraint, optional=mark == "?", variadic=mark == "*")


def _port(ports: list[PortSpec], i: int) -> PortSpec:
    """Port ``i``; a trailing variadic port stands for every later one."""
    if i < len(ports):
        return ports[i]
    if ports and ports[-1].variadic:
        return ports[-1]
    raise IndexError(i)


@dataclass
class OpSpec:
    """The single declaration of an op; see the module docstring."""

    name: str
    inputs: tuple[PortSpec, ...]
    outputs: tuple[PortSpec, ...]
    attrs: dict[str, AttrSpec]
    types: dict[str, frozenset[str]]
    category: str
    infer: Callable[["InferContext"], Sequence[TensorType | tuple | None]]
    flops_fn: Callable[["CostContext"], Any] | None = None
    bytes_fn: Callable[["CostContext"], Any] | None = None
    domain: str = ""          # "" is the ONNX default domain; "ridgeline" for our own ops
    since: int = 1            # the ONNX opset whose semantics this spec follows
    commutative: bool = False
    doc: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    # ------------------------------------------------------------------ signature
    @property
    def min_inputs(self) -> int:
        n = 0
        for i, p in enumerate(self.inputs):
            if not p.optional and not p.variadic:
                n = i + 1
        return n

    @property
    def max_inputs(self) -> int | None:
        return None if any(p.variadic for p in self.inputs) else len(self.inputs)

    def input_port(self, i: int) -> PortSpec:
        return _port(self.inputs, i)

    def output_port(self, i: int) -> PortSpec:
        return _port(self.outputs, i)

    def allowed_dtypes(self, constraint: str) -> frozenset[str]:
        if constraint in self.types:
            return self.types[constraint]
        if constraint in DTYPES:
            return frozenset({constraint})
        raise KeyError(constraint)

    # ------------------------------------------------------------------ costs
    def flops(self, node: "Node") -> Any:
        """Arithmetic operations of one execution (an int, or a sympy expression if symbolic)."""
        if self.flops_fn is None:
            return 0
        return _as_number(self.flops_fn(CostContext(node)))

    def bytes(self, node: "Node") -> Any:
        """Bytes a straightforward kernel reads and writes (inputs + outputs unless overridden)."""
        c = CostContext(node)
        if self.bytes_fn is not None:
            return _as_number(self.bytes_fn(c))
        return _as_number(c.bytes_in() + c.bytes_out())

    def __repr__(self) -> str:
        return f"<OpSpec {self.name}>"


@lru_cache(maxsize=4096)
def _simplified(x):
    # the layers of a model repeat the same few cost expressions; simplify() is ~80 ms each
    return sympy.simplify(x)


def _as_number(x):
    if is_sympy(x):
        x = _simplified(x)
        return int(x) if x.is_Integer else x
    if isinstance(x, float) and x.is_integer():
        return int(x)
    return x


class InferContext:
    """What a spec's ``infer`` function sees of a node: its input types, attributes and values.

    ``value(i)`` is the input's array when it is a constant with data (or a fully known
    symbolic value); ``sym(i)`` is an object array of dims for small integer tensors whose
    values are known symbolically (the result of ``Shape`` and arithmetic on it).
    """

    __slots__ = ("node", "spec", "input_types", "_values", "_syms", "out_syms", "num_outputs")

    def __init__(self, node: "Node", spec: OpSpec, input_types: Sequence[TensorType | None],
                 values: Sequence[np.ndarray | None], syms: Sequence[np.ndarray | None],
                 num_outputs: int | None = None):
        self.node, self.spec = node, spec
        #: how many outputs the node has (None while it is being built and the spec decides)
        self.num_outputs = num_outputs
        self.input_types = list(input_types)
        self._values = list(values)
        self._syms = list(syms)
        self.out_syms: dict[int, np.ndarray] = {}

    @property
    def op(self) -> str:
        return self.node.op

    @property
    def num_inputs(self) -> int:
        return len(self.input_types)

    def has(self, i: int) -> bool:
        return i < len(self.input_types) and self.input_types[i] is not None

    def type(self, i: int) -> TensorType:
        if not self.has(i):
            self.fail(f"input {i} ({self._port_name(i)}) is missing")
        return self.input_types[i]  # type: ignore[return-value]

    def shape(self, i: int) -> tuple:
        return self.type(i).shape

    def rank(self, i: int) -> int:
        return len(self.type(i).shape)

    def dtype(self, i: int) -> DType:
        return self.type(i).dtype

    def attr(self, name: str) -> Any:
        if name in self.node.attrs:
            return self.node.attrs[name]
        a = self.spec.attrs.get(name)
        if a is None:
            raise KeyError(f"{self.spec.name} has no attribute {name!r}")
        return None if a.default is REQUIRED else a.default

    @property
    def body(self) -> "Graph | None":
        return self.node.body

    def value(self, i: int) -> np.ndarray | None:
        if i >= len(self._values):
            return None
        v = self._values[i]
        if v is not None:
            return v
        s = self._syms[i] if i < len(self._syms) else None
        if s is not None and all(isinstance(x, int) for x in s.flat):
            return s.astype(np.int64)
        return None

    def sym(self, i: int) -> np.ndarray | None:
        if i >= len(self._syms):
            return None
        s = self._syms[i]
        if s is not None:
            return s
        v = self._values[i]
        if v is not None and v.dtype.kind in "iu" and v.size <= 64:
            return v.astype(object).reshape(v.shape) if v.ndim else np.array(int(v), dtype=object)
        return None

    def set_sym(self, out: int, dims: np.ndarray) -> None:
        """Publish the symbolic value of output ``out`` (an object array of ints / names)."""
        arr = np.asarray(dims, dtype=object)
        if arr.size:  # a list comprehension: np.vectorize costs ~15 µs even for one element
            canon = np.empty(arr.shape, dtype=object)
            canon.reshape(-1)[:] = [_canon_dim(x) for x in arr.reshape(-1)]
            arr = canon
        self.out_syms[out] = arr

    def fail(self, message: str):
        raise VerifyError(f"{self.spec.name}: {message}", self.node)

    def to_dtype(self, spec: Any) -> DType:
        """``spec`` (a dtype name, alias or numpy dtype) as an IR dtype; an unknown one fails."""
        try:
            return _dtype(spec)
        except IRError as e:
            self.fail(str(e))

    def normalize_axis(self, axis: int, rank: int) -> int:
        if not -rank <= axis < max(rank, 1):
            self.fail(f"axis {axis} is out of range for rank {rank}")
        return axis % rank if rank else 0

    def _port_name(self, i: int) -> str:
        try:
            return self.spec.input_port(i).name
        except IndexError:
            return "?"


def _canon_dim(x):
    if isinstance(x, (int, np.integer)):
        return int(x)
    if isinstance(x, str):
        return x
    if is_sympy(x):
        return D.from_sympy(x)
    raise TypeError(f"not a dimension: {x!r}")


class CostContext:
    """Types of a node's inputs/outputs for FLOPs and bytes; symbolic dims become sympy symbols."""

    __slots__ = ("node", "in_types", "out_types")

    def __init__(self, node: "Node"):
        self.node = node
        self.in_types = [v.type if v is not None else None for v in node.inputs]
        self.out_types = [v.type for v in node.outputs]

    def attr(self, name: str) -> Any:
        return self.node.attr(name)

    @property
    def body(self) -> "Graph | None":
        return self.node.body

    @staticmethod
    def _dims(t: TensorType) -> tuple:
        return t.shape if t.is_static else tuple(D.to_sympy(d) for d in t.shape)

    def in_shape(self, i: int) -> tuple:
        t = self.in_types[i]
        return () if t is None else self._dims(t)

    def out_shape(self, i: int = 0) -> tuple:
        return self._dims(self.out_types[i])

    def in_numel(self, i: int):
        t = self.in_types[i]
        return 0 if t is None else math.prod(self._dims(t))

    def out_numel(self, i: int = 0):
        return math.prod(self._dims(self.out_types[i]))

    def in_bytes(self, i: int):
        t = self.in_types[i]
        return 0 if t is None else _type_bytes(t, self._dims(t))

    def out_bytes(self, i: int = 0):
        t = self.out_types[i]
        return _type_bytes(t, self._dims(t))

    def bytes_in(self):
        return sum((self.in_bytes(i) for i in range(len(self.in_types))), 0)

    def bytes_out(self):
        return sum((self.out_bytes(i) for i in range(len(self.out_types))), 0)


def _type_bytes(t: TensorType, dims: tuple):
    n = math.prod(dims)
    if isinstance(n, int):
        return t.dtype.nbytes(n)
    return n * t.dtype.bits / 8


def op(name: str, *, inputs: Sequence[str], outputs: Sequence[str] = ("Y: T"),
       attrs: Mapping[str, AttrSpec | tuple] | None = None,
       types: Mapping[str, frozenset[str] | set[str]] | None = None, category: str,
       flops: Callable[[CostContext], Any] | None = None,
       bytes: Callable[[CostContext], Any] | None = None,
       domain: str = "", since: int = 1, commutative: bool = False,
       heterogeneous: Sequence[str] = (), doc: str = "", **extra: Any):
    """Declare an op; decorates its inference function and registers the spec.

    ``attrs`` maps a name to an ``AttrSpec`` or a ``(kind, default)`` pair (default omitted or
    ``REQUIRED`` for a required attribute). Ports sharing a constraint letter must have the same
    dtype, except for letters listed in ``heterogeneous`` (a fused body's mixed inputs). ``doc``
    replaces the inference function's docstring (for an op that shares another's function).
    """
    extra["heterogeneous"] = frozenset(heterogeneous)
    if category not in CATEGORIES:
        raise ValueError(f"{name}: unknown category {category!r}")
    if isinstance(outputs, str):
        outputs = (outputs,)
    attr_specs: dict[str, AttrSpec] = {}
    for aname, a in (attrs or {}).items():
        if not isinstance(a, AttrSpec):
            kind, default = (a[0], a[1]) if len(a) > 1 else (a[0], REQUIRED)
            a = AttrSpec(aname, kind, default, **(a[2] if len(a) > 2 else {}))
        if a.kind not in _ATTR_KINDS:
            raise ValueError(f"{name}.{aname}: unknown attribute kind {a.kind!r}")
        if a.has_default:
            from ..graph import normalize_attr
            a = replace(a, default=normalize_attr(a.default))
        attr_specs[aname] = _conventional(a)

    def decorate(fn):
        spec = OpSpec(
            name=name,
            inputs=tuple(PortSpec.parse(p) for p in inputs),
            outputs=tuple(PortSpec.parse(p) for p in outputs),
            attrs=attr_specs,
            types={k: frozenset(v) for k, v in (types or {}).items()},
            category=category, infer=fn, flops_fn=flops, bytes_fn=bytes, domain=domain,
            since=since, commutative=commutative, doc=doc or (fn.__doc__ or "").strip(), extra=dict(extra),
        )
        for port in spec.inputs + spec.outputs:
            if port.constraint not in spec.types and port.constraint not in DTYPES:
                raise ValueError(f"{name}: port {port.name} uses undeclared type constraint {port.constraint!r}")
        register_spec(spec)
        fn.spec = spec
        return fn

    return decorate
