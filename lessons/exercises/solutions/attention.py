"""Reference solution to lessons/exercises/attention.py."""
import numpy as np


def attention_backward(g, q, k, v, mask=None):
    scale = 1.0 / np.sqrt(q.shape[-1])
    kT = np.swapaxes(k, -1, -2)
    scores = q @ kT * scale                                        # (..., Tq, Tk)
    if mask is not None:
        scores = np.where(mask, scores, -np.inf)
    weights = np.exp(scores - scores.max(axis=-1, keepdims=True))
    weights /= weights.sum(axis=-1, keepdims=True)                 # P, zero where masked
    dv = np.swapaxes(weights, -1, -2) @ g                          # out = P v
    d_weights = g @ np.swapaxes(v, -1, -2)
    d_scores = weights * (d_weights - (d_weights * weights).sum(axis=-1, keepdims=True))
    dq = d_scores @ k * scale                                      # S = q k^T / sqrt(d)
    dk = np.swapaxes(d_scores, -1, -2) @ q * scale
    return dq, dk, dv
