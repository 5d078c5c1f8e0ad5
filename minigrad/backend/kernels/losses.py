"""Cross-entropy with class-id targets on arrays: forward and backward, one pass each.

For a row of logits x (C classes), target class t and smoothing e, with
log p = log_softmax(x) = x - m - log(sum_c exp(x_c - m)), m = max x:

    loss = -(1 - e) log p_t - (e / C) sum_c log p_c
    dloss/dx = p - q,   q = (1 - e) onehot(t) + e / C

Rows whose `valid` entry is False (ignore_index) are *selected away*, never multiplied
by 0: their loss and gradient are exactly 0 even when their logits are inf or NaN.
The forward keeps p (softmax) for the backward; float16 logits are computed in float32.
ops.composite.CrossEntropyOp calls these.
"""
import numpy

from .. import get_array_module
from .normalization import accumulation_dtype, for_row_blocks


def cross_entropy_forward(logits, ids, valid, smoothing):
    """Per-row loss (N,) in the accumulation dtype and the softmax p (N, C) for the backward.
    logits (N, C); ids (N,) integer class ids (any value where not valid); valid (N,) bool or None."""
    n_classes = logits.shape[-1]
    compute = accumulation_dtype(logits.dtype)
    columns = [ids.reshape(-1, 1)] + ([valid.reshape(-1, 1)] if valid is not None else [])

    def rows(x, id_col, *rest):
        xp = get_array_module(x)
        valid_col, (loss, p) = (rest[0], rest[1:]) if valid is not None else (None, rest)
        shifted = x - x.max(axis=-1, keepdims=True)
        xp.exp(shifted, out=p)
        total = p.sum(axis=-1, keepdims=True)
        p /= total
        log_total = xp.log(total)
        picked = xp.take_along_axis(shifted, id_col, axis=-1) - log_total          # log p_t
        xp.multiply(picked, -(1.0 - smoothing), out=loss)
        if smoothing:
            loss -= (smoothing / n_classes) * (shifted.sum(axis=-1, keepdims=True) - n_classes * log_total)
        if valid_col is not None:
            loss[...] = xp.where(valid_col, loss, 0.0)        # selected: NaN rows give 0, not NaN * 0
    loss, p = for_row_blocks(rows, [logits] + columns, [(compute, 1), (compute, "d")])
    return loss.reshape(-1), p


def cross_entropy_backward(row_weights, p, ids, valid, smoothing, out_dtype):
    """dL/dlogits (N, C) = row_weights[:, None] * (p - q), and 0 on rows that are not valid.
    row_weights (N,): dL/dloss_row (the upstream gradient, divided by the count for a mean)."""
    n_classes = p.shape[-1]
    columns = [row_weights.reshape(-1, 1).astype(p.dtype, copy=False), ids.reshape(-1, 1)]
    if valid is not None:
        columns.append(valid.reshape(-1, 1))

    def rows(pb, w, id_col, *rest):
        xp = get_array_module(pb)
        valid_col, grad = (rest[0], rest[1]) if valid is not None else (None, rest[0])
        xp.subtract(pb, smoothing / n_classes, out=grad)
        grad[xp.arange(grad.shape[0]), id_col[:, 0]] -= 1.0 - smoothing
        grad *= w
        if valid_col is not None:
            grad[...] = xp.where(valid_col, grad, 0.0)
    return for_row_blocks(rows, [p] + columns, [(numpy.dtype(out_dtype), "d")])[0]


def smoothed_targets(ids, n_classes, smoothing, like):
    """q (N, C) = (1 - e) onehot(ids) + e / C, in like's dtype and module."""
    xp = get_array_module(like)
    q = xp.full((ids.shape[0], n_classes), smoothing / n_classes, dtype=like.dtype)
    q[xp.arange(ids.shape[0]), ids] += 1.0 - smoothing
    return q
