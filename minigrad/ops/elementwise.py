"""Elementwise ops: arithmetic, the usual functions of one variable, choosing and clipping.

Each op is a Function: forward computes y from arrays with the array module of
its input (numpy or cupy); backward turns g = dL/dy into dL/dx with Tensor
operations. Inputs broadcast against each other as in numpy; the engine sums each
gradient back to its input's shape, so the rules below are the plain calculus.
"""
import math
import operator

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

    def forward(self, a, b):
        y = a / b
        self.save_for_backward(b, y)
        return y

    def backward(self, g):
        b, y = self.saved_tensors
        grad_a = g / b
        return grad_a, -grad_a * y if self.needs_input_grad[1] else None


class Neg(Function):
    """y = -x.   dL/dx = -g"""

    def forward(self, x):
        return -x

    def backward(self, g):
        return -g


class Pow(Function):
    """y = a ** b.   dL/da = g * b * a^(b-1),  dL/db = g * y * log(a)
    (dL/db is only formed when b needs a gradient: log(a) of a negative base is NaN,
    and x ** 2 with a constant 2 is the common case)."""

    def forward(self, a, b):
        y = a ** b
        self.save_for_backward(a, b, y)
        return y

    def backward(self, g):
        a, b, y = self.saved_tensors
        needs_a, needs_b = self.needs_input_grad
        return (g * b * a ** (b - 1) if needs_a else None,
                g * y * a.log() if needs_b else None)


# --------------------------------------------------------------------------- functions of one variable
class Exp(Function):
    """y = exp(x).   dL/dx = g * y"""

    def forward(self, x):
        y = xp_of(x).exp(x)
        self.save_for_backward(y)
        return y

    def backward(self, g):
        y, = self.saved_tensors
        return g * y


class Log(Function):
    """y = log(x).   dL/dx = g / x"""

    def forward(self, x):
        self.save_for_backward(x)
        return xp_of(x).log(x)

    def backward(self, g):
        x, = self.saved_tensors
        return g / x


class Sqrt(Function):
    """y = sqrt(x).   dL/dx = g / (2 y)"""

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


class Tanh(Function):
    """y = tanh(x).   dL/dx = g * (1 - y^2)"""

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
        return xp_of(x).maximum(x, 0)

    def backward(self, g):
        x, = self.saved_tensors
        return g * (x > 0)


class Erf(Function):
    """y = erf(x) = 2/sqrt(pi) * integral_0^x exp(-t^2) dt.   dL/dx = g * 2/sqrt(pi) * exp(-x^2)"""

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
        return (where(self.cond, g, 0.0) if needs_a else None,
                where(self.cond, 0.0, g) if needs_b else None)


def where(cond, a, b):
    """mg.where(cond, a, b): elementwise choice; gradients flow to a and b, not cond.
    A plain number on one side takes the other side's float dtype."""
    anchor = next((t for t in (a, b, cond) if isinstance(t, Tensor)), None)
    a, b = as_tensors([a, b]) if anchor is not None else (Tensor(a), Tensor(b))
    cond = cond if isinstance(cond, Tensor) else Tensor(cond, device=a.device)
    if a.dtype != b.dtype and a.dtype.kind in "fc" and b.dtype.kind in "fc":
        if not a.requires_grad and a.ndim == 0:
            a = a.astype(b.dtype)
        elif not b.requires_grad and b.ndim == 0:
            b = b.astype(a.dtype)
    if cond.device != a.device:
        raise RuntimeError(f"where: condition is on {cond.device} but values are on {a.device}")
    return Where(cond.data.astype(bool, copy=False))(a, b)


# --------------------------------------------------------------------------- comparisons and logic
_COMPARISONS = {"lt": operator.lt, "le": operator.le, "gt": operator.gt, "ge": operator.ge,
                "eq": operator.eq, "ne": operator.ne, "and": operator.and_, "or": operator.or_,
                "xor": operator.xor}


def compare(name, a, b):
    """a < b, a == b, a & b, ... elementwise: a boolean (or integer) tensor, outside the graph."""
    a, b = as_tensors([a, b])
    check_same_device(name, [a, b])
    try:
        return Tensor._from_array(_COMPARISONS[name](a.data, b.data))
    except TypeError as exc:
        raise TypeError(f"{name}: cannot combine {a.dtype} and {b.dtype}: {exc}") from None


def logical_not(x):
    """~x: elementwise not for booleans (bitwise not for integers), outside the graph."""
    if x.dtype.kind == "f":
        raise TypeError(f"~ (logical not) needs a boolean or integer tensor, got {x.dtype}")
    return Tensor._from_array(~x.data)
