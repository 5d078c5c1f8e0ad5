"""A stand-in for cupy that runs on the CPU and enforces cupy's rules.

CI has no GPU, yet the "cuda" path must be tested: every op has to run through
the device's array module and never fall back to numpy on device data. This
module plays cupy's part. Its arrays wrap a numpy array but are NOT numpy
arrays, and they refuse everything that real cupy refuses:

* ``numpy.asarray(x)`` / implicit conversion raises TypeError (cupy: "Implicit
  conversion to a NumPy array is not allowed");
* arithmetic, comparison, indexing or assignment mixing a device array with a
  numpy.ndarray raises TypeError, and so do the module functions (``exp``,
  ``sum``, ``matmul``, ``where`` ...) when handed a numpy.ndarray or a list;
* the explicit copies are allowed: ``asarray(numpy_array)`` (host -> device),
  ``asnumpy(x)`` and ``x.get()`` (device -> host), ``float(x)``, ``x.item()``.

Python numbers and numpy scalars mix freely, as in cupy. Reductions return 0-d
device arrays, never numbers, as in cupy.

    import minigrad.backend as backend, fake_cupy
    backend.register_cuda_module(fake_cupy)      # tests/conftest.py does this
"""
import types

import numpy


class FakeCupyError(TypeError):
    """Raised where real cupy would refuse the call (numpy data on the device side)."""


def _refuse(what, value):
    raise FakeCupyError(f"fake_cupy: {what} got a numpy.ndarray of shape {value.shape}; cupy does not "
                        "accept host arrays here (Unsupported type <class 'numpy.ndarray'>). "
                        "Move it with asarray() first.")


def _unwrap(value, what):
    """The numpy array inside a device array; numbers, shapes and sequences of device
    arrays (concatenate, stack) pass; host arrays are refused, also inside sequences."""
    if isinstance(value, ndarray):
        return value._array
    if isinstance(value, numpy.ndarray):
        _refuse(what, value)
    if isinstance(value, (list, tuple)):
        items = [_unwrap(v, what) for v in value]
        return tuple(items) if isinstance(value, tuple) else items
    return value


def _wrap(value):
    """Wrap numpy results as device arrays; a numpy scalar becomes a 0-d array (cupy never
    hands back host numbers from array functions)."""
    if isinstance(value, numpy.ndarray):
        return ndarray(value)
    if isinstance(value, numpy.generic):
        return ndarray(numpy.asarray(value))
    if isinstance(value, tuple):
        return tuple(_wrap(v) for v in value)
    if isinstance(value, list):
        return [_wrap(v) for v in value]
    return value


def _index(key, what="indexing"):
    """Indices may hold device arrays, slices, numbers, lists; not host arrays."""
    if isinstance(key, tuple):
        return tuple(_index(k, what) for k in key)
    if isinstance(key, numpy.ndarray):
        _refuse(what, key)
    return key._array if isinstance(key, ndarray) else key


class ndarray:
    """A device array: a numpy array behind a wall that only explicit copies cross."""

    __array_priority__ = 100     # as cupy's; minigrad.Tensor (1000) wins mixed operators
    __hash__ = None

    def __init__(self, array):
        if not isinstance(array, numpy.ndarray):
            raise TypeError(f"fake_cupy.ndarray wraps a numpy array, got {type(array).__name__}")
        self._array = array

    # ---- the wall
    def __array__(self, dtype=None, copy=None):
        raise TypeError("Implicit conversion to a NumPy array is not allowed. "
                        "Please use `.get()` to construct a NumPy array explicitly.")

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        # numpy.float32(2) * x lands here; cupy accepts it, but not a numpy.ndarray operand
        args = [_unwrap(v, f"numpy.{ufunc.__name__}") for v in inputs]
        if "out" in kwargs:
            kwargs["out"] = tuple(_unwrap(v, f"numpy.{ufunc.__name__}") for v in kwargs["out"])
        return _wrap(getattr(ufunc, method)(*args, **kwargs))

    def __array_function__(self, func, types_, args, kwargs):
        raise FakeCupyError(f"fake_cupy: numpy.{func.__name__} was called on a device array; "
                            "use the array module of the data (backend.get_array_module)")

    def get(self):
        """Device -> host copy."""
        return self._array.copy()

    # ---- facts
    shape = property(lambda self: self._array.shape)
    ndim = property(lambda self: self._array.ndim)
    dtype = property(lambda self: self._array.dtype)
    size = property(lambda self: self._array.size)
    itemsize = property(lambda self: self._array.itemsize)
    nbytes = property(lambda self: self._array.nbytes)
    strides = property(lambda self: self._array.strides)
    T = property(lambda self: _wrap(self._array.T))
    real = property(lambda self: _wrap(self._array.real))
    imag = property(lambda self: _wrap(self._array.imag))
    device = property(lambda self: "fake-cuda:0")
    base = property(lambda self: None if self._array.base is None else "a view of another device array")

    def __len__(self):
        return len(self._array)

    def __iter__(self):
        return (_wrap(row) for row in self._array)

    def __repr__(self):
        return "fake_cupy." + repr(self._array)

    def __str__(self):
        return str(self._array)

    # ---- explicit conversions to Python numbers (cupy syncs and allows these)
    def item(self, *args):
        return self._array.item(*args)

    def tolist(self):
        return self._array.tolist()

    def __float__(self):
        return float(self._array)

    def __int__(self):
        return int(self._array)

    def __index__(self):
        return self._array.__index__()

    def __bool__(self):
        return bool(self._array)

    def __complex__(self):
        return complex(self._array)

    # ---- indexing
    def __getitem__(self, key):
        return _wrap(self._array[_index(key)])

    def __setitem__(self, key, value):
        self._array[_index(key)] = _unwrap(value, "__setitem__")

    # ---- methods (same names and arguments as numpy's)
    def astype(self, dtype, copy=True, **kwargs):
        return ndarray(self._array.astype(dtype, copy=copy, **kwargs))

    def copy(self, order="C"):
        return ndarray(self._array.copy(order=order))

    def set(self, host):
        """Host -> device copy into this array (cupy's ndarray.set)."""
        self._array[...] = numpy.asarray(host)


def _method(name):
    def method(self, *args, **kwargs):
        args = _unwrap(args, f"ndarray.{name}")
        kwargs = {k: _unwrap(v, f"ndarray.{name}") for k, v in kwargs.items()}
        return _wrap(getattr(self._array, name)(*args, **kwargs))
    method.__name__ = name
    return method


for _name in ("reshape", "transpose", "swapaxes", "sum", "mean", "var", "std", "max", "min",
              "argmax", "argmin", "prod", "cumsum", "any", "all", "ravel", "flatten", "squeeze",
              "clip", "dot", "repeat", "take", "fill", "nonzero", "round", "conj", "view", "sort",
              "argsort", "diagonal", "trace", "ptp"):
    setattr(ndarray, _name, _method(_name))


def _binary(name):
    def operator(self, other):
        if isinstance(other, numpy.ndarray):
            _refuse(f"ndarray.{name}", other)
        if not isinstance(other, (ndarray, int, float, complex, bool, numpy.generic)):
            return NotImplemented       # e.g. a minigrad Tensor: let it handle the operator
        return _wrap(getattr(self._array, name)(_unwrap(other, name)))
    operator.__name__ = name
    return operator


def _inplace(name):
    def operator(self, other):
        if isinstance(other, numpy.ndarray):
            _refuse(f"ndarray.{name}", other)
        getattr(self._array, name)(_unwrap(other, name))
        return self
    operator.__name__ = name
    return operator


for _op in ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "matmul",
            "and", "or", "xor", "lshift", "rshift"):
    setattr(ndarray, f"__{_op}__", _binary(f"__{_op}__"))
    setattr(ndarray, f"__r{_op}__", _binary(f"__r{_op}__"))
    setattr(ndarray, f"__i{_op}__", _inplace(f"__i{_op}__"))
for _op in ("lt", "le", "gt", "ge", "eq", "ne"):
    setattr(ndarray, f"__{_op}__", _binary(f"__{_op}__"))
for _op in ("neg", "pos", "abs", "invert"):
    setattr(ndarray, f"__{_op}__", (lambda name: lambda self: _wrap(getattr(self._array, name)()))(f"__{_op}__"))


# --------------------------------------------------------------------------- the module's functions
def asarray(value, dtype=None, order=None):
    """Host -> device copy (a device array is returned as it is, or cast)."""
    if isinstance(value, ndarray):
        return value if dtype is None else value.astype(dtype, copy=False)
    if isinstance(value, (list, tuple)) and any(isinstance(v, ndarray) for v in value):
        raise FakeCupyError("fake_cupy.asarray: a list of device arrays; use stack() instead")
    return ndarray(numpy.array(value, dtype=dtype, order=order or "K", copy=True))


def array(value, dtype=None, copy=True, order="K", ndmin=0):
    if isinstance(value, ndarray):
        out = numpy.array(value._array, dtype=dtype, copy=copy, order=order, ndmin=ndmin)
        return ndarray(out)
    return ndarray(numpy.array(asarray(value)._array, dtype=dtype, order=order, ndmin=ndmin))


def asnumpy(value):
    """Device -> host copy; host arrays and numbers pass through (as in cupy)."""
    if isinstance(value, ndarray):
        return value._array.copy()
    return numpy.asarray(value)


def ascontiguousarray(value, dtype=None):
    return ndarray(numpy.ascontiguousarray(_unwrap(value, "ascontiguousarray"), dtype=dtype))


def _function(name):
    numpy_function = getattr(numpy, name)

    def function(*args, **kwargs):
        what = f"fake_cupy.{name}"
        args = _unwrap(args, what)
        kwargs = {k: _unwrap(v, what) for k, v in kwargs.items()}
        return _wrap(numpy_function(*args, **kwargs))
    function.__name__ = name
    function.__doc__ = f"numpy.{name} on device arrays (host arrays refused)."
    return function


_FUNCTIONS = """
    abs absolute add all allclose any arange arccos arcsin arctan arctan2 argmax argmin argsort
    argwhere around array_equal array_split bincount broadcast_arrays broadcast_to ceil clip
    concatenate copy cos cosh count_nonzero cumprod cumsum diag diagonal divide dot einsum empty
    empty_like equal exp exp2 expand_dims expm1 eye flip floor floor_divide full full_like greater
    greater_equal hstack identity inner isclose isfinite isinf isnan kron less less_equal linspace
    log log10 log1p log2 logaddexp logical_and logical_not logical_or logical_xor matmul max maximum
    mean min minimum mod moveaxis multiply nan_to_num negative nonzero not_equal ones ones_like outer
    pad power prod ravel reciprocal repeat reshape round roll sign sin sinh sort split sqrt square
    squeeze stack std subtract sum swapaxes take take_along_axis tan tanh tensordot tile trace
    transpose tril triu true_divide unique var vstack where zeros zeros_like
""".split()
for _name in _FUNCTIONS:
    globals()[_name] = _function(_name)

# plain values and types that cupy shares with numpy
dtype, finfo, iinfo, result_type, can_cast = numpy.dtype, numpy.finfo, numpy.iinfo, numpy.result_type, numpy.can_cast
float16, float32, float64, int8, int16, int32, int64, uint8, bool_ = (
    numpy.float16, numpy.float32, numpy.float64, numpy.int8, numpy.int16, numpy.int32, numpy.int64,
    numpy.uint8, numpy.bool_)
complex64, complex128 = numpy.complex64, numpy.complex128
newaxis, pi, e, inf, nan = None, numpy.pi, numpy.e, numpy.inf, numpy.nan


def _scatter_add(target, index, values):
    """target[index] += values with repeated indices adding up (cupyx.scatter_add)."""
    if not isinstance(target, ndarray):
        raise FakeCupyError("fake_cupy._scatter_add: target must be a device array")
    numpy.add.at(target._array, _index(index, "scatter_add"), _unwrap(values, "scatter_add"))


def get_array_module(*arrays):
    """cupy.get_array_module: this module if any argument is a device array, else numpy."""
    return this_module if any(isinstance(a, ndarray) for a in arrays) else numpy


class _Device:
    def __init__(self, index=0):
        self.id = index

    def synchronize(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class _Generator:
    """cupy.random.Generator's draws used here (random), made on the "device"."""

    def __init__(self, seed):
        self._numpy = numpy.random.default_rng(seed)

    def random(self, size=None, dtype=numpy.float64):
        return ndarray(numpy.asarray(self._numpy.random(size, dtype=dtype)))


random = types.SimpleNamespace(default_rng=_Generator)

cuda = types.SimpleNamespace(
    runtime=types.SimpleNamespace(getDeviceCount=lambda: 1),
    Device=_Device,
    is_available=lambda: True,
)

import sys as _sys  # noqa: E402
this_module = _sys.modules[__name__]
