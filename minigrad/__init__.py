"""minigrad: a from-scratch deep learning framework.

    import minigrad as mg
    x = mg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    (x * x).sum().backward()
    x.grad              # tensor([2. 4. 6.])

Layers, from the bottom: backend (numpy or cupy) -> tensor (autograd) -> ops and
fused ops -> functional -> nn, optim, data, io -> models.
"""
from . import backend
from .backend import cuda_available, set_default_device, get_default_device
from .tensor import (Tensor, tensor, zeros, ones, randn, rand, arange, zeros_like, ones_like,
                     no_grad, enable_grad, is_grad_enabled, grad, manual_seed)
from .ops import concatenate, stack, where
from .gradcheck import gradcheck
from .io import save, load
from . import viz, io, data, functional, nn
from . import optim

__version__ = "0.1.0"
float32, float64, float16 = "float32", "float64", "float16"
int64, int32, bool_ = "int64", "int32", "bool"
