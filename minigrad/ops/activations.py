"""Activation functions beyond relu, tanh and sigmoid (elementwise.py): SiLU, leaky ReLU,
ELU, softplus, log-sigmoid. Each is one Function, computed so that it never
overflows, with its derivative in the docstring.
"""
from .. import backend
from ..autograd import Function
from .elementwise import where

xp_of = backend.get_array_module


class Silu(Function):
    """SiLU (swish): y = x * sigmoid(x).
    dL/dx = g * (s + x s (1 - s)) = g * s * (1 + x (1 - s)),  s = sigmoid(x)"""
    float_valued = True

    def forward(self, x):
        self.save_for_backward(x)
        return x * (0.5 * (xp_of(x).tanh(0.5 * x) + 1.0))       # sigmoid as tanh: no overflow

    def backward(self, g):
        x, = self.saved_tensors
        s = x.sigmoid()
        return g * s * (1.0 + x * (1.0 - s))


class LeakyRelu(Function):
    """y = x where x > 0, else negative_slope * x.
    dL/dx = g where x > 0, else g * negative_slope (at 0 too, as PyTorch)"""
    float_valued = True

    def __init__(self, negative_slope=0.01):
        self.negative_slope = negative_slope

    def forward(self, x):
        self.save_for_backward(x)
        return xp_of(x).where(x > 0, x, x * self.negative_slope)

    def backward(self, g):
        x, = self.saved_tensors
        return where(x > 0, g, g * self.negative_slope)


class Elu(Function):
    """y = x where x > 0, else alpha * (exp(x) - 1).
    dL/dx = g where x > 0, else g * alpha * exp(x)"""
    float_valued = True

    def __init__(self, alpha=1.0):
        self.alpha = alpha

    def forward(self, x):
        self.save_for_backward(x)
        xp = xp_of(x)
        return xp.where(x > 0, x, self.alpha * xp.expm1(xp.minimum(x, 0)))   # exp of x <= 0 only

    def backward(self, g):
        x, = self.saved_tensors
        return where(x > 0, g, g * self.alpha * x.clip(hi=0.0).exp())


class Softplus(Function):
    """y = log(1 + exp(beta x)) / beta, a smooth relu; y = x where beta x > threshold
    (there the two agree to float precision, as PyTorch).
    dL/dx = g * sigmoid(beta x), and g above the threshold"""
    float_valued = True

    def __init__(self, beta=1.0, threshold=20.0):
        self.beta, self.threshold = beta, threshold

    def forward(self, x):
        self.save_for_backward(x)
        xp = xp_of(x)
        scaled = x * self.beta
        return xp.where(scaled > self.threshold, x, xp.logaddexp(0, scaled) / self.beta).astype(x.dtype, copy=False)

    def backward(self, g):
        x, = self.saved_tensors
        scaled = x * self.beta
        return where(scaled > self.threshold, g, g * scaled.sigmoid())


class LogSigmoid(Function):
    """y = log(sigmoid(x)) = -log(1 + exp(-x)), computed without overflow.
    dL/dx = g * (1 - sigmoid(x)) = g * sigmoid(-x)"""
    float_valued = True

    def forward(self, x):
        self.save_for_backward(x)
        return (-xp_of(x).logaddexp(0, -x)).astype(x.dtype, copy=False)

    def backward(self, g):
        x, = self.saved_tensors
        return g * (-x).sigmoid()
