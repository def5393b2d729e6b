"""Elementwise ops: unary math, broadcasting binary arithmetic, comparisons, logic, Where, Clip.

FLOPs count operations per output element the way roofline tools do (a transcendental is one
operation of its unit, a sigmoid four); bytes are inputs plus output.
"""

from __future__ import annotations

from .. import dims as D
from ._util import broadcast_ctx, compare_dims, per_element, sym_elementwise
from .spec import ALL, FLOAT, INT, NUMERIC, SIGNED, InferContext, op

__all__: list[str] = []

# ---------------------------------------------------------------------------- unary
# name -> (allowed dtypes, flops per element, attributes)
_UNARY = {
    "Neg": (SIGNED, 1, {}),
    "Abs": (NUMERIC, 1, {}),
    "Sqrt": (FLOAT, 1, {}),
    "Reciprocal": (FLOAT, 1, {}),
    "Exp": (FLOAT, 1, {}),
    "Log": (FLOAT, 1, {}),
    "Erf": (FLOAT, 1, {}),
    "Tanh": (FLOAT, 1, {}),
    "Sigmoid": (FLOAT, 4, {}),
    "Relu": (SIGNED, 1, {}),
    "Cos": (FLOAT, 1, {}),
    "Sin": (FLOAT, 1, {}),
    "Tan": (FLOAT, 1, {}),
    "Atan": (FLOAT, 1, {}),
    "Asin": (FLOAT, 1, {}),
    "Acos": (FLOAT, 1, {}),
    "Sinh": (FLOAT, 1, {}),
    "Cosh": (FLOAT, 1, {}),
    "Asinh": (FLOAT, 1, {}),
    "Acosh": (FLOAT, 1, {}),
    "Atanh": (FLOAT, 1, {}),
    "Floor": (FLOAT, 1, {}),
    "Ceil": (FLOAT, 1, {}),
    "Round": (FLOAT, 1, {}),
    "Sign": (NUMERIC, 1, {}),
    "Softplus": (FLOAT, 3, {}),
    "Softsign": (FLOAT, 3, {}),
    "HardSigmoid": (FLOAT, 3, {"alpha": ("float", 0.2), "beta": ("float", 0.5)}),
    "HardSwish": (FLOAT, 4, {}),
    "LeakyRelu": (FLOAT, 2, {"alpha": ("float", 0.01)}),
    "Elu": (FLOAT, 3, {"alpha": ("float", 1.0)}),
    "Selu": (FLOAT, 4, {"alpha": ("float", 1.67326319217681884765625),
                        "gamma": ("float", 1.05070102214813232421875)}),
    "Celu": (FLOAT, 4, {"alpha": ("float", 1.0)}),
    "ThresholdedRelu": (FLOAT, 1, {"alpha": ("float", 1.0)}),
    "Mish": (FLOAT, 6, {}),
    "Swish": (FLOAT, 5, {"alpha": ("float", 1.0)}),  # x · sigmoid(alpha · x), opset 24
    "Shrink": (NUMERIC - {"bf16"}, 2, {"bias": ("float", 0.0), "lambd": ("float", 0.5)}),
    "BitwiseNot": (INT, 1, {}),
    # tanh form: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))); erf form 0.5 x (1 + erf(x / sqrt 2))
    "Gelu": (FLOAT, 8, {"approximate": ("str", "none")}),
}


def _int_only(fn):
    """A symbolic-value function defined on concrete ints only (symbols make it give up)."""
    def apply(*xs):
        if not all(isinstance(x, int) for x in xs):
            raise ValueError("symbolic operand")
        return fn(*xs)
    return apply


def _trunc_div(a, b):
    # ONNX integer division truncates toward zero; sizes (symbols) are positive, so floor is exact
    if isinstance(a, int) and isinstance(b, int):
        q = abs(a) // abs(b)
        return q if (a < 0) == (b < 0) else -q
    return D.floordiv(a, b)


# symbolic values of integer shape arithmetic
_UNARY_SYM = {"Neg": _int_only(lambda a: -a), "Abs": _int_only(abs), "Sign": _int_only(lambda a: (a > 0) - (a < 0))}


def _declare_unary(name, allowed, k, attrs):
    sym = _UNARY_SYM.get(name)

    def infer(ctx: InferContext):
        if name == "Gelu" and ctx.attr("approximate") not in ("none", "tanh"):
            ctx.fail(f"approximate must be 'none' or 'tanh', got {ctx.attr('approximate')!r}")
        if sym is not None:
            sym_elementwise(ctx, sym)
        return [ctx.shape(0)]
    infer.__doc__ = f"{name}(X) elementwise."
    op(name, inputs=["X: T"], outputs=["Y: T"], types={"T": allowed}, attrs=attrs,
       category="elementwise", flops=per_element(k), since=_SINCE.get(name, 6))(infer)


_SINCE = {"Gelu": 20, "Swish": 24, "Shrink": 9, "BitwiseNot": 18}


for _name, (_allowed, _k, _attrs) in _UNARY.items():
    _declare_unary(_name, _allowed, _k, _attrs)


@op("Not", inputs=["X: bool"], outputs=["Y: bool"], category="elementwise", flops=per_element(1))
def _not(ctx: InferContext):
    """Logical negation."""
    return [ctx.shape(0)]


def _same_shape(doc: str):
    def infer(ctx: InferContext):
        return [ctx.shape(0)]
    infer.__doc__ = doc
    return infer


def _broadcasting(doc: str, sym=None):
    """Infers the broadcast shape (and, with ``sym``, publishes the symbolic result elementwise)."""
    def infer(ctx: InferContext):
        if sym is not None:
            sym_elementwise(ctx, sym)
        return [broadcast_ctx(ctx)]
    infer.__doc__ = doc
    return infer


op("IsNaN", inputs=["X: T"], outputs=["Y: bool"], types={"T": FLOAT}, category="elementwise",
   flops=per_element(1), since=20)(_same_shape("True where X is NaN."))
op("IsInf", inputs=["X: T"], outputs=["Y: bool"], types={"T": FLOAT}, category="elementwise",
   attrs={"detect_negative": ("int", 1), "detect_positive": ("int", 1)}, flops=per_element(1),
   since=20)(_same_shape("True where X is +inf (if detect_positive) or -inf (if detect_negative)."))


# ---------------------------------------------------------------------------- binary
_SYM = {"Add": D.add, "Sub": D.sub, "Mul": D.mul, "Div": _trunc_div,
        "Mod": _int_only(lambda a, b: a % b)}

# name -> (allowed dtypes, commutative, flops per element)
_BINARY = {
    "Add": (NUMERIC, True, 1),
    "Sub": (NUMERIC, False, 1),
    "Mul": (NUMERIC, True, 1),
    "Div": (NUMERIC, False, 1),
    "Mod": (NUMERIC, False, 1),
    "PRelu": (SIGNED, False, 2),
}


def _declare_binary(name, allowed, commutative, k):
    infer = _broadcasting(f"{name}(A, B) with numpy broadcasting.", _SYM.get(name))
    attrs = {"fmod": ("int", 0)} if name == "Mod" else {}
    op(name, inputs=["A: T", "B: T"], outputs=["C: T"], types={"T": allowed}, attrs=attrs,
       category="elementwise", commutative=commutative, flops=per_element(k), since=14)(infer)


for _name, (_allowed, _comm, _k) in _BINARY.items():
    _declare_binary(_name, _allowed, _comm, _k)


@op("Pow", inputs=["X: T", "Y: T1"], outputs=["Z: T"], types={"T": NUMERIC, "T1": NUMERIC},
    category="elementwise", flops=per_element(1), since=15)
def _pow(ctx: InferContext):
    """X ** Y with broadcasting; the exponent may have another numeric type."""
    return [broadcast_ctx(ctx)]


_VARIADIC_SYM = {"Max": _int_only(max), "Min": _int_only(min), "Sum": _int_only(lambda *xs: sum(xs))}


def _declare_variadic(name):
    infer = _broadcasting(f"Elementwise {name} of any number of inputs, with broadcasting.", _VARIADIC_SYM.get(name))
    # ONNX's Max and Min take every numeric type, Sum and Mean floats only
    allowed = NUMERIC if name in ("Max", "Min") else FLOAT
    op(name, inputs=["data_0*: T"], outputs=["Y: T"], types={"T": allowed}, category="elementwise",
       commutative=True, flops=per_element(1), since=13)(infer)


for _name in ("Max", "Min", "Sum", "Mean"):
    _declare_variadic(_name)


# Comparisons give bool. On symbolic shape values they are decided when the answer holds for all
# sizes (``Equal(batch, -1)`` in the legacy exporter's Expand chains is False for any batch).
_COMPARE = {"Equal": (ALL, "eq"), "Less": (NUMERIC, "lt"), "LessOrEqual": (NUMERIC, "le"),
            "Greater": (NUMERIC, "gt"), "GreaterOrEqual": (NUMERIC, "ge")}


def _declare_compare(name, allowed, how):
    def decide(a, b):
        r = compare_dims(a, b, how)
        if r is None:
            raise ValueError("undecided comparison of symbols")  # sym_elementwise then publishes nothing
        return int(r)
    op(name, inputs=["A: T", "B: T"], outputs=["C: bool"], types={"T": allowed}, category="elementwise",
       commutative=name == "Equal", flops=per_element(1), since=13)(
        _broadcasting(f"{name}(A, B) -> bool, with broadcasting.", decide))


for _name, (_allowed, _how) in _COMPARE.items():
    _declare_compare(_name, _allowed, _how)


for _name in ("And", "Or", "Xor"):
    op(_name, inputs=["A: bool", "B: bool"], outputs=["C: bool"], category="elementwise",
       commutative=True, flops=per_element(1), since=7)(_broadcasting(f"Logical {_name.lower()}, with broadcasting."))


@op("BitShift", inputs=["X: T", "Y: T"], outputs=["Z: T"], types={"T": INT}, attrs={"direction": ("str",)},
    category="elementwise", flops=per_element(1), since=28)
def _bit_shift(ctx: InferContext):
    """Shift X's bits by Y, with broadcasting; signed right shifts are arithmetic, and a shift by
    a negative amount or by at least the bit width leaves only the sign fill (0 or -1)."""
    if ctx.attr("direction") not in ("LEFT", "RIGHT"):
        ctx.fail(f"direction must be 'LEFT' or 'RIGHT', got {ctx.attr('direction')!r}")
    return [broadcast_ctx(ctx)]


@op("SwiGLU", inputs=["A: T", "B: T"], outputs=["Y: T"], types={"T": FLOAT}, attrs={"alpha": ("float", 1.0)},
    category="elementwise", flops=per_element(6), since=28)
def _swiglu(ctx: InferContext):
    """``Swish_alpha(A) · B`` for a gate A and a value B of the same shape (no broadcasting)."""
    a, b = ctx.shape(0), ctx.shape(1)
    if len(a) != len(b) or any(isinstance(x, int) and isinstance(y, int) and x != y for x, y in zip(a, b)):
        ctx.fail(f"A {ctx.type(0)} and B {ctx.type(1)} must have the same shape")
    return [tuple(y if isinstance(x, str) and isinstance(y, int) else x for x, y in zip(a, b))]


for _name in ("BitwiseAnd", "BitwiseOr", "BitwiseXor"):
    op(_name, inputs=["A: T", "B: T"], outputs=["C: T"], types={"T": INT}, category="elementwise",
       commutative=True, flops=per_element(1), since=18)(_broadcasting(f"{_name} of integers, with broadcasting."))


@op("Where", inputs=["condition: bool", "X: T", "Y: T"], outputs=["output: T"], types={"T": ALL},
    category="elementwise", flops=per_element(1), since=16)
def _where(ctx: InferContext):
    """Select X where condition else Y, broadcasting all three."""
    cond, x, y = ctx.sym(0), ctx.sym(1), ctx.sym(2)
    if cond is not None and x is not None and y is not None:
        import numpy as np
        try:
            ctx.set_sym(0, np.where(cond.astype(bool), x, y))
        except ValueError:
            pass
    return [broadcast_ctx(ctx)]


@op("Clip", inputs=["input: T", "min?: T", "max?: T"], outputs=["output: T"], types={"T": NUMERIC},
    category="elementwise", flops=per_element(2), since=13)
def _clip(ctx: InferContext):
    """Clamp to [min, max]; min and max are optional scalars."""
    for i in (1, 2):
        if ctx.has(i) and ctx.rank(i) != 0 and ctx.type(i).numel != 1:
            ctx.fail(f"{'min' if i == 1 else 'max'} must be a scalar, got {ctx.type(i)}")
    return [ctx.shape(0)]
