"""View ops: they re-interpret a buffer without moving data (Reshape, Flatten, Squeeze,
Unsqueeze, Identity). They cost no FLOPs and, in a fused or well-laid-out program, no bytes.
"""

from __future__ import annotations

from .. import dims as D
from ._util import normalize_axes, static_length
from .spec import ANY, FLOAT, FLOAT8, InferContext, op

__all__: list[str] = []


def _zero_bytes(c):
    return 0


def _reshape_target(ctx: InferContext, shape_in: tuple, spec, allowzero: int) -> tuple:
    out = []
    infer_at = None
    for i, d in enumerate(spec):
        if isinstance(d, int) and d == -1:
            if infer_at is not None:
                ctx.fail("shape has more than one -1")
            infer_at = i
            out.append(None)
        elif isinstance(d, int) and d == 0 and not allowzero:
            if i >= len(shape_in):
                ctx.fail(f"shape entry {i} is 0 (copy) but the input has rank {len(shape_in)}")
            out.append(shape_in[i])
        elif isinstance(d, int) and d < -1:
            ctx.fail(f"shape entry {d} is invalid")
        else:
            out.append(d)
    total_in = D.product(shape_in)
    if infer_at is not None:
        rest = D.product(d for d in out if d is not None)
        if rest == 0:
            ctx.fail("cannot infer -1 next to a zero-sized dim")
        if isinstance(total_in, int) and isinstance(rest, int):
            if total_in % rest:
                ctx.fail(f"cannot reshape {total_in} elements into {list(spec)}")
            out[infer_at] = total_in // rest
        else:
            q = D.to_sympy(total_in) / D.to_sympy(rest)
            out[infer_at] = D.from_sympy(q) if q.is_integer or not q.is_number else None
            if out[infer_at] is not None and isinstance(out[infer_at], str) and "/" in out[infer_at]:
                out[infer_at] = None  # not an exact quotient symbolically
    else:
        total_out = D.product(out)
        if isinstance(total_in, int) and isinstance(total_out, int) and total_in != total_out:
            ctx.fail(f"cannot reshape {total_in} elements into shape {tuple(out)}")
    return tuple(out)


@op("Reshape", inputs=["data: T", "shape: i64"], outputs=["reshaped: T"], types={"T": ANY},
    attrs={"allowzero": ("int", 0)}, category="view", bytes=_zero_bytes, since=14)
def _reshape(ctx: InferContext):
    """Reshape ``data`` to the shape held by the ``shape`` tensor (-1 inferred, 0 copies)."""
    if ctx.rank(1) != 1:
        ctx.fail(f"shape must be 1-D, got {ctx.type(1)}")
    target = ctx.sym(1)
    data_sym = ctx.sym(0)
    if target is None:
        n = ctx.shape(1)[0]
        if not isinstance(n, int):
            ctx.fail("the rank of the result is unknown (shape input has a symbolic length)")
        return [(None,) * n]
    out = _reshape_target(ctx, ctx.shape(0), list(target.flat), ctx.attr("allowzero"))
    if data_sym is not None and None not in out and all(isinstance(d, int) for d in out):
        ctx.set_sym(0, data_sym.reshape(out))
    return [out]


@op("Flatten", inputs=["input: T"], outputs=["output: T"], types={"T": ANY}, attrs={"axis": ("int", 1)},
    category="view", bytes=_zero_bytes, since=13)
def _flatten(ctx: InferContext):
    """Flatten to 2-D: dims before ``axis`` and dims from ``axis`` on."""
    shape = ctx.shape(0)
    axis = ctx.attr("axis")
    r = len(shape)
    if not -r <= axis <= r:
        ctx.fail(f"axis {axis} is out of range for rank {r}")
    axis = axis + r if axis < 0 else axis
    return [(D.product(shape[:axis]), D.product(shape[axis:]))]


@op("Squeeze", inputs=["data: T", "axes?: i64"], outputs=["squeezed: T"], types={"T": ANY},
    category="view", bytes=_zero_bytes, since=13)
def _squeeze(ctx: InferContext):
    """Remove size-1 dims at ``axes`` (all size-1 dims when absent)."""
    shape = ctx.shape(0)
    if ctx.has(1):
        axes = ctx.value(1)
        if axes is None:
            return [(None,) * (len(shape) - static_length(ctx, 1))]
        axes = normalize_axes(ctx, axes.reshape(-1).tolist(), len(shape))
        for a in axes:
            if shape[a] != 1 and isinstance(shape[a], int):
                ctx.fail(f"cannot squeeze axis {a} of size {shape[a]}")
    else:
        if not all(isinstance(d, int) for d in shape):
            ctx.fail("squeeze without axes needs a static shape")
        axes = [i for i, d in enumerate(shape) if d == 1]
    s = ctx.sym(0)
    if s is not None:
        ctx.set_sym(0, s.reshape([d for i, d in enumerate(s.shape) if i not in axes]))
    return [tuple(d for i, d in enumerate(shape) if i not in axes)]


@op("Unsqueeze", inputs=["data: T", "axes: i64"], outputs=["expanded: T"], types={"T": ANY},
    category="view", bytes=_zero_bytes, since=13)
def _unsqueeze(ctx: InferContext):
    """Insert size-1 dims at ``axes`` (positions in the result)."""
    shape = ctx.shape(0)
    axes = ctx.value(1)
    if axes is None:
        return [(None,) * (len(shape) + static_length(ctx, 1))]
    rank = len(shape) + axes.size
    axes = normalize_axes(ctx, axes.reshape(-1).tolist(), rank)
    it = iter(shape)
    out = tuple(1 if i in axes else next(it) for i in range(rank))
    s = ctx.sym(0)
    if s is not None:
        ctx.set_sym(0, s.reshape([d for d in out]) if all(isinstance(d, int) for d in out) else s)
    return [out]


@op("Identity", inputs=["input: T"], outputs=["output: T"], types={"T": ANY}, category="view",
    bytes=_zero_bytes, since=19)
def _identity(ctx: InferContext):
    """The input, unchanged."""
    s = ctx.sym(0)
    if s is not None:
        ctx.set_sym(0, s)
    return [ctx.shape(0)]


def _dropout_bytes(c):
    # inference: the output aliases the input; only a requested mask is written
    return c.out_bytes(1) if len(c.out_types) > 1 else 0


@op("Dropout", inputs=["data: T", "ratio?: T1", "training_mode?: bool"], outputs=["output: T", "mask?: bool"],
    types={"T": FLOAT | FLOAT8, "T1": FLOAT | FLOAT8}, attrs={"seed": ("int", None)}, category="view",
    bytes=_dropout_bytes, since=22)
def _dropout(ctx: InferContext):
    """Inference-mode dropout: the input unchanged and an all-true mask. Training mode (a true
    ``training_mode`` with a non-zero ratio) draws random numbers and is not supported."""
    if ctx.has(1) and ctx.type(1).numel != 1:
        ctx.fail(f"ratio must be a scalar, got {ctx.type(1)}")
    if ctx.has(2) and ctx.type(2).numel != 1:
        ctx.fail(f"training_mode must be a scalar, got {ctx.type(2)}")
    mode = ctx.value(2) if ctx.has(2) else None
    ratio = ctx.value(1) if ctx.has(1) else None
    if mode is not None and bool(mode.reshape(())) and not (ratio is not None and float(ratio.reshape(())) == 0):
        ctx.fail("training-mode Dropout is random and not supported (ridgeline is inference-only)")
    return [ctx.shape(0), ctx.shape(0)]
