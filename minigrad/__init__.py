"""minigrad: a from-scratch deep learning framework.

    import minigrad as mg
    x = mg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    (x * x).sum().backward()
    x.grad              # tensor([2. 4. 6.])

Layers, from the bottom: backend (numpy or cupy, and the kernels) -> autograd and
tensor -> ops -> functional -> nn, optim, data, io, privacy -> models; tools (gradcheck, viz)
stand beside them.
"""
import sys

from . import backend
from . import autograd                      # before tensor: tensor.py builds on it
from .backend import cuda_available, set_default_device, get_default_device
from .backend.kernels.parallel import set_num_threads, get_num_threads
from .autograd import grad
from .grad_mode import no_grad, enable_grad, is_grad_enabled
from .tensor import Tensor, tensor
from .creation import (zeros, ones, randn, rand, arange, zeros_like, ones_like, manual_seed,
                       full, full_like, eye, linspace, randint, from_numpy)
from .ops import (concatenate, stack, where, maximum, minimum, einsum,
                  isnan, isinf, isfinite, isclose, allclose)
from .anomaly import detect_anomaly, AnomalyError
from .tools import gradcheck
from .io import save, load
from .tools import viz
sys.modules[__name__ + ".viz"] = viz        # so that `import minigrad.viz` works too
from . import io, data, functional, nn
from . import optim, privacy

__version__ = "0.1.0"
float32, float64, float16 = "float32", "float64", "float16"
int64, int32, bool_ = "int64", "int32", "bool"
