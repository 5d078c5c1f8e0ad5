"""Indexing: t[index], gather and scatter_add, and the orderings sort and topk.

Each output element is a copy of one input element, so each derivative sends
every element of g back to where it was read from, adding up where one input
element was read several times (scatter-add, the adjoint of indexing).
"""
import operator

from .. import backend
from ..autograd import Function
from ..tensor import Tensor, as_array, as_tensors
from .rearrange import Pad
from .shape import normalize_axis

xp_of = backend.get_array_module


def device_index(index, device):
    """Tensor or list parts of an index as arrays on `device`."""
    def convert(part):
        if isinstance(part, Tensor):
            part = part.data
        if isinstance(part, list) or backend.is_array(part):
            return backend.to_device(part, device)
        return part
    return tuple(convert(p) for p in index) if isinstance(index, tuple) else convert(index)


_BASIC = (int, slice, type(None), type(Ellipsis))     # index parts that select without arrays


def _is_basic(index):
    if type(index) is tuple:
        for part in index:
            if type(part) not in _BASIC:
                return False
        return True
    return type(index) in _BASIC


def _is_advanced(index):
    if _is_basic(index):
        return False
    parts = index if isinstance(index, tuple) else (index,)
    return any(backend.is_array(p) or isinstance(p, list) for p in parts)


def _is_int(part):
    if isinstance(part, bool) or (backend.is_array(part) and part.dtype.kind == "b"):
        return False
    if backend.is_array(part):
        return part.ndim == 0
    return hasattr(part, "__index__")


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


def getitem(x, index):
    """x[index] with PyTorch's result shape. numpy counts an integer as an array index,
    so x[0, :, [0, 1]] on (3, 4, 5) puts the array's axis first, (2, 4); PyTorch takes
    the integer first, as basic indexing, and gives (4, 2). Indexing with integers first
    and the arrays after gives PyTorch's shape."""
    if _is_basic(index):                                  # the common case: nothing to convert
        return GetItem(index)(x)
    index = device_index(index, x.device)
    if not isinstance(index, tuple) or not _is_advanced(index) or not any(_is_int(p) for p in index):
        return GetItem(index)(x)
    integers_first, the_rest = [], []
    for part in index:
        if _is_int(part):
            integers_first.append(part)                   # consumes its axis now
        elif part is None:
            the_rest.append(part)                         # a new axis: added in the second step
        elif part is Ellipsis:
            integers_first.append(part)
            the_rest.append(part)
        else:                                             # a slice or an array keeps its axes
            consumed = part.ndim if backend.is_array(part) and part.dtype.kind == "b" else 1
            integers_first.extend([slice(None)] * consumed)
            the_rest.append(part)
    return GetItem(tuple(the_rest))(GetItem(tuple(integers_first))(x))


# --------------------------------------------------------------------------- gather / scatter_add
def _positions(index, axis):
    """The full integer-array index that reads index[i, j, k] along `axis` and i, j, k
    along the other axes (what gather and scatter_add address)."""
    xp = xp_of(index)
    ndim = index.ndim
    return tuple(index if d == axis else
                 xp.arange(size).reshape((1,) * d + (size,) + (1,) * (ndim - d - 1))
                 for d, size in enumerate(index.shape))


def _check_index(name, x_shape, index, axis):
    """index: integers, x's ndim, no larger than x off `axis`, entries in [0, x.shape[axis])."""
    if index.dtype.kind not in "iu":
        raise TypeError(f"{name}: index must hold integers, got {index.dtype}")
    if index.ndim != len(x_shape):
        raise ValueError(f"{name}: index has {index.ndim} dimensions, the tensor {len(x_shape)} "
                         f"(shapes {tuple(index.shape)} and {tuple(x_shape)})")
    for d, (size, limit) in enumerate(zip(index.shape, x_shape)):
        if d != axis and size > limit:
            raise ValueError(f"{name}: index shape {tuple(index.shape)} is larger than the tensor's "
                             f"{tuple(x_shape)} on axis {d}")
    if index.size and (int(index.min()) < 0 or int(index.max()) >= x_shape[axis]):
        raise IndexError(f"{name}: index values must lie in [0, {x_shape[axis]}) along axis {axis}, "
                         f"got {int(index.min())} to {int(index.max())}")


class Gather(Function):
    """y[i][j][k] = x[index[i][j][k]][j][k] (axis 0; likewise for other axes); y has
    index's shape.   dL/dx = zeros with g scatter-added at the gathered positions"""

    def __init__(self, axis, index):
        self.axis, self.index = axis, index

    def forward(self, x):
        return x[_positions(self.index, self.axis)]

    def backward(self, g):
        zeros = Tensor._from_array(xp_of(g.data).zeros(self.input_shapes[0], dtype=g.dtype))
        return ScatterAdd(self.axis, self.index)(zeros, g)


class ScatterAdd(Function):
    """y = target with y[index[i][j][k]][j][k] += src[i][j][k] (axis 0; likewise for
    the others); repeated positions add up.
    dL/dtarget = g,  dL/dsrc = g gathered at the same positions"""

    def __init__(self, axis, index):
        self.axis, self.index = axis, index

    def forward(self, target, src):
        y = target.copy()
        positions = _positions(self.index, self.axis)
        backend.scatter_add(y, positions, src[tuple(slice(0, size) for size in self.index.shape)])
        return y

    def backward(self, g):
        src_shape = self.input_shapes[1]
        grad_src = Gather(self.axis, self.index)(g)
        if grad_src.shape != src_shape:          # src may be larger than index: the rest gets 0
            grad_src = pad_to(grad_src, src_shape)
        return g, grad_src


def pad_to(x, shape):
    """x with zeros appended at the end of each axis up to `shape`."""
    return Pad([(0, target - size) for size, target in zip(x.shape, shape)])(x)


def gather(x, axis, index):
    """x.gather(axis, index) as PyTorch's: picks x's elements along `axis` at `index`."""
    axis, = normalize_axis(axis, x.ndim, "gather") or (0,)
    index = as_array(index, x.device)
    _check_index("gather", x.shape, index, axis)
    return Gather(axis, index)(x)


def scatter_add(target, axis, index, src):
    """target.scatter_add(axis, index, src) as PyTorch's: a copy of target with src's
    elements added at index along `axis` (repeated positions add up)."""
    target, src = as_tensors([target, src])
    axis, = normalize_axis(axis, target.ndim, "scatter_add") or (0,)
    index = as_array(index, target.device)
    _check_index("scatter_add", target.shape, index, axis)
    if src.ndim != index.ndim or any(s < i for s, i in zip(src.shape, index.shape)):
        raise ValueError(f"scatter_add: src of shape {src.shape} must be at least index's shape "
                         f"{tuple(index.shape)} on every axis")
    return ScatterAdd(axis, index)(target, src)


# --------------------------------------------------------------------------- orderings
def sort(x, axis=-1, descending=False):
    """(values, indices) of x sorted along `axis`; ties keep their order (a stable sort).
    values are gathered from x, so gradients flow back to the sorted elements."""
    if x.ndim == 0:
        normalize_axis(axis, 0, "sort")
        return x + 0, Tensor._from_array(xp_of(x.data).zeros((), dtype="int64"))
    axis, = normalize_axis(axis, x.ndim, "sort")
    xp = xp_of(x.data)
    keys = x.data
    if descending:      # a stable descending order: sort the negated keys ascending
        keys = -keys.astype("int64") if keys.dtype.kind in "bu" else -keys
    indices = xp.argsort(keys, axis=axis, kind="stable")
    return Gather(axis, indices)(x), Tensor._from_array(indices)


def topk(x, k, axis=-1, largest=True):
    """(values, indices) of the k largest (or smallest) elements along `axis`, largest
    first (as PyTorch's topk with sorted=True)."""
    k = operator.index(k)
    size = x.shape[normalize_axis(axis, x.ndim, "topk")[0]] if x.ndim else 1
    if not 0 <= k <= size:
        raise ValueError(f"topk: k={k} is out of range for an axis of size {size} (shape {x.shape})")
    values, indices = sort(x, axis, descending=largest)
    if x.ndim == 0:
        return values, indices
    axis, = normalize_axis(axis, x.ndim, "topk")
    first_k = (slice(None),) * axis + (slice(0, k),)
    return values[first_k], indices[first_k]
