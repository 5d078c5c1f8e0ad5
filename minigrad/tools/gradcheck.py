"""Check analytic gradients against central differences.

For a scalar L(x), the central difference

    dL/dx_j  ~  (L(x + eps e_j) - L(x - eps e_j)) / (2 eps)

has error O(eps^2), so in float64 with eps = 1e-6 it agrees with a correct
analytic gradient to about 1e-8 relative.

A function with a tensor output y is reduced to the scalar L = sum(y * r) for a
fixed random r, so the check compares J^T r (what backward computes) with its
numerical estimate; a wrong derivative almost surely changes J^T r. (With r all
ones, a backward that hands the upstream gradient back permuted, or summed in
the wrong places, would look right: every entry of g would be the same.)
"""
import numpy as np

from .. import backend
from ..tensor import Tensor


class GradcheckError(AssertionError):
    """Raised by gradcheck with the worst element, its index and both values."""


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-4, seed=0):
    """True if every input's analytic gradient of fn matches central differences.

    fn: takes the tensors in `inputs` and returns one Tensor.
    inputs: a Tensor or list of Tensors; those with requires_grad are checked
            (each is copied to float64 first).
    Raises GradcheckError naming the input, the worst element's index, the analytic
    and the numerical value, when |analytic - numeric| > atol + rtol * |numeric|.
    """
    single = isinstance(inputs, Tensor)
    inputs = [inputs] if single else list(inputs)
    xs = [Tensor(x.data.astype("float64"), requires_grad=True) if isinstance(x, Tensor) and x.requires_grad
          else x for x in inputs]
    checked = [i for i, x in enumerate(xs) if isinstance(x, Tensor) and x.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input requires grad")

    output = fn(*xs)
    host_rng = np.random.default_rng(seed)
    weights = host_rng.standard_normal(output.shape)
    weights = Tensor(backend.to_device(weights, output.device))

    def scalar():
        # with gradients on, so that fn may itself differentiate (mg.grad inside fn)
        return float((fn(*xs).data.astype("float64") * weights.data).sum())

    (output * weights).sum().backward()
    for i in checked:
        x = xs[i]
        analytic = backend.to_numpy(x.grad.data) if x.grad is not None else np.zeros(x.shape)
        numeric = np.zeros(x.shape)
        for index in np.ndindex(*x.shape):
            original = x.data[index].item()
            x.data[index] = original + eps
            plus = scalar()
            x.data[index] = original - eps
            minus = scalar()
            x.data[index] = original
            numeric[index] = (plus - minus) / (2 * eps)
        # every element is checked on its own: one wrong element fails the check. A NaN or
        # inf on either side fails too (a NaN compares false with everything, so it would
        # otherwise pass), and is reported first.
        error = np.abs(analytic - numeric) - (atol + rtol * np.abs(numeric))
        error = np.where(np.isfinite(error), error, np.inf)
        if error.size and error.max() > 0:
            worst = np.unravel_index(np.argmax(error), error.shape)
            raise GradcheckError(
                f"gradcheck: input {i} (shape {x.shape}) at index {tuple(int(k) for k in worst)}: "
                f"analytic {analytic[worst]:.10g} vs numerical {numeric[worst]:.10g} "
                f"(atol={atol}, rtol={rtol})")
    return True
