"""Loss functions that need a Function of their own (the others compose in functional.py)."""
from .. import backend
from ..autograd import Function

xp_of = backend.get_array_module

LOG_FLOOR = -100.0       # PyTorch's binary_cross_entropy clamps log(p) here, so p = 0 costs 100, not inf


class BinaryCrossEntropy(Function):
    """Elementwise binary cross-entropy between probabilities p and targets t in [0, 1]:

        loss = -(t * log(p) + (1 - t) * log(1 - p)),   each log clamped at -100 (as PyTorch)

    dL/dp = g * (p - t) / max(p (1 - p), 1e-12)   (the clamp keeps p = 0 or 1 finite)
    dL/dt = g * (log(1 - p) - log(p))              (probability targets get their gradient)"""
    float_valued = True

    def forward(self, p, t):
        self.save_for_backward(p, t)
        xp = xp_of(p)
        log_p = xp.maximum(xp.log(p), LOG_FLOOR)
        log_not_p = xp.maximum(xp.log(1 - p), LOG_FLOOR)
        return -(t * log_p + (1 - t) * log_not_p)

    def backward(self, g):
        p, t = self.saved_tensors
        needs_p, needs_t = self.needs_input_grad
        grad_p = g * (p - t) / (p * (1.0 - p)).clip(lo=1e-12) if needs_p else None
        grad_t = g * ((1.0 - p).log().clip(lo=LOG_FLOOR) - p.log().clip(lo=LOG_FLOOR)) if needs_t else None
        return grad_p, grad_t
