"""Scaled dot-product attention on arrays, forward and backward, a block of queries at a time.

For one (batch, head) slice, q (Tq, d), k (Tk, d), v (Tk, d_v), scale c = 1/sqrt(d), and
`allowed` (Tq, Tk) boolean (True = may attend):

    S = c q k^T,  S_ij = -inf where not allowed
    lse_i = log sum_j exp(S_ij)            (+inf for a query that may attend to nothing)
    W_ij = exp(S_ij - lse_i)               (softmax; all-zero row for a fully masked query)
    O = W v

Backward, with G = dL/dO and D_i = sum_j G_ij O_ij (= sum_j W_ij (G v^T)_ij):

    dL/dv = W^T G,   dL/dS = W * (G v^T - D),   dL/dq = c dL/dS k,   dL/dk = c dL/dS^T q

Only O and lse (one number per query) are kept between forward and backward; the
backward recomputes W block by block, so the (Tq, Tk) weights of all heads are never
held at once (what FlashAttention does on a GPU, here for memory and cache: each
block's scores stay in L2). Blocks of (batch, head) slices run on the kernel threads;
within a unit, query blocks run in turn, so dL/dk and dL/dv sum without races.
"""
import functools
import math

import numpy

from .. import get_array_module
from . import parallel

SCORE_BLOCK_BYTES = 1 << 20      # scores of one work item: a few heads' blocks, in L2


def _layout(q, k, allowed):
    """Flatten the leading axes: q (N, Tq, d), k (N, Tk, d), and the mask (N or 1, Tq, Tk) or None.
    The mask may have any shape that broadcasts to (..., Tq, Tk): a key-padding mask (B, 1, 1, Tk)
    or (Tk,), a query mask (Tq, 1), a 0-d one. Its last two axes are broadcast to (Tq, Tk) as a
    view (stride 0, no copy), so that a block of queries is always mask[:, r0:r1]; its leading
    axes are copied out to N only when they differ along them."""
    xp = get_array_module(q)
    lead = q.shape[:-2]
    n = int(numpy.prod(lead, dtype=numpy.int64)) if lead else 1
    if allowed is None:
        return lead, n, None
    tq, tk = q.shape[-2], k.shape[-2]
    rows_cols = ((1, 1) + allowed.shape)[-2:]
    if allowed.size == rows_cols[0] * rows_cols[1]:            # one mask for every slice
        per_slice = allowed.reshape((1,) + rows_cols)
    else:
        per_slice = xp.broadcast_to(allowed, lead + rows_cols).reshape((n,) + rows_cols)
    return lead, n, xp.broadcast_to(per_slice, per_slice.shape[:1] + (tq, tk))


def _mask_block(mask, s0, s1, r0, r1):
    """The mask of slices s0:s1, queries r0:r1 (one mask for all slices stays one), or None."""
    if mask is None:
        return None
    return mask[s0:s1, r0:r1] if mask.shape[0] > 1 else mask[:, r0:r1]


def _query_rows(tq, tk, itemsize, xp):
    """Queries per block: about SCORE_BLOCK_BYTES of scores (all of them on the GPU: one
    launch per op, no blocking)."""
    rows = tq if xp is not numpy else SCORE_BLOCK_BYTES // max(1, tk * itemsize)
    return max(1, min(tq, rows))


def _slice_blocks(n, tq, tk, itemsize, xp):
    """[(lo, hi), ...] of whole (batch, head) slices, about SCORE_BLOCK_BYTES of scores each
    and at least one per thread (one block of all on the GPU)."""
    if xp is not numpy:
        return [(0, n)]
    return parallel.blocks(n, tq * tk * itemsize, parallel.get_num_threads(), block_bytes=SCORE_BLOCK_BYTES)


def _scores(q_block, k_block, mask_block, scale):
    """c q k^T with -inf where not allowed."""
    xp = get_array_module(q_block)
    scores = xp.matmul(q_block, k_block.swapaxes(-1, -2))
    scores *= scale
    if mask_block is not None:
        scores = xp.where(mask_block, scores, -xp.inf)
    return scores


def attention_forward(q, k, v, allowed=None):
    """O (..., Tq, d_v) and lse (..., Tq, 1). q (..., Tq, d), k (..., Tk, d), v (..., Tk, d_v);
    allowed boolean, broadcastable to (..., Tq, Tk), or None."""
    xp = get_array_module(q)
    scale = 1.0 / math.sqrt(q.shape[-1])
    lead, n, mask = _layout(q, k, allowed)
    tq, tk, dv = q.shape[-2], k.shape[-2], v.shape[-1]
    q3, k3, v3 = q.reshape(n, tq, -1), k.reshape(n, tk, -1), v.reshape(n, tk, dv)
    out = xp.empty((n, tq, dv), dtype=q.dtype)
    lse = xp.empty((n, tq, 1), dtype=q.dtype)

    def work(s0, s1, r0, r1):
        scores = _scores(q3[s0:s1, r0:r1], k3[s0:s1], _mask_block(mask, s0, s1, r0, r1), scale)
        top = scores.max(axis=-1, keepdims=True)
        top = xp.where(xp.isfinite(top), top, 0.0)             # a fully masked row: all -inf
        scores -= top
        w = xp.exp(scores, out=scores)
        total = w.sum(axis=-1, keepdims=True)
        with numpy.errstate(divide="ignore"):
            lse[s0:s1, r0:r1] = xp.log(total) + top             # log 0 = -inf -> fixed below
        w /= xp.where(total > 0, total, 1.0)                    # a fully masked row stays 0
        xp.matmul(w, v3[s0:s1], out=out[s0:s1, r0:r1])

    rows = _query_rows(tq, tk, q.dtype.itemsize, xp)
    if rows < tq:                    # a slice's scores are over the block size: one task per query block
        units = [(s, s + 1, lo, min(tq, lo + rows)) for s in range(n) for lo in range(0, tq, rows)]
    else:                            # else blocks of whole slices
        units = [(lo, hi, 0, tq) for lo, hi in _slice_blocks(n, tq, tk, q.dtype.itemsize, xp)]
    parallel.run_tasks([functools.partial(work, *unit) for unit in units])
    lse = xp.where(lse == -xp.inf, xp.inf, lse)                 # exp(S - inf) = 0: no weight
    return out.reshape(lead + (tq, dv)), lse.reshape(lead + (tq, 1))


def attention_backward(g, q, k, v, out, lse, allowed=None):
    """dL/dq, dL/dk, dL/dv (formulas above) from G = dL/dO, the forward's O and lse."""
    xp = get_array_module(q)
    scale = 1.0 / math.sqrt(q.shape[-1])
    lead, n, mask = _layout(q, k, allowed)
    tq, tk, dv = q.shape[-2], k.shape[-2], v.shape[-1]
    q3, k3, v3 = q.reshape(n, tq, -1), k.reshape(n, tk, -1), v.reshape(n, tk, dv)
    g3, o3, lse3 = g.reshape(n, tq, dv), out.reshape(n, tq, dv), lse.reshape(n, tq, 1)
    grad_q, grad_k, grad_v = xp.empty_like(q3), xp.zeros_like(k3), xp.zeros_like(v3)

    def work(s0, s1, r0, r1):
        scores = _scores(q3[s0:s1, r0:r1], k3[s0:s1], _mask_block(mask, s0, s1, r0, r1), scale)
        scores -= lse3[s0:s1, r0:r1]
        w = xp.exp(scores, out=scores)                                       # W, recomputed
        g_block = g3[s0:s1, r0:r1]
        grad_v[s0:s1] += xp.matmul(w.swapaxes(-1, -2), g_block)
        d = xp.einsum("nij,nij->ni", g_block, o3[s0:s1, r0:r1])[..., None]  # D_i
        ds = xp.matmul(g_block, v3[s0:s1].swapaxes(-1, -2))
        ds -= d
        ds *= w                                                              # dL/dS
        ds *= scale
        grad_q[s0:s1, r0:r1] = xp.matmul(ds, k3[s0:s1])
        grad_k[s0:s1] += xp.matmul(ds.swapaxes(-1, -2), q3[s0:s1, r0:r1])

    rows = _query_rows(tq, tk, q.dtype.itemsize, xp)

    def slices(s0, s1):              # a task owns whole slices (dk, dv add up over their query blocks)
        for lo in range(0, tq, rows):
            work(s0, s1, lo, min(tq, lo + rows))
    parallel.run_tasks([functools.partial(slices, lo, hi)
                        for lo, hi in _slice_blocks(n, tq, tk, q.dtype.itemsize, xp)])
    return grad_q.reshape(q.shape), grad_k.reshape(k.shape), grad_v.reshape(v.shape)
