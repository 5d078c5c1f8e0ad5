"""Shape ops: axes, broadcasting, reshaping, permuting, joining and splitting; dtype and device moves.

None of these does arithmetic: each output element is a copy of one input element.
So each derivative sends every element of g back to where it was copied from (and
adds up where one input element was copied several times).
"""
import math
import operator

from .. import backend
from ..autograd import Function
from ..tensor import as_tensors

xp_of = backend.get_array_module


# --------------------------------------------------------------------------- axes
def normalize_axis(axis, ndim, op):
    """`axis` (None, an int or a sequence) as a sorted tuple of axes in [0, ndim), or None.
    An axis outside [-ndim, ndim) is an error (never wrapped); a 0-d tensor accepts 0 and -1."""
    if axis is None:
        return None
    if type(axis) is int and -ndim <= axis < ndim:        # the common case, quickly
        return (axis % ndim,)
    try:
        axes = tuple(map(operator.index, axis if isinstance(axis, (tuple, list)) else (axis,)))
    except TypeError:
        raise TypeError(f"{op}: axis must be an int or a tuple of ints, got {axis!r}") from None
    limit = max(ndim, 1)
    for a in axes:
        if not -limit <= a < limit:
            raise ValueError(f"{op}: axis {a} is out of range for a tensor with {ndim} dimension"
                             f"{'' if ndim == 1 else 's'} (allowed: {-limit} to {limit - 1})")
    normalized = sorted({a % limit for a in axes}) if ndim else []
    if len(normalized) != len(axes) and ndim:
        raise ValueError(f"{op}: axis {axis} names the same axis twice")
    return tuple(normalized)


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
        try:                        # the array library checks the axes (never wrapping them)
            return x.transpose(self.axes)
        except (ValueError, IndexError, TypeError):
            raise ValueError(f"transpose: axes {self.axes} are not a permutation of the "
                             f"{x.ndim} axes of shape {tuple(x.shape)}") from None

    def backward(self, g):
        inverse = [0] * len(self.axes)
        for i, a in enumerate(self.axes):
            inverse[a % len(self.axes)] = i
        return g.transpose(*inverse)


def swapaxes(x, a, b):
    """x with axes a and b exchanged."""
    ndim = x.ndim
    if not (-ndim <= a < ndim and -ndim <= b < ndim):
        raise ValueError(f"swapaxes: axes {a} and {b} must lie in [{-ndim}, {ndim}) for shape {x.shape}")
    axes = list(range(ndim))
    axes[a], axes[b] = axes[b], axes[a]
    return Transpose(tuple(axes))(x)


def unsqueeze(x, axis):
    """x with a new axis of size 1 at `axis` (in [-ndim-1, ndim])."""
    axis, = normalize_axis(axis, x.ndim + 1, "unsqueeze")
    return x.reshape(x.shape[:axis] + (1,) + x.shape[axis:])


def squeeze(x, axis=None):
    """x without its size-1 axes (axis=None), or without those of `axis` (an int or a
    tuple) that have size 1 (others are kept, as PyTorch)."""
    if axis is None:
        return x.reshape(tuple(s for s in x.shape if s != 1))
    axes = normalize_axis(axis, x.ndim, "squeeze")
    return x.reshape(tuple(s for a, s in enumerate(x.shape) if not (a in axes and s == 1)))


def flatten(x, start_dim=0, end_dim=-1):
    """x with axes start_dim..end_dim (inclusive) merged into one; a 0-d x becomes (1,)."""
    if x.ndim == 0:
        normalize_axis((start_dim, end_dim), 0, "flatten")
        return x.reshape(1)
    start, = normalize_axis(start_dim, x.ndim, "flatten")
    end, = normalize_axis(end_dim, x.ndim, "flatten")
    if start > end:
        raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim} (shape {x.shape})")
    return x.reshape(x.shape[:start] + (math.prod(x.shape[start:end + 1]),) + x.shape[end + 1:])


def unflatten(x, axis, sizes):
    """x with `axis` split into axes of `sizes` (one may be -1: whatever remains)."""
    axis, = normalize_axis(axis, x.ndim, "unflatten")
    sizes = tuple(sizes)
    known = 1
    for size in sizes:
        known *= size if size != -1 else 1
    if sizes.count(-1) > 1 or (-1 not in sizes and known != x.shape[axis]) or \
            (-1 in sizes and (known == 0 or x.shape[axis] % known)):
        raise ValueError(f"unflatten: sizes {sizes} do not multiply to axis {axis}'s size {x.shape[axis]} "
                         f"(shape {x.shape})")
    return x.reshape(x.shape[:axis] + sizes + x.shape[axis + 1:])


class Clone(Function):
    """y = a copy of x (its own memory).   dL/dx = g"""

    def forward(self, x):
        return x.copy()

    def backward(self, g):
        return g


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
    tensors = as_tensors(list(tensors))
    if not tensors:
        raise ValueError("concatenate: needs at least one tensor, got an empty sequence")
    if tensors[0].ndim == 0:
        raise ValueError("concatenate: 0-d tensors have no axis to join along; use stack")
    axis, = normalize_axis(axis, tensors[0].ndim, "concatenate")
    return Concatenate(axis)(*tensors)


def stack(tensors, axis=0):
    """Join tensors of equal shape along a new axis."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("stack: needs at least one tensor, got an empty sequence")
    tensors = as_tensors(tensors)
    shapes = {t.shape for t in tensors}
    if len(shapes) > 1:
        raise ValueError(f"stack: all tensors must have the same shape, got {sorted(shapes)}")
    axis, = normalize_axis(axis, tensors[0].ndim + 1, "stack")
    return concatenate([unsqueeze(t, axis) for t in tensors], axis)


def split(x, size_or_sizes, axis=0):
    """x cut along `axis` into pieces of size_or_sizes elements each (the last may be
    smaller), or of the listed sizes (which must add up to the axis' size). A tuple of views."""
    axis, = normalize_axis(axis, x.ndim, "split")
    length = x.shape[axis]
    if isinstance(size_or_sizes, (list, tuple)):
        sizes = list(size_or_sizes)
        if sum(sizes) != length or any(s < 0 for s in sizes):
            raise ValueError(f"split: sizes {sizes} do not add up to axis {axis}'s size {length}")
    else:
        if size_or_sizes <= 0:
            raise ValueError(f"split: size must be positive, got {size_or_sizes}")
        sizes = [min(size_or_sizes, length - start) for start in range(0, length, size_or_sizes)] or [0]
    pieces, start = [], 0
    for size in sizes:
        pieces.append(x[(slice(None),) * axis + (slice(start, start + size),)])
        start += size
    return tuple(pieces)


def chunk(x, chunks, axis=0):
    """x cut along `axis` into `chunks` pieces of ceil(size / chunks) elements (fewer
    pieces when the size runs out first, as PyTorch's chunk)."""
    if chunks <= 0:
        raise ValueError(f"chunk: needs a positive number of chunks, got {chunks}")
    axis, = normalize_axis(axis, x.ndim, "chunk")
    return split(x, max(-(-x.shape[axis] // chunks), 1), axis)


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
