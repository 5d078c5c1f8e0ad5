"""Exercise: one step of the Adam optimizer.

The math: the update (Kingma and Ba 2015; torch.optim.Adam, with its coupled weight decay), at step
t = 1, 2, 3, ... for a parameter w with gradient g:
    g     <- g + weight_decay * w                 L2 penalty, added to the gradient
    m     <- beta1 * m + (1 - beta1) * g          running mean of the gradient (first moment)
    v     <- beta2 * v + (1 - beta2) * g^2        running mean of its square (second moment)
    m_hat  = m / (1 - beta1^t)                    bias correction: m and v start at 0, so
    v_hat  = v / (1 - beta2^t)                    early averages are too small without it
    w     <- w - lr * m_hat / (sqrt(v_hat) + eps)

Each parameter moves by about lr in the direction of the gradient's sign where the
gradient is steady, and less where it is noisy: sqrt(v_hat) measures its typical size.

What to write
    adam_step(param, grad, m, v, t, lr, betas, eps, weight_decay) -> (param, m, v): the new
    parameter and the new raw moments m and v (before bias correction, as PyTorch keeps
    them; the grader feeds them back at step t + 1). Returning new arrays or changing the
    given ones in place are both fine.

In minigrad
    minigrad/optim.py Adam.update and Adam.adam_step (AdamW beside it decouples the decay).

Check:  python lessons check adam
"""
import numpy as np  # noqa: F401  (for your answer)


def adam_step(param, grad, m, v, t, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
    """param, grad, m, v: arrays of one shape; t: the step number, from 1 -> (param, m, v)."""
    raise NotImplementedError("return the new param, m and v: the math is at the top of this file")
