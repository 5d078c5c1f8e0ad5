"""Composite ops fused into one Function each: softmax, log_softmax, layer norm, GELU,
cross-entropy, scaled dot-product attention.

Each could be composed from the primitive ops (the *_composed functions below do
exactly that, and the tests check that both agree, in value and in first and second
derivatives). Fused, the forward is one kernel call (backend/kernels) that makes
fewer temporary arrays, and the backward has two forms:

    backward_arrays   the closed-form derivative as one kernel call, taken by the
                      engine for an ordinary backward
    backward          the same derivative written with Tensor ops, so that with
                      create_graph=True it can be differentiated again
"""
import math

from .. import backend
from ..autograd import Function
from ..backend import kernels
from ..tensor import Tensor
from .elementwise import Erf, Tanh, where


class SoftmaxOp(Function):
    """y_i = exp(x_i - max x) / sum_j exp(x_j - max x) along `axis`.
    Subtracting the max changes nothing mathematically and keeps exp from overflowing.
    dL/dx = y * (g - sum(g * y, axis))"""

    def __init__(self, axis=-1):
        self.axis = axis

    def forward(self, x):
        y = kernels.normalization.softmax(x, self.axis)
        self.save_for_backward(y)
        return y

    def backward(self, g):
        y, = self.saved_tensors
        return y * (g - (g * y).sum(axis=self.axis, keepdims=True))

    def backward_arrays(self, g):
        y, = self.saved_arrays
        return kernels.normalization.softmax_backward(g, y, self.axis)


class LogSoftmaxOp(Function):
    """y = x - logsumexp(x) along `axis`, logsumexp(x) = m + log(sum exp(x - m)), m = max x.
    dL/dx = g - softmax(x) * sum(g, axis) = g - exp(y) * sum(g, axis)"""

    def __init__(self, axis=-1):
        self.axis = axis

    def forward(self, x):
        y = kernels.normalization.log_softmax(x, self.axis)
        self.save_for_backward(y)
        return y

    def backward(self, g):
        y, = self.saved_tensors
        return g - y.exp() * g.sum(axis=self.axis, keepdims=True)

    def backward_arrays(self, g):
        y, = self.saved_arrays
        return kernels.normalization.log_softmax_backward(g, y, self.axis)


class LayerNormOp(Function):
    """Layer normalisation over the last axis, with weight (gamma) and bias (beta):

        mu = mean(x),  var = mean((x - mu)^2)  (biased),  rstd = 1 / sqrt(var + eps)
        xhat = (x - mu) * rstd,  y = xhat * weight + bias          x: (..., d) -> (..., d)

    Backward, with gh = g * weight and means over the last axis:
        dL/dx = rstd * (gh - mean(gh) - xhat * mean(gh * xhat))
        dL/dweight = g * xhat,  dL/dbias = g      (summed over the leading axes)
    """

    def __init__(self, eps=1e-5):
        self.eps = eps

    def forward(self, x, weight, bias):
        y, xhat, rstd = kernels.normalization.layer_norm_forward(x, weight, bias, self.eps)
        self.save_for_backward(x, weight, xhat, rstd)
        return y

    def backward(self, g):
        x, weight, _, _ = self.saved_tensors
        xhat, rstd = normalize(x, self.eps)             # recomputed from x: differentiable
        gh = g * weight
        grad_x = rstd * (gh - gh.mean(axis=-1, keepdims=True)
                         - xhat * (gh * xhat).mean(axis=-1, keepdims=True))
        return grad_x, g * xhat, g

    def backward_arrays(self, g):
        _, weight, xhat, rstd = self.saved_arrays
        return kernels.normalization.layer_norm_backward(g, xhat, rstd, weight)


def normalize(x, eps, axes=-1):
    """xhat = (x - mean) / sqrt(var + eps) and rstd = 1 / sqrt(var + eps) over `axes`
    (biased variance), with Tensor ops."""
    centred = x - x.mean(axis=axes, keepdims=True)
    rstd = 1.0 / ((centred * centred).mean(axis=axes, keepdims=True) + eps).sqrt()
    return centred * rstd, rstd


def layer_norm_composed(x, weight, bias, eps):
    """Layer norm from primitive ops (the reference LayerNormOp is tested against)."""
    return normalize(x, eps)[0] * weight + bias


SQRT_HALF = kernels.activations.SQRT_HALF
TANH_SCALE = kernels.activations.TANH_SCALE
TANH_CUBIC = kernels.activations.TANH_CUBIC
INV_SQRT_2PI = kernels.activations.INV_SQRT_2PI


class GeluOp(Function):
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
        y, cdf = kernels.activations.gelu_forward(x, self.approximate)
        self.save_for_backward(x, cdf)
        return y

    def backward(self, g):
        x = self.saved_tensors[0]
        if self.approximate == "tanh":
            t = Tanh()(TANH_SCALE * (x + TANH_CUBIC * x * x * x))
            slope = 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * TANH_SCALE * (1.0 + 3 * TANH_CUBIC * x * x)
        else:
            cdf = 0.5 * (1.0 + Erf()(x * SQRT_HALF))
            slope = cdf + x * INV_SQRT_2PI * (-0.5 * x * x).exp()
        return g * slope

    def backward_arrays(self, g):
        x, cdf = self.saved_arrays
        return kernels.activations.gelu_backward(g, x, self.approximate, cdf)


class CrossEntropyOp(Function):
    """Cross-entropy of softmax(logits) against class ids, one loss per row:

        loss_i = -(1 - e) log p_i[t_i] - (e / C) sum_c log p_i[c],   p_i = softmax(logits_i)
        dL/dlogits_i = g_i * (p_i - q_i),   q_i = (1 - e) onehot(t_i) + e / C

    Rows with valid_i False (ignore_index) are selected away: their loss and gradient
    are 0 whatever their logits hold (inf or NaN included).
    logits (N, C), ids (N,) integers, valid (N,) bool or None -> (N,)
    """

    def __init__(self, ids, valid=None, smoothing=0.0):
        self.ids, self.valid, self.smoothing = ids, valid, smoothing

    def forward(self, logits):
        loss, p = kernels.losses.cross_entropy_forward(logits, self.ids, self.valid, self.smoothing)
        self.save_for_backward(logits, p)
        return loss.astype(logits.dtype, copy=False)

    def backward(self, g):
        logits, _ = self.saved_tensors
        n, n_classes = logits.shape
        q = Tensor._from_array(kernels.losses.smoothed_targets(self.ids, n_classes, self.smoothing, logits.data))
        grad = (SoftmaxOp(-1)(logits) - q) * g.reshape(n, 1)
        return grad if self.valid is None else where(self.valid.reshape(n, 1), grad, 0.0)

    def backward_arrays(self, g):
        logits, p = self.saved_arrays
        return kernels.losses.cross_entropy_backward(g, p, self.ids, self.valid, self.smoothing, logits.dtype)


class AttentionOp(Function):
    """Scaled dot-product attention, O = softmax(c q k^T, masked) v with c = 1/sqrt(d_k):

        S = c q k^T (-inf where `allowed` is False),  W = softmax(S) along the keys
        (an all-zero row for a query that may attend to nothing),  O = W v
        dL/dv = W^T G,  dL/dS = W * (G v^T - D),  D_i = sum_j G_ij O_ij,
        dL/dq = c dL/dS k,  dL/dk = c dL/dS^T q                          (G = dL/dO)

    q (..., Tq, d_k), k (..., Tk, d_k), v (..., Tk, d_v) -> (..., Tq, d_v); allowed is a
    constant boolean array broadcastable to (..., Tq, Tk), or None. The kernel works a
    block of queries at a time and keeps only O and one log-sum-exp per query, so the
    weights of all heads are never held at once.
    """

    def __init__(self, allowed=None):
        self.allowed = allowed

    def forward(self, q, k, v):
        out, lse = kernels.attention.attention_forward(q, k, v, self.allowed)
        self.save_for_backward(q, k, v, out, lse)
        return out

    def backward(self, g):
        q, k, v, out, _ = self.saved_tensors
        w = attention_weights_composed(q, k, self.allowed)
        ds = w * (g @ v.swapaxes(-1, -2) - (g * out).sum(axis=-1, keepdims=True))
        scale = 1.0 / math.sqrt(q.shape[-1])
        return (ds @ k) * scale, (ds.swapaxes(-1, -2) @ q) * scale, w.swapaxes(-1, -2) @ g

    def backward_arrays(self, g):
        q, k, v, out, lse = self.saved_arrays
        return kernels.attention.attention_backward(g, q, k, v, out, lse, self.allowed)


def attention_weights_composed(q, k, allowed=None):
    """W = softmax(q k^T / sqrt(d_k)) from primitive ops, masked entries 0, and all-zero rows
    for queries that may attend to nothing (the reference AttentionOp is tested against)."""
    scores = (q @ k.swapaxes(-1, -2)) * (1.0 / math.sqrt(q.shape[-1]))
    if allowed is None:
        return SoftmaxOp(-1)(scores)
    # a large finite negative, not -inf: exp gives exactly 0 without inf - inf = NaN
    scores = scores.masked_fill(~allowed, float(backend.numpy.finfo(scores.dtype).min) / 2)
    weights = SoftmaxOp(-1)(scores)
    may_attend = allowed.any(axis=-1, keepdims=True)
    if bool(may_attend.all()):
        return weights
    # a fully masked row saw only equal fill values, so softmax made it uniform: zero it
    return weights * Tensor._from_array(may_attend.astype(weights.dtype))


def softmax_composed(x, axis=-1):
    """softmax from primitives (the reference SoftmaxOp is tested against)."""
    e = (x - x.max(axis=axis, keepdims=True).detach()).exp()
    return e / e.sum(axis=axis, keepdims=True)


def log_softmax_composed(x, axis=-1):
    shifted = x - x.max(axis=axis, keepdims=True).detach()
    return shifted - shifted.exp().sum(axis=axis, keepdims=True).log()


def gelu_composed(x, approximate="none"):
    """GELU from primitives, with GeluOp's constants."""
    if approximate == "tanh":
        return 0.5 * x * (1.0 + Tanh()(TANH_SCALE * (x + TANH_CUBIC * x * x * x)))
    return 0.5 * x * (1.0 + Erf()(x * SQRT_HALF))
