"""Reference solution to lessons/exercises/cross_entropy.py."""
import numpy as np


def cross_entropy_backward(logits, target):
    n = logits.shape[0]
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))    # stable: the largest is exp(0)
    probs = shifted / shifted.sum(axis=-1, keepdims=True)
    probs[np.arange(n), target] -= 1.0                               # softmax - onehot
    return probs / n                                                 # the mean over the rows
