"""Reductions: sums, means, variances, maxima, and the matrix product (a sum of products).

A reduction over `axis` maps x (..., n, ...) to y without that axis (or with it
kept as size 1, keepdims=True). Every element of x that fed y[j] gets y[j]'s
gradient, so backward broadcasts g back over the reduced axes.
"""
from .. import backend
from ..autograd import Function
from ..tensor import Tensor, as_tensors
from .shape import broadcast_to

xp_of = backend.get_array_module


def normalize_axis(axis, ndim, op):
    """`axis` (None, an int or a sequence) as a sorted tuple of axes in [0, ndim), or None.
    An axis outside [-ndim, ndim) is an error (never wrapped); a 0-d tensor accepts 0 and -1."""
    if axis is None:
        return None
    axes = tuple(axis) if isinstance(axis, (tuple, list)) else (axis,)
    limit = max(ndim, 1)
    for a in axes:
        if not -limit <= a < limit:
            raise ValueError(f"{op}: axis {a} is out of range for a tensor with {ndim} dimension"
                             f"{'' if ndim == 1 else 's'} (allowed: {-limit} to {limit - 1})")
    normalized = sorted({a % limit for a in axes}) if ndim else []
    if len(normalized) != len(axes) and ndim:
        raise ValueError(f"{op}: axis {axis} names the same axis twice")
    return tuple(normalized)


def _restore_reduced(g, x_shape, axis, keepdims):
    """g with the reduced axes put back as size 1, so that it broadcasts against x."""
    if keepdims or len(x_shape) == g.ndim:
        return g
    if axis is None:
        return g.reshape((1,) * len(x_shape))
    shape = list(x_shape)
    for a in axis:
        shape[a] = 1
    return g.reshape(tuple(shape))


class Sum(Function):
    """y = sum of x over `axis`.   dL/dx = g broadcast back over the summed axes"""

    def __init__(self, axis=None, keepdims=False):
        self.axis, self.keepdims = axis, keepdims

    def forward(self, x):
        self.axis = normalize_axis(self.axis, x.ndim, "sum")
        return x.sum(axis=self.axis, keepdims=self.keepdims)

    def backward(self, g):
        x_shape, = self.input_shapes
        return broadcast_to(_restore_reduced(g, x_shape, self.axis, self.keepdims), x_shape)


class Max(Function):
    """y = max of x over `axis`.
    dL/dx = g at the positions equal to the max, shared equally between ties
    (like torch.amax; torch.max(dim) gives it to one index)."""
    name, pick = "max", staticmethod(lambda xp: xp.max)

    def __init__(self, axis=None, keepdims=False):
        self.axis, self.keepdims = axis, keepdims

    def forward(self, x):
        self.axis = normalize_axis(self.axis, x.ndim, self.name)
        if x.size == 0:
            raise ValueError(f"{self.name}: cannot reduce an empty tensor of shape {tuple(x.shape)}")
        y = self.pick(xp_of(x))(x, axis=self.axis, keepdims=self.keepdims)
        self.save_for_backward(x, y)
        return y

    def backward(self, g):
        x, y = self.saved_tensors
        hit = (x == _restore_reduced(y, x.shape, self.axis, self.keepdims)).astype(x.dtype)
        share = hit / hit.sum(axis=self.axis, keepdims=True)
        return _restore_reduced(g, x.shape, self.axis, self.keepdims) * share


class Min(Max):
    """y = min of x over `axis`.   dL/dx = g at the positions equal to the min, shared
    equally between ties."""
    name, pick = "min", staticmethod(lambda xp: xp.min)


def mean(x, axis=None, keepdims=False):
    """Arithmetic mean over `axis`: sum / count (NaN for an empty reduction, as numpy)."""
    total = x.sum(axis=axis, keepdims=keepdims)
    count = x.size // max(total.size, 1) if x.size else 0
    return total / count if count else total * float("nan")


def var(x, axis=None, keepdims=False):
    """Biased variance: mean((x - mean(x))^2), dividing by n as layer norm does."""
    centred = x - x.mean(axis=axis, keepdims=True)
    return (centred * centred).mean(axis=axis, keepdims=keepdims)


def argmax(x, axis=None, keepdims=False):
    """Index of the largest element along `axis` (of the flattened tensor when None); int64."""
    xp = xp_of(x.data)
    axis = None if axis is None else normalize_axis(axis, x.ndim, "argmax")[0]
    result = xp.argmax(x.data, axis=axis)
    if keepdims and axis is not None:
        result = xp.expand_dims(result, axis)
    return Tensor._from_array(result)


class MatMul(Function):
    """y = a @ b for a (..., n, k), b (..., k, m) -> (..., n, m), batch axes broadcast.
    dL/da = g @ b^T,  dL/db = a^T @ g   (^T swaps the last two axes; each product is
    formed only for an input that needs it: a data batch x in x @ W does not)."""

    def forward(self, a, b):
        if a.shape[-1] != b.shape[-2]:
            raise ValueError(f"matmul: shapes {tuple(a.shape)} and {tuple(b.shape)} do not align: "
                             f"{a.shape[-1]} != {b.shape[-2]}")
        self.save_for_backward(a, b)
        return xp_of(a).matmul(a, b)

    def backward(self, g):
        a, b = self.saved_tensors
        needs_a, needs_b = self.needs_input_grad
        return (g @ b.swapaxes(-1, -2) if needs_a else None,
                a.swapaxes(-1, -2) @ g if needs_b else None)


def matmul(a, b):
    """Matrix product with numpy's rules: 1-D operands are promoted to a row (left) or
    column (right) and that axis removed afterwards."""
    a, b = as_tensors([a, b])
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"matmul: needs at least 1-D operands, got shapes {a.shape} and {b.shape}")
    if a.ndim > 2 and b.ndim == 2 and a.shape[-1] == b.shape[0]:
        # (..., k) @ (k, m) as one 2-D product: one big BLAS call instead of one per
        # batch row, and dL/db = a^T g without building a (batch, k, m) array to sum
        return MatMul()(a.reshape(-1, a.shape[-1]), b).reshape(a.shape[:-1] + (b.shape[1],))
    squeeze_left, squeeze_right = a.ndim == 1, b.ndim == 1
    if squeeze_left:
        a = a.reshape(1, -1)
    if squeeze_right:
        b = b.reshape(-1, 1)
    y = MatMul()(a, b)
    if squeeze_left:
        y = y.reshape(y.shape[:-2] + y.shape[-1:])
    if squeeze_right:
        y = y.reshape(y.shape[:-1])
    return y
