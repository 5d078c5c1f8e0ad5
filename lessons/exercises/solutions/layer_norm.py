"""Reference solution to lessons/exercises/layer_norm.py."""
import numpy as np


def layer_norm_backward(g, x, weight, eps=1e-5):
    mu = x.mean(axis=-1, keepdims=True)
    inv_std = 1.0 / np.sqrt(((x - mu) ** 2).mean(axis=-1, keepdims=True) + eps)
    x_hat = (x - mu) * inv_std
    leading = tuple(range(x.ndim - 1))
    g_hat = g * weight
    # dx_j = sum_i g_hat_i [(delta_ij - 1/d) - x_hat_i x_hat_j / d] / s
    #      = (g_hat_j - mean(g_hat) - x_hat_j mean(g_hat * x_hat)) / s
    dx = inv_std * (g_hat - g_hat.mean(axis=-1, keepdims=True)
                    - x_hat * (g_hat * x_hat).mean(axis=-1, keepdims=True))
    return dx, (g * x_hat).sum(axis=leading), g.sum(axis=leading)
