"""The backend: the one place that decides which array library holds tensor data.

A tensor lives on a *device*:

    "cpu"   its data is a numpy.ndarray
    "cuda"  its data is a cupy.ndarray (on an NVIDIA GPU)

numpy and cupy share one interface (``xp.exp``, ``xp.sum``, ``xp.matmul`` ...),
so an op asks ``get_array_module(array)`` for the right module ``xp`` and writes
its math once. This is the idea DeZero calls ``get_array_module``.

cupy is imported only when "cuda" is first asked for, so a machine without it
never pays for it. Tests swap in a stand-in for cupy (``register_cuda_module``)
that enforces cupy's rules on the CPU, which is how CI exercises the cuda path.

Beside this switch the package holds the two other things that sit below the
autograd engine: ``kernels`` (fused array code, where every speed trick lives)
and ``memory`` (how the process's allocator is tuned for autograd's traffic).
"""
import os

import numpy

from . import memory  # noqa: F401  (tunes malloc once, at import; see memory.py)

DEVICES = ("cpu", "cuda")

_cuda_module = None          # cupy, or the test double; loaded on first use
_cuda_error = None           # why cuda is unavailable, once we know
_default_device = None       # None: read MINIGRAD_DEVICE on first use

_INSTALL_HINT = ('install cupy for your CUDA version with `pip install -e ".[gpu]"` '
                 "(or `pip install cupy-cuda12x`) on a machine with an NVIDIA GPU")


# --------------------------------------------------------------------------- devices
def _load_cuda():
    """Import cupy and check that a GPU is there; raise a clear error otherwise."""
    global _cuda_module, _cuda_error
    if _cuda_module is not None:
        return _cuda_module
    if _cuda_error is not None:
        raise RuntimeError(_cuda_error)
    try:
        import cupy
    except ImportError as exc:
        _cuda_error = f'device "cuda" needs cupy, which is not installed ({exc}); {_INSTALL_HINT}'
        raise RuntimeError(_cuda_error) from None
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # cupy raises its own CUDARuntimeError without a driver
        count, reason = 0, str(exc)
    else:
        reason = "no GPU was found"
    if count < 1:
        _cuda_error = f'device "cuda" needs an NVIDIA GPU, but {reason}; {_INSTALL_HINT}'
        raise RuntimeError(_cuda_error)
    _cuda_module = cupy
    return cupy


def register_cuda_module(module):
    """Use `module` as the array library for "cuda" (tests pass a cupy stand-in).

    `module` must offer cupy's interface: `ndarray`, `asarray`, `asnumpy` and the
    numpy functions minigrad uses. Passing None forgets it (cupy is tried again).
    """
    global _cuda_module, _cuda_error
    _cuda_module, _cuda_error = module, None


def cuda_available():
    """True when cupy imports and sees at least one GPU."""
    try:
        _load_cuda()
    except RuntimeError:
        return False
    return True


def check_device(device):
    """Normalise a device name ("cuda:0" -> "cuda") and reject unknown ones."""
    if device is None:
        return get_default_device()
    device = str(device).lower()
    if device.startswith("cuda"):
        device = "cuda"
    if device not in DEVICES:
        raise ValueError(f'unknown device {device!r}: expected "cpu" or "cuda"')
    return device


def set_default_device(device):
    """Make `device` the place where new tensors are created (also env MINIGRAD_DEVICE)."""
    global _default_device
    device = check_device(device)
    if device == "cuda":
        _load_cuda()
    _default_device = device


def get_default_device():
    """The device new tensors go to: set_default_device's, else env MINIGRAD_DEVICE's
    (default "cpu"). A MINIGRAD_DEVICE that cannot be used raises here every time it is
    asked for, never falling back to the cpu after the first error."""
    if _default_device is None:
        requested = os.environ.get("MINIGRAD_DEVICE", "cpu") or "cpu"
        try:
            set_default_device(requested)
        except (RuntimeError, ValueError) as error:
            raise type(error)(f"MINIGRAD_DEVICE={requested!r}: {error}") from None
    return _default_device


def synchronize(device="cuda"):
    """Wait until the GPU has finished its queued work (GPU calls return before the
    work is done, so timings must wait for it); nothing to do on the cpu."""
    if check_device(device) == "cuda":
        _load_cuda().cuda.Device().synchronize()


# --------------------------------------------------------------------------- arrays
def xp_for(device):
    """The array module (numpy or cupy) for a device name."""
    return numpy if check_device(device) == "cpu" else _load_cuda()


def device_of(array):
    """"cpu" for numpy arrays (and numbers), "cuda" for arrays of the cuda module."""
    if isinstance(array, numpy.ndarray) or _cuda_module is None:
        return "cpu"
    return "cuda" if isinstance(array, _cuda_module.ndarray) else "cpu"


def get_array_module(array):
    """numpy or cupy, whichever holds `array` (the DeZero `get_array_module`)."""
    if _cuda_module is not None and isinstance(array, _cuda_module.ndarray):
        return _cuda_module
    return numpy


def to_device(array, device):
    """`array` (numpy, cupy, list or number) as an array on `device`; copies only when moving."""
    device = check_device(device)
    if device == "cpu":
        return to_numpy(array)
    cuda = _load_cuda()
    if isinstance(array, cuda.ndarray):
        return array
    return cuda.asarray(numpy.asarray(array))


def to_numpy(array):
    """A numpy array on the host, copying from the GPU when needed."""
    if _cuda_module is not None and isinstance(array, _cuda_module.ndarray):
        return _cuda_module.asnumpy(array)
    return numpy.asarray(array)


def is_array(value):
    return isinstance(value, numpy.ndarray) or (
        _cuda_module is not None and isinstance(value, _cuda_module.ndarray))


def default_float():
    return numpy.float32


def as_dtype(dtype):
    """numpy's dtype object for a name or type ("float32", numpy.float64, ...)."""
    return None if dtype is None else numpy.dtype(dtype)


def scatter_add(target, index, values):
    """target[index] += values, adding repeated indices up (numpy's add.at, cupyx.scatter_add)."""
    xp = get_array_module(target)
    rows = index[0] if isinstance(index, tuple) and len(index) == 1 else index
    if (xp is numpy and isinstance(rows, numpy.ndarray) and rows.dtype.kind in "iu" and rows.size
            and values.shape == rows.shape + target.shape[1:]
            and -target.shape[0] <= rows.min() and rows.max() < target.shape[0]):
        from .kernels.indexing import scatter_add_rows     # a lookup's backward: whole rows at once
        scatter_add_rows(target, rows % max(target.shape[0], 1), values)
    elif xp is numpy:
        numpy.add.at(target, index, values)
    elif hasattr(xp, "_scatter_add"):          # the test double
        xp._scatter_add(target, index, values)
    elif hasattr(xp.add, "at"):                # cupy >= 13
        xp.add.at(target, index, values)
    else:                                      # older cupy
        import cupyx
        cupyx.scatter_add(target, index, values)
    return target


# --------------------------------------------------------------------------- randomness
_seed = 0
_host_rng = numpy.random.default_rng(_seed)
_cuda_rng = None             # the GPU's generator, made on first use after a seed


def manual_seed(seed):
    """Seed every random draw minigrad makes (initialisation, dropout, randn)."""
    global _host_rng, _seed, _cuda_rng
    _seed = seed
    _host_rng = numpy.random.default_rng(seed)
    _cuda_rng = None


def rng():
    """The host random generator. Initial values and randn are drawn on the host and
    then moved to the device, so a seed gives the same numbers on "cpu" and "cuda"."""
    return _host_rng


def generator(device):
    """The generator for draws made where the data lives (dropout masks): the host one
    for "cpu"; for "cuda" a generator on the GPU (cupy.random.default_rng), seeded from
    the same mg.manual_seed, so that no mask is drawn on the host and copied over. The
    two devices' streams differ; each is reproducible."""
    global _cuda_rng
    if check_device(device) == "cpu":
        return _host_rng
    if _cuda_rng is None:
        _cuda_rng = _load_cuda().random.default_rng(_seed)
    return _cuda_rng
