"""Exercise: the backward of scaled dot-product attention.

The forward, for queries q (..., Tq, d), keys k (..., Tk, d) and values v (..., Tk, dv):
    S = q k^T / sqrt(d)              (..., Tq, Tk)  how well each query matches each key
    S_ij = -inf where mask_ij is False (a query may not look at that key)
    P = softmax(S) over the last axis   the attention weights; each row sums to 1
    out = P v                        (..., Tq, dv)  each query's weighted average of the values
k^T swaps the last two axes only (np.swapaxes(k, -1, -2)); leading axes (batch, heads)
are carried along.

What to write
    attention_backward(g, q, k, v, mask) -> (dq, dk, dv), with g = dL/dout; mask is None
    or a boolean (Tq, Tk) array, True = may attend. Recompute S and P from q, k and the
    mask first (forward and backward together: what an op saves, you rebuild).

The math: four steps backwards, each one you have met
    out = P v              a matrix product (the matmul exercise): dP = g v^T, dv = P^T g
    P = softmax(S)         the softmax exercise, row by row: dS = P * (dP - sum(dP * P))
    masked entries         P is 0 there, so dS is 0 there too: nothing more to do
    S = q k^T / sqrt(d)    a matrix product and a constant: dq = dS k / sqrt(d), dk = dS^T q / sqrt(d)

In minigrad
    minigrad/functional.py scaled_dot_product_attention is these steps as Tensor ops, so
    autograd derives exactly this backward from SoftmaxOp and MatMul.

Check:  python lessons check attention
"""
import numpy as np  # noqa: F401  (for your answer)


def attention_backward(g, q, k, v, mask=None):
    """g (..., Tq, dv), q (..., Tq, d), k (..., Tk, d), v (..., Tk, dv), mask (Tq, Tk) bool or None
    -> dq, dk, dv with the shapes of q, k, v."""
    raise NotImplementedError("return dq, dk and dv: the math is at the top of this file")
