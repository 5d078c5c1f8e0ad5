"""More activation modules (ReLU, GELU, Tanh and Sigmoid live in layers.py), and Identity."""
from .. import functional as F
from .module import Module


class SiLU(Module):
    """silu(x) = x * sigmoid(x)"""

    def forward(self, x):
        return F.silu(x)


class LeakyReLU(Module):
    """leaky_relu(x) = x where x > 0, else negative_slope * x"""

    def __init__(self, negative_slope=0.01):
        super().__init__()
        self.negative_slope = negative_slope

    def forward(self, x):
        return F.leaky_relu(x, self.negative_slope)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}"


class ELU(Module):
    """elu(x) = x where x > 0, else alpha * (exp(x) - 1)"""

    def __init__(self, alpha=1.0):
        super().__init__()
        self.alpha = alpha

    def forward(self, x):
        return F.elu(x, self.alpha)

    def extra_repr(self):
        return f"alpha={self.alpha}"


class Softplus(Module):
    """softplus(x) = log(1 + exp(beta x)) / beta, and x where beta x > threshold"""

    def __init__(self, beta=1.0, threshold=20.0):
        super().__init__()
        self.beta, self.threshold = beta, threshold

    def forward(self, x):
        return F.softplus(x, self.beta, self.threshold)

    def extra_repr(self):
        return f"beta={self.beta}, threshold={self.threshold}"


class Identity(Module):
    """y = x (a placeholder where a layer is optional); ignores any constructor arguments, as PyTorch's."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, x):
        return x
