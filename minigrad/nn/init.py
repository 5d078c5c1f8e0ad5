"""nn.init: the one place where weights get their starting values.

    import minigrad.nn as nn
    nn.init.xavier_uniform_(layer.weight)          # in place; returns the tensor
    nn.init.zeros_(layer.bias)

Every function has PyTorch's name and signature and fills its tensor in place:
the same Parameter object keeps its new values (an optimizer built before still
holds it), its version counter goes up (a graph that saved the old values
refuses to backpropagate through them), and no graph is recorded. Random draws
come from minigrad's seeded generator (mg.manual_seed) and are made on the host,
then moved to the tensor's device, so a seed gives the same weights on "cpu"
and "cuda".

Fans. A weight's fan_in is how many inputs feed each output, its fan_out how
many outputs each input feeds. One difference from PyTorch: minigrad's Dense
stores its weight as (n_in, n_out), the transpose of torch.nn.Linear's
(out, in), so that the layer reads x @ W. Hence, for a 2-D tensor here

    fan_in = shape[0],   fan_out = shape[1]                  (PyTorch: the reverse)

and for a convolution weight (out_channels, in_channels, kh, kw), as in PyTorch,

    fan_in = in_channels * kh * kw,   fan_out = out_channels * kh * kw.

A Dense(n_in, n_out) therefore gets exactly the numbers' distribution that
torch.nn.Linear(n_in, n_out) gets from the same initializer.
"""
import math

from .. import backend
from ..grad_mode import no_grad

__all__ = ["calculate_gain", "calculate_fan_in_and_fan_out", "constant_", "zeros_", "ones_", "normal_",
           "uniform_", "xavier_uniform_", "xavier_normal_", "kaiming_uniform_", "kaiming_normal_"]


def calculate_gain(nonlinearity, param=None):
    """The factor by which a nonlinearity's output standard deviation should be scaled
    up to keep unit variance through a layer (PyTorch's table):
        linear, conv*, sigmoid: 1     tanh: 5/3     relu: sqrt(2)     selu: 3/4
        leaky_relu: sqrt(2 / (1 + slope^2)), slope = param (default 0.01)."""
    fixed = {"linear": 1.0, "identity": 1.0, "sigmoid": 1.0, "tanh": 5.0 / 3, "relu": math.sqrt(2.0),
             "selu": 0.75, "conv1d": 1.0, "conv2d": 1.0, "conv3d": 1.0}
    if nonlinearity in fixed:
        return fixed[nonlinearity]
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        if isinstance(slope, bool) or not isinstance(slope, (int, float)):
            raise ValueError(f"calculate_gain: leaky_relu's negative slope must be a number, got {slope!r}")
        return math.sqrt(2.0 / (1 + slope ** 2))
    raise ValueError(f"calculate_gain: unknown nonlinearity {nonlinearity!r}; "
                     f"choose from {sorted(fixed) + ['leaky_relu']}")


def calculate_fan_in_and_fan_out(tensor):
    """(fan_in, fan_out): (shape[0], shape[1]) for a 2-D (n_in, n_out) weight (the
    transpose of PyTorch's rule, because Dense stores W as (n_in, n_out)); for
    (out_channels, in_channels, *kernel) conv weights (in * k, out * k), k the
    kernel's size, as in PyTorch. Tensors with fewer than 2 axes have no fans."""
    shape = tensor.shape
    if len(shape) < 2:
        raise ValueError(f"nn.init: fan_in and fan_out need a tensor with at least 2 axes, got shape {shape}")
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive_field = math.prod(shape[2:])
    return shape[1] * receptive_field, shape[0] * receptive_field


def _fan(tensor, mode):
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"nn.init: mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


def _write(tensor, values):
    """Put `values` (a host array or a number) into tensor's own array, in place."""
    if hasattr(values, "astype"):
        values = backend.to_device(values.astype(tensor.dtype), tensor.device)
    with no_grad():
        tensor.data[...] = values
        tensor._version += 1        # saved graphs notice the change (see Tensor._version)
    return tensor


def constant_(tensor, val):
    """Fill tensor with val, in place."""
    return _write(tensor, val)


def zeros_(tensor):
    """Fill tensor with 0, in place."""
    return _write(tensor, 0)


def ones_(tensor):
    """Fill tensor with 1, in place."""
    return _write(tensor, 1)


def normal_(tensor, mean=0.0, std=1.0):
    """Fill tensor in place with draws from N(mean, std^2)."""
    if std < 0:
        raise ValueError(f"nn.init.normal_: std must be >= 0, got {std}")
    return _write(tensor, mean + std * backend.rng().standard_normal(tensor.shape))


def uniform_(tensor, a=0.0, b=1.0):
    """Fill tensor in place with draws from U(a, b)."""
    if a > b:
        raise ValueError(f"nn.init.uniform_: need a <= b, got a={a}, b={b}")
    return _write(tensor, backend.rng().uniform(a, b, size=tensor.shape))


def xavier_uniform_(tensor, gain=1.0):
    """Glorot & Bengio (2010): U(-bound, bound) with
        bound = gain * sqrt(6 / (fan_in + fan_out)),
    i.e. variance gain^2 * 2 / (fan_in + fan_out), a compromise that keeps forward
    activations and backward gradients at about the same scale."""
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -bound, bound)


def xavier_normal_(tensor, gain=1.0):
    """Glorot & Bengio (2010), normal form: N(0, std^2) with
        std = gain * sqrt(2 / (fan_in + fan_out))."""
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)))


def kaiming_uniform_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu"):
    """He et al. (2015): U(-bound, bound) with
        std = gain / sqrt(fan),   bound = sqrt(3) * std,
    gain = calculate_gain(nonlinearity, a) (a: leaky_relu's negative slope), fan =
    fan_in (keeps the forward variance) or fan_out (keeps the backward variance).
    PyTorch's default for Linear and Conv layers is a = sqrt(5), which makes
    bound = 1 / sqrt(fan_in)."""
    std = calculate_gain(nonlinearity, a) / math.sqrt(_fan(tensor, mode))
    bound = math.sqrt(3.0) * std
    return uniform_(tensor, -bound, bound)


def kaiming_normal_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu"):
    """He et al. (2015), normal form: N(0, std^2) with std = gain / sqrt(fan), gain and
    fan as in kaiming_uniform_."""
    std = calculate_gain(nonlinearity, a) / math.sqrt(_fan(tensor, mode))
    return normal_(tensor, 0.0, std)
