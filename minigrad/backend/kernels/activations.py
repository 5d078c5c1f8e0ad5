"""GELU and ReLU on arrays: the forward and its backward, each one fused pass over
cache-sized blocks (on the kernel threads when the array is large).

    exact ("none"):  y = x * Phi(x),  Phi(x) = (1 + erf(x / sqrt 2)) / 2
                     dy/dx = Phi(x) + x * phi(x),  phi(x) = exp(-x^2 / 2) / sqrt(2 pi)
    "tanh":          y = x/2 * (1 + t),  t = tanh(u),  u = sqrt(2/pi) (x + 0.044715 x^3)
                     dy/dx = (1 + t)/2 + x/2 * (1 - t^2) * sqrt(2/pi) * (1 + 3 * 0.044715 x^2)

ops.composite.GeluOp calls these; its Tensor backward states the same slope with
differentiable ops, and tests/test_kernels.py checks that the two agree.
"""
import math

import numpy

from .. import get_array_module
from . import gpu, parallel
from .special import erf

SQRT_HALF = 1 / math.sqrt(2.0)
INV_SQRT_2PI = 1 / math.sqrt(2.0 * math.pi)
TANH_SCALE = math.sqrt(2.0 / math.pi)
TANH_CUBIC = 0.044715


def gelu_forward(x, approximate):
    """y and what the backward needs: Phi(x) for the exact form (erf is the costly part,
    so it is computed once), None for the tanh form."""
    xp = get_array_module(x)
    if xp is not numpy:
        fused = gpu.kernel(xp, "gelu_tanh_forward" if approximate == "tanh" else "gelu_forward", x.dtype)
        if fused is None:
            return _gelu_forward_block(x, approximate)
        return (fused(x), None) if approximate == "tanh" else fused(x)
    if approximate == "tanh":
        return parallel.map_elementwise(lambda b: _gelu_forward_block(b, "tanh")[0], x), None
    return parallel.map_elementwise(lambda b: _gelu_forward_block(b, "none"), x, dtypes=(x.dtype, x.dtype))


def gelu_backward(g, x, approximate, cdf=None):
    """dL/dx = g * dy/dx (formulas above), in x's dtype."""
    xp = get_array_module(x)
    if g.shape != x.shape:          # a tensor hook may replace g by one that only broadcasts
        return g * gelu_slope(x, approximate, cdf)
    if xp is not numpy:
        fused = gpu.kernel(xp, "gelu_tanh_backward" if approximate == "tanh" else "gelu_backward", x.dtype)
        if fused is None or g.dtype != x.dtype:
            return g * gelu_slope(x, approximate, cdf)
        return fused(g, x) if approximate == "tanh" else fused(g, x, cdf)
    if approximate == "tanh":
        return parallel.map_elementwise(lambda gb, xb: gb * gelu_slope(xb, "tanh"), g, x)
    return parallel.map_elementwise(lambda gb, xb, cb: gb * gelu_slope(xb, "none", cb), g, x, cdf)


def _gelu_forward_block(x, approximate):
    xp = get_array_module(x)
    if approximate == "tanh":
        u = x * x
        u *= TANH_CUBIC
        u += 1.0
        u *= x
        u *= TANH_SCALE
        t = xp.tanh(u)
        t += 1.0
        t *= x
        t *= 0.5
        return t, None
    cdf = erf(x * x.dtype.type(SQRT_HALF))
    cdf += 1.0
    cdf *= 0.5
    return x * cdf, cdf


def gelu_slope(x, approximate, cdf=None):
    """dy/dx (formulas above), in x's dtype."""
    xp = get_array_module(x)
    if approximate == "tanh":                     # in place on three temporaries
        square = x * x
        t = square * TANH_CUBIC
        t += 1.0
        t *= x
        t *= TANH_SCALE
        xp.tanh(t, out=t)
        inner = t * t                             # (1 - t^2) * (1 + 3 * 0.044715 x^2) * x * sqrt(2/pi) / 2
        xp.subtract(1.0, inner, out=inner)
        square *= 3 * TANH_CUBIC
        square += 1.0
        inner *= square
        inner *= x
        inner *= 0.5 * TANH_SCALE
        t += 1.0
        t *= 0.5
        t += inner
        return t
    density = x * x
    density *= -0.5
    density = xp.exp(density, out=density)
    density *= x
    density *= INV_SQRT_2PI
    density += cdf
    return density


# ReLU is one cheap pass: handing blocks to the threads costs about 50 us on the 2-core
# machine, which a (256, 512) array (40 us in one numpy call) never wins back; at 1M
# elements the threads are 10% faster
RELU_PARALLEL_ELEMENTS = 1 << 20


def _one_pass(x):
    """True when a ReLU pass over x is best left to one plain numpy call."""
    return (get_array_module(x) is not numpy or x.size < RELU_PARALLEL_ELEMENTS
            or parallel.get_num_threads() == 1)


def relu(x):
    """y = max(x, 0) (NaN stays NaN)."""
    if _one_pass(x):
        return get_array_module(x).maximum(x, 0)
    return parallel.map_elementwise(lambda block: numpy.maximum(block, 0), x)


def relu_backward(g, x):
    """dL/dx = g * [x > 0]."""
    if g.shape != x.shape or _one_pass(x):        # g may only broadcast (a tensor hook's)
        return g * (x > 0)
    return parallel.map_elementwise(lambda gb, xb: gb * (xb > 0), g, x)
