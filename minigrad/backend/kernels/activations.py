"""GELU on arrays: the forward and its slope, each one pass of array code.

    exact ("none"):  y = x * Phi(x),  Phi(x) = (1 + erf(x / sqrt 2)) / 2
                     dy/dx = Phi(x) + x * phi(x),  phi(x) = exp(-x^2 / 2) / sqrt(2 pi)
    "tanh":          y = x/2 * (1 + t),  t = tanh(u),  u = sqrt(2/pi) (x + 0.044715 x^3)
                     dy/dx = (1 + t)/2 + x/2 * (1 - t^2) * sqrt(2/pi) * (1 + 3 * 0.044715 x^2)

ops.composite.GeluOp calls these; its Tensor backward states the same slope with
differentiable ops, and tests/test_kernels.py checks that the two agree.
"""
import math

from .. import get_array_module
from .special import erf

SQRT_HALF = 1 / math.sqrt(2.0)
INV_SQRT_2PI = 1 / math.sqrt(2.0 * math.pi)
TANH_SCALE = math.sqrt(2.0 / math.pi)
TANH_CUBIC = 0.044715


def gelu_forward(x, approximate):
    """y and what the slope needs: Phi(x) for the exact form (erf is the costly part,
    so it is computed once), None for the tanh form."""
    if approximate == "tanh":
        xp = get_array_module(x)
        return 0.5 * x * (1.0 + xp.tanh(TANH_SCALE * (x + TANH_CUBIC * x * x * x))), None
    cdf = 0.5 * (1.0 + erf(x * SQRT_HALF).astype(x.dtype, copy=False))
    return x * cdf, cdf


def gelu_slope(x, approximate, cdf=None):
    """dy/dx (formulas above), in x's dtype."""
    xp = get_array_module(x)
    if approximate == "tanh":
        t = xp.tanh(TANH_SCALE * (x + TANH_CUBIC * x * x * x))
        return 0.5 * (1.0 + t) + (0.5 * TANH_SCALE) * x * (1.0 - t * t) * (1.0 + 3 * TANH_CUBIC * x * x)
    return cdf + INV_SQRT_2PI * x * xp.exp(-0.5 * x * x)
