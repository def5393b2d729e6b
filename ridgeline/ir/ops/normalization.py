"""Normalizations over the trailing dims: LayerNormalization (opset 17) and RMSNormalization (23).

    LayerNorm(x) = (x - mean(x)) / sqrt(var(x) + eps) * scale + bias
    RMSNorm(x)   = x / sqrt(mean(x^2) + eps) * scale

both over the dims from ``axis`` on. The fusions ``fuse-layernorm`` and ``fuse-rmsnorm`` produce
exactly these nodes, so a saved model uses the standard ONNX ops.
"""

from __future__ import annotations

from ..dtypes import DTYPES
from ..types import TensorType
from ._util import broadcast, per_element
from .spec import FLOAT, InferContext, op

__all__: list[str] = []


def _stats_shape(shape: tuple, axis: int) -> tuple:
    return tuple(shape[:axis]) + (1,) * (len(shape) - axis)


def _check_param(ctx: InferContext, i: int, axis: int, what: str) -> None:
    if not ctx.has(i):
        return
    norm = ctx.shape(0)[axis:]
    try:
        b = broadcast(ctx.shape(i), norm)
    except ValueError:
        ctx.fail(f"{what} {ctx.type(i)} does not broadcast to the normalized dims {list(norm)}")
    if len(b) > len(norm) and None not in b:
        ctx.fail(f"{what} {ctx.type(i)} has more dims than the normalized dims {list(norm)}")


@op("LayerNormalization", inputs=["X: T", "Scale: T", "B?: T"],
    outputs=["Y: T", "Mean?: U", "InvStdDev?: U"], types={"T": FLOAT, "U": {"f32", "bf16", "f16", "f64"}},
    attrs={"axis": ("int", -1), "epsilon": ("float", 1e-5), "stash_type": ("int", 1)},
    category="normalization", flops=per_element(8), since=17)
def _layer_norm(ctx: InferContext):
    """Normalize over dims ``axis``.. to zero mean, unit variance; then scale and shift."""
    shape = ctx.shape(0)
    axis = ctx.normalize_axis(ctx.attr("axis"), len(shape))
    _check_param(ctx, 1, axis, "Scale")
    _check_param(ctx, 2, axis, "B")
    stash = DTYPES["f32"] if ctx.attr("stash_type") == 1 else ctx.dtype(0)
    stats = TensorType(stash, _stats_shape(shape, axis))
    return [shape, stats, stats]


@op("RMSNormalization", inputs=["X: T", "scale: V"], outputs=["Y: V"],
    types={"T": FLOAT, "V": FLOAT},
    attrs={"axis": ("int", -1), "epsilon": ("float", 1e-5), "stash_type": ("int", 1)},
    category="normalization", flops=per_element(4), since=23)
def _rms_norm(ctx: InferContext):
    """Divide by the root mean square over dims ``axis``..; then scale."""
    shape = ctx.shape(0)
    axis = ctx.normalize_axis(ctx.attr("axis"), len(shape))
    _check_param(ctx, 1, axis, "scale")
    return [shape]
