"""Exercise: the backward of layer normalisation.

The forward, over the last axis of x (..., d), with weight and bias (d,):
    mu    = mean(x)                          over the last axis
    var   = mean((x - mu)^2)                 biased: divides by d
    x_hat = (x - mu) / sqrt(var + eps)
    y     = x_hat * weight + bias

What to write
    layer_norm_backward(g, x, weight, eps) -> (dx, dweight, dbias), with g = dL/dy (..., d);
    dx has x's shape, dweight and dbias have shape (d,).

The math
    dbias and dweight are the easy ones: bias and weight are used by every row, so their
    gradients are sums over all the leading axes (of g, and of g * x_hat).
    For dx, let g_hat = g * weight (the gradient reaching x_hat). x reaches x_hat three
    ways: directly, through mu, and through var (both means depend on every x_j of the
    row). With s = sqrt(var + eps):
        dx_hat_i/dx_j = (delta_ij - 1/d) / s  -  x_hat_i x_hat_j / (d s)
    (the first part from x - mu, the second from differentiating 1/s: dvar/dx_j =
    2 (x_j - mu) / d). Multiply by g_hat_i, sum over i, and write the result with two
    means over the last axis. Treating mu and var as constants gives g_hat / s, which
    is wrong: the grader will tell you if you do.

In minigrad
    minigrad/ops/composite.py LayerNormOp (its docstring states the answer: peek only
    after trying) and the kernel layer_norm_backward in minigrad/backend/kernels/normalization.py.

Check:  python lessons check layer_norm
"""
import numpy as np  # noqa: F401  (for your answer)


def layer_norm_backward(g, x, weight, eps=1e-5):
    """g, x (..., d), weight (d,) -> dx (..., d), dweight (d,), dbias (d,)."""
    raise NotImplementedError("return dx, dweight and dbias: the math is at the top of this file")
