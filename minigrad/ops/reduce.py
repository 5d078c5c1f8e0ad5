"""Reductions: sums, means, variances, maxima, and the matrix product (a sum of products).

A reduction over `axis` maps x (..., n, ...) to y without that axis (or with it
kept as size 1, keepdims=True). Every element of x that fed y[j] gets y[j]'s
gradient, so backward broadcasts g back over the reduced axes.
"""
from .. import backend
from ..autograd import Function
from ..backend import kernels
from ..tensor import Tensor, as_tensors
from .elementwise import where
from .shape import broadcast_to, normalize_axis

xp_of = backend.get_array_module
_INT64, _FLOAT32 = backend.numpy.dtype("int64"), backend.numpy.dtype("float32")


def _reduced_count(shape, axis):
    """How many elements of x feed each element of the reduction over `axis`."""
    count = 1
    for a in range(len(shape)) if axis is None else axis:
        count *= shape[a]
    return count


def _reduced_shape(shape, axis, keepdims):
    """The shape of a reduction of `shape` over `axis` (a normalized tuple, or None)."""
    axis = range(len(shape)) if axis is None else axis
    if keepdims:
        return tuple(1 if a in axis else size for a, size in enumerate(shape))
    return tuple(size for a, size in enumerate(shape) if a not in axis)


def accumulator(dtype):
    """The dtype a sum over `dtype` is added up in: float32 for float16 (whose 65504
    limit and 11-bit mantissa a long sum exceeds), int64 for integers and bools (as
    PyTorch's sum); None: the dtype itself."""
    if dtype.kind in "biu":
        return _INT64
    return _FLOAT32 if dtype.kind == "f" and dtype.itemsize == 2 else None


class Reduction(Function):
    """A reduction over `axis` (None: all axes; an int; a tuple), keeping the reduced
    axes as size 1 when keepdims. forward checks the axis first (self.axis becomes a
    sorted tuple, or None)."""
    name = "reduce"

    def __init__(self, axis=None, keepdims=False):
        self.axis, self.keepdims = axis, keepdims

    def forward(self, x):
        self.axis = normalize_axis(self.axis, x.ndim, self.name)
        return self.reduce(x)

    def restore(self, g):
        """g (a Tensor or an array) with the reduced axes put back as size 1, so that it
        broadcasts against x."""
        x_shape = self.input_shapes[0]
        if self.keepdims or len(x_shape) == g.ndim:
            return g
        if self.axis is None:
            return g.reshape((1,) * len(x_shape))
        shape = list(x_shape)
        for a in self.axis:
            shape[a] = 1
        return g.reshape(tuple(shape))


class Sum(Reduction):
    """y = sum of x over `axis`.   dL/dx = g broadcast back over the summed axes
    (float16 is added up in float32, integers in int64: see accumulator)."""
    name = "sum"

    def reduce(self, x):
        wide = accumulator(x.dtype)
        total = x.sum(axis=self.axis, keepdims=self.keepdims, dtype=wide)
        return total.astype(x.dtype) if wide is _FLOAT32 else total

    def backward(self, g):
        return broadcast_to(self.restore(g), self.input_shapes[0])


class Mean(Reduction):
    """y = sum of x over `axis` / n, n = the number of elements reduced (NaN when n = 0).
    dL/dx = g / n broadcast back over the reduced axes."""
    name, float_valued = "mean", True

    def reduce(self, x):
        self.count = _reduced_count(x.shape, self.axis)
        total = x.sum(axis=self.axis, keepdims=self.keepdims, dtype=accumulator(x.dtype))
        mean = total * (1.0 / self.count) if self.count else total * float("nan")
        return mean.astype(x.dtype, copy=False)

    def backward(self, g):
        return broadcast_to(self.restore(g) * (1.0 / max(self.count, 1)), self.input_shapes[0])


class Var(Reduction):
    """y = sum((x - mean(x))^2) / (n - correction) over `axis`; correction=0 is the biased
    variance (layer norm's), 1 the unbiased sample variance (NaN when n - correction <= 0).
    dL/dx = g * 2 (x - mean(x)) / (n - correction)   (the mean's own dependence on x adds
    2/(n-c) * sum(x - mean) * ... = 0, since deviations from the mean sum to zero)."""
    name, float_valued = "var", True

    def __init__(self, axis=None, keepdims=False, correction=0):
        super().__init__(axis, keepdims)
        self.correction = correction

    def reduce(self, x):
        self.save_for_backward(x)
        self.divisor = _reduced_count(x.shape, self.axis) - self.correction
        wide = x.astype(accumulator(x.dtype) or x.dtype, copy=False)      # float16: float32 throughout
        centred = wide - wide.mean(axis=self.axis, keepdims=True)
        squares = (centred * centred).sum(axis=self.axis, keepdims=self.keepdims)
        var = squares * (1.0 / self.divisor) if self.divisor > 0 else squares * float("nan")
        return var.astype(x.dtype, copy=False)

    def backward(self, g):
        x, = self.saved_tensors
        centred = x - x.mean(axis=self.axis, keepdims=True)
        return self.restore(g) * centred * (2.0 / self.divisor if self.divisor > 0 else float("nan"))


class Max(Reduction):
    """y = max of x over `axis`.
    dL/dx = g at the positions equal to the max, shared equally between ties
    (like torch.amax; torch.max(dim) gives it to one index)."""
    name, pick = "max", staticmethod(lambda xp: xp.max)

    def reduce(self, x):
        if x.size == 0:
            raise ValueError(f"{self.name}: cannot reduce an empty tensor of shape {tuple(x.shape)}")
        y = self.pick(xp_of(x))(x, axis=self.axis, keepdims=self.keepdims)
        self.save_for_backward(x, y)
        return y

    def backward(self, g):
        x, y = self.saved_tensors
        hit = (x == self.restore(y)).astype(x.dtype)
        share = hit / hit.sum(axis=self.axis, keepdims=True)
        return self.restore(g) * share


class Min(Max):
    """y = min of x over `axis` (directly, not as -max(-x), which breaks unsigned and
    extreme integers).   dL/dx = g at the positions equal to the min, shared equally
    between ties."""
    name, pick = "min", staticmethod(lambda xp: xp.min)


class Prod(Reduction):
    """y = product of x over `axis`.
    dL/dx_i = g * prod_{j != i} x_j   (the product of the others: exact where x has zeros,
    where g * y / x_i would give 0/0)."""
    name = "prod"

    def reduce(self, x):
        self.save_for_backward(x)
        return x.prod(axis=self.axis, keepdims=self.keepdims)

    def _layout(self, shape):
        """The permutation that moves the reduced axes last, its inverse, and the kept shape."""
        reduced = tuple(range(len(shape))) if self.axis is None else self.axis
        kept = tuple(a for a in range(len(shape)) if a not in reduced)
        order = kept + reduced
        inverse = tuple(sorted(range(len(order)), key=order.__getitem__))
        return order, inverse, tuple(shape[a] for a in kept)

    def backward(self, g):
        # with Tensor ops (for grad of grad): the n products of n - 1 factors as one
        # (..., n, n) product with 1 on the diagonal. That is O(n^2), so backward_arrays
        # below gives the first derivative in O(n).
        x, = self.saved_tensors
        order, inverse, kept_shape = self._layout(x.shape)
        rows = x.transpose(*order).reshape(kept_shape + (1, -1))                  # (..., 1, n)
        eye = Tensor(xp_of(x.data).eye(rows.shape[-1], dtype=bool))
        others = where(eye, 1.0, rows).prod(axis=-1)                             # (..., n)
        others = others.reshape(tuple(x.shape[a] for a in order)).transpose(*inverse)
        return others * self.restore(g)

    def backward_arrays(self, g):
        # prod_{j != i} x_j = (x_0 ... x_{i-1}) * (x_{i+1} ... x_{n-1}): two running products
        x, = self.saved_arrays
        xp = xp_of(x)
        order, inverse, kept_shape = self._layout(x.shape)
        rows = x.transpose(order).reshape(kept_shape + (-1,))                    # (..., n)
        others = rows
        if rows.shape[-1]:
            ones = xp.ones(kept_shape + (1,), dtype=x.dtype)
            before = xp.concatenate([ones, xp.cumprod(rows, axis=-1)[..., :-1]], axis=-1)
            after = xp.concatenate([xp.cumprod(rows[..., ::-1], axis=-1)[..., -2::-1], ones], axis=-1)
            others = before * after
        others = others.reshape(tuple(x.shape[a] for a in order)).transpose(inverse)
        return others * self.restore(g)


class LogSumExp(Reduction):
    """y = log(sum(exp(x))) over `axis`, computed as m + log(sum(exp(x - m))) with
    m = max(x) so that exp never overflows (m = 0 where the max is infinite).
    dL/dx = g * exp(x - y) = g * softmax(x)."""
    name, float_valued = "logsumexp", True

    def reduce(self, x):
        xp = xp_of(x)
        if _reduced_count(x.shape, self.axis) == 0:                 # log(empty sum) = log 0
            y = xp.full(_reduced_shape(x.shape, self.axis, self.keepdims), -xp.inf, dtype=x.dtype)
        else:
            m = x.max(axis=self.axis, keepdims=True)
            m = xp.where(xp.isfinite(m), m, 0).astype(x.dtype, copy=False)
            total = xp.exp(x - m).sum(axis=self.axis, keepdims=True, dtype=accumulator(x.dtype))
            y = (xp.log(total) + m).astype(x.dtype, copy=False)
            y = y.reshape(_reduced_shape(x.shape, self.axis, self.keepdims))
        self.save_for_backward(x, y)
        return y

    def backward(self, g):
        x, y = self.saved_tensors
        return self.restore(g) * (x - self.restore(y)).exp()


class CumSum(Function):
    """y_i = x_0 + ... + x_i along `axis`.   dL/dx_i = g_i + ... + g_last (g summed from
    the end: flip, cumsum, flip)."""

    def __init__(self, axis):
        self.axis = axis

    def forward(self, x):
        if x.ndim == 0:
            normalize_axis(self.axis, 0, "cumsum")
            return x.copy()
        self.axis, = normalize_axis(self.axis, x.ndim, "cumsum")
        y = xp_of(x).cumsum(x, axis=self.axis, dtype=accumulator(x.dtype))
        return y.astype(x.dtype, copy=False) if x.dtype.kind == "f" else y

    def backward(self, g):
        if g.ndim == 0:
            return g
        return g.flip(self.axis).cumsum(self.axis).flip(self.axis)


def mean(x, axis=None, keepdims=False):
    """Arithmetic mean over `axis` (NaN for an empty reduction, as numpy and PyTorch)."""
    return Mean(axis, keepdims)(x)


def var(x, axis=None, keepdims=False, correction=0):
    """Variance over `axis`, dividing by n - correction (0: biased, as layer norm; 1: unbiased)."""
    return Var(axis, keepdims, correction)(x)


def std(x, axis=None, keepdims=False, correction=0):
    """Standard deviation: sqrt(var(x, axis, keepdims, correction))."""
    normalize_axis(axis, x.ndim, "std")          # so that an error names std, not var
    return var(x, axis, keepdims, correction).sqrt()


def _arg_reduce(name, x, axis, keepdims):
    xp = xp_of(x.data)
    axes = normalize_axis(axis, x.ndim, name)
    if x.size == 0:
        raise ValueError(f"{name}: cannot reduce an empty tensor of shape {x.shape}")
    if axes is not None and x.ndim == 0:
        axes = None                     # a 0-d tensor's only element is at index 0
    result = getattr(xp, name)(x.data, axis=None if axes is None else axes[0])
    if keepdims:
        result = result.reshape((1,) * x.ndim) if axes is None else xp.expand_dims(result, axes[0])
    return Tensor._from_array(result)


def argmax(x, axis=None, keepdims=False):
    """Index of the largest element along `axis` (of the flattened tensor when None); int64."""
    return _arg_reduce("argmax", x, axis, keepdims)


def argmin(x, axis=None, keepdims=False):
    """Index of the smallest element along `axis` (of the flattened tensor when None); int64."""
    return _arg_reduce("argmin", x, axis, keepdims)


def _logical_reduce(name, x, axis, keepdims):
    reduce = getattr(xp_of(x.data), name)
    return Tensor._from_array(reduce(x.data, axis=normalize_axis(axis, x.ndim, name), keepdims=keepdims))


def any_(x, axis=None, keepdims=False):
    """Whether any element along `axis` is nonzero (True): a boolean tensor."""
    return _logical_reduce("any", x, axis, keepdims)


def all_(x, axis=None, keepdims=False):
    """Whether every element along `axis` is nonzero (True): a boolean tensor."""
    return _logical_reduce("all", x, axis, keepdims)


class MatMul(Function):
    """y = a @ b for a (..., n, k), b (..., k, m) -> (..., n, m), batch axes broadcast.
    dL/da = g @ b^T,  dL/db = a^T @ g   (^T swaps the last two axes; each product is
    formed only for an input that needs it: a data batch x in x @ W does not)."""

    def forward(self, a, b):
        self.save_for_backward(a, b)
        try:
            return kernels.linalg.matmul(a, b)
        except ValueError:                   # numpy's message speaks of "remapped shapes"
            _check_inner(a.shape, b.shape)
            raise ValueError(f"matmul: batch shapes of {tuple(a.shape)} and {tuple(b.shape)} do not broadcast: "
                             f"{tuple(a.shape[:-2])} against {tuple(b.shape[:-2])}") from None

    def backward(self, g):
        a, b = self.saved_tensors
        needs_a, needs_b = self.needs_input_grad
        return (g @ b.swapaxes(-1, -2) if needs_a else None,
                a.swapaxes(-1, -2) @ g if needs_b else None)


class LinearOp(Function):
    """y = x @ W + b for x (..., n_in), W (n_in, n_out), b (n_out,) -> (..., n_out): a dense
    layer in one op (the bias is added to each block of rows while it is in the cache).
    dL/dx = g @ W^T,  dL/dW = x^T @ g,  dL/db = g   (the last two summed over the rows)"""

    def forward(self, x, weight, bias=None):
        if x.shape[-1] != weight.shape[0]:
            raise ValueError(f"linear: input of shape {tuple(x.shape)} does not fit weight of shape "
                             f"{tuple(weight.shape)}: {x.shape[-1]} != {weight.shape[0]}")
        self.save_for_backward(x, weight)
        return kernels.linalg.linear(x, weight, bias)

    def backward(self, g):
        x, weight = self.saved_tensors
        rows = x.reshape(-1, x.shape[-1])
        return (g @ weight.T, rows.T @ g.reshape(-1, g.shape[-1]), g)

    def backward_arrays(self, g):
        x, weight = self.saved_arrays
        return kernels.linalg.linear_backward(g, x, weight, self.needs_input_grad)


def linear(x, weight, bias=None):
    """x @ weight + bias with weight (n_in, n_out) (minigrad's Dense layout; PyTorch's
    F.linear takes weight (n_out, n_in)). x (..., n_in) -> (..., n_out)."""
    return LinearOp()(x, weight) if bias is None else LinearOp()(x, weight, bias)


def _check_inner(a_shape, b_shape):
    k_a, k_b = a_shape[-1], b_shape[-2] if len(b_shape) > 1 else b_shape[0]
    if k_a != k_b:
        raise ValueError(f"matmul: shapes {tuple(a_shape)} and {tuple(b_shape)} do not align: {k_a} != {k_b}")


def matmul(a, b):
    """Matrix product with numpy's rules: 1-D operands are promoted to a row (left) or
    column (right) and that axis removed afterwards."""
    a, b = as_tensors([a, b])
    if a.data.ndim == 2 and b.data.ndim == 2:     # the common case, straight to the op
        return MatMul()(a, b)
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"matmul: needs at least 1-D operands, got shapes {a.shape} and {b.shape}")
    squeeze_left, squeeze_right = a.ndim == 1, b.ndim == 1
    if squeeze_left or squeeze_right:       # before they are made 2-D, so the error shows the shapes given
        _check_inner(a.shape, b.shape)
    elif a.ndim > 2 and b.ndim == 2 and a.shape[-1] == b.shape[0]:
        # (..., k) @ (k, m) as one 2-D product: one big BLAS call instead of one per
        # batch row, and dL/db = a^T g without building a (batch, k, m) array to sum
        return MatMul()(a.reshape(-1, a.shape[-1]), b).reshape(a.shape[:-1] + (b.shape[1],))
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
