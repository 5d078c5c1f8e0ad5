"""Tensor and reverse-mode automatic differentiation.

This file holds the whole idea of autograd:

1. A ``Tensor`` wraps an array (``.data``) and, if it was produced by an
   operation while gradients were wanted, a link to that operation
   (``._creator``, a ``Function``).
2. A ``Function`` computes its output from its inputs' arrays in ``forward``
   and remembers its inputs. Its ``backward`` turns the gradient of the output,
   dL/dy, into gradients of the inputs, dL/dx_i = dL/dy * dy/dx_i (the chain rule).
3. The tensors and functions form a directed acyclic graph (DAG). ``backward``
   walks it from the output towards the leaves in reverse topological order,
   so that a node's gradient is complete (summed over all its uses) before it
   is passed further back. The walk uses a heap keyed by each function's
   *generation* (its depth from the leaves), not recursion, so a chain of
   10,000 operations works.
4. ``Function.backward`` is written with Tensor operations. Normally it runs
   under ``no_grad`` and builds nothing; with ``create_graph=True`` it records
   a graph of the backward pass, so gradients can be differentiated again.

The operations themselves (add, matmul, exp, ...) live in ``minigrad/ops.py``.
"""
import contextlib
import functools
import heapq
import itertools
import operator
import weakref

from . import backend


# --------------------------------------------------------------------------- grad mode
class _GradMode:
    enabled = True


def is_grad_enabled():
    return _GradMode.enabled


class _SetGradEnabled(contextlib.ContextDecorator):
    def __init__(self, mode):
        self.mode = mode

    def _recreate_cm(self):
        # a fresh object per decorated call, so recursion or threads never share `previous`
        return type(self)(self.mode)

    def __enter__(self):
        self.previous = _GradMode.enabled
        _GradMode.enabled = self.mode

    def __exit__(self, *exc):
        _GradMode.enabled = self.previous
        return False


def no_grad(function=None):
    """Context manager and decorator: operations inside record no graph.

        with mg.no_grad(): ...        @mg.no_grad()        @mg.no_grad
    """
    return _SetGradEnabled(False)(function) if callable(function) else _SetGradEnabled(False)


def enable_grad(function=None):
    """The opposite of no_grad (inside a no_grad block, record a graph again)."""
    return _SetGradEnabled(True)(function) if callable(function) else _SetGradEnabled(True)


# --------------------------------------------------------------------------- Tensor
class Tensor:
    """An n-dimensional array that remembers how it was computed.

    Tensor(data, requires_grad=False, dtype=None, device=None)

    data: a number, nested list, numpy/cupy array or Tensor. Python floats become
    float32 (as in PyTorch); numpy arrays keep their dtype.
    device: where the data goes. By default an array stays where it is (numpy on
    "cpu", cupy on "cuda"), like torch.as_tensor, and numbers and lists go to the
    default device (mg.set_default_device). mg.tensor(...) differs in one way: it
    sends numpy arrays to the default device too, like torch.tensor. The data is
    shared, not copied, when it is already on its device.
    """

    __array_priority__ = 1000   # numpy_array * tensor -> Tensor.__rmul__, not numpy's loop
    __array_ufunc__ = None      # numpy ufuncs and operators defer to the Tensor's own

    # Defaults shared by every tensor until it sets its own: an op's result is made
    # by assigning .data alone (see wrap), which keeps small ops cheap.
    grad = None             # dL/d(self), filled in by backward
    _creator = None         # the Function that produced this tensor, if recorded
    generation = 0          # 1 + the creator's generation: orders the backward walk
    name = None             # a label for mg.viz.to_dot
    requires_grad = False
    _version = 0            # +1 at every in-place change (t += x, t[i] = v, an optimizer step)

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
            array = backend.numpy.asarray(data)
            if dtype is None and array.dtype == backend.numpy.float64 and not _is_numpy(data):
                array = array.astype(backend.default_float())    # Python floats -> float32
            if device != "cpu":
                array = backend.to_device(array, device)
        if dtype is not None:
            array = array.astype(backend.as_dtype(dtype), copy=False)
        self.data = array
        if requires_grad:
            self.requires_grad_(True)

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
    is_leaf = property(lambda self: self._creator is None)

    def __len__(self):
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
        if self._creator is not None:
            extra += f", grad_fn={type(self._creator).__name__}"
        elif self.requires_grad:
            extra += ", requires_grad=True"
        return f"tensor({body}, dtype={self.dtype}{extra})"

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
        """The same data, cut from the graph (shares memory, as in PyTorch)."""
        return wrap(self.data)

    def to(self, device):
        """A copy of this tensor on `device` ("cpu" or "cuda"); self when already there.
        Gradients flow back through the move."""
        device = backend.check_device(device)
        if device == self.device:
            return self
        from .ops import ToDevice
        return ToDevice(device)(self)

    def cpu(self):
        return self.to("cpu")

    def cuda(self):
        return self.to("cuda")

    def astype(self, dtype):
        from .ops import Cast
        return Cast(backend.as_dtype(dtype))(self)

    float = lambda self: self.astype("float32")
    double = lambda self: self.astype("float64")
    half = lambda self: self.astype("float16")

    def zero_grad(self):
        self.grad = None

    # ---- autograd
    def backward(self, grad=None, create_graph=False, retain_graph=None):
        """Compute d(self)/d(leaf) for every leaf that requires grad and add it to leaf.grad.

        grad: dL/d(self), needed unless self has one element (then it is 1).
        create_graph: record the backward pass so gradients can be differentiated.
        retain_graph: keep the graph's saved tensors for another backward
                      (defaults to create_graph, as in PyTorch).
        """
        if not self.requires_grad:
            raise RuntimeError("backward(): this tensor does not require grad and has no graph "
                               "(did you forget requires_grad=True, or compute it under no_grad?)")
        grad = _initial_grad(self, grad)
        grads = run_backward([self], [grad], create_graph=create_graph,
                             retain_graph=create_graph if retain_graph is None else retain_graph)
        given = set()
        for tensor, g in grads.values():
            if not tensor.is_leaf:
                continue
            if tensor.grad is not None:
                tensor.grad = tensor.grad + g
            elif not create_graph and (id(g.data) in given or getattr(g.data, "base", None) is not None):
                # backward may hand one array to several leaves (x + y), or a view (a
                # read-only broadcast, a reshape of another leaf's gradient); each .grad
                # gets an array of its own, so an in-place update changes only that one
                tensor.grad = wrap(g.data.copy())
            else:
                tensor.grad = g
            given.add(id(tensor.grad.data))


def _is_numpy(value):
    return isinstance(value, backend.numpy.ndarray) or isinstance(value, backend.numpy.generic)


def _initial_grad(output, grad):
    if grad is None:
        if output.size != 1:
            raise RuntimeError(f"backward(): grad can be omitted only for a single-element tensor, "
                               f"this one has shape {output.shape}")
        return wrap(backend.get_array_module(output.data).ones(output.shape, dtype=output.dtype))
    grad = grad if isinstance(grad, Tensor) else Tensor(grad, dtype=output.dtype, device=output.device)
    if grad.shape != output.shape:
        raise ValueError(f"backward(): grad of shape {grad.shape} does not match output shape {output.shape}")
    return grad


def wrap(array, requires_grad=False):
    """A Tensor around `array` exactly as it is: no copy, no cast, on the array's own
    device. Ops wrap their results with it (the fast path of Tensor(...))."""
    if type(array) is not _ndarray and not backend.is_array(array):
        array = backend.numpy.asarray(array)       # numpy scalars from reductions -> 0-d arrays
    t = _new_tensor(Tensor)
    t.data = array
    if requires_grad:
        t.requires_grad_(True)
    return t


_ndarray = backend.numpy.ndarray
_new_tensor = object.__new__


def as_array(value, device=None):
    """The backend array behind `value`: a Tensor's own .data, or an array, list or
    number made into an array. With `device` the array is put there (copied only when
    it lives elsewhere); without it a Tensor's data stays where it is and anything
    else goes to the default device."""
    if isinstance(value, Tensor):
        return value.data if device is None else backend.to_device(value.data, device)
    return backend.to_device(value, device)


def as_tensor(value, like=None):
    """`value` as a Tensor; numbers and arrays become constants on `like`'s device,
    numbers taking `like`'s dtype so that 2 * float32 stays float32."""
    if isinstance(value, Tensor):
        return value
    if like is None:
        return Tensor(value)
    if isinstance(value, (bool, int, float)) and like.data.dtype.kind in "fc":
        return wrap(backend.get_array_module(like.data).asarray(value, dtype=like.data.dtype))
    return Tensor(value, device=like.device)


# --------------------------------------------------------------------------- Function
class Function:
    """One operation in the graph: forward on arrays, backward on Tensors.

    Subclasses define
        forward(self, *arrays) -> array              y = f(x_1, ..., x_n)
        backward(self, grad_output) -> grad or tuple   dL/dx_i = dL/dy * dy/dx_i
    Inside backward, `self.inputs` are the input Tensors and `self.output` the
    output Tensor, so the gradient is built from differentiable operations.
    Return None for an input that needs no gradient.
    """
    inputs = ()
    generation = 0

    def __call__(self, *inputs):
        # This runs for every op, so the common case (all inputs Tensors on one
        # device) is kept free of detours; profile before adding to it.
        like = None
        for x in inputs:
            if isinstance(x, Tensor):
                like = x
                break
        inputs = [x if isinstance(x, Tensor) else as_tensor(x, like) for x in inputs]
        arrays = [x.data for x in inputs]
        record = False
        for x in inputs:
            if type(x.data) is not type(arrays[0]):     # numpy next to cupy: say which is where
                _check_same_device(type(self).__name__, inputs)
            if x.requires_grad:
                record = _GradMode.enabled
        output = wrap(self.forward(*arrays))
        if record and output.data.dtype.kind in "fc":
            output.requires_grad = True
            output._creator = self
            self.generation = max(x.generation for x in inputs)
            output.generation = self.generation + 1
            self.inputs = inputs
            self._output = weakref.ref(output)
            # backward reads these tensors again; it checks they were not changed in place since
            self._versions = [x._version for x in inputs]
        return output

    def check_versions(self):
        """Raise if an input, or the output, was changed in place after this op saved it:
        backward would otherwise compute with the new values and give a wrong gradient."""
        output = self.output
        changed = [(f"input {i}", x, v) for i, (x, v) in enumerate(zip(self.inputs, self._versions))
                   if x._version != v]
        if output is not None and output._version != 0:
            changed.append(("output", output, 0))
        if changed:
            where, tensor, version = changed[0]
            raise RuntimeError(
                f"backward: the {where} of {type(self).__name__} (shape {tuple(tensor.shape)}) was modified "
                f"in place after the graph saved it (version {version} -> {tensor._version}); compute "
                f"the new value out of place (t = t + x) or call backward before changing it")

    @property
    def output(self):
        return self._output()

    def forward(self, *arrays):
        raise NotImplementedError

    def backward(self, grad_output):
        raise NotImplementedError

    def release(self):
        """Forget the inputs (and the arrays they hold) once the graph is not needed."""
        self.inputs = None


def _check_same_device(name, inputs):
    devices = {x.device for x in inputs}
    if len(devices) > 1:
        detail = ", ".join(f"{tuple(x.shape)} on {x.device}" for x in inputs)
        raise RuntimeError(f"{name}: tensors are on different devices (cpu and cuda): {detail}; "
                           f"move them with .to(device) first")


# --------------------------------------------------------------------------- backward pass
def run_backward(outputs, grad_outputs, create_graph=False, retain_graph=False, keep=()):
    """Propagate grad_outputs back through the graph.

    Returns {id(tensor): [tensor, gradient]} for every leaf that requires grad and
    for every tensor in `keep`. Functions are taken from a max-heap on generation:
    a function runs only after every function that uses its output (all of which
    have a larger generation) has run, so its output gradient is complete. That
    gradient is then dropped (unless kept), and without retain_graph the function
    forgets its inputs at once, so memory holds only what is still needed.
    """
    keep = {id(t) for t in keep}
    grads = {}                   # id(tensor) -> [tensor, its gradient so far]
    heap, seen = [], set()
    counter = itertools.count()  # tie-breaker so the heap never compares Functions

    def add(tensor, grad):
        entry = grads.get(id(tensor))
        if entry is not None:
            entry[1] = entry[1] + grad
            return
        grads[id(tensor)] = [tensor, grad]
        function = tensor._creator
        if function is not None and id(function) not in seen:
            if function.inputs is None:
                raise RuntimeError(
                    f"backward: the graph through {type(function).__name__} was already freed by an "
                    f"earlier backward; pass retain_graph=True to the first backward to go twice")
            seen.add(id(function))
            heapq.heappush(heap, (-function.generation, next(counter), function))

    for output, grad in zip(outputs, grad_outputs):
        add(output, grad)

    with _SetGradEnabled(create_graph):
        while heap:
            function = heapq.heappop(heap)[2]
            key = id(function.output)
            # holding `output` keeps it alive for backward (its users may be freed already)
            output, grad_output = grads[key] if key in keep else grads.pop(key)
            function.check_versions()
            input_grads = function.backward(grad_output)
            if not isinstance(input_grads, tuple):
                input_grads = (input_grads,)
            for tensor, grad in zip(function.inputs, input_grads):
                if grad is not None and tensor.requires_grad:
                    add(tensor, grad)
            if not retain_graph:
                function.release()
    return grads


def grad(outputs, inputs, grad_outputs=None, create_graph=False, retain_graph=None):
    """Gradients of `outputs` with respect to `inputs`, returned as a list (like
    torch.autograd.grad). Does not touch .grad. An input that does not influence the
    outputs gets a zero gradient (PyTorch raises unless allow_unused=True)."""
    outputs = list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]
    inputs = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
    if grad_outputs is None:
        grad_outputs = [None] * len(outputs)
    elif not isinstance(grad_outputs, (list, tuple)):
        grad_outputs = [grad_outputs]
    for output in outputs:
        if not output.requires_grad:
            raise RuntimeError("grad(): an output does not require grad and has no graph")
    seeds = [_initial_grad(o, g) for o, g in zip(outputs, grad_outputs)]
    found = run_backward(outputs, seeds, create_graph=create_graph, keep=inputs,
                         retain_graph=create_graph if retain_graph is None else retain_graph)
    result = []
    for tensor in inputs:
        entry = found.get(id(tensor))
        result.append(entry[1] if entry is not None
                      else wrap(backend.get_array_module(tensor.data).zeros_like(tensor.data)))
    return result


# --------------------------------------------------------------------------- making tensors
def tensor(data, requires_grad=False, dtype=None, device=None):
    """A new Tensor holding a copy of data, on `device`: by default the default
    device (mg.set_default_device), numpy arrays included, as torch.tensor does;
    cupy data stays on "cuda". See Tensor for the dtype rules. Tensor(array) is
    the no-copy form (like torch.as_tensor)."""
    array = data.data if isinstance(data, Tensor) else data
    if device is None:
        device = "cuda" if backend.device_of(array) == "cuda" else backend.get_default_device()
    result = Tensor(data, requires_grad=requires_grad, dtype=dtype, device=device)
    if result.data is array:
        result.data = array.copy()     # like torch.tensor: never share memory with the source
    return result


def _shape(shape):
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        return tuple(shape[0])
    return tuple(shape)


def _filled(make):
    @functools.wraps(make)
    def wrapper(*shape, dtype=None, device=None, requires_grad=False):
        device = backend.check_device(device)
        dtype = backend.as_dtype(dtype) or backend.default_float()
        array = make(backend.xp_for(device), _shape(shape), dtype)
        return wrap(array, requires_grad=requires_grad)
    return wrapper


@_filled
def zeros(xp, shape, dtype):
    """zeros(*shape, dtype=float32, device=None, requires_grad=False)"""
    return xp.zeros(shape, dtype=dtype)


@_filled
def ones(xp, shape, dtype):
    """ones(*shape, dtype=float32, device=None, requires_grad=False)"""
    return xp.ones(shape, dtype=dtype)


def randn(*shape, dtype=None, device=None, requires_grad=False):
    """Standard normal samples from the seeded generator (mg.manual_seed)."""
    dtype = backend.as_dtype(dtype) or backend.default_float()
    host = backend.rng().standard_normal(_shape(shape)).astype(dtype)
    return Tensor(host, device=device or backend.get_default_device(), requires_grad=requires_grad)


def rand(*shape, dtype=None, device=None, requires_grad=False):
    """Uniform samples in [0, 1) from the seeded generator."""
    dtype = backend.as_dtype(dtype) or backend.default_float()
    host = backend.rng().random(_shape(shape)).astype(dtype)
    return Tensor(host, device=device or backend.get_default_device(), requires_grad=requires_grad)


def arange(start, stop=None, step=1, dtype=None, device=None, requires_grad=False):
    """Like numpy.arange; integers give int64, as in PyTorch."""
    device = backend.check_device(device)
    if stop is None:
        start, stop = 0, start
    array = backend.xp_for(device).arange(start, stop, step, dtype=backend.as_dtype(dtype))
    if dtype is None and array.dtype == backend.numpy.float64:
        array = array.astype(backend.default_float())
    return wrap(array, requires_grad=requires_grad)


def zeros_like(t, dtype=None, device=None, requires_grad=False):
    return zeros(*t.shape, dtype=dtype or t.dtype, device=device or t.device, requires_grad=requires_grad)


def ones_like(t, dtype=None, device=None, requires_grad=False):
    return ones(*t.shape, dtype=dtype or t.dtype, device=device or t.device, requires_grad=requires_grad)


def manual_seed(seed):
    """Seed every random draw minigrad makes (initialisation, dropout, randn)."""
    backend.manual_seed(seed)


# --------------------------------------------------------------------------- operators and methods
# The Tensor's operators call the ops in ops.py; they are attached here, after
# both modules exist, so that this file keeps only the autograd machinery above.
from . import ops as _ops  # noqa: E402  (ops imports Function and Tensor from this module)


def _compare(name, fn):
    def method(self, other):
        other = as_tensor(other, self)
        _check_same_device(name, [self, other])
        return wrap(fn(backend.get_array_module(self.data), self.data, other.data))
    method.__name__ = name
    method.__doc__ = f"Elementwise {name.strip('_')}: a boolean tensor, not differentiable."
    return method


def _mean(self, axis=None, keepdims=False):
    """Arithmetic mean over `axis` (sum / count)."""
    total = self.sum(axis=axis, keepdims=keepdims)
    count = self.size // max(total.size, 1) if self.size else 0
    return total / count if count else total * float("nan")


def _var(self, axis=None, keepdims=False):
    """Biased variance: mean((x - mean(x))^2), dividing by n as layer norm does."""
    centred = self - self.mean(axis=axis, keepdims=True)
    return (centred * centred).mean(axis=axis, keepdims=keepdims)


def _reshape(self, *shape):
    shape = _shape(shape)
    return self if shape == self.shape else _ops.Reshape(shape)(self)


def _transpose(self, *axes):
    axes = _shape(axes) if axes else None
    return _ops.Transpose(axes)(self)


def _swapaxes(self, a, b):
    axes = list(range(self.ndim))
    axes[a], axes[b] = axes[b], axes[a]
    return _ops.Transpose(tuple(axes))(self)


def _getitem(self, index):
    return _ops.GetItem(_ops._device_index(index, self.device))(self)


def _setitem(self, index, value):
    """t[index] = value, in place on t's data. Autograd does not record it, so it is
    refused while gradients are recorded for t or value; its version counter goes up,
    so a graph that saved t notices at backward time."""
    value = as_tensor(value, self)
    _check_same_device("setitem", [self, value])
    if _GradMode.enabled and (self.requires_grad or value.requires_grad):
        raise RuntimeError(
            f"t[index] = value: autograd does not record assignment into a tensor (shape {self.shape}) "
            f"when it or the value requires grad; build the result out of place (mg.where, "
            f"mg.concatenate, masked_fill) or change the data under mg.no_grad()")
    self.data[_ops._device_index(index, self.device)] = value.data
    self._version += 1


def _in_place(name, update, out_of_place):
    """t op= x. In place on t's data when no graph is being recorded for t or x (the
    version counter goes up, so a graph that saved t notices at backward time).
    While recording, t op= x is t = t op x, out of place (what the name t then
    refers to changes, the graph's saved tensors do not); on a leaf that requires
    grad that would silently detach it from its optimizer, so it is an error."""
    def method(self, other):
        other = as_tensor(other, self)
        _check_same_device(name, [self, other])
        if _GradMode.enabled and (self.requires_grad or other.requires_grad):
            if self.is_leaf and self.requires_grad:
                raise RuntimeError(
                    f"{name}: a leaf tensor that requires grad (shape {self.shape}) cannot be changed in "
                    f"place while gradients are recorded; do the update under mg.no_grad()")
            return out_of_place(self, other)
        try:
            update(self.data, other.data)
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"{name}: cannot update shape {self.shape} {self.dtype} in place with "
                            f"shape {other.shape} {other.dtype}: {exc}") from None
        self._version += 1
        return self
    method.__name__ = name
    return method


def _masked_fill(self, mask, value):
    """Where mask is True put `value`, elsewhere keep self (mask broadcasts)."""
    return _ops.where(mask, as_tensor(value, self), self)


def _clip(self, lo=None, hi=None):
    return _ops.Clip(lo, hi)(self)


def _unsqueeze(self, axis):
    axis = axis % (self.ndim + 1)
    return self.reshape(self.shape[:axis] + (1,) + self.shape[axis:])


def _squeeze(self, axis=None):
    if axis is None:
        return self.reshape(tuple(s for s in self.shape if s != 1))
    axis = axis % self.ndim
    if self.shape[axis] != 1:
        return self
    return self.reshape(self.shape[:axis] + self.shape[axis + 1:])


def _argmax(self, axis=None, keepdims=False):
    xp = backend.get_array_module(self.data)
    result = xp.argmax(self.data, axis=axis)
    if keepdims and axis is not None:
        result = xp.expand_dims(result, axis)
    return wrap(result)


Tensor.__add__ = lambda a, b: _ops.Add()(a, b)
Tensor.__radd__ = lambda a, b: _ops.Add()(b, a)
Tensor.__sub__ = lambda a, b: _ops.Sub()(a, b)
Tensor.__rsub__ = lambda a, b: _ops.Sub()(b, a)
Tensor.__mul__ = lambda a, b: _ops.Mul()(a, b)
Tensor.__rmul__ = lambda a, b: _ops.Mul()(b, a)
Tensor.__truediv__ = lambda a, b: _ops.Div()(a, b)
Tensor.__rtruediv__ = lambda a, b: _ops.Div()(b, a)
Tensor.__pow__ = lambda a, b: _ops.Pow()(a, b)
Tensor.__rpow__ = lambda a, b: _ops.Pow()(b, a)
Tensor.__neg__ = lambda a: _ops.Neg()(a)
Tensor.__matmul__ = lambda a, b: _ops.matmul(a, b)
Tensor.__rmatmul__ = lambda a, b: _ops.matmul(b, a)
Tensor.__lt__ = _compare("__lt__", lambda xp, a, b: a < b)
Tensor.__le__ = _compare("__le__", lambda xp, a, b: a <= b)
Tensor.__gt__ = _compare("__gt__", lambda xp, a, b: a > b)
Tensor.__ge__ = _compare("__ge__", lambda xp, a, b: a >= b)
Tensor.__eq__ = _compare("__eq__", lambda xp, a, b: a == b)
Tensor.__ne__ = _compare("__ne__", lambda xp, a, b: a != b)
Tensor.__hash__ = object.__hash__          # __eq__ is elementwise, identity stays the hash
Tensor.__getitem__ = _getitem
Tensor.__setitem__ = _setitem
Tensor.__iadd__ = _in_place("__iadd__", operator.iadd, Tensor.__add__)
Tensor.__isub__ = _in_place("__isub__", operator.isub, Tensor.__sub__)
Tensor.__imul__ = _in_place("__imul__", operator.imul, Tensor.__mul__)
Tensor.__itruediv__ = _in_place("__itruediv__", operator.itruediv, Tensor.__truediv__)
Tensor.exp = lambda self: _ops.Exp()(self)
Tensor.log = lambda self: _ops.Log()(self)
Tensor.sqrt = lambda self: _ops.Sqrt()(self)
Tensor.abs = lambda self: _ops.Abs()(self)
Tensor.__abs__ = Tensor.abs
Tensor.tanh = lambda self: _ops.Tanh()(self)
Tensor.sigmoid = lambda self: _ops.Sigmoid()(self)
Tensor.relu = lambda self: _ops.Relu()(self)
Tensor.sum = lambda self, axis=None, keepdims=False: _ops.Sum(axis, keepdims)(self)
Tensor.max = lambda self, axis=None, keepdims=False: _ops.Max(axis, keepdims)(self)
Tensor.min = lambda self, axis=None, keepdims=False: -_ops.Max(axis, keepdims)(-self)
Tensor.mean = _mean
Tensor.var = _var
Tensor.argmax = _argmax
Tensor.reshape = _reshape
Tensor.view = _reshape
Tensor.transpose = _transpose
Tensor.T = property(lambda self: _ops.Transpose(None)(self))
Tensor.swapaxes = _swapaxes
Tensor.unsqueeze = _unsqueeze
Tensor.squeeze = _squeeze
Tensor.flatten = lambda self, start=0: self.reshape(self.shape[:start] + (-1,))
Tensor.masked_fill = _masked_fill
Tensor.clip = _clip
Tensor.clamp = _clip
Tensor.broadcast_to = lambda self, *shape: _ops.broadcast_to(self, _shape(shape))
