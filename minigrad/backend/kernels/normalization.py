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


def for_row_blocks(fn, arrays, outputs, axis=-1):
    """Run fn(*input blocks, *output blocks) over the rows of `arrays` and return the outputs.

    arrays: the first (..., d) reduced along `axis`; later ones (..., d) or (..., 1) (a
    value per row). outputs: (dtype, width) per output, width "d" or 1. fn computes in
    accumulation_dtype (floating inputs are cast to it) and writes its results into the
    output blocks it is given (with out= and in-place updates: no extra pass to copy a
    block's result). On the CPU, along the last axis, blocks of rows run on the kernel
    threads; otherwise fn sees the whole arrays in one call."""
    x = arrays[0]
    compute = accumulation_dtype(x.dtype)
    xp = get_array_module(x)
    lead, d = x.shape[:-1], x.shape[-1]
    shapes = [lead + ((d if width == "d" else 1),) if axis == -1 else (x.shape if width == "d" else None)
              for _, width in outputs]
    if xp is not numpy or axis != -1 or x.size == 0:
        scratch = [xp.empty(shape if shape is not None else _kept(x.shape, axis), dtype=compute)
                   for shape in shapes]
        fn(*(_computed(a, compute) for a in arrays), *scratch)
        return tuple(o.astype(dtype, copy=False) for o, (dtype, _) in zip(scratch, outputs))
    rows = [a.reshape(-1, a.shape[-1]) for a in arrays]            # (n, d), or (n, 1) per-row values
    n = rows[0].shape[0]
    # made in their final shape (the blocks write through (n, width) views), so that each
    # result owns its memory: autograd copies a gradient that is a view before keeping it
    results = [numpy.empty(shape, dtype=dtype) for shape, (dtype, _) in zip(shapes, outputs)]
    result_rows = [r.reshape(n, r.shape[-1]) for r in results]

    def work(lo, hi):
        targets = [r[lo:hi] if r.dtype == compute else numpy.empty(r[lo:hi].shape, compute) for r in result_rows]
        fn(*(_computed(r[lo:hi], compute) for r in rows), *targets)
        for r, t in zip(result_rows, targets):
            if r.dtype != compute:                                   # a float16 result: round once
                r[lo:hi] = t
    parallel.for_blocks(n, d * compute.itemsize, work, row_elements=d)
    return tuple(results)


def _kept(shape, axis):
    """shape with `axis` reduced to 1 (a value per row along another axis)."""
    kept = list(shape)
    kept[axis] = 1
    return tuple(kept)


def as_last_axis(axis, ndim):
    """-1 when `axis` names the last axis (the blocked case), else axis unchanged."""
    return -1 if axis in (-1, ndim - 1) else axis


def _computed(array, compute):
    """Floating arrays in the compute dtype; ids and masks as they are."""
    return array.astype(compute, copy=False) if array.dtype.kind == "f" else array


def softmax(x, axis):
    """y = exp(x - max x) / sum exp(x - max x) along axis (the max keeps exp finite)."""
    axis = as_last_axis(axis, x.ndim)

    def rows(xb, y):
        xp = get_array_module(xb)
        xp.subtract(xb, xb.max(axis=axis, keepdims=True), out=y)
        xp.exp(y, out=y)
        y /= y.sum(axis=axis, keepdims=True)
    return for_row_blocks(rows, [x], [(x.dtype, "d")], axis)[0]


def log_softmax(x, axis):
    """y = x - m - log(sum exp(x - m)) along axis, m = max x."""
    axis = as_last_axis(axis, x.ndim)

    def rows(xb, y):
        xp = get_array_module(xb)
        xp.subtract(xb, xb.max(axis=axis, keepdims=True), out=y)
        y -= xp.log(xp.exp(y).sum(axis=axis, keepdims=True))
    return for_row_blocks(rows, [x], [(x.dtype, "d")], axis)[0]


def softmax_backward(g, y, axis):
    """dL/dx = y * (g - sum(g * y, axis)) for y = softmax(x)."""
    axis = as_last_axis(axis, g.ndim)

    def rows(gb, yb, grad):
        get_array_module(gb).multiply(gb, yb, out=grad)
        grad -= yb * grad.sum(axis=axis, keepdims=True)
    return for_row_blocks(rows, [g, y], [(y.dtype, "d")], axis)[0]


def log_softmax_backward(g, y, axis):
    """dL/dx = g - exp(y) * sum(g, axis) for y = log_softmax(x)."""
    axis = as_last_axis(axis, g.ndim)

    def rows(gb, yb, grad):
        xp = get_array_module(gb)
        xp.exp(yb, out=grad)
        grad *= -gb.sum(axis=axis, keepdims=True)
        grad += gb
    return for_row_blocks(rows, [g, y], [(y.dtype, "d")], axis)[0]


# Writing into the output blocks and einsum row dot products (sum_i a_i b_i without the
# temporary a * b) save about a third of layer norm's time over the plain formulas.
def layer_norm_forward(x, weight, bias, eps):
    """y = xhat * weight + bias, xhat = (x - mean) * rstd, rstd = 1 / sqrt(var + eps),
    mean and biased var over the last axis. Returns y, xhat, rstd (rstd (..., 1));
    xhat and rstd in the accumulation dtype (float32 for float16 input)."""
    compute = accumulation_dtype(x.dtype)
    w, b = weight.astype(compute, copy=False), bias.astype(compute, copy=False)

    def rows(xb, y, xhat, rstd):
        xp = get_array_module(xb)
        xp.subtract(xb, xb.mean(axis=-1, keepdims=True), out=xhat)
        var = xp.einsum("...i,...i->...", xhat, xhat)[..., None]
        var /= xb.shape[-1]
        var += eps
        xp.sqrt(var, out=var)
        xp.divide(1.0, var, out=rstd)
        xhat *= rstd
        xp.multiply(xhat, w, out=y)
        y += b
    return for_row_blocks(rows, [x], [(x.dtype, "d"), (compute, "d"), (compute, 1)])


def layer_norm_backward(g, xhat, rstd, weight):
    """With gh = g * weight and means over the last axis:
        dL/dx = rstd * (gh - mean(gh) - xhat * mean(gh * xhat))
        dL/dweight = sum over leading axes of g * xhat,  dL/dbias = sum of g"""
    xp = get_array_module(g)
    d = g.shape[-1]
    w = weight.astype(xhat.dtype, copy=False)

    def rows(gb, xhb, rb, grad):
        xp = get_array_module(gb)
        gh = gb * w
        mean_gh_xhat = xp.einsum("...i,...i->...", gh, xhb)[..., None]
        mean_gh_xhat /= d
        xp.multiply(xhb, mean_gh_xhat, out=grad)
        xp.subtract(gh, grad, out=grad)
        grad -= gh.mean(axis=-1, keepdims=True)
        grad *= rb
    grad_x, = for_row_blocks(rows, [g, xhat, rstd], [(g.dtype, "d")])
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
