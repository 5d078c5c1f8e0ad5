"""Tensor: an n-dimensional array that remembers how it was computed.

A Tensor holds its numbers in ``.data``, a backend array (numpy on "cpu", cupy on
"cuda"). Every operator and method below is a differentiable op from minigrad/ops/:
calling it while gradients are recorded links the result to the op (``grad_fn``),
and ``backward`` (autograd.py) follows those links back to the leaves.
"""
import math
import operator

from . import autograd, backend, dtypes
from .grad_mode import is_grad_enabled


class Tensor:
    """Tensor(data, requires_grad=False, dtype=None, device=None)

    data: a number, nested list, numpy/cupy array or Tensor. Python floats become
    float32 (as in PyTorch); numpy arrays keep their dtype.
    device: where the data goes. By default an array stays where it is (numpy on
    "cpu", cupy on "cuda"), like torch.as_tensor, and numbers and lists go to the
    default device (mg.set_default_device). mg.tensor(...) differs in one way: it
    copies, and sends numpy arrays to the default device too, like torch.tensor.
    """

    __array_priority__ = 1000   # numpy_array * tensor -> Tensor.__rmul__, not numpy's loop
    __array_ufunc__ = None      # numpy ufuncs and operators defer to the Tensor's own

    # Defaults shared by every tensor until it sets its own, so that an op's result
    # costs one attribute (.data) to make (see _from_array).
    grad = None                 # dL/d(self), filled in by backward
    grad_fn = None              # the Function that produced this tensor, if recorded
    requires_grad = False
    name = None                 # a label for mg.viz.to_dot
    hooks = ()                  # functions of this leaf's gradient (register_hook)
    post_accumulate_hooks = ()  # functions called after .grad is updated
    _version_box = None         # [count of in-place changes], shared with detach()ed views

    def __init__(self, data, requires_grad=False, dtype=None, device=None):
        if isinstance(data, Tensor):
            data = data.data
        if device is None:
            device = backend.device_of(data) if backend.is_array(data) else backend.get_default_device()
        else:
            device = backend.check_device(device)
        if backend.is_array(data):
            array = backend.to_device(data, device)          # no copy when already there
        else:
            array = _host_array(data)
            if dtype is None and array.dtype == backend.numpy.float64 and not _is_numpy(data):
                array = array.astype(backend.default_float())    # Python floats -> float32
            if device != "cpu":
                array = backend.to_device(array, device)
        if array.dtype.kind not in "biufc":
            raise TypeError(f"tensor: expected numbers, got an array of {array.dtype}")
        if dtype is not None:
            array = array.astype(backend.as_dtype(dtype), copy=False)
        self.data = array
        if requires_grad:
            self.requires_grad_(True)

    @classmethod
    def _from_array(cls, array):
        """The private constructor for op results: `array` exactly as it is (no copy,
        no cast, no device move). Numpy scalars from reductions become 0-d arrays."""
        if type(array) is not _ndarray and not backend.is_array(array):
            array = backend.numpy.asarray(array)
        t = _new_object(cls)
        t.data = array
        return t

    def requires_grad_(self, flag=True):
        if flag and self.data.dtype.kind not in "fc":
            raise TypeError(f"only floating-point tensors can require gradients, got {self.data.dtype}")
        self.requires_grad = bool(flag)
        return self

    # ---- facts about the array
    shape = property(lambda self: self.data.shape)
    ndim = property(lambda self: self.data.ndim)
    dtype = property(lambda self: self.data.dtype)
    size = property(lambda self: int(self.data.size))
    device = property(lambda self: backend.device_of(self.data))
    is_leaf = property(lambda self: self.grad_fn is None)

    @property
    def _version(self):
        """How many times the data was changed in place (t += x, t[i] = v, optimizer steps);
        backward compares it with the count when an op saved the tensor."""
        return self._version_box[0] if self._version_box is not None else 0

    @_version.setter
    def _version(self, value):
        if self._version_box is None:
            self._version_box = [0]
        self._version_box[0] = value

    def __len__(self):
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor (it has no first axis; use .item() or .size)")
        return len(self.data)

    def __iter__(self):
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(len(self)))

    def __bool__(self):
        if self.size != 1:
            raise ValueError(f"the truth value of a tensor of shape {self.shape} is ambiguous; "
                             f"use .any() or .all() on its data, or compare .item()")
        return bool(self.item())

    def __array__(self, dtype=None, copy=None):
        """numpy.asarray(t) for tensors on the cpu; a cuda tensor must be copied
        explicitly with t.numpy() (as PyTorch and cupy ask)."""
        if self.device != "cpu":
            raise TypeError(f"cannot convert a tensor on {self.device} to a numpy array implicitly; "
                            f"use t.numpy() (or t.to('cpu'))")
        return self.data if dtype is None else self.data.astype(dtype, copy=False)

    def __repr__(self):
        body = str(self.numpy()).replace("\n", "\n       ")
        extra = ""
        if self.device != "cpu":
            extra += f", device='{self.device}'"
        if self.grad_fn is not None:
            extra += f", grad_fn={type(self.grad_fn).__name__}"
        elif self.requires_grad:
            extra += ", requires_grad=True"
        return f"tensor({body}, dtype={self.dtype}{extra})"

    # ---- leaving the graph, and the host
    def numpy(self):
        """The data as a numpy array on the host (a copy when it lives on the GPU)."""
        return backend.to_numpy(self.data)

    def item(self):
        if self.size != 1:
            raise ValueError(f"item(): only one-element tensors can become a number, shape is {self.shape}")
        return self.data.reshape(()).item()

    def tolist(self):
        return self.numpy().tolist()

    def detach(self):
        """The same data, cut from the graph. Shares memory and the version counter (as
        in PyTorch), so changing one in place is seen by a graph that saved the other."""
        if self._version_box is None:
            self._version_box = [0]
        detached = Tensor._from_array(self.data)
        detached._version_box = self._version_box
        return detached

    def to(self, device):
        """This tensor on `device` ("cpu" or "cuda"): self when already there, else a copy
        that gradients flow back through."""
        device = backend.check_device(device)
        return self if device == self.device else _ops.ToDevice(device)(self)

    def cpu(self):
        return self.to("cpu")

    def cuda(self):
        return self.to("cuda")

    def astype(self, dtype):
        return _ops.Cast(backend.as_dtype(dtype))(self)

    def float(self):
        return self.astype("float32")

    def double(self):
        return self.astype("float64")

    def half(self):
        return self.astype("float16")

    # ---- autograd
    def backward(self, grad=None, create_graph=False, retain_graph=None):
        """Add d(self)/d(leaf) to leaf.grad for every leaf that requires grad.

        grad: dL/d(self), needed unless self has one element (then it is 1).
        create_graph: record the backward pass so gradients can be differentiated.
        retain_graph: keep what the graph saved for another backward
                      (defaults to create_graph, as in PyTorch).
        """
        autograd.backward(self, grad, create_graph, retain_graph)

    def register_hook(self, hook):
        """hook(grad) runs when this tensor's gradient is computed, before it is used
        further; it may return a replacement gradient (or None to keep it). Returns a
        handle whose remove() unregisters it."""
        if not self.requires_grad:
            raise RuntimeError("register_hook: cannot register a hook on a tensor that does not require grad")
        owner = self if self.grad_fn is None else self.grad_fn
        return _HookHandle(owner, "hooks", hook)

    def register_post_accumulate_grad_hook(self, hook):
        """hook(tensor) runs after backward has added this leaf's gradient into .grad
        (data-parallel training starts communicating a gradient from here)."""
        if self.grad_fn is not None:
            raise RuntimeError("register_post_accumulate_grad_hook: only leaf tensors have .grad")
        return _HookHandle(self, "post_accumulate_hooks", hook)

    def zero_grad(self):
        self.grad = None

    # ---- arithmetic (numbers and arrays mix in as constants)
    def __add__(self, other): return _ops.Add()(self, other)
    def __radd__(self, other): return _ops.Add()(other, self)
    def __sub__(self, other): return _ops.Sub()(self, other)
    def __rsub__(self, other): return _ops.Sub()(other, self)
    def __mul__(self, other): return _ops.Mul()(self, other)
    def __rmul__(self, other): return _ops.Mul()(other, self)
    def __truediv__(self, other): return _ops.Div()(self, other)
    def __rtruediv__(self, other): return _ops.Div()(other, self)
    def __pow__(self, other): return _ops.Pow()(self, other)
    def __rpow__(self, other): return _ops.Pow()(other, self)
    def __matmul__(self, other): return _ops.matmul(self, other)
    def __rmatmul__(self, other): return _ops.matmul(other, self)
    def __floordiv__(self, other): return _ops.FloorDivide()(self, other)
    def __rfloordiv__(self, other): return _ops.FloorDivide()(other, self)
    def __mod__(self, other): return _ops.Remainder()(self, other)
    def __rmod__(self, other): return _ops.Remainder()(other, self)
    def __neg__(self): return _ops.Neg()(self)
    def __abs__(self): return _ops.Abs()(self)

    # ---- comparisons and logic: boolean tensors, outside the graph
    def __lt__(self, other): return _ops.compare("lt", self, other)
    def __le__(self, other): return _ops.compare("le", self, other)
    def __gt__(self, other): return _ops.compare("gt", self, other)
    def __ge__(self, other): return _ops.compare("ge", self, other)
    def __eq__(self, other): return _ops.compare("eq", self, other)
    def __ne__(self, other): return _ops.compare("ne", self, other)
    def __and__(self, other): return _ops.compare("and", self, other)
    def __or__(self, other): return _ops.compare("or", self, other)
    def __xor__(self, other): return _ops.compare("xor", self, other)
    def __invert__(self): return _ops.logical_not(self)
    __hash__ = object.__hash__      # __eq__ is elementwise; identity stays the hash

    # ---- in place: t op= x, t[index] = value
    def __iadd__(self, other): return self._update("__iadd__", operator.iadd, _ops.Add, other)
    def __isub__(self, other): return self._update("__isub__", operator.isub, _ops.Sub, other)
    def __imul__(self, other): return self._update("__imul__", operator.imul, _ops.Mul, other)
    def __itruediv__(self, other): return self._update("__itruediv__", operator.itruediv, _ops.Div, other)

    def _update(self, name, update, op, other):
        """t op= x. In place on t's data when no graph is being recorded for t or x (the
        version counter goes up, so a graph that saved t notices at backward time).
        While recording, t op= x is t = t op x, out of place (what the name t refers to
        changes, the graph's saved tensors do not); on a leaf that requires grad that
        would silently detach it from its optimizer, so it is an error."""
        t, other = as_tensors([self, other])
        if is_grad_enabled() and (t.requires_grad or other.requires_grad):
            if t.is_leaf and t.requires_grad:
                raise RuntimeError(f"{name}: a leaf tensor that requires grad (shape {t.shape}) cannot be "
                                   f"changed in place while gradients are recorded; do the update under "
                                   f"mg.no_grad()")
            return op()(t, other)
        check_same_device(name, [t, other])
        try:
            update(t.data, other.data)
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"{name}: cannot update shape {t.shape} {t.dtype} in place with "
                            f"shape {other.shape} {other.dtype}: {exc}") from None
        t._version += 1
        return t

    def __setitem__(self, index, value):
        """t[index] = value, in place on t's data. Autograd does not record it, so it is
        refused while gradients are recorded for t or value; t's version counter goes
        up, so a graph that saved t notices at backward time."""
        t, value = as_tensors([self, value])
        check_same_device("setitem", [t, value])
        if is_grad_enabled() and (t.requires_grad or value.requires_grad):
            raise RuntimeError(
                f"t[index] = value: autograd does not record assignment into a tensor (shape {t.shape}) "
                f"when it or the value requires grad; build the result out of place (mg.where, "
                f"mg.concatenate, masked_fill) or change the data under mg.no_grad()")
        t.data[_ops.device_index(index, t.device)] = value.data
        t._version += 1

    # ---- elementwise functions
    def exp(self): return _ops.Exp()(self)
    def exp2(self): return _ops.Exp2()(self)
    def log(self): return _ops.Log()(self)
    def log2(self): return _ops.Log2()(self)
    def sqrt(self): return _ops.Sqrt()(self)
    def rsqrt(self): return _ops.Rsqrt()(self)
    def sin(self): return _ops.Sin()(self)
    def cos(self): return _ops.Cos()(self)
    def abs(self): return _ops.Abs()(self)
    def tanh(self): return _ops.Tanh()(self)
    def sigmoid(self): return _ops.Sigmoid()(self)
    def relu(self): return _ops.Relu()(self)
    # step functions: differentiable with gradient 0
    def sign(self): return _ops.Sign()(self)
    def floor(self): return _ops.Floor()(self)
    def ceil(self): return _ops.Ceil()(self)
    def round(self, decimals=0): return _ops.Round(decimals)(self)

    def clip(self, lo=None, hi=None):
        """min(max(self, lo), hi); either bound may be None."""
        return _ops.Clip(lo, hi)(self)

    clamp = clip

    def masked_fill(self, mask, value):
        """Where mask is True put `value`, elsewhere keep self (mask broadcasts)."""
        return _ops.where(mask, value, self)

    def clone(self):
        """A copy with its own memory; gradients flow back to self."""
        return _ops.Clone()(self)

    # ---- reductions (axis: None for all, an int, or a tuple; never wrapped)
    def sum(self, axis=None, keepdims=False): return _ops.Sum(axis, keepdims)(self)
    def mean(self, axis=None, keepdims=False): return _ops.Mean(axis, keepdims)(self)
    def prod(self, axis=None, keepdims=False): return _ops.Prod(axis, keepdims)(self)
    def max(self, axis=None, keepdims=False): return _ops.Max(axis, keepdims)(self)
    def min(self, axis=None, keepdims=False): return _ops.Min(axis, keepdims)(self)
    def logsumexp(self, axis=None, keepdims=False): return _ops.LogSumExp(axis, keepdims)(self)
    def argmax(self, axis=None, keepdims=False): return _ops.argmax(self, axis, keepdims)
    def argmin(self, axis=None, keepdims=False): return _ops.argmin(self, axis, keepdims)
    def any(self, axis=None, keepdims=False): return _ops.any_(self, axis, keepdims)
    def all(self, axis=None, keepdims=False): return _ops.all_(self, axis, keepdims)
    def cumsum(self, axis): return _ops.CumSum(axis)(self)

    def var(self, axis=None, keepdims=False, correction=0):
        """Variance dividing by n - correction (default 0: biased, as API.md says)."""
        return _ops.var(self, axis, keepdims, correction)

    def std(self, axis=None, keepdims=False, correction=0):
        return _ops.std(self, axis, keepdims, correction)

    # ---- shapes
    def reshape(self, *shape):
        shape = _shape_arguments(shape)
        return self if shape == self.shape else _ops.Reshape(shape)(self)

    view = reshape

    def transpose(self, *axes):
        """Permute the axes (no axes: reverse them)."""
        return _ops.Transpose(_shape_arguments(axes) if axes else None)(self)

    @property
    def T(self):
        return _ops.Transpose(None)(self)

    def swapaxes(self, a, b): return _ops.swapaxes(self, a, b)
    def unsqueeze(self, axis): return _ops.unsqueeze(self, axis)
    def squeeze(self, axis=None): return _ops.squeeze(self, axis)
    def flatten(self, start_dim=0, end_dim=-1): return _ops.flatten(self, start_dim, end_dim)
    def unflatten(self, axis, sizes): return _ops.unflatten(self, axis, sizes)
    def broadcast_to(self, *shape): return _ops.broadcast_to(self, _shape_arguments(shape))
    def expand(self, *shape): return _ops.expand(self, _shape_arguments(shape))
    def repeat(self, *reps): return _ops.repeat(self, _shape_arguments(reps))
    def repeat_interleave(self, repeats, axis=None): return _ops.repeat_interleave(self, repeats, axis)
    def flip(self, *axes): return _ops.flip(self, _shape_arguments(axes))
    def roll(self, shifts, axes=None): return _ops.roll(self, shifts, axes)
    def tril(self, k=0): return _ops.triangle(self, k, lower=True)
    def triu(self, k=0): return _ops.triangle(self, k, lower=False)
    def split(self, size_or_sizes, axis=0): return _ops.split(self, size_or_sizes, axis)
    def chunk(self, chunks, axis=0): return _ops.chunk(self, chunks, axis)

    # ---- indexing and orderings
    def __getitem__(self, index):
        return _ops.getitem(self, index)

    def gather(self, axis, index): return _ops.gather(self, axis, index)
    def scatter_add(self, axis, index, src): return _ops.scatter_add(self, axis, index, src)
    def sort(self, axis=-1, descending=False): return _ops.sort(self, axis, descending)
    def topk(self, k, axis=-1, largest=True): return _ops.topk(self, k, axis, largest)


class _HookHandle:
    """What register_hook returns: remove() takes the hook off again."""

    def __init__(self, owner, table, hook):
        self.owner, self.table, self.hook = owner, table, hook
        setattr(owner, table, getattr(owner, table) + (hook,))

    def remove(self):
        hooks = getattr(self.owner, self.table)
        setattr(self.owner, self.table, tuple(h for h in hooks if h is not self.hook))


_ndarray = backend.numpy.ndarray
_new_object = object.__new__


def _is_numpy(value):
    return isinstance(value, (backend.numpy.ndarray, backend.numpy.generic))


def _host_array(data):
    """A number or nested list of numbers as a numpy array; anything else is an error
    naming what came (numpy would make an array of objects or strings that fails later)."""
    try:
        array = backend.numpy.asarray(data)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"tensor: cannot make a tensor from {_describe(data)}: {exc}") from None
    if array.dtype.kind == "O" and all(type(v) is int for v in array.reshape(-1).tolist()):
        raise OverflowError(f"tensor: {_describe(data)} holds an integer outside int64's range "
                            f"(-2**63 to 2**63 - 1)")
    if array.dtype.kind not in "biufc":
        raise TypeError(f"tensor: expected a number, a nested list of numbers or an array, "
                        f"got {_describe(data)}")
    return array


def _describe(data):
    text = repr(data)
    return f"{type(data).__name__} {text[:60]}{'...' if len(text) > 60 else ''}"


def _shape_arguments(shape):
    """f(2, 3) and f((2, 3)) both mean the shape (2, 3)."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        return tuple(shape[0])
    return tuple(shape)


def tensor(data, requires_grad=False, dtype=None, device=None):
    """A new Tensor holding a copy of data, on `device`: by default the default device
    (mg.set_default_device), numpy arrays included, as torch.tensor does; cupy data
    stays on "cuda". See Tensor for the dtype rules."""
    array = data.data if isinstance(data, Tensor) else data
    if device is None:
        device = "cuda" if backend.device_of(array) == "cuda" else backend.get_default_device()
    result = Tensor(data, requires_grad=requires_grad, dtype=dtype, device=device)
    if result.data is array:
        result.data = array.copy()     # like torch.tensor: never share memory with the source
    return result


def as_array(value, device=None):
    """The backend array behind `value`: a Tensor's own .data, or an array, list or
    number made into an array. With `device` the array is put there (copied only when
    it lives elsewhere); without it a Tensor's data stays where it is and anything
    else goes to the default device."""
    if isinstance(value, Tensor):
        return value.data if device is None else backend.to_device(value.data, device)
    return backend.to_device(value, device)


def as_tensors(values):
    """An op's inputs as Tensors. Arrays and lists become constant Tensors on the device
    of the first Tensor among them; numbers become 0-d constants of the dtype that
    dtypes.py's rule 3 gives them (int32 * 2 stays int32, float16 + 0.5 stays float16)."""
    for value in values:
        if not isinstance(value, Tensor):
            break
    else:
        return values
    if len(values) == 2:                  # the common x * 0.5 and 1 - x, without the loops below
        a, b = values
        if isinstance(a, Tensor) and type(b) in dtypes.PYTHON_NUMBERS:
            return [a, _number(b, a.data.dtype, backend.get_array_module(a.data))]
        if isinstance(b, Tensor) and type(a) in dtypes.PYTHON_NUMBERS:
            return [_number(a, b.data.dtype, backend.get_array_module(b.data)), b]
    arrays, only_numbers = [], True
    for value in values:
        if isinstance(value, Tensor):
            arrays.append(value.data)
        elif not dtypes.is_number(value):
            only_numbers = False
    if not only_numbers:          # arrays and lists: constant tensors beside the first Tensor
        device = backend.device_of(arrays[0]) if arrays else None
        values = [v if isinstance(v, Tensor) or dtypes.is_number(v) else Tensor(v, device=device) for v in values]
        arrays = [v.data for v in values if isinstance(v, Tensor)]
    if not arrays:
        dtype, xp = None, backend.xp_for(None)
    else:
        dtype = arrays[0].dtype if len(arrays) == 1 else dtypes.result_type(arrays)
        xp = backend.get_array_module(arrays[0])
    return [v if isinstance(v, Tensor) else _number(v, dtype, xp) for v in values]


def _number(value, tensors_dtype, xp):
    # x * 0.5 and 1 - y recur in every step: each (number, dtype, device) is made once
    key = (type(value), value, tensors_dtype, xp)
    if not value:         # 0.0 == -0.0 (and 0j == -0j): the key holds the signs too
        key = (key, math.copysign(1.0, value.real), math.copysign(1.0, value.imag))
    constant = _NUMBERS.get(key)
    if constant is not None:
        return constant
    dtype = dtypes.number_dtype(value, tensors_dtype)
    try:
        constant = Tensor._from_array(xp.asarray(value, dtype=dtype))
    except OverflowError:
        raise OverflowError(f"the number {value} does not fit in {dtype}, the dtype of the tensor it meets "
                            f"(a number never widens a tensor: convert the tensor with .astype first)") from None
    if len(_NUMBERS) < 4096 and value == value:     # NaN is never equal to itself, so never found
        if xp is backend.numpy:
            constant.data.flags.writeable = False       # shared by every op that meets this number
        _NUMBERS[key] = constant
    return constant


_NUMBERS = {}


def conform_inputs(function, inputs):
    """An op's inputs on one device and of one dtype, by dtypes.py's rules: an input of
    another dtype is cast by a recorded Cast, so its gradient comes back in its own dtype."""
    check_same_device(type(function).__name__, inputs)
    dtype = dtypes.result_type([x.data for x in inputs])
    if function.float_valued and dtype.kind in "biu":
        dtype = dtypes.numpy.dtype(backend.default_float())
    return [x if x.data.dtype == dtype else _ops.Cast(dtype)(x) for x in inputs]


def check_same_device(name, tensors):
    """Raise, naming both devices, when the tensors of one operation live on different devices."""
    devices = {x.device for x in tensors}
    if len(devices) > 1:
        detail = ", ".join(f"{tuple(x.shape)} on {x.device}" for x in tensors)
        raise RuntimeError(f"{name}: tensors are on different devices (cpu and cuda): {detail}; "
                           f"move them with .to(device) first")


# The ops build on Tensor (above), so they are imported last.
from . import ops as _ops  # noqa: E402
