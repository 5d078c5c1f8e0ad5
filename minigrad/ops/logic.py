"""Comparisons, boolean logic, tests for NaN and inf, and integer division.

Comparisons and tests give boolean tensors outside the graph: a step from False to
True has no useful derivative. Integer division and remainder are Functions (so
their operands meet at one dtype by the usual promotion), with the derivatives
of the step functions they are.
"""
import operator

from .. import backend
from ..autograd import Function
from ..tensor import Tensor, as_tensors, check_same_device

xp_of = backend.get_array_module

_COMPARISONS = {"lt": operator.lt, "le": operator.le, "gt": operator.gt, "ge": operator.ge,
                "eq": operator.eq, "ne": operator.ne, "and": operator.and_, "or": operator.or_,
                "xor": operator.xor}


def compare(name, a, b):
    """a < b, a == b, a & b, ... elementwise: a boolean (or integer) tensor, outside the graph.
    & | ^ are logical on booleans and bitwise on integers (floats are an error, as in PyTorch)."""
    a, b = as_tensors([a, b])
    check_same_device(name, [a, b])
    try:
        return Tensor._from_array(_COMPARISONS[name](a.data, b.data))
    except TypeError as exc:
        raise TypeError(f"{name}: cannot combine {a.dtype} and {b.dtype}: {exc}") from None


def logical_not(x):
    """~x: elementwise not for booleans (bitwise not for integers), outside the graph."""
    if x.dtype.kind in "fc":
        raise TypeError(f"~ (logical not) needs a boolean or integer tensor, got {x.dtype}")
    return Tensor._from_array(~x.data)


def _test(name, x):
    x, = as_tensors([x])
    return Tensor._from_array(getattr(xp_of(x.data), name)(x.data))


def isnan(x):
    """mg.isnan(x): True where x is NaN."""
    return _test("isnan", x)


def isinf(x):
    """mg.isinf(x): True where x is +inf or -inf."""
    return _test("isinf", x)


def isfinite(x):
    """mg.isfinite(x): True where x is neither NaN nor infinite."""
    return _test("isfinite", x)


def isclose(a, b, rtol=1e-5, atol=1e-8, equal_nan=False):
    """mg.isclose(a, b): True where |a - b| <= atol + rtol * |b| (PyTorch's defaults)."""
    a, b = as_tensors([a, b])
    check_same_device("isclose", [a, b])
    return Tensor._from_array(xp_of(a.data).isclose(a.data, b.data, rtol=rtol, atol=atol, equal_nan=equal_nan))


def allclose(a, b, rtol=1e-5, atol=1e-8, equal_nan=False):
    """mg.allclose(a, b): whether isclose holds everywhere (a Python bool)."""
    return bool(isclose(a, b, rtol, atol, equal_nan).data.all())


class FloorDivide(Function):
    """y = floor(a / b) (Python's //, rounding towards -inf as PyTorch's floor_divide).
    dL/da = dL/db = 0 (a step function: flat between the steps)."""

    def forward(self, a, b):
        return a // b

    def backward(self, g):
        return g * 0.0, g * 0.0


class Remainder(Function):
    """y = a - floor(a / b) * b (Python's %: the sign of b, as PyTorch's remainder).
    dL/da = g,  dL/db = -g * floor(a / b)   (between the jumps)."""

    def forward(self, a, b):
        self.save_for_backward(a, b)
        return a % b

    def backward(self, g):
        a, b = self.saved_tensors
        return g, -g * (a // b)
