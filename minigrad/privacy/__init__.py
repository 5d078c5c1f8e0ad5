"""Differentially private training (DP-SGD) and its accounting.

    grad_sample.py   GradSampleModule: every example's own gradient, from one backward pass
    per_example.py   the forms those gradients take; norms without materialising (ghost clipping)
    optimizer.py     DPOptimizer: clip each example, sum, add Gaussian noise, step
    accountant.py    RDPAccountant: the (epsilon, delta) the steps have spent
    training.py      make_private and the Poisson-sampling loader

    from minigrad import privacy
    model, optimizer, loader = privacy.make_private(model, optimizer, (X, y), batch_size=64,
                                                    noise_multiplier=1.0, max_grad_norm=1.0)
"""
from .accountant import RDPAccountant, get_noise_multiplier
from .grad_sample import GradSampleModule, register_grad_sampler
from .optimizer import DPOptimizer
from .training import PoissonLoader, make_private

__all__ = ["GradSampleModule", "register_grad_sampler", "DPOptimizer", "RDPAccountant", "get_noise_multiplier",
           "PoissonLoader", "make_private"]
