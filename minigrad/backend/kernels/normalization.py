"""Softmax, log-softmax, layer norm and batch norm on arrays.

Each function is the array form of one fused op in minigrad/ops/composite.py or
ops/image.py; the op's docstring and Tensor backward state the same math, and
tests/test_kernels.py checks that they agree.
"""
from .. import get_array_module


def softmax(x, axis):
    """y = exp(x - max x) / sum exp(x - max x) along axis (the max keeps exp finite)."""
    xp = get_array_module(x)
    e = x - x.max(axis=axis, keepdims=True)
    xp.exp(e, out=e)                      # in place: one temporary fewer
    e /= e.sum(axis=axis, keepdims=True)
    return e


def log_softmax(x, axis):
    """y = x - m - log(sum exp(x - m)) along axis, m = max x."""
    xp = get_array_module(x)
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - xp.log(xp.exp(shifted).sum(axis=axis, keepdims=True))


def softmax_backward(g, y, axis):
    """dL/dx = y * (g - sum(g * y, axis)) for y = softmax(x)."""
    gy = g * y
    gy -= y * gy.sum(axis=axis, keepdims=True)
    return gy


def log_softmax_backward(g, y, axis):
    """dL/dx = g - exp(y) * sum(g, axis) for y = log_softmax(x)."""
    xp = get_array_module(g)
    return g - xp.exp(y) * g.sum(axis=axis, keepdims=True)


# In-place updates and einsum row dot products (sum_i a_i b_i without the temporary
# a * b) save about a third of layer norm's time over the plain formulas.
def layer_norm_forward(x, weight, bias, eps):
    """y = xhat * weight + bias, xhat = (x - mean) * rstd, rstd = 1 / sqrt(var + eps),
    mean and biased var over the last axis. Returns y, xhat, rstd (rstd (..., 1))."""
    xp = get_array_module(x)
    d = x.shape[-1]
    xhat = x - x.mean(axis=-1, keepdims=True)
    var = xp.einsum("...i,...i->...", xhat, xhat)[..., None] / d
    rstd = 1.0 / xp.sqrt(var + eps)
    xhat *= rstd
    y = xhat * weight
    y += bias
    return y, xhat, rstd


def layer_norm_backward(g, xhat, rstd, weight):
    """With gh = g * weight and means over the last axis:
        dL/dx = rstd * (gh - mean(gh) - xhat * mean(gh * xhat))
        dL/dweight = sum over leading axes of g * xhat,  dL/dbias = sum of g"""
    xp = get_array_module(g)
    d = g.shape[-1]
    gh = g * weight
    mean_gh = gh.mean(axis=-1, keepdims=True)
    mean_gh_xhat = xp.einsum("...i,...i->...", gh, xhat)[..., None] / d
    grad_x = xhat * mean_gh_xhat
    xp.subtract(gh, grad_x, out=grad_x)
    grad_x -= mean_gh
    grad_x *= rstd
    rows_g, rows_xhat = g.reshape(-1, d), xhat.reshape(-1, d)
    return grad_x, xp.einsum("ni,ni->i", rows_g, rows_xhat), rows_g.sum(axis=0)


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
