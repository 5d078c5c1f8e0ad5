"""Basic layers: a neuron, dense (fully connected) layers, activations, LayerNorm,
Embedding and Dropout.

Initialisation follows PyTorch's defaults, through nn.init (drawn from
minigrad's seeded generator, mg.manual_seed):
    Dense / Neuron: weight and bias ~ U(-1/sqrt(n_in), 1/sqrt(n_in))
                    (init_linear_: PyTorch's kaiming_uniform with a = sqrt(5))
    Embedding:      weight ~ N(0, 1)
    LayerNorm:      weight = 1, bias = 0
"""
import math
import numbers

from .. import backend
from .. import functional as F
from ..ops import linear
from ..tensor import as_array
from . import init
from .module import Module, ModuleList, Parameter


def check_sizes(layer, **sizes):
    """Raise, naming the layer and the argument, unless every size is a positive integer
    (Dense(0, 3) would divide by sqrt(0) in its initialisation; Dense(-2, 3) fail in numpy)."""
    for name, size in sizes.items():
        if isinstance(size, bool) or not isinstance(size, numbers.Integral):
            raise TypeError(f"{layer}: {name} must be a positive integer, got {type(size).__name__} {size!r}")
        if size < 1:
            raise ValueError(f"{layer}: {name} must be a positive integer, got {size}")


def empty_parameter(*shape):
    """A Parameter of the given shape on the default device, in the default float
    dtype, for an nn.init function to fill (its zeros are never meant to be used)."""
    return Parameter(backend.xp_for(None).zeros(shape, dtype=backend.default_float()))


def init_linear_(weight, bias=None):
    """PyTorch's default for Linear and Conv layers: weight by
    init.kaiming_uniform_(a=sqrt(5)), which is U(-1/sqrt(fan_in), 1/sqrt(fan_in)),
    and bias from the same U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    init.kaiming_uniform_(weight, a=math.sqrt(5))
    if bias is not None:
        fan_in, _ = init.calculate_fan_in_and_fan_out(weight)
        bound = 1 / math.sqrt(fan_in)
        init.uniform_(bias, -bound, bound)


_ACTIVATIONS = {
    "relu": F.relu,
    "tanh": F.tanh,
    "sigmoid": F.sigmoid,
    "gelu": F.gelu,
    "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "identity": lambda x: x,
    "linear": lambda x: x,
    None: lambda x: x,
}


def activation_function(name):
    if callable(name):
        return name
    if name not in _ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}: choose from {sorted(k for k in _ACTIVATIONS if k)}")
    return _ACTIVATIONS[name]


class Neuron(Module):
    """One neuron: y = act(x . w + b).   x (..., n_in) -> (...); weight (n_in,), bias ()."""

    def __init__(self, n_in, activation="tanh"):
        super().__init__()
        check_sizes("Neuron", n_in=n_in)
        bound = 1 / math.sqrt(n_in)     # a neuron is Dense(n_in, 1): fan_in = n_in
        self.weight = init.uniform_(empty_parameter(n_in), -bound, bound)
        self.bias = init.uniform_(empty_parameter(), -bound, bound)
        self.activation = activation
        self._act = activation_function(activation)

    def forward(self, x):
        return self._act(x @ self.weight + self.bias)

    def extra_repr(self):
        return f"n_in={self.weight.shape[0]}, activation={self.activation!r}"


class Dense(Module):
    """Fully connected layer: y = x @ weight + bias.

    x (..., n_in) -> (..., n_out); weight (n_in, n_out), bias (n_out,).
    Differs from torch.nn.Linear only in storing weight transposed, (n_in, n_out),
    so the formula reads x @ W as in the textbooks (checkpoints from PyTorch
    need weight.T when loaded).
    """

    def __init__(self, n_in, n_out, bias=True):
        super().__init__()
        check_sizes("Dense", n_in=n_in, n_out=n_out)
        self.n_in, self.n_out = n_in, n_out
        self.weight = empty_parameter(n_in, n_out)
        self.bias = empty_parameter(n_out) if bias else None
        init_linear_(self.weight, self.bias)

    def forward(self, x):
        if x.shape[-1] != self.n_in:
            raise ValueError(f"Dense: expected input with last axis {self.n_in}, got shape {x.shape}")
        return linear(x, self.weight, self.bias)       # x @ weight + bias, as one op

    def extra_repr(self):
        return f"n_in={self.n_in}, n_out={self.n_out}, bias={self.bias is not None}"


Linear = Dense


class MLP(Module):
    """Multi-layer perceptron: Dense layers of the given sizes with `activation`
    between them (none after the last). sizes = [n_in, hidden..., n_out]."""

    def __init__(self, sizes, activation="relu"):
        super().__init__()
        if len(sizes) < 2:
            raise ValueError(f"MLP: sizes needs at least an input and an output size, got {sizes}")
        self.layers = ModuleList(Dense(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.activation = activation
        self._act = activation_function(activation)

    def forward(self, x):
        for index, layer in enumerate(self.layers):
            x = layer(x)
            if index < len(self.layers) - 1:
                x = self._act(x)
        return x

    def extra_repr(self):
        return f"activation={self.activation!r}"


class ReLU(Module):
    """relu(x) = max(x, 0)"""

    def forward(self, x):
        return F.relu(x)


class GELU(Module):
    """gelu(x) = x * Phi(x); approximate="tanh" for the tanh formula."""

    def __init__(self, approximate="none"):
        super().__init__()
        self.approximate = approximate

    def forward(self, x):
        return F.gelu(x, self.approximate)

    def extra_repr(self):
        return f"approximate={self.approximate!r}"


class Tanh(Module):
    """tanh(x)"""

    def forward(self, x):
        return F.tanh(x)


class Sigmoid(Module):
    """sigmoid(x) = 1 / (1 + exp(-x))"""

    def forward(self, x):
        return F.sigmoid(x)


class LayerNorm(Module):
    """y = (x - mean) / sqrt(var + eps) * weight + bias over the last axis (biased var).
    x (..., d) -> (..., d); weight (d,) = gamma starts at 1, bias (d,) = beta at 0."""

    def __init__(self, d, eps=1e-5):
        super().__init__()
        check_sizes("LayerNorm", d=d)
        self.d, self.eps = d, eps
        self.weight = init.ones_(empty_parameter(d))
        self.bias = init.zeros_(empty_parameter(d))

    def forward(self, x):
        if x.shape[-1] != self.d:
            raise ValueError(f"LayerNorm: expected last axis {self.d}, got shape {x.shape}")
        return F.layer_norm(x, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return f"({self.d},), eps={self.eps}"


class Embedding(Module):
    """A lookup table: y = weight[ids].   ids (...) integers -> (..., dim); weight (num, dim).
    The gradient adds up over repeated ids.

    reverse=True reads the table backwards: y = x @ weight^T, x (..., dim) -> (..., num),
    the output layer of a language model whose weights are tied to its input embedding
    (GPT's; Keras' ReversibleEmbedding). Going through the layer's call, rather than
    using weight directly, lets hooks see this use too (privacy.GradSampleModule)."""

    def __init__(self, num, dim):
        super().__init__()
        check_sizes("Embedding", num=num, dim=dim)
        self.num, self.dim = num, dim
        self.weight = init.normal_(empty_parameter(num, dim))

    def forward(self, ids, reverse=False):
        if reverse:
            if ids.shape[-1] != self.dim:
                raise ValueError(f"Embedding(reverse=True): expected input with last axis {self.dim}, "
                                 f"got shape {ids.shape}")
            return ids @ self.weight.T
        ids = as_array(ids, self.weight.device)
        if ids.dtype.kind not in "iu":
            raise TypeError(f"Embedding: ids must be integers, got dtype {ids.dtype}")
        if ids.size and (int(ids.min()) < 0 or int(ids.max()) >= self.num):
            raise IndexError(f"Embedding: ids must lie in [0, {self.num}), got values from "
                             f"{int(ids.min())} to {int(ids.max())}")
        return self.weight[ids]

    def extra_repr(self):
        return f"{self.num}, {self.dim}"


class Dropout(Module):
    """Inverted dropout: in training, y = x * m / (1 - p) with m_i ~ Bernoulli(1 - p),
    so E[y] = x; in eval mode y = x.   x (...) -> (...)"""

    def __init__(self, p=0.5):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout: p must be in [0, 1], got {p}")
        self.p = p

    def forward(self, x):
        return F.dropout(x, self.p, self.training)

    def extra_repr(self):
        return f"p={self.p}"
