"""Shape ops: broadcasting, reshaping, permuting, indexing, joining; dtype and device moves.

None of these does arithmetic: each output element is a copy of one input element.
So each derivative sends every element of g back to where it was copied from (and
adds up where one input element was copied several times).
"""
from .. import backend
from ..autograd import Function
from ..tensor import Tensor, as_tensors

xp_of = backend.get_array_module


# --------------------------------------------------------------------------- broadcasting
class BroadcastTo(Function):
    """y = x repeated along new or size-1 axes to `shape`.   dL/dx = sum_to(g, x.shape)"""

    def __init__(self, shape):
        self.shape = tuple(shape)

    def forward(self, x):
        return xp_of(x).broadcast_to(x, self.shape)

    def backward(self, g):
        return sum_to(g, self.input_shapes[0])


class SumTo(Function):
    """y = x summed over the axes that broadcasting added, down to `shape`.
    dL/dx = broadcast_to(g, x.shape).   The engine uses it to undo broadcasting."""

    def __init__(self, shape):
        self.shape = tuple(shape)

    def forward(self, x):
        lead = x.ndim - len(self.shape)
        axes = tuple(range(lead)) + tuple(
            lead + i for i, size in enumerate(self.shape) if size == 1 and x.shape[lead + i] != 1)
        y = x.sum(axis=axes, keepdims=True) if axes else x
        return y.reshape(self.shape)

    def backward(self, g):
        return broadcast_to(g, self.input_shapes[0])


def broadcast_to(x, shape):
    return x if x.shape == tuple(shape) else BroadcastTo(shape)(x)


def sum_to(x, shape):
    return x if x.shape == tuple(shape) else SumTo(shape)(x)


# --------------------------------------------------------------------------- reshaping
class Reshape(Function):
    """y = x with a new shape (same elements, C order).   dL/dx = g reshaped to x.shape"""

    def __init__(self, shape):
        self.shape = tuple(shape)

    def forward(self, x):
        try:
            return x.reshape(self.shape)
        except ValueError:
            raise ValueError(f"reshape: cannot reshape {tuple(x.shape)} ({x.size} elements) "
                             f"into {self.shape}") from None

    def backward(self, g):
        return g.reshape(self.input_shapes[0])


class Transpose(Function):
    """y = x with its axes permuted.   dL/dx = g permuted back (the inverse permutation)"""

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


def unsqueeze(x, axis):
    """x with a new axis of size 1 at `axis` (in [-ndim-1, ndim])."""
    if not -x.ndim - 1 <= axis <= x.ndim:
        raise ValueError(f"unsqueeze: axis {axis} is out of range for a tensor with {x.ndim} dimensions "
                         f"(allowed: {-x.ndim - 1} to {x.ndim})")
    axis = axis % (x.ndim + 1)
    return x.reshape(x.shape[:axis] + (1,) + x.shape[axis:])


def squeeze(x, axis=None):
    """x without its size-1 axes (axis=None), or without `axis` if that one has size 1."""
    if axis is None:
        return x.reshape(tuple(s for s in x.shape if s != 1))
    if not -max(x.ndim, 1) <= axis < max(x.ndim, 1):
        raise ValueError(f"squeeze: axis {axis} is out of range for a tensor with {x.ndim} dimensions")
    if x.ndim == 0:
        return x
    axis = axis % x.ndim
    return x if x.shape[axis] != 1 else x.reshape(x.shape[:axis] + x.shape[axis + 1:])


# --------------------------------------------------------------------------- indexing
def device_index(index, device):
    """Tensor or list parts of an index as arrays on `device`."""
    def convert(part):
        if isinstance(part, Tensor):
            part = part.data
        if isinstance(part, list) or backend.is_array(part):
            return backend.to_device(part, device)
        return part
    return tuple(convert(p) for p in index) if isinstance(index, tuple) else convert(index)


def _is_advanced(index):
    parts = index if isinstance(index, tuple) else (index,)
    return any(backend.is_array(p) or isinstance(p, list) for p in parts)


class GetItem(Function):
    """y = x[index] (basic slicing or integer/boolean array indexing).
    dL/dx = zeros with g added at the indexed positions; an index repeated k times
    receives k contributions."""

    def __init__(self, index):
        self.index = index

    def forward(self, x):
        try:
            return x[self.index]
        except IndexError as exc:
            raise IndexError(f"index: {exc} (tensor of shape {tuple(x.shape)})") from None

    def backward(self, g):
        return GetItemGrad(self.index, self.input_shapes[0])(g)


class GetItemGrad(Function):
    """y = zeros(shape) with y[index] += g (the adjoint of indexing).   dL/dg = dL/dy[index]"""

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


# --------------------------------------------------------------------------- joining
class Concatenate(Function):
    """y = the inputs joined along `axis`.   dL/dx_i = the slice of g that x_i filled"""

    def __init__(self, axis):
        self.axis = axis

    def forward(self, *xs):
        try:
            return xp_of(xs[0]).concatenate(xs, axis=self.axis)
        except (ValueError, IndexError) as exc:
            shapes = ", ".join(str(tuple(x.shape)) for x in xs)
            raise ValueError(f"concatenate: shapes {shapes} do not fit along axis {self.axis}: {exc}") from None

    def backward(self, g):
        grads, start = [], 0
        axis = self.axis % g.ndim
        for shape in self.input_shapes:
            stop = start + shape[axis]
            grads.append(g[(slice(None),) * axis + (slice(start, stop),)])
            start = stop
        return tuple(grads)


def concatenate(tensors, axis=0):
    """Join tensors along an existing axis (all other axes must match)."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("concatenate: needs at least one tensor, got an empty sequence")
    return Concatenate(axis)(*as_tensors(tensors))


def stack(tensors, axis=0):
    """Join tensors of equal shape along a new axis."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("stack: needs at least one tensor, got an empty sequence")
    tensors = as_tensors(tensors)
    shapes = {t.shape for t in tensors}
    if len(shapes) > 1:
        raise ValueError(f"stack: all tensors must have the same shape, got {sorted(shapes)}")
    return concatenate([unsqueeze(t, axis) for t in tensors], axis % (tensors[0].ndim + 1))


# --------------------------------------------------------------------------- dtypes and devices
class Cast(Function):
    """y = x converted to `dtype`.   dL/dx = g converted back to x's dtype
    (no gradient flows to an integer or boolean x)."""

    def __init__(self, dtype):
        self.dtype = dtype

    def forward(self, x):
        self.source_dtype = x.dtype
        return x.astype(self.dtype)

    def backward(self, g):
        return Cast(self.source_dtype)(g) if self.source_dtype.kind in "fc" else None


class ToDevice(Function):
    """y = x copied to another device.   dL/dx = g copied back"""

    def __init__(self, device):
        self.device = device

    def forward(self, x):
        self.source_device = backend.device_of(x)
        return backend.to_device(x, self.device)

    def backward(self, g):
        return ToDevice(self.source_device)(g)
