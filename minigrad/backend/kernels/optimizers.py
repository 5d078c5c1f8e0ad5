"""Optimizer updates on arrays, in place, over cache-sized blocks on the kernel threads.

optim.py keeps each param group's parameters (and their gradients and moments) in one
flat array per device and dtype, so that one call of these kernels updates every
parameter: PyTorch's "foreach" idea. The per-parameter path calls the same kernels on
each parameter's own arrays, so both give the same numbers, bit for bit.

    SGD (torch.optim.SGD), g the gradient, b the momentum buffer, t the step:
        g <- g + weight_decay * w
        b <- g  at t = 1;   b <- momentum * b + (1 - dampening) * g  after
        g <- g + momentum * b  (nesterov)  or  g <- b
        w <- w - lr * g
    Adam / AdamW (torch.optim.Adam, AdamW):
        w <- w * (1 - lr * weight_decay)          (AdamW: decoupled decay)
        g <- g + weight_decay * w                 (Adam: L2 penalty through the gradient)
        m <- b1 m + (1 - b1) g,   v <- b2 v + (1 - b2) g^2
        w <- w - lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
"""
import math

import numpy

from .. import get_array_module
from . import gpu, parallel


def _in_blocks(update, *arrays):
    """update(*slices) over the same flat blocks of equally shaped arrays, which it changes in place."""
    xp = get_array_module(arrays[0])
    if xp is not numpy or not all(a.flags.c_contiguous for a in arrays):
        update(*arrays)
        return
    parallel.for_flat_blocks(update, arrays)


def sgd_update(param, grad, buffer, lr, momentum, dampening, nesterov, weight_decay, first_step):
    """One SGD step in place on param (and buffer, with momentum); buffer may be None
    when momentum is 0. At the first step the buffer takes the gradient."""
    def update(w, g, *b):
        if weight_decay:
            g = g + weight_decay * w
        if momentum:
            b = b[0]
            if first_step:
                b[...] = g
            else:
                b *= momentum
                b += (1.0 - dampening) * g
            g = g + momentum * b if nesterov else b
        w -= lr * g
    _in_blocks(update, param, grad, *(() if buffer is None else (buffer,)))


def adam_update(param, grad, exp_avg, exp_avg_sq, step, lr, beta1, beta2, eps, weight_decay, decoupled):
    """One Adam (decoupled=False) or AdamW (decoupled=True) step in place on param,
    exp_avg (m) and exp_avg_sq (v); step is t after this update (1 at the first)."""
    step_size = lr / (1.0 - beta1 ** step)
    correction = math.sqrt(1.0 - beta2 ** step)
    fused = gpu.kernel(get_array_module(param), "adam_update", param.dtype)
    if fused is not None and grad.dtype == param.dtype:
        fused(grad, step_size, correction, beta1, beta2, eps, 0.0 if decoupled else weight_decay,
              lr * weight_decay if decoupled else 0.0, param, exp_avg, exp_avg_sq)
        return

    def update(w, g, m, v):
        xp = get_array_module(w)
        if weight_decay and decoupled:
            w *= 1.0 - lr * weight_decay
        elif weight_decay:
            g = g + weight_decay * w
        m *= beta1
        m += (1.0 - beta1) * g
        v *= beta2
        v += (1.0 - beta2) * (g * g)
        denominator = xp.sqrt(v)
        denominator /= correction
        denominator += eps
        w -= step_size * (m / denominator)
    _in_blocks(update, param, grad, exp_avg, exp_avg_sq)


def gather(arrays, out):
    """Copy arrays, flattened, one after another into the flat array out (one call)."""
    xp = get_array_module(out)
    if len(arrays) == 1:
        out[...] = arrays[0].reshape(-1)
    else:
        xp.concatenate([a.reshape(-1) for a in arrays], out=out)
    return out
