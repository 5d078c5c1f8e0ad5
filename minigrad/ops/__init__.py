"""The differentiable operations, each a Function with its forward beside its derivative.

    elementwise   + - * / ** maximum minimum, the functions of one variable (exp, sin,
                  floor, ...), where, clip
    activations   silu, leaky relu, elu, softplus, log-sigmoid
    logic         comparisons, boolean logic, isnan / isinf / isclose, // and %
    reduce        sum, mean, var, max, min, prod, logsumexp, cumsum, arg-reductions,
                  the matrix product, and a dense layer's x @ W + b (linear)
    einsum        Einstein summation
    shape         axes, broadcasting, reshape, transpose, joining and splitting, dtype and device
    indexing      t[index], gather, scatter_add, sort, topk
    rearrange     flip, roll, repeat, repeat_interleave, expand, tril / triu, pad
    composite     softmax, log_softmax, layer norm, GELU: fused, with a kernel each
    image         unfold / fold (im2col), convolution, pooling, batch norm

Tensor's operators and methods (tensor.py) and minigrad.functional call these.
"""
from .elementwise import (Abs, Add, Ceil, Clip, Cos, Div, Erf, Exp, Exp2, Floor, Log, Log2,  # noqa: F401
                          Maximum, Minimum, Mul, Neg, Pow, Relu, Round, Rsqrt, Sigmoid, Sign, Sin,
                          Sqrt, Sub, Tanh, Where, maximum, minimum, where)
from .activations import Elu, LeakyRelu, LogSigmoid, Silu, Softplus  # noqa: F401
from .logic import (FloorDivide, Remainder, allclose, compare, isclose, isfinite, isinf,  # noqa: F401
                    isnan, logical_not)
from .reduce import (CumSum, LinearOp, LogSumExp, Max, MatMul, Mean, Min, Prod, Sum, Var,  # noqa: F401
                     all_, any_, argmax, argmin, linear, matmul, mean, std, var)
from .einsum import einsum  # noqa: F401
from .shape import (BroadcastTo, Cast, Clone, Concatenate, Reshape, SumTo, ToDevice,  # noqa: F401
                    Transpose, broadcast_to, chunk, concatenate, flatten, normalize_axis, split,
                    squeeze, stack, sum_to, swapaxes, unflatten, unsqueeze)
from .indexing import GetItem, GetItemGrad, device_index, gather, getitem, scatter_add, sort, topk  # noqa: F401
from .rearrange import expand, flip, pad, repeat, repeat_interleave, roll, triangle  # noqa: F401
from .composite import GeluOp, LayerNormOp, LogSoftmaxOp, SoftmaxOp  # noqa: F401
from . import image  # noqa: F401


def tanh(x): return Tanh()(x)
def sigmoid(x): return Sigmoid()(x)
def relu(x): return Relu()(x)
def erf(x): return Erf()(x)
