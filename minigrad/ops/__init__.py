"""The differentiable operations, each a Function with its forward beside its derivative.

    elementwise   + - * / ** and the functions of one variable (exp, tanh, ...), where, clip
    reduce        sum, mean, var, max, min, and the matrix product
    shape         broadcasting, reshape, transpose, indexing, concatenate, dtype and device
    composite     softmax, log_softmax, layer norm, GELU: fused, with a kernel each
    image         unfold / fold (im2col), convolution, pooling, batch norm

Tensor's operators and methods (tensor.py) and minigrad.functional call these.
"""
from .elementwise import (Abs, Add, Clip, Div, Erf, Exp, Log, Mul, Neg, Pow, Relu, Sigmoid, Sign, Sqrt,  # noqa: F401
                          Sub, Tanh, Where, compare, logical_not, where)
from .reduce import Max, MatMul, Min, Sum, argmax, matmul, mean, normalize_axis, var  # noqa: F401
from .shape import (BroadcastTo, Cast, Concatenate, GetItem, GetItemGrad, Reshape, SumTo, ToDevice,  # noqa: F401
                    Transpose, broadcast_to, concatenate, device_index, squeeze, stack, sum_to,
                    unsqueeze)
from .composite import GeluOp, LayerNormOp, LogSoftmaxOp, SoftmaxOp  # noqa: F401
from . import image  # noqa: F401


def exp(x): return Exp()(x)
def log(x): return Log()(x)
def sqrt(x): return Sqrt()(x)
def tanh(x): return Tanh()(x)
def sigmoid(x): return Sigmoid()(x)
def relu(x): return Relu()(x)
def erf(x): return Erf()(x)
