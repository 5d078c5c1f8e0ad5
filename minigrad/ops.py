"""The primitive differentiable operations.

Each op is a ``Function``: ``forward`` computes y from arrays with the backend's
array module ``xp`` (numpy or cupy); ``backward`` receives g = dL/dy as a Tensor
and returns dL/dx for each input, written with Tensor operations so that the
backward pass can itself be differentiated (grad of grad).

Broadcasting: when an input x was broadcast to the output's shape, every copy
of x contributed to L, so dL/dx is g summed over the broadcast axes:
``sum_to(g, x.shape)``.

Everything else (mean, var, softmax via exp/sum, attention, losses) is composed
from these, except a few composites fused for speed in ``fused.py``.
"""
from . import backend
from .tensor import Function, Tensor, as_tensor, is_grad_enabled, wrap

xp_of = backend.get_array_module


# --------------------------------------------------------------------------- broadcasting
class BroadcastTo(Function):
    """y = x repeated along new or size-1 axes to `shape`.   dL/dx = sum_to(g, x.shape)"""

    def __init__(self, shape):
        self.shape = tuple(shape)

    def forward(self, x):
        self.x_shape = x.shape
        return xp_of(x).broadcast_to(x, self.shape)

    def backward(self, g):
        return sum_to(g, self.x_shape)


class SumTo(Function):
    """y = x summed over the axes that broadcasting added, down to `shape`.
    dL/dx = broadcast_to(g, x.shape)"""

    def __init__(self, shape):
        self.shape = tuple(shape)

    def forward(self, x):
        self.x_shape = x.shape
        lead = x.ndim - len(self.shape)
        axes = tuple(range(lead)) + tuple(
            lead + i for i, size in enumerate(self.shape) if size == 1 and x.shape[lead + i] != 1)
        y = x.sum(axis=axes, keepdims=True) if axes else x
        return y.reshape(self.shape)

    def backward(self, g):
        return broadcast_to(g, self.x_shape)


def broadcast_to(x, shape):
    return x if x.shape == tuple(shape) else BroadcastTo(shape)(x)


def sum_to(x, shape):
    return x if x.shape == tuple(shape) else SumTo(shape)(x)


# --------------------------------------------------------------------------- arithmetic
class Add(Function):
    """y = a + b.   dL/da = g,  dL/db = g   (each summed back to its own shape)"""

    def forward(self, a, b):
        return a + b

    def backward(self, g):
        a, b = self.inputs
        return (sum_to(g, a.shape) if a.requires_grad else None,
                sum_to(g, b.shape) if b.requires_grad else None)


class Sub(Function):
    """y = a - b.   dL/da = g,  dL/db = -g"""

    def forward(self, a, b):
        return a - b

    def backward(self, g):
        a, b = self.inputs
        return (sum_to(g, a.shape) if a.requires_grad else None,
                sum_to(-g, b.shape) if b.requires_grad else None)


class Mul(Function):
    """y = a * b.   dL/da = g * b,  dL/db = g * a"""

    def forward(self, a, b):
        return a * b

    def backward(self, g):
        a, b = self.inputs
        grad_a = sum_to(g * b, a.shape) if a.requires_grad else None
        grad_b = sum_to(g * a, b.shape) if b.requires_grad else None
        return grad_a, grad_b


class Div(Function):
    """y = a / b.   dL/da = g / b,  dL/db = -g * a / b^2"""

    def forward(self, a, b):
        return a / b

    def backward(self, g):
        a, b = self.inputs
        grad_a = sum_to(g / b, a.shape) if a.requires_grad else None
        grad_b = sum_to(-g * a / (b * b), b.shape) if b.requires_grad else None
        return grad_a, grad_b


class Neg(Function):
    """y = -x.   dL/dx = -g"""

    def forward(self, x):
        return -x

    def backward(self, g):
        return -g


class Pow(Function):
    """y = a ** b.   dL/da = g * b * a^(b-1),  dL/db = g * y * log(a)"""

    def forward(self, a, b):
        return a ** b

    def backward(self, g):
        a, b = self.inputs
        grad_a = sum_to(g * b * a ** (b - 1), a.shape) if a.requires_grad else None
        grad_b = sum_to(g * self.output * log(a), b.shape) if b.requires_grad else None
        return grad_a, grad_b


class MatMul(Function):
    """y = a @ b for a (..., n, k), b (..., k, m) -> (..., n, m), batch axes broadcast.
    dL/da = g @ b^T,  dL/db = a^T @ g   (^T swaps the last two axes)"""

    def forward(self, a, b):
        if a.shape[-1] != b.shape[-2]:
            raise ValueError(f"matmul: shapes {tuple(a.shape)} and {tuple(b.shape)} do not align: "
                             f"{a.shape[-1]} != {b.shape[-2]}")
        return xp_of(a).matmul(a, b)

    def backward(self, g):
        a, b = self.inputs
        grad_a = sum_to(g @ b.swapaxes(-1, -2), a.shape) if a.requires_grad else None
        grad_b = sum_to(a.swapaxes(-1, -2) @ g, b.shape) if b.requires_grad else None
        return grad_a, grad_b


def matmul(a, b):
    """Matrix product with numpy's rules: 1-D operands are promoted to a row
    (left) or column (right) and that axis removed afterwards."""
    a, b = as_tensor(a, b if isinstance(b, Tensor) else None), as_tensor(b, a if isinstance(a, Tensor) else None)
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


# --------------------------------------------------------------------------- elementwise functions
class Exp(Function):
    """y = exp(x).   dL/dx = g * y"""

    def forward(self, x):
        return xp_of(x).exp(x)

    def backward(self, g):
        return g * self.output


class Log(Function):
    """y = log(x).   dL/dx = g / x"""

    def forward(self, x):
        return xp_of(x).log(x)

    def backward(self, g):
        return g / self.inputs[0]


class Sqrt(Function):
    """y = sqrt(x).   dL/dx = g / (2 y)"""

    def forward(self, x):
        return xp_of(x).sqrt(x)

    def backward(self, g):
        return g / (2.0 * self.output)


class Abs(Function):
    """y = |x|.   dL/dx = g * sign(x)   (0 at x = 0, as in PyTorch)"""

    def forward(self, x):
        return xp_of(x).abs(x)

    def backward(self, g):
        x = self.inputs[0]
        return g * wrap(xp_of(x.data).sign(x.data))


class Tanh(Function):
    """y = tanh(x).   dL/dx = g * (1 - y^2)"""

    def forward(self, x):
        return xp_of(x).tanh(x)

    def backward(self, g):
        y = self.output
        if not is_grad_enabled():   # plain backward: one array expression, not three ops
            return wrap(g.data * (1.0 - y.data * y.data))
        return g * (1.0 - y * y)


class Sigmoid(Function):
    """y = 1 / (1 + exp(-x)).   dL/dx = g * y * (1 - y)
    Computed as 0.5 * (1 + tanh(x / 2)), which never overflows."""

    def forward(self, x):
        return 0.5 * (xp_of(x).tanh(0.5 * x) + 1.0)

    def backward(self, g):
        y = self.output
        if not is_grad_enabled():   # plain backward: one array expression, not three ops
            return wrap(g.data * y.data * (1.0 - y.data))
        return g * y * (1.0 - y)


class Relu(Function):
    """y = max(x, 0).   dL/dx = g * [x > 0]"""

    def forward(self, x):
        return xp_of(x).maximum(x, 0)

    def backward(self, g):
        x = self.inputs[0]
        return g * wrap(x.data > 0)


class Erf(Function):
    """y = erf(x).   dL/dx = g * 2/sqrt(pi) * exp(-x^2)"""

    def forward(self, x):
        return backend.erf(x).astype(x.dtype, copy=False)

    def backward(self, g):
        x = self.inputs[0]
        return g * (1.1283791670955126 * exp(-(x * x)))


class Clip(Function):
    """y = min(max(x, lo), hi).   dL/dx = g * [lo <= x <= hi]"""

    def __init__(self, lo, hi):
        self.lo, self.hi = lo, hi

    def forward(self, x):
        return xp_of(x).clip(x, self.lo, self.hi)

    def backward(self, g):
        x = self.inputs[0].data
        inside = xp_of(x).ones(x.shape, dtype=bool)
        if self.lo is not None:
            inside &= x >= self.lo
        if self.hi is not None:
            inside &= x <= self.hi
        return g * wrap(inside)


class Where(Function):
    """y = a where cond else b (cond a constant boolean array).
    dL/da = g where cond else 0,  dL/db = 0 where cond else g"""

    def __init__(self, cond):
        self.cond = cond

    def forward(self, a, b):
        return xp_of(a).where(self.cond, a, b)

    def backward(self, g):
        a, b = self.inputs
        zero = wrap(xp_of(g.data).zeros((), dtype=g.dtype))
        grad_a = sum_to(Where(self.cond)(g, zero), a.shape) if a.requires_grad else None
        grad_b = sum_to(Where(self.cond)(zero, g), b.shape) if b.requires_grad else None
        return grad_a, grad_b


def where(cond, a, b):
    """mg.where(cond, a, b): elementwise choice; gradients flow to a and b, not cond."""
    anchor = next((t for t in (a, b, cond) if isinstance(t, Tensor)), None)
    cond = as_tensor(cond, anchor)
    a = as_tensor(a, anchor if not isinstance(b, Tensor) else b)
    b = as_tensor(b, a)
    if a.dtype != b.dtype and a.dtype.kind in "fc" and b.dtype.kind in "fc":
        # a plain number on one side takes the other side's float dtype
        if not a.requires_grad and a.ndim == 0:
            a = a.astype(b.dtype)
        elif not b.requires_grad and b.ndim == 0:
            b = b.astype(a.dtype)
    if cond.device != a.device:
        raise RuntimeError(f"where: condition is on {cond.device} but values are on {a.device}")
    return Where(cond.data.astype(bool, copy=False))(a, b)


# --------------------------------------------------------------------------- reductions
def _normalize_axis(axis, ndim):
    if axis is None:
        return None
    axes = axis if isinstance(axis, (tuple, list)) else (axis,)
    return tuple(sorted(a % ndim if ndim else a for a in axes))


def _expand_reduced(g, x_shape, axis, keepdims):
    """Put back the reduced axes of g (as size 1) so it broadcasts against x."""
    if keepdims or axis is None and g.ndim == len(x_shape):
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
        self.axis = _normalize_axis(self.axis, x.ndim)
        return x.sum(axis=self.axis, keepdims=self.keepdims)

    def backward(self, g):
        x = self.inputs[0]
        return broadcast_to(_expand_reduced(g, x.shape, self.axis, self.keepdims), x.shape)


class Max(Function):
    """y = max of x over `axis`.
    dL/dx = g at the positions equal to the max, shared equally between ties
    (like torch.amax; torch.max(dim) gives it to one index)."""

    def __init__(self, axis=None, keepdims=False):
        self.axis, self.keepdims = axis, keepdims

    def forward(self, x):
        self.axis = _normalize_axis(self.axis, x.ndim)
        if x.size == 0:
            raise ValueError(f"max: cannot reduce an empty tensor of shape {tuple(x.shape)}")
        return x.max(axis=self.axis, keepdims=self.keepdims)

    def backward(self, g):
        x = self.inputs[0]
        y = _expand_reduced(self.output, x.shape, self.axis, self.keepdims)
        hit = x.data == y.data
        hit = hit / hit.sum(axis=self.axis, keepdims=True)
        g = _expand_reduced(g, x.shape, self.axis, self.keepdims)
        return broadcast_to(g, x.shape) * wrap(hit.astype(x.dtype, copy=False))


# --------------------------------------------------------------------------- shapes
class Reshape(Function):
    """y = x with a new shape (same elements, C order).   dL/dx = g reshaped to x.shape"""

    def __init__(self, shape):
        self.shape = tuple(shape)

    def forward(self, x):
        self.x_shape = x.shape
        try:
            return x.reshape(self.shape)
        except ValueError:
            raise ValueError(f"reshape: cannot reshape {tuple(x.shape)} ({x.size} elements) "
                             f"into {self.shape}") from None

    def backward(self, g):
        return g.reshape(self.x_shape)


class Transpose(Function):
    """y = x with its axes permuted.   dL/dx = g permuted back (inverse permutation)"""

    def __init__(self, axes):
        self.axes = axes

    def forward(self, x):
        if self.axes is None:
            self.axes = tuple(reversed(range(x.ndim)))
        if sorted(a % max(x.ndim, 1) for a in self.axes) != list(range(x.ndim)):
            raise ValueError(f"transpose: axes {self.axes} are not a permutation of the "
                             f"{x.ndim} axes of shape {tuple(x.shape)}")
        return x.transpose(self.axes)

    def backward(self, g):
        inverse = [0] * len(self.axes)
        for i, a in enumerate(self.axes):
            inverse[a % len(self.axes)] = i
        return g.transpose(*inverse)


def _is_advanced(index):
    parts = index if isinstance(index, tuple) else (index,)
    return any(backend.is_array(p) or isinstance(p, list) for p in parts)


def _device_index(index, device):
    """Tensor or list parts of an index as arrays on `device`."""
    def convert(part):
        if isinstance(part, Tensor):
            part = part.data
        if isinstance(part, list) or backend.is_array(part):
            return backend.to_device(part, device)
        return part
    if isinstance(index, tuple):
        return tuple(convert(p) for p in index)
    return convert(index)


class GetItem(Function):
    """y = x[index] (basic slicing or integer/boolean array indexing).
    dL/dx = zeros with g added at the indexed positions; an index repeated k
    times receives k contributions."""

    def __init__(self, index):
        self.index = index

    def forward(self, x):
        try:
            return x[self.index]
        except IndexError as exc:
            raise IndexError(f"index: {exc} (tensor of shape {tuple(x.shape)})") from None

    def backward(self, g):
        x = self.inputs[0]
        return GetItemGrad(self.index, x.shape)(g)


class GetItemGrad(Function):
    """y = zeros(shape) with y[index] += g.   Its own backward is g[index]."""

    def __init__(self, index, shape):
        self.index, self.shape = index, shape

    def forward(self, g):
        grad = xp_of(g).zeros(self.shape, dtype=g.dtype)
        if _is_advanced(self.index):
            backend.scatter_add(grad, self.index, g)
        else:
            grad[self.index] = g
        return grad

    def backward(self, gg):
        return GetItem(self.index)(gg)


class Concatenate(Function):
    """y = the inputs joined along `axis`.   dL/dx_i = the slice of g that x_i filled"""

    def __init__(self, axis):
        self.axis = axis

    def forward(self, *xs):
        try:
            return xp_of(xs[0]).concatenate(xs, axis=self.axis)
        except ValueError as exc:
            shapes = ", ".join(str(tuple(x.shape)) for x in xs)
            raise ValueError(f"concatenate: shapes {shapes} do not fit along axis {self.axis}: {exc}") from None

    def backward(self, g):
        grads, start = [], 0
        axis = self.axis % g.ndim
        for x in self.inputs:
            stop = start + x.shape[axis]
            index = (slice(None),) * axis + (slice(start, stop),)
            grads.append(g[index] if x.requires_grad else None)
            start = stop
        return tuple(grads)


def concatenate(tensors, axis=0):
    tensors = list(tensors)
    anchor = next((t for t in tensors if isinstance(t, Tensor)), None)
    return Concatenate(axis)(*[as_tensor(t, anchor) for t in tensors])


def stack(tensors, axis=0):
    """Join tensors of equal shape along a new axis."""
    tensors = [as_tensor(t) for t in tensors]
    shapes = {t.shape for t in tensors}
    if len(shapes) > 1:
        raise ValueError(f"stack: all tensors must have the same shape, got {sorted(shapes)}")
    ndim = tensors[0].ndim + 1
    axis = axis % ndim
    expanded = [t.reshape(t.shape[:axis] + (1,) + t.shape[axis:]) for t in tensors]
    return concatenate(expanded, axis)


# --------------------------------------------------------------------------- devices and dtypes
class ToDevice(Function):
    """y = x copied to another device.   dL/dx = g copied back"""

    def __init__(self, device):
        self.device = device

    def forward(self, x):
        self.source = backend.device_of(x)
        return backend.to_device(x, self.device)

    def backward(self, g):
        return ToDevice(self.source)(g)


class Cast(Function):
    """y = x converted to `dtype`.   dL/dx = g converted back to x's dtype"""

    def __init__(self, dtype):
        self.dtype = dtype

    def forward(self, x):
        self.source = x.dtype
        return x.astype(self.dtype)

    def backward(self, g):
        return Cast(self.source)(g) if self.source.kind in "fc" else None


# --------------------------------------------------------------------------- short names
def add(a, b): return Add()(a, b)
def sub(a, b): return Sub()(a, b)
def mul(a, b): return Mul()(a, b)
def div(a, b): return Div()(a, b)
def neg(x): return Neg()(x)
def pow(a, b): return Pow()(a, b)
def exp(x): return Exp()(x)
def log(x): return Log()(x)
def sqrt(x): return Sqrt()(x)
def tanh(x): return Tanh()(x)
def sigmoid(x): return Sigmoid()(x)
def relu(x): return Relu()(x)
def erf(x): return Erf()(x)
