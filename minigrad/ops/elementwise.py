"""Elementwise ops: arithmetic, the usual functions of one variable, choosing and clipping.

Each op is a Function: forward computes y from arrays with the array module of
its input (numpy or cupy); backward turns g = dL/dy into dL/dx with Tensor
operations. Inputs broadcast against each other as in numpy; the engine sums each
gradient back to its input's shape, so the rules below are the plain calculus.
"""
import math

from .. import backend
from ..autograd import Function
from ..backend import kernels
from ..tensor import Tensor, as_tensors, check_same_device

xp_of = backend.get_array_module


# --------------------------------------------------------------------------- arithmetic
class Add(Function):
    """y = a + b.   dL/da = g,  dL/db = g"""

    def forward(self, a, b):
        return a + b

    def backward(self, g):
        return g, g


class Sub(Function):
    """y = a - b.   dL/da = g,  dL/db = -g"""

    def forward(self, a, b):
        return a - b

    def backward(self, g):
        return g, -g


class Mul(Function):
    """y = a * b.   dL/da = g * b,  dL/db = g * a"""

    def forward(self, a, b):
        self.save_for_backward(a, b)
        return a * b

    def backward(self, g):
        a, b = self.saved_tensors
        needs_a, needs_b = self.needs_input_grad     # x * 0.5: no pass over g for the constant
        return g * b if needs_a else None, g * a if needs_b else None


class Div(Function):
    """y = a / b.   dL/da = g / b,  dL/db = -g * a / b^2 = -g * y / b"""
    float_valued = True

    def forward(self, a, b):
        y = a / b
        self.save_for_backward(b, y)
        return y

    def backward(self, g):
        b, y = self.saved_tensors
        grad_a = g / b
        return grad_a, -grad_a * y if self.needs_input_grad[1] else None


class Maximum(Function):
    """y = max(a, b) elementwise.   dL/da = g where a > b, dL/db = g where b > a; at a tie
    each gets g / 2 (as PyTorch: the subgradient halfway between the two sides)."""
    pick = "maximum"

    def forward(self, a, b):
        self.save_for_backward(a, b)
        return getattr(xp_of(a), self.pick)(a, b)

    def backward(self, g):
        a, b = self.saved_tensors
        winner = (a.data > b.data) if self.pick == "maximum" else (a.data < b.data)
        share_a = Tensor._from_array((winner + 0.5 * (a.data == b.data)).astype(g.dtype))
        return g * share_a, g * (1.0 - share_a)


class Minimum(Maximum):
    """y = min(a, b) elementwise.   dL/da = g where a < b, dL/db = g where b < a; g / 2 each
    at a tie."""
    pick = "minimum"


class Neg(Function):
    """y = -x.   dL/dx = -g"""

    def forward(self, x):
        return -x

    def backward(self, g):
        return -g


class Pow(Function):
    """y = a ** b.   dL/da = g * b * a^(b-1),  dL/db = g * y * log(a)
    At a = 0 the formulas meet 0 * inf; as PyTorch, dL/da is 0 where b == 0 (a^0 is
    constant) and dL/db is 0 where a == 0 and b >= 0 (the limit of y log a).
    (dL/db is only formed when b needs a gradient: log(a) of a negative base is NaN,
    and x ** 2 with a constant 2 is the common case.)"""

    def forward(self, a, b):
        y = a ** b
        self.save_for_backward(a, b, y)
        return y

    def backward(self, g):
        a, b, y = self.saved_tensors
        needs_a, needs_b = self.needs_input_grad
        grad_a = grad_b = None
        if needs_a:
            grad_a = g * b * a ** (b - 1)
            if b.ndim or needs_b or b.item() == 0:      # x ** 2: a constant nonzero power needs no mask
                grad_a = where(b == 0, 0.0, grad_a)
        if needs_b:
            grad_b = where((a == 0) & (b >= 0), 0.0, g * y * a.log())
        return grad_a, grad_b


# --------------------------------------------------------------------------- functions of one variable
class Exp(Function):
    """y = exp(x).   dL/dx = g * y"""
    float_valued = True

    def forward(self, x):
        y = xp_of(x).exp(x)
        self.save_for_backward(y)
        return y

    def backward(self, g):
        y, = self.saved_tensors
        return g * y


class Log(Function):
    """y = log(x).   dL/dx = g / x"""
    float_valued = True

    def forward(self, x):
        self.save_for_backward(x)
        return xp_of(x).log(x)

    def backward(self, g):
        x, = self.saved_tensors
        return g / x


class Sqrt(Function):
    """y = sqrt(x).   dL/dx = g / (2 y)"""
    float_valued = True

    def forward(self, x):
        y = xp_of(x).sqrt(x)
        self.save_for_backward(y)
        return y

    def backward(self, g):
        y, = self.saved_tensors
        return g / (2.0 * y)


class Abs(Function):
    """y = |x|.   dL/dx = g * sign(x)   (0 at x = 0, as in PyTorch)"""

    def forward(self, x):
        self.save_for_backward(x)
        return xp_of(x).abs(x)

    def backward(self, g):
        x, = self.saved_tensors
        return g * x.sign()


class Sign(Function):
    """y = sign(x) in {-1, 0, 1}.   dL/dx = 0 (a step function is flat almost everywhere)"""

    def forward(self, x):
        return xp_of(x).sign(x)

    def backward(self, g):
        return g * 0.0


class Floor(Sign):
    """y = floor(x), the largest integer <= x.   dL/dx = 0 (flat between the steps)
    Integer tensors are returned as they are."""

    def forward(self, x):
        return xp_of(x).floor(x) if x.dtype.kind in "fc" else x.copy()


class Ceil(Sign):
    """y = ceil(x), the smallest integer >= x.   dL/dx = 0 (flat between the steps)"""

    def forward(self, x):
        return xp_of(x).ceil(x) if x.dtype.kind in "fc" else x.copy()


class Round(Sign):
    """y = x rounded to `decimals` places, halves to even (2.5 -> 2, as PyTorch and numpy).
    dL/dx = 0 (flat between the steps)"""

    def __init__(self, decimals=0):
        self.decimals = decimals

    def forward(self, x):
        return xp_of(x).round(x, self.decimals) if x.dtype.kind in "fc" else x.copy()


class Sin(Function):
    """y = sin(x).   dL/dx = g * cos(x)"""
    float_valued = True

    def forward(self, x):
        self.save_for_backward(x)
        return xp_of(x).sin(x)

    def backward(self, g):
        x, = self.saved_tensors
        return g * x.cos()


class Cos(Function):
    """y = cos(x).   dL/dx = -g * sin(x)"""
    float_valued = True

    def forward(self, x):
        self.save_for_backward(x)
        return xp_of(x).cos(x)

    def backward(self, g):
        x, = self.saved_tensors
        return -g * x.sin()


class Rsqrt(Function):
    """y = 1 / sqrt(x).   dL/dx = -g / (2 x^(3/2)) = -0.5 * g * y^3"""
    float_valued = True

    def forward(self, x):
        y = 1.0 / xp_of(x).sqrt(x)
        self.save_for_backward(y)
        return y

    def backward(self, g):
        y, = self.saved_tensors
        return -0.5 * g * y * y * y


class Log2(Function):
    """y = log2(x) = ln(x) / ln(2).   dL/dx = g / (x ln 2)"""
    float_valued = True

    def forward(self, x):
        self.save_for_backward(x)
        return xp_of(x).log2(x)

    def backward(self, g):
        x, = self.saved_tensors
        return g / (x * math.log(2.0))


class Exp2(Function):
    """y = 2^x.   dL/dx = g * y * ln 2"""
    float_valued = True

    def forward(self, x):
        y = xp_of(x).exp2(x)
        self.save_for_backward(y)
        return y

    def backward(self, g):
        y, = self.saved_tensors
        return g * y * math.log(2.0)


class Tanh(Function):
    """y = tanh(x).   dL/dx = g * (1 - y^2)"""
    float_valued = True

    def forward(self, x):
        y = xp_of(x).tanh(x)
        self.save_for_backward(y)
        return y

    def backward(self, g):
        y, = self.saved_tensors
        return g * (1.0 - y * y)

    # The same formula as one array expression: three Tensor ops cost about 3 us of
    # Python per call, which doubled tanh's forward + backward on small tensors.
    def backward_arrays(self, g):
        y, = self.saved_arrays
        return g * (1.0 - y * y)


class Sigmoid(Function):
    """y = 1 / (1 + exp(-x)).   dL/dx = g * y * (1 - y)
    Computed as 0.5 * (1 + tanh(x / 2)), which never overflows."""
    float_valued = True

    def forward(self, x):
        y = 0.5 * (xp_of(x).tanh(0.5 * x) + 1.0)
        self.save_for_backward(y)
        return y

    def backward(self, g):
        y, = self.saved_tensors
        return g * y * (1.0 - y)

    def backward_arrays(self, g):        # as Tanh's: one array expression instead of three ops
        y, = self.saved_arrays
        return g * y * (1.0 - y)


class Relu(Function):
    """y = max(x, 0).   dL/dx = g * [x > 0]"""

    def forward(self, x):
        self.save_for_backward(x)
        return kernels.activations.relu(x)

    def backward(self, g):
        x, = self.saved_tensors
        return g * (x > 0)

    def backward_arrays(self, g):        # the same mask product, on the kernel threads
        x, = self.saved_arrays
        return kernels.activations.relu_backward(g, x)


class Erf(Function):
    """y = erf(x) = 2/sqrt(pi) * integral_0^x exp(-t^2) dt.   dL/dx = g * 2/sqrt(pi) * exp(-x^2)"""
    float_valued = True

    def forward(self, x):
        self.save_for_backward(x)
        return kernels.special.erf(x).astype(x.dtype, copy=False)

    def backward(self, g):
        x, = self.saved_tensors
        return g * (2.0 / math.sqrt(math.pi) * (-(x * x)).exp())


class Clip(Function):
    """y = min(max(x, lo), hi).   dL/dx = g * [lo <= x <= hi]
    (at x == lo or x == hi the gradient passes, as in PyTorch)."""

    def __init__(self, lo, hi):
        self.lo, self.hi = lo, hi

    def forward(self, x):
        self.save_for_backward(x)
        return xp_of(x).clip(x, self.lo, self.hi)

    def backward(self, g):
        x, = self.saved_tensors
        if self.lo is not None:
            g = g * (x >= self.lo)
        if self.hi is not None:
            g = g * (x <= self.hi)
        return g


class Where(Function):
    """y = a where cond else b (cond a constant boolean array).
    dL/da = g where cond else 0,  dL/db = 0 where cond else g"""

    def __init__(self, cond):
        self.cond = cond

    def forward(self, a, b):
        return xp_of(a).where(self.cond, a, b)

    def backward(self, g):
        needs_a, needs_b = self.needs_input_grad     # masked_fill's value needs none
        # cond is already a checked bool array on g's device: no need for where()'s checks
        return (Where(self.cond)(g, 0.0) if needs_a else None,
                Where(self.cond)(0.0, g) if needs_b else None)


def where(cond, a, b):
    """mg.where(cond, a, b): elementwise choice; gradients flow to a and b, not cond.
    a and b meet at one dtype by the usual promotion (a number takes the other side's
    dtype: mg.where(m, x, 0.0) keeps x's)."""
    cond, a, b = as_tensors([cond, a, b])
    check_same_device("where", [cond, a, b])
    return Where(cond.data.astype(bool, copy=False))(a, b)


def maximum(a, b):
    """mg.maximum(a, b): the larger of a and b elementwise (they broadcast)."""
    return Maximum()(a, b)


def minimum(a, b):
    """mg.minimum(a, b): the smaller of a and b elementwise (they broadcast)."""
    return Minimum()(a, b)
