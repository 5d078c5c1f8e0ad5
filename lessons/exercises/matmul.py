"""Exercise (warm-up): the backward of a matrix product.

The forward
    Y = A @ B          A (..., n, k), B (k, m) -> Y (..., n, m)
    With leading batch axes "..." on A, every item of the batch meets the same B.

What to write
    matmul_backward(G, A, B) -> (dA, dB), where G = dL/dY has Y's shape; dA = dL/dA has
    A's shape and dB = dL/dB has B's shape.

The math
    Y_ij = sum_p A_ip B_pj, so dY_ij/dA_ip = B_pj and dY_ij/dB_pj = A_ip. The chain rule
    adds up the paths through every Y_ij that an entry of A or B reaches:
        dL/dA_ip = sum_j G_ij B_pj           which matrix product is this?
        dL/dB_pj = sum_i A_ip G_ij           and with a batch, B reaches every item: sum those too
    Most mistakes show in the shapes: each gradient has the shape of its input.

In minigrad
    minigrad/ops/reduce.py MatMul.backward. There the engine (sum_to, called by run_backward
    in minigrad/autograd.py) sums a broadcast input's gradient back to its shape; here you do.

Check:  python lessons check matmul
"""
import numpy as np  # noqa: F401  (for your answer)


def matmul_backward(G, A, B):
    """G (..., n, m), A (..., n, k), B (k, m) -> dA (..., n, k), dB (k, m)."""
    raise NotImplementedError("return dA and dB: the math is at the top of this file")
