"""Composite operations fused into one op each, for speed and numerical stability.

Each could be written with the primitives in ops.py (functional.py keeps those
composed versions, and the tests check that both agree). Fused, the forward
makes fewer temporary arrays and the backward is one closed-form expression.
Backward is still written with Tensor operations where higher-order gradients
need it.
"""
import math

from . import backend
from .ops import Erf, Function, exp, tanh
from .tensor import is_grad_enabled, grad as autograd_grad, wrap

xp_of = backend.get_array_module


class Softmax(Function):
    """y_i = exp(x_i - max x) / sum_j exp(x_j - max x) along `axis`.
    Subtracting the max changes nothing mathematically and keeps exp from overflowing.
    dL/dx = y * (g - sum(g * y, axis))"""

    def __init__(self, axis=-1):
        self.axis = axis

    def forward(self, x):
        xp = xp_of(x)
        e = x - x.max(axis=self.axis, keepdims=True)
        xp.exp(e, out=e)                      # in place: one temporary fewer
        e /= e.sum(axis=self.axis, keepdims=True)
        return e

    def backward(self, g):
        y = self.output
        return y * (g - (g * y).sum(axis=self.axis, keepdims=True))


class LogSoftmax(Function):
    """y = x - logsumexp(x) along `axis`, with logsumexp(x) = m + log(sum exp(x - m)), m = max x.
    dL/dx = g - softmax(x) * sum(g, axis) = g - exp(y) * sum(g, axis)"""

    def __init__(self, axis=-1):
        self.axis = axis

    def forward(self, x):
        xp = xp_of(x)
        shifted = x - x.max(axis=self.axis, keepdims=True)
        return shifted - xp.log(xp.exp(shifted).sum(axis=self.axis, keepdims=True))

    def backward(self, g):
        y = self.output
        return g - exp(y) * g.sum(axis=self.axis, keepdims=True)


class LayerNorm(Function):
    """Layer normalisation over the last axis, with weight (gamma) and bias (beta):

        mu = mean(x),  var = mean((x - mu)^2)  (biased),  rstd = 1 / sqrt(var + eps)
        xhat = (x - mu) * rstd,  y = xhat * weight + bias          x: (..., d) -> (..., d)

    Backward, with gh = g * weight and means over the last axis:
        dL/dx = rstd * (gh - mean(gh) - xhat * mean(gh * xhat))
        dL/dweight = sum over leading axes of g * xhat,  dL/dbias = sum of g
    With create_graph the gradient is taken through the composed formula instead,
    so that it can be differentiated again.
    """

    def __init__(self, eps=1e-5):
        self.eps = eps

    # Speed: in-place updates and einsum row dot products (sum_i a_i b_i without the
    # temporary a * b) save about a third of the time over the plain formulas.
    def forward(self, x, weight, bias):
        xp = xp_of(x)
        d = x.shape[-1]
        xhat = x - x.mean(axis=-1, keepdims=True)                        # centred
        var = xp.einsum("...i,...i->...", xhat, xhat)[..., None] / d    # biased variance
        self.rstd = 1.0 / xp.sqrt(var + self.eps)
        xhat *= self.rstd
        self.xhat = xhat
        y = xhat * weight
        y += bias
        return y

    def backward(self, g):
        x, weight, bias = self.inputs
        if is_grad_enabled():   # create_graph: differentiate the composed formula
            return tuple(autograd_grad(layer_norm_composed(x, weight, bias, self.eps),
                                       [x, weight, bias], g, create_graph=True))
        xp = xp_of(g.data)
        g, xhat = g.data, self.xhat
        d = g.shape[-1]
        gh = g * weight.data
        mean_gh = gh.mean(axis=-1, keepdims=True)
        mean_gh_xhat = xp.einsum("...i,...i->...", gh, xhat)[..., None] / d
        grad_x = xhat * mean_gh_xhat                  # rstd * (gh - mean(gh) - xhat * mean(gh xhat))
        xp.subtract(gh, grad_x, out=grad_x)
        grad_x -= mean_gh
        grad_x *= self.rstd
        rows_g, rows_xhat = g.reshape(-1, d), xhat.reshape(-1, d)
        grad_weight = xp.einsum("ni,ni->i", rows_g, rows_xhat)
        return wrap(grad_x), wrap(grad_weight), wrap(rows_g.sum(axis=0))

    def release(self):
        super().release()
        self.xhat = self.rstd = None


def layer_norm_composed(x, weight, bias, eps):
    """The same layer norm written with primitive ops (reference and create_graph path)."""
    mu = x.mean(axis=-1, keepdims=True)
    centred = x - mu
    var = (centred * centred).mean(axis=-1, keepdims=True)
    return centred / (var + eps).sqrt() * weight + bias


_SQRT_HALF = 1 / math.sqrt(2.0)
_INV_SQRT_2PI = 1 / math.sqrt(2.0 * math.pi)
_TANH_SCALE = math.sqrt(2.0 / math.pi)


class GELU(Function):
    """Gaussian error linear unit, y = x * Phi(x), Phi the standard normal CDF.

    exact ("none"):  Phi(x) = (1 + erf(x / sqrt 2)) / 2
                     dy/dx = Phi(x) + x * phi(x),  phi(x) = exp(-x^2/2) / sqrt(2 pi)
    "tanh":          y = x/2 * (1 + t),  t = tanh(u),  u = sqrt(2/pi) (x + 0.044715 x^3)
                     dy/dx = (1 + t)/2 + x/2 * (1 - t^2) * sqrt(2/pi) * (1 + 3 * 0.044715 x^2)
    """

    def __init__(self, approximate="none"):
        if approximate not in ("none", "tanh"):
            raise ValueError(f'gelu: approximate must be "none" or "tanh", got {approximate!r}')
        self.approximate = approximate

    def forward(self, x):
        xp = xp_of(x)
        if self.approximate == "tanh":
            return 0.5 * x * (1.0 + xp.tanh(_TANH_SCALE * (x + 0.044715 * x * x * x)))
        # Phi(x) is kept for backward: erf is the costly part, so compute it once
        self.cdf = 0.5 * (1.0 + backend.erf(x * _SQRT_HALF).astype(x.dtype, copy=False))
        return x * self.cdf

    def backward(self, g):
        x = self.inputs[0]
        if not is_grad_enabled():   # plain backward: the slope on arrays, no Tensor per step
            return wrap(g.data * self._slope(x.data))
        if self.approximate == "tanh":
            t = tanh(_TANH_SCALE * (x + 0.044715 * x * x * x))
            slope = 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * _TANH_SCALE * (1.0 + 3 * 0.044715 * x * x)
        else:
            cdf = 0.5 * (1.0 + Erf()(x * _SQRT_HALF))
            slope = cdf + x * (_INV_SQRT_2PI * exp(-0.5 * x * x))
        return g * slope

    def _slope(self, x):
        """dy/dx on arrays (the formulas above), computed in x's dtype."""
        xp = xp_of(x)
        if self.approximate == "tanh":
            t = xp.tanh(_TANH_SCALE * (x + 0.044715 * x * x * x))
            return 0.5 * (1.0 + t) + (0.5 * _TANH_SCALE) * x * (1.0 - t * t) * (1.0 + 3 * 0.044715 * x * x)
        return self.cdf + _INV_SQRT_2PI * x * xp.exp(-0.5 * x * x)

    def release(self):
        super().release()
        self.cdf = None
