"""Normalizations over the trailing dims: LayerNormalization (opset 17) and RMSNormalization (23).

    LayerNorm(x) = (x - mean(x)) / sqrt(var(x) + eps) * scale + bias
    RMSNorm(x)   = x / sqrt(mean(x^2) + eps) * scale

both over the dims from ``axis`` on. The fusions ``fuse-layernorm`` and ``fuse-rmsnorm`` produce
exactly these nodes, so a saved model uses the standard ONNX ops.
"""

from __future__ import annotations

from ..dtypes import DTYPES
from ..types import TensorType
from . import envelopes
from ._util import broadcast, normalize_axes, per_element
from .spec import FLOAT, InferContext, op

__all__ = ["STASH_TYPES", "stash_dtype"]


#: ONNX dtype codes a ``stash_type`` may name: the precision of the statistics stage
STASH_TYPES = {1: "f32", 10: "f16", 11: "f64", 16: "bf16"}


def stash_dtype(ctx: InferContext):
    """The IR dtype ``stash_type`` names: the precision of the statistics (normalization) stage."""
    code = ctx.attr("stash_type")
    if code not in STASH_TYPES:
        ctx.fail(f"stash_type {code} is not a float dtype code (1 float, 10 float16, 11 double, 16 bfloat16)")
    return DTYPES[STASH_TYPES[code]]


def _stats_shape(shape: tuple, axis: int) -> tuple:
    return tuple(shape[:axis]) + (1,) * (len(shape) - axis)


# the axes each op takes its statistics over, for its error envelope (see ``envelopes.normalized``)
def _trailing(node, rank: int) -> range:
    axis = node.attr("axis")
    return range(axis + rank if axis < 0 else axis, rank)


def _spatial(node, rank: int) -> range:
    return range(2, rank) if rank > 2 else range(0)


def _per_instance(node, rank: int) -> range:
    return range(1, rank) if rank > 2 else range(0)


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
    category="normalization", flops=per_element(8), since=17, envelope=envelopes.normalized(_trailing))
def _layer_norm(ctx: InferContext):
    """Normalize over dims ``axis``.. to zero mean, unit variance; then scale and shift."""
    shape = ctx.shape(0)
    axis = ctx.normalize_axis(ctx.attr("axis"), len(shape))
    _check_param(ctx, 1, axis, "Scale")
    _check_param(ctx, 2, axis, "B")
    stats = TensorType(stash_dtype(ctx), _stats_shape(shape, axis))
    return [shape, stats, stats]


@op("RMSNormalization", inputs=["X: T", "scale: V"], outputs=["Y: V"],
    types={"T": FLOAT, "V": FLOAT},
    attrs={"axis": ("int", -1), "epsilon": ("float", 1e-5), "stash_type": ("int", 1)},
    category="normalization", flops=per_element(4), since=23, envelope=envelopes.normalized(_trailing))
def _rms_norm(ctx: InferContext):
    """Divide by the root mean square over dims ``axis``..; then scale."""
    shape = ctx.shape(0)
    axis = ctx.normalize_axis(ctx.attr("axis"), len(shape))
    _check_param(ctx, 1, axis, "scale")
    stash_dtype(ctx)
    return [shape]


@op("LpNormalization", inputs=["input: T"], outputs=["output: T"], types={"T": FLOAT},
    attrs={"axis": ("int", -1), "p": ("int", 2)}, category="normalization", flops=per_element(3), since=22)
def _lp_norm(ctx: InferContext):
    """``x / ||x||_p`` along ``axis`` (p is 1 or 2); a zero norm gives 0."""
    ctx.normalize_axis(ctx.attr("axis"), ctx.rank(0))
    if ctx.attr("p") not in (1, 2):
        ctx.fail(f"p must be 1 or 2, got {ctx.attr('p')}")
    return [ctx.shape(0)]


@op("MeanVarianceNormalization", inputs=["X: T"], outputs=["Y: T"], types={"T": FLOAT},
    attrs={"axes": ("ints", (0, 2, 3))}, category="normalization", flops=per_element(7), since=13,
    envelope=envelopes.normalized(lambda node, rank: node.attr("axes")))
def _mvn(ctx: InferContext):
    """``(x - E[x]) / (sqrt(E[x²] - E[x]²) + 1e-9)`` over ``axes``, as ONNX's function body."""
    normalize_axes(ctx, ctx.attr("axes"), ctx.rank(0))
    return [ctx.shape(0)]


def _channel_param(ctx: InferContext, i: int, what: str) -> None:
    c = ctx.shape(0)[1]
    p = ctx.shape(i)
    if len(p) != 1 or (isinstance(p[0], int) and isinstance(c, int) and p[0] != c):
        ctx.fail(f"{what} must be 1-D with one entry per channel ({c}), got {ctx.type(i)}")


@op("InstanceNormalization", inputs=["input: T", "scale: T", "B: T"], outputs=["output: T"], types={"T": FLOAT},
    attrs={"epsilon": ("float", 1e-5)}, category="normalization", flops=per_element(8), since=22,
    envelope=envelopes.normalized(_spatial))
def _instance_norm(ctx: InferContext):
    """Normalize each (instance, channel) over the spatial dims of ``(N, C, D1, ...)``; then
    per-channel scale and bias."""
    if ctx.rank(0) < 2:
        ctx.fail(f"input must be (N, C, ...), got {ctx.type(0)}")
    _channel_param(ctx, 1, "scale")
    _channel_param(ctx, 2, "B")
    return [ctx.shape(0)]


@op("GroupNormalization", inputs=["X: T", "scale: T", "bias: T"], outputs=["Y: T"], types={"T": FLOAT},
    attrs={"epsilon": ("float", 1e-5), "num_groups": ("int",), "stash_type": ("int", 1)},
    category="normalization", flops=per_element(8), since=21,
    envelope=envelopes.normalized(_per_instance))
def _group_norm(ctx: InferContext):
    """Normalize each group of ``C / num_groups`` channels per instance (in the stash type); then
    per-channel scale and bias in the input type."""
    if ctx.rank(0) < 2:
        ctx.fail(f"X must be (N, C, ...), got {ctx.type(0)}")
    g, c = ctx.attr("num_groups"), ctx.shape(0)[1]
    if g <= 0 or (isinstance(c, int) and c % g):
        ctx.fail(f"{c} channels do not split into {g} groups")
    _channel_param(ctx, 1, "scale")
    _channel_param(ctx, 2, "bias")
    stash_dtype(ctx)
    return [ctx.shape(0)]


@op("BatchNormalization", inputs=["X: T", "scale: T1", "B: T1", "input_mean: T2", "input_var: T2"],
    outputs=["Y: T"], types={"T": FLOAT, "T1": FLOAT, "T2": FLOAT},
    attrs={"epsilon": ("float", 1e-5), "momentum": ("float", 0.9), "training_mode": ("int", 0)},
    category="normalization", flops=per_element(4), since=15)
def _batch_norm(ctx: InferContext):
    """Inference form: ``scale · (x - mean) / sqrt(var + epsilon) + B`` per channel of
    ``(N, C, ...)`` with the running statistics (training mode is not supported)."""
    if ctx.attr("training_mode"):
        ctx.fail("training_mode=1 computes batch statistics; ridgeline supports the inference form only")
    if ctx.rank(0) < 2:
        ctx.fail(f"X must be (N, C, ...), got {ctx.type(0)}")
    for i, what in ((1, "scale"), (2, "B"), (3, "input_mean"), (4, "input_var")):
        _channel_param(ctx, i, what)
    return [ctx.shape(0)]
