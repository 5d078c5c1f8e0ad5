"""Making tensors: filled with a value, the identity, a range, or random draws from
minigrad's seeded generator (mg.manual_seed). They take dtype= (default float32, or int64
for integer ranges), device= (default mg.set_default_device's) and requires_grad=, but for
two: randint takes no requires_grad= (its integers can have no gradient), and from_numpy
takes none of them (the tensor shares the numpy array: its memory, its dtype, "cpu")."""
from . import backend, dtypes
from .tensor import Tensor, _shape_arguments


def _filled(make, shape, dtype, device, requires_grad):
    """make(xp, shape, dtype) -> array, as a tensor; shape as f(2, 3) or f((2, 3)) take it."""
    device = backend.check_device(device)
    dtype = backend.as_dtype(dtype) or backend.default_float()
    result = Tensor._from_array(make(backend.xp_for(device), _shape_arguments(shape), dtype))
    return result.requires_grad_(True) if requires_grad else result


def zeros(*shape, dtype=None, device=None, requires_grad=False):
    """A tensor of zeros of the given shape."""
    return _filled(lambda xp, s, d: xp.zeros(s, dtype=d), shape, dtype, device, requires_grad)


def ones(*shape, dtype=None, device=None, requires_grad=False):
    """A tensor of ones of the given shape."""
    return _filled(lambda xp, s, d: xp.ones(s, dtype=d), shape, dtype, device, requires_grad)


def zeros_like(t, dtype=None, device=None, requires_grad=False):
    return zeros(*t.shape, dtype=dtype or t.dtype, device=device or t.device, requires_grad=requires_grad)


def ones_like(t, dtype=None, device=None, requires_grad=False):
    return ones(*t.shape, dtype=dtype or t.dtype, device=device or t.device, requires_grad=requires_grad)


def _drawn(host, dtype, device, requires_grad):
    """Host draws (the same numbers on every device for one seed) as a tensor on `device`."""
    dtype = backend.as_dtype(dtype) or backend.default_float()
    return Tensor(host.astype(dtype), device=device or backend.get_default_device(), requires_grad=requires_grad)


def randn(*shape, dtype=None, device=None, requires_grad=False):
    """Standard normal samples from the seeded generator."""
    return _drawn(backend.rng().standard_normal(_shape_arguments(shape)), dtype, device, requires_grad)


def rand(*shape, dtype=None, device=None, requires_grad=False):
    """Uniform samples in [0, 1) from the seeded generator."""
    return _drawn(backend.rng().random(_shape_arguments(shape)), dtype, device, requires_grad)


def arange(start, stop=None, step=1, dtype=None, device=None, requires_grad=False):
    """Like numpy.arange; integers give int64 and floats float32, as in PyTorch."""
    device = backend.check_device(device)
    if stop is None:
        start, stop = 0, start
    array = backend.xp_for(device).arange(start, stop, step, dtype=backend.as_dtype(dtype))
    if dtype is None and array.dtype == backend.numpy.float64:
        array = array.astype(backend.default_float())
    result = Tensor._from_array(array)
    return result.requires_grad_(True) if requires_grad else result


def manual_seed(seed):
    """Seed every random draw minigrad makes (initialisation, dropout, randn)."""
    backend.manual_seed(seed)


def full(shape, value, dtype=None, device=None, requires_grad=False):
    """A tensor of `shape` filled with `value`; dtype from the value as PyTorch does
    (a bool gives bool, an int int64, a float float32) unless given."""
    if dtype is None:
        dtype = dtypes.number_dtype(value, None)
    return _filled(lambda xp, s, d: xp.full(s, value, dtype=d), (shape,), dtype, device, requires_grad)


def full_like(t, value, dtype=None, device=None, requires_grad=False):
    return full(t.shape, value, dtype=dtype or t.dtype, device=device or t.device, requires_grad=requires_grad)


def eye(n, m=None, dtype=None, device=None, requires_grad=False):
    """The n x m identity matrix (m defaults to n): ones on the diagonal."""
    return _filled(lambda xp, s, d: xp.eye(s[0], s[1], dtype=d), (n, n if m is None else m),
                   dtype, device, requires_grad)


def linspace(start, stop, n, dtype=None, device=None, requires_grad=False):
    """n evenly spaced values from start to stop, both included."""
    if n < 0:
        raise ValueError(f"linspace: n must be >= 0, got {n}")
    return _filled(lambda xp, s, d: xp.linspace(start, stop, s[0], dtype=d), (n,),
                   dtype, device, requires_grad)


def randint(low, high=None, shape=(), dtype=None, device=None):
    """Integers drawn uniformly from [low, high) (one bound: [0, low)), int64 by default,
    from the seeded generator."""
    if high is None:
        low, high = 0, low
    if high <= low:
        raise ValueError(f"randint: needs low < high, got low={low}, high={high}")
    host = backend.rng().integers(low, high, size=_shape_arguments((shape,)))
    return Tensor(host.astype(backend.as_dtype(dtype) or "int64"), device=device or backend.get_default_device())


def from_numpy(array):
    """A cpu tensor sharing memory with the numpy array (changes to one show in the other)."""
    if not isinstance(array, backend.numpy.ndarray):
        raise TypeError(f"from_numpy: expected a numpy.ndarray, got {type(array).__name__}")
    return Tensor(array, device="cpu")
