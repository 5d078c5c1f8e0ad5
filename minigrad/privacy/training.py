"""What a DP-SGD training loop needs besides the optimizer: batches drawn by Poisson
sampling, and make_private, which wraps model, optimizer and data in one call.

Why Poisson sampling: the privacy analysis of DP-SGD (accountant.py) assumes each
example joins each batch independently with probability q, so that whether one
person's example was used at all is itself uncertain ("privacy amplification by
subsampling"). Shuffling into fixed-size batches is a different mechanism with a
different (and, as usually reported, unproven) guarantee. So batches have random
sizes, about q n, and occasionally none at all.

    model, optimizer, loader = privacy.make_private(model, optim.SGD(model.parameters(), lr=0.1),
                                                    (X, y), batch_size=64,
                                                    noise_multiplier=1.0, max_grad_norm=1.0, seed=0)
    for epoch in range(epochs):
        for xb, yb in loader:                        # Poisson-sampled: random batch sizes
            optimizer.zero_grad()
            if len(xb):                              # an empty batch still takes a (noise) step
                F.cross_entropy(model(mg.tensor(xb)), mg.tensor(yb)).backward()
            optimizer.step()
    optimizer.accountant.get_epsilon(delta=1e-5)
"""
import numpy as np

from .accountant import RDPAccountant
from .grad_sample import GradSampleModule
from .optimizer import DPOptimizer


class PoissonLoader:
    """PoissonLoader(arrays, sample_rate, seed=None)

    arrays: one numpy array or a tuple/list of arrays with the same length n on axis 0
    (as data.DataLoader). Each batch holds every row i with probability sample_rate,
    independently of the other rows and of the other batches; an epoch is
    round(1 / sample_rate) batches, so each row is used once per epoch on average.
    Batches are copies (rows in their original order); an empty batch keeps the
    arrays' other axes and dtypes, shape (0, ...). Host-side numpy, like DataLoader.
    """

    def __init__(self, arrays, sample_rate, seed=None):
        self.single = not isinstance(arrays, (tuple, list))
        self.arrays = [np.asarray(arrays)] if self.single else [np.asarray(a) for a in arrays]
        lengths = {len(array) for array in self.arrays}
        if len(lengths) != 1:
            raise ValueError(f"PoissonLoader: all arrays must have the same length on axis 0, "
                             f"got {sorted(lengths)}")
        if not 0 < sample_rate <= 1:
            raise ValueError(f"PoissonLoader: sample_rate must be in (0, 1], got {sample_rate}")
        self.n, self.sample_rate = lengths.pop(), float(sample_rate)
        self.rng = np.random.default_rng(seed)

    def __len__(self):
        return max(1, round(1 / self.sample_rate))

    def __iter__(self):
        for _ in range(len(self)):
            chosen = self.rng.random(self.n) < self.sample_rate
            parts = tuple(array[chosen] for array in self.arrays)
            yield parts[0] if self.single else parts

    def __repr__(self):
        return f"PoissonLoader(n={self.n}, sample_rate={self.sample_rate:g}, batches={len(self)})"


def make_private(model, optimizer, arrays, batch_size, noise_multiplier, max_grad_norm, seed=None,
                 loss_reduction="mean", grad_sample_mode="hooks"):
    """-> (GradSampleModule(model), DPOptimizer(optimizer), PoissonLoader(arrays))

    The loader draws Poisson batches with sample_rate = batch_size / n (n = len(arrays[0]));
    seed seeds its draws (the noise comes from mg.manual_seed's generator). The optimizer
    clips to max_grad_norm, adds noise_multiplier * max_grad_norm, divides by batch_size
    (the expected batch size) and records every step in optimizer.accountant, an
    RDPAccountant: optimizer.accountant.get_epsilon(delta) is the privacy spent so far.
    grad_sample_mode="ghost" computes per-example norms without materialising the
    per-example gradients of Dense layers (GradSampleModule).
    """
    loader_arrays = arrays if isinstance(arrays, (tuple, list)) else [arrays]
    n = len(loader_arrays[0])
    if not 0 < batch_size <= n:
        raise ValueError(f"make_private: batch_size must be in [1, n = {n}], got {batch_size}")
    sample_rate = batch_size / n
    loader = PoissonLoader(arrays, sample_rate, seed=seed)
    if not isinstance(model, GradSampleModule):
        model = GradSampleModule(model, loss_reduction=loss_reduction, grad_sample_mode=grad_sample_mode)
    optimizer = DPOptimizer(optimizer, noise_multiplier, max_grad_norm, expected_batch_size=batch_size,
                            accountant=RDPAccountant(), sample_rate=sample_rate)
    return model, optimizer, loader
