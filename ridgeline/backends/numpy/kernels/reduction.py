"""Reference kernels of ``ridgeline.ir.ops.reduction`` (Reduce*, ArgMax, Softmax, CumSum)."""

from __future__ import annotations

import numpy as np

from . import kernel


def _axes(node, x, axes):
    if axes is None or axes.size == 0:
        if node.attr("noop_with_empty_axes"):
            return ()  # reduce over no axis: ReduceL2 still gives |x|, ReduceLogSum log(x) (onnx.reference)
        return tuple(range(x.ndim))
    return tuple(int(a) % x.ndim for a in axes.reshape(-1))


_REDUCE = {
    "ReduceSum": lambda x, ax, k: np.sum(x, axis=ax, keepdims=k),
    "ReduceMean": lambda x, ax, k: np.mean(x, axis=ax, keepdims=k),
    "ReduceMax": lambda x, ax, k: np.max(x, axis=ax, keepdims=k),
    "ReduceMin": lambda x, ax, k: np.min(x, axis=ax, keepdims=k),
    "ReduceProd": lambda x, ax, k: np.prod(x, axis=ax, keepdims=k),
    "ReduceL1": lambda x, ax, k: np.sum(np.abs(x), axis=ax, keepdims=k),
    "ReduceL2": lambda x, ax, k: np.sqrt(np.sum(np.square(x), axis=ax, keepdims=k)),
    "ReduceSumSquare": lambda x, ax, k: np.sum(np.square(x), axis=ax, keepdims=k),
    "ReduceLogSum": lambda x, ax, k: np.log(np.sum(x, axis=ax, keepdims=k)),
    "ReduceLogSumExp": lambda x, ax, k: np.log(np.sum(np.exp(x), axis=ax, keepdims=k)),
}


@kernel(*_REDUCE)
def reduce(node, x, axes=None):
    ax = _axes(node, x, axes)
    keep = bool(node.attr("keepdims"))
    if x.size == 0 and node.op in ("ReduceMax", "ReduceMin"):
        shape = tuple(1 if i in ax else d for i, d in enumerate(x.shape)) if keep else \
            tuple(d for i, d in enumerate(x.shape) if i not in ax)
        fill = -np.inf if node.op == "ReduceMax" else np.inf
        if x.dtype == np.bool_:
            fill = node.op == "ReduceMin"  # the identities of any() and all()
        elif x.dtype.kind in "iu":
            info = np.iinfo(x.dtype)
            fill = info.min if node.op == "ReduceMax" else info.max
        return np.full(shape, fill, dtype=x.dtype)
    with np.errstate(all="ignore"):
        return np.asarray(_REDUCE[node.op](x, ax, keep)).astype(x.dtype, copy=False)


@kernel("ArgMax", "ArgMin")
def argext(node, x):
    axis = node.attr("axis") % x.ndim
    fn = np.argmax if node.op == "ArgMax" else np.argmin
    if node.attr("select_last_index"):
        flipped = np.flip(x, axis=axis)
        out = x.shape[axis] - 1 - fn(flipped, axis=axis)
    else:
        out = fn(x, axis=axis)
    out = out.astype(np.int64)
    return np.expand_dims(out, axis) if node.attr("keepdims") else out


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Masked-row-safe softmax for attention: a row that is all -inf gives zeros, not NaN."""
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isneginf(m), 0, m)
    e = np.exp(x - m)
    s = np.sum(e, axis=axis, keepdims=True)
    return e / np.where(s == 0, 1, s)


@kernel("Softmax")
def softmax_k(node, x):
    # ONNX's definition exp(x - max) / sum(exp(x - max)): an all -inf row is NaN, as it is there
    axis = node.attr("axis")
    with np.errstate(invalid="ignore"):
        e = np.exp(x - np.max(x, axis=axis, keepdims=True))
        return (e / np.sum(e, axis=axis, keepdims=True)).astype(x.dtype, copy=False)


@kernel("LogSoftmax")
def log_softmax(node, x):
    axis = node.attr("axis")
    with np.errstate(invalid="ignore", divide="ignore"):
        s = x - np.max(x, axis=axis, keepdims=True)
        return (s - np.log(np.sum(np.exp(s), axis=axis, keepdims=True))).astype(x.dtype, copy=False)


def _scan(node, x, axis, fn, identity):
    # inclusive or exclusive (shifted by one, starting from the identity), forward or reversed
    axis = int(axis.reshape(())) % x.ndim
    y = np.flip(x, axis) if node.attr("reverse") else x
    out = fn(y, axis=axis, dtype=x.dtype)
    if node.attr("exclusive"):
        first = np.full_like(np.take(out, [0], axis=axis), identity)
        out = np.concatenate([first, np.delete(out, -1, axis=axis)], axis=axis)
    out = np.flip(out, axis) if node.attr("reverse") else out
    return np.ascontiguousarray(out).astype(x.dtype, copy=False)


@kernel("CumSum")
def cumsum(node, x, axis):
    return _scan(node, x, axis, np.cumsum, 0)


@kernel("CumProd")
def cumprod(node, x, axis):
    return _scan(node, x, axis, np.cumprod, 1)


@kernel("TopK")
def topk(node, x, k):
    axis = node.attr("axis") % x.ndim
    k = int(k.reshape(-1)[0])
    if node.attr("largest"):
        # stable ascending sort of the reversed axis, read backwards: descending values with
        # equal values in increasing index order
        rev = np.argsort(np.flip(x, axis), axis=axis, kind="stable")
        order = x.shape[axis] - 1 - np.flip(rev, axis)
    else:
        order = np.argsort(x, axis=axis, kind="stable")
    idx = np.take(order, np.arange(k), axis=axis)
    return np.take_along_axis(x, idx, axis=axis), idx.astype(np.int64)


@kernel("Hardmax")
def hardmax(node, x):
    axis = node.attr("axis") % x.ndim
    y = np.zeros_like(x)
    if x.size:
        np.put_along_axis(y, np.expand_dims(np.argmax(x, axis=axis), axis), 1, axis=axis)
    return y


@kernel("Det")
def det(node, x):
    return np.asarray(np.linalg.det(x.astype(np.float64))).astype(x.dtype)


def _nll(node, logp: np.ndarray, target: np.ndarray, weight) -> np.ndarray:
    """Negative log-likelihood of float64 log-probabilities (N, C, ...) at integer targets."""
    ignore = node.attr("ignore_index")
    target = target.astype(np.int64)
    counted = target != ignore if ignore is not None else np.ones(target.shape, bool)
    safe = np.where(counted, target, 0)
    picked = np.take_along_axis(logp, np.expand_dims(safe, 1), axis=1)[:, 0]
    w = weight.astype(np.float64)[safe] if weight is not None else np.ones(target.shape)
    w = np.where(counted, w, 0.0)
    loss = -picked * w
    reduction = node.attr("reduction")
    if reduction == "sum":
        return np.sum(loss)
    if reduction == "mean":
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.sum(loss) / np.sum(w)
    return loss


@kernel("NegativeLogLikelihoodLoss")
def nll_loss(node, x, target, weight=None):
    return np.asarray(_nll(node, x.astype(np.float64), target, weight)).astype(x.dtype)


@kernel("SoftmaxCrossEntropyLoss")
def softmax_cross_entropy(node, scores, labels, weights=None):
    s = scores.astype(np.float64)
    shifted = s - np.max(s, axis=1, keepdims=True)
    logp = shifted - np.log(np.sum(np.exp(shifted), axis=1, keepdims=True))
    loss = np.asarray(_nll(node, logp, labels, weights)).astype(scores.dtype)
    return (loss, logp.astype(scores.dtype))[:len(node.outputs)]
