"""DPOptimizer: the DP-SGD step (Abadi, Chu, Goodfellow, McMahan, Mironov, Talwar,
Zhang 2016, "Deep Learning with Differential Privacy", Algorithm 1).

With G_b the gradient of example b over ALL parameters (one long vector),

    n_b   = ||G_b||_2                                        each example's gradient norm
    c_b   = min(1, C / (n_b + 1e-6))                         its clipping factor (Opacus' 1e-6)
    g     = (sum_b c_b G_b + N(0, sigma^2 C^2 I)) / L         L = expected_batch_size

and then the wrapped optimizer's step with g as the gradient (SGD, Adam, ...: any
optimizer, it only reads param.grad). Clipping bounds what one example can change
to C (the sensitivity of the sum); the Gaussian noise, sigma C per coordinate,
hides whether any one example was there. Dividing by the *expected* batch size L
rather than the drawn one keeps the noise calibrated: under Poisson sampling the
batch size itself depends on who was sampled.

The noise comes from minigrad's seeded generator (mg.manual_seed). Not a
cryptographic generator: fine for studying DP-SGD, not for a deployment that must
resist an adversary who can predict the noise (Opacus offers secure_mode for that).
"""
from .. import backend
from ..backend import kernels
from ..tensor import Tensor
from .grad_sample import clear_grad_samples, per_example_gradient


class DPOptimizer:
    """DPOptimizer(optimizer, noise_multiplier, max_grad_norm, expected_batch_size,
    accountant=None, sample_rate=None)

    step(): clip each example's whole gradient to max_grad_norm, sum, add
    N(0, (noise_multiplier * max_grad_norm)^2), divide by expected_batch_size, then the
    wrapped optimizer's step. The per-example gradients come from a GradSampleModule
    (p.grad_sample, or its factored p.grad_sample_parts with ghost clipping) and are
    consumed by step(). A batch with no examples (Poisson sampling can draw one) still
    takes a step of pure noise, as the privacy analysis assumes.

    accountant, sample_rate: when given (make_private gives both), every step is
    recorded as accountant.step(noise_multiplier, sample_rate).

    zero_grad(), state_dict(), load_state_dict(), param_groups and every other
    attribute pass through to the wrapped optimizer, so schedulers work on either.
    """

    def __init__(self, optimizer, noise_multiplier, max_grad_norm, expected_batch_size,
                 accountant=None, sample_rate=None):
        if noise_multiplier < 0:
            raise ValueError(f"DPOptimizer: noise_multiplier must be >= 0, got {noise_multiplier}")
        if not max_grad_norm > 0:
            raise ValueError(f"DPOptimizer: max_grad_norm must be > 0, got {max_grad_norm}")
        if not expected_batch_size > 0:
            raise ValueError(f"DPOptimizer: expected_batch_size must be > 0, got {expected_batch_size}")
        if accountant is not None and sample_rate is None:
            raise ValueError("DPOptimizer: an accountant needs the sample_rate of the batches")
        self.original_optimizer = optimizer
        self.noise_multiplier, self.max_grad_norm = float(noise_multiplier), float(max_grad_norm)
        self.expected_batch_size = expected_batch_size
        self.accountant, self.sample_rate = accountant, sample_rate

    def __getattr__(self, name):
        if name == "original_optimizer" or name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.original_optimizer, name)

    @property
    def params(self):
        return [param for group in self.original_optimizer.param_groups for param in group["params"]]

    def per_example_norms(self):
        """||G_b|| over all parameters, a (B,) Tensor (None for an empty batch), from the
        per-example gradients that backward left: what step() will clip."""
        forms = self._forms(self.params)
        return None if forms is None else Tensor(_total_norms(forms))

    def clip_and_noise(self):
        """Write the private gradient g (module docstring) into every parameter's .grad."""
        params = self.params
        forms = self._forms(params)
        if forms is None:                                   # an empty batch: noise only
            forms = [None] * len(params)
        else:
            factors = (self.max_grad_norm / (_total_norms(forms) + 1e-6)).clip(max=1.0)     # (B,)
        std = self.noise_multiplier * self.max_grad_norm
        for param, form in zip(params, forms):
            total = form.weighted_sum(factors) if form is not None else 0.0
            if std > 0:
                total = total + _gaussian_noise(param, std)
            if not hasattr(total, "shape"):                 # no example and no noise
                total = param.data * 0
            grad = total / self.expected_batch_size
            if param.grad is None:
                param.grad = Tensor(grad)
            else:
                param.grad.data[...] = grad       # in place: an optimizer may hold views of .grad
        clear_grad_samples(params)

    def step(self):
        self.clip_and_noise()
        self.original_optimizer.step()
        if self.accountant is not None:
            self.accountant.step(self.noise_multiplier, self.sample_rate)

    def zero_grad(self, set_to_none=True):
        self.original_optimizer.zero_grad(set_to_none)
        clear_grad_samples(self.params)

    @staticmethod
    def _forms(params):
        """Each parameter's per-example gradient form, or None for all when the batch was
        empty (no parameter got any); a parameter with a .grad but no per-example
        gradient means the model was not wrapped."""
        forms = [per_example_gradient(param) for param in params]
        if all(form is None for form in forms):
            for index, param in enumerate(params):
                if param.grad is not None:
                    raise RuntimeError(
                        f"DPOptimizer: parameter {index} (shape {param.shape}) has a gradient but no per-example "
                        f"gradient; wrap the model in privacy.GradSampleModule (make_private does) before "
                        f"the forward pass")
            return None
        sizes = {form.batch_size for form in forms if form is not None}
        if len(sizes) > 1:
            raise RuntimeError(f"DPOptimizer: per-example gradients disagree on the batch size: {sorted(sizes)}")
        return forms

    def __repr__(self):
        return (f"DPOptimizer(noise_multiplier={self.noise_multiplier}, max_grad_norm={self.max_grad_norm}, "
                f"expected_batch_size={self.expected_batch_size}, optimizer={self.original_optimizer!r})")


def _gaussian_noise(param, std):
    """N(0, std^2) of param's shape, dtype and device, drawn on the host from minigrad's
    seeded generator (the same numbers on every device and at any thread count; the
    kernel fills blocks of it side by side), in float32 directly for float32 parameters
    (the draw is most of a DP step's extra time for a wide MLP)."""
    dtype = "float32" if param.data.dtype.itemsize <= 4 else "float64"
    noise = kernels.noise.gaussian(backend.rng(), param.shape, dtype, std)
    return backend.to_device(noise.astype(param.data.dtype, copy=False), param.device)


def _total_norms(forms):
    """sqrt(sum over parameters of ||G_b(p)||^2): each example's norm over all parameters."""
    squared = None
    for form in forms:
        if form is not None:
            part = form.squared_norms()
            squared = part if squared is None else squared + part
    return squared ** 0.5
