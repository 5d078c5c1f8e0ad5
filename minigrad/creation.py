"""Making tensors: filled with a value, a range, or random draws from minigrad's seeded
generator (mg.manual_seed). Every function takes dtype= (default float32, or int64 for
integer ranges), device= (default mg.set_default_device's) and requires_grad=."""
from . import backend
from .tensor import Tensor, _shape_arguments


def _filled(xp_function, shape, dtype, device, requires_grad):
    device = backend.check_device(device)
    dtype = backend.as_dtype(dtype) or backend.default_float()
    result = Tensor._from_array(xp_function(backend.xp_for(device))(_shape_arguments(shape), dtype=dtype))
    return result.requires_grad_(True) if requires_grad else result


def zeros(*shape, dtype=None, device=None, requires_grad=False):
    """A tensor of zeros of the given shape."""
    return _filled(lambda xp: xp.zeros, shape, dtype, device, requires_grad)


def ones(*shape, dtype=None, device=None, requires_grad=False):
    """A tensor of ones of the given shape."""
    return _filled(lambda xp: xp.ones, shape, dtype, device, requires_grad)


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
