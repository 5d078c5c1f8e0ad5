"""Softmax, log-softmax, layer norm and batch norm on arrays.

Each function is the array form of one fused op in minigrad/ops/composite.py or
ops/image.py; the op's docstring and Tensor backward state the same math, and
tests/test_kernels.py checks that they agree.

On the CPU the last-axis kernels run over blocks of rows (parallel.for_blocks): every
pass of a formula then works on rows still in the cache, and the blocks run on the
kernel threads. float16 inputs are computed in float32 and rounded once at the end
(a float16 sum of 1000 values overflows or loses the small ones).
"""
import numpy

from .. import get_array_module
from . import parallel


def accumulation_dtype(dtype):
    """The dtype a reduction over `dtype` values is carried out in: float32 for float16."""
    return numpy.dtype(numpy.float32) if numpy.dtype(dtype) == numpy.float16 else numpy.dtype(dtype)


def for_row_blocks(fn, arrays, out_dtypes, axis=-1):
    """outputs = fn(*row blocks) over the rows of `arrays` (same shape, reduced along `axis`),
    computed in accumulation_dtype (floating inputs) and stored in out_dtypes; arrays after
    the first may
    have a last axis of 1 (a value per row). Block by block on the CPU,
    in one go on other devices or for other axes. fn returns a tuple of outputs, each
    either of the rows' shape or (rows, 1)."""
    x = arrays[0]
    compute = accumulation_dtype(x.dtype)
    if get_array_module(x) is not numpy or axis != -1 or x.ndim == 0 or x.size == 0:
        outs = fn(*(_computed(a, compute) for a in arrays))
        return tuple(o.astype(d, copy=False) for o, d in zip(outs, out_dtypes))
    d = x.shape[-1]
    rows = [a.reshape(-1, a.shape[-1]) for a in arrays]     # (n, d), or (n, 1) per-row values
    n = rows[0].shape[0]
    results = [None] * len(out_dtypes)

    def work(lo, hi):
        outs = fn(*(_computed(r[lo:hi], compute) for r in rows))
        for i, (o, dtype) in enumerate(zip(outs, out_dtypes)):
            if results[i] is None:
                results[i] = numpy.empty((n, o.shape[-1]), dtype=dtype)
            results[i][lo:hi] = o
    first = parallel.blocks(n, d * compute.itemsize * 4)[0][1]     # makes the outputs
    work(0, first)
    if first < n:
        parallel.for_blocks(n - first, d * compute.itemsize * 4,
                            lambda lo, hi: work(lo + first, hi + first), row_elements=d)
    return tuple(r.reshape(x.shape[:-1] + (r.shape[-1],)) for r in results)


def as_last_axis(axis, ndim):
    """-1 when `axis` names the last axis (the blocked case), else axis unchanged."""
    return -1 if axis in (-1, ndim - 1) else axis


def _computed(array, compute):
    """Floating arrays in the compute dtype; ids and masks as they are."""
    return array.astype(compute, copy=False) if array.dtype.kind == "f" else array


def softmax(x, axis):
    """y = exp(x - max x) / sum exp(x - max x) along axis (the max keeps exp finite)."""
    axis = as_last_axis(axis, x.ndim)
    return for_row_blocks(lambda b: (_softmax(b, axis),), [x], [x.dtype], axis)[0]


def _softmax(x, axis):
    xp = get_array_module(x)
    e = x - x.max(axis=axis, keepdims=True)
    xp.exp(e, out=e)                      # in place: one temporary fewer
    e /= e.sum(axis=axis, keepdims=True)
    return e


def log_softmax(x, axis):
    """y = x - m - log(sum exp(x - m)) along axis, m = max x."""
    axis = as_last_axis(axis, x.ndim)
    return for_row_blocks(lambda b: (_log_softmax(b, axis),), [x], [x.dtype], axis)[0]


def _log_softmax(x, axis):
    xp = get_array_module(x)
    shifted = x - x.max(axis=axis, keepdims=True)
    total = xp.exp(shifted).sum(axis=axis, keepdims=True)
    shifted -= xp.log(total)
    return shifted


def softmax_backward(g, y, axis):
    """dL/dx = y * (g - sum(g * y, axis)) for y = softmax(x)."""
    axis = as_last_axis(axis, g.ndim)
    def rows(gb, yb):
        gy = gb * yb
        gy -= yb * gy.sum(axis=axis, keepdims=True)
        return (gy,)
    return for_row_blocks(rows, [g, y], [y.dtype], axis)[0]


def log_softmax_backward(g, y, axis):
    """dL/dx = g - exp(y) * sum(g, axis) for y = log_softmax(x)."""
    axis = as_last_axis(axis, g.ndim)
    def rows(gb, yb):
        xp = get_array_module(gb)
        p = xp.exp(yb)
        p *= gb.sum(axis=axis, keepdims=True)
        return (gb - p,)
    return for_row_blocks(rows, [g, y], [y.dtype], axis)[0]


# In-place updates and einsum row dot products (sum_i a_i b_i without the temporary
# a * b) save about a third of layer norm's time over the plain formulas.
def layer_norm_forward(x, weight, bias, eps):
    """y = xhat * weight + bias, xhat = (x - mean) * rstd, rstd = 1 / sqrt(var + eps),
    mean and biased var over the last axis. Returns y, xhat, rstd (rstd (..., 1));
    xhat and rstd in the accumulation dtype (float32 for float16 input)."""
    compute = accumulation_dtype(x.dtype)
    w, b = weight.astype(compute, copy=False), bias.astype(compute, copy=False)

    def rows(xb):
        xp = get_array_module(xb)
        d = xb.shape[-1]
        xhat = xb - xb.mean(axis=-1, keepdims=True)
        var = xp.einsum("...i,...i->...", xhat, xhat)[..., None] / d
        rstd = 1.0 / xp.sqrt(var + eps)
        xhat *= rstd
        y = xhat * w
        y += b
        return y, xhat, rstd
    return for_row_blocks(rows, [x], [x.dtype, compute, compute])


def layer_norm_backward(g, xhat, rstd, weight):
    """With gh = g * weight and means over the last axis:
        dL/dx = rstd * (gh - mean(gh) - xhat * mean(gh * xhat))
        dL/dweight = sum over leading axes of g * xhat,  dL/dbias = sum of g"""
    xp = get_array_module(g)
    out_dtype = g.dtype
    d = g.shape[-1]
    w = weight.astype(xhat.dtype, copy=False)

    def rows(gb, xhb, rb):
        gh = gb * w
        mean_gh = gh.mean(axis=-1, keepdims=True)
        mean_gh_xhat = get_array_module(gb).einsum("...i,...i->...", gh, xhb)[..., None] / d
        grad_x = xhb * mean_gh_xhat
        get_array_module(gb).subtract(gh, grad_x, out=grad_x)
        grad_x -= mean_gh
        grad_x *= rb
        return (grad_x,)
    grad_x, = for_row_blocks(rows, [g, xhat, rstd], [out_dtype])
    rows_g = g.reshape(-1, d).astype(xhat.dtype, copy=False)
    rows_xhat = xhat.reshape(-1, d)
    grad_w = xp.einsum("ni,ni->i", rows_g, rows_xhat).astype(weight.dtype, copy=False)
    return grad_x, grad_w, rows_g.sum(axis=0).astype(weight.dtype, copy=False)


def batch_norm_forward(x, weight, bias, eps):
    """Per channel (axis 1), statistics over every other axis:
    y = xhat * weight + bias, xhat = (x - mean) * rstd, rstd = 1 / sqrt(var + eps) (biased var).
    Returns y, xhat, rstd (broadcastable to x) and the batch mean and var (C,)."""
    xp = get_array_module(x)
    axes = (0,) + tuple(range(2, x.ndim))
    shape = (1, -1) + (1,) * (x.ndim - 2)
    mean = x.mean(axis=axes)
    centred = x - mean.reshape(shape)
    var = (centred * centred).mean(axis=axes)
    rstd = (1.0 / xp.sqrt(var + eps)).reshape(shape)
    xhat = centred * rstd
    return xhat * weight.reshape(shape) + bias.reshape(shape), xhat, rstd, mean, var


def batch_norm_backward(g, xhat, rstd, weight):
    """With gh = g * weight and means over every axis but 1:
        dL/dx = rstd * (gh - mean(gh) - xhat * mean(gh * xhat))
        dL/dweight = sum of g * xhat,  dL/dbias = sum of g   (per channel)"""
    axes = (0,) + tuple(range(2, g.ndim))
    gh = g * weight.reshape(rstd.shape)
    grad_x = rstd * (gh - gh.mean(axis=axes, keepdims=True)
                     - xhat * (gh * xhat).mean(axis=axes, keepdims=True))
    return grad_x, (g * xhat).sum(axis=axes), g.sum(axis=axes)
