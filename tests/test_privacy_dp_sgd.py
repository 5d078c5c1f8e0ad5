"""DPOptimizer's step against DP-SGD computed by hand in numpy, the statistics of its
noise, the Poisson loader, and make_private end to end."""
import numpy as np
import pytest

import minigrad as mg
import minigrad.functional as F
import minigrad.nn as nn
from minigrad import optim, privacy


def per_example_grads_by_hand(model, x, y):
    """(B, P): each example's gradient over all parameters, flattened, by a loop."""
    rows = []
    for b in range(len(x)):
        model.zero_grad()
        F.cross_entropy(model(x[b:b + 1]), y[b:b + 1]).backward()
        rows.append(np.concatenate([p.grad.numpy().ravel() for p in model.parameters()]))
    return np.stack(rows)


def mlp_and_batch(seed=0, B=6):
    mg.manual_seed(seed)
    model = nn.MLP([3, 8, 4]).to(dtype="float64")
    rng = np.random.default_rng(seed)
    return model, mg.tensor(rng.standard_normal((B, 3)) * 3), mg.tensor(rng.integers(0, 4, B))


@pytest.mark.parametrize("mode", ["hooks", "ghost"])
def test_a_step_without_noise_is_the_average_of_clipped_per_example_gradients(mode, device):
    model, x, y = mlp_and_batch()
    by_hand = per_example_grads_by_hand(model, x, y)                    # (B, P)
    max_grad_norm, expected_batch_size = 2.5, 8
    norms = np.linalg.norm(by_hand, axis=1)
    assert (norms > max_grad_norm).any() and (norms < max_grad_norm).any(), "the batch should test both cases"
    factors = np.minimum(1.0, max_grad_norm / (norms + 1e-6))
    expected = (factors[:, None] * by_hand).sum(axis=0) / expected_batch_size
    before = np.concatenate([p.numpy().ravel() for p in model.parameters()])

    wrapped = privacy.GradSampleModule(model, grad_sample_mode=mode)
    optimizer = privacy.DPOptimizer(optim.SGD(model.parameters(), lr=1.0), noise_multiplier=0.0,
                                    max_grad_norm=max_grad_norm, expected_batch_size=expected_batch_size)
    optimizer.zero_grad()
    F.cross_entropy(wrapped(x), y).backward()
    np.testing.assert_allclose(optimizer.per_example_norms().numpy(), norms, rtol=1e-9)
    optimizer.step()
    after = np.concatenate([p.numpy().ravel() for p in model.parameters()])
    np.testing.assert_allclose(before - after, expected, rtol=1e-9, atol=1e-12)     # SGD, lr 1: w -= g
    assert all(p.grad_sample is None and p.grad_sample_parts is None for p in model.parameters()), \
        "step consumes the per-example gradients"


def test_the_noise_is_gaussian_with_std_sigma_c_over_the_expected_batch_size():
    """2132 noise coordinates: the sample std has a relative standard error of
    1/sqrt(2 * 2132) = 1.5%; the test allows 6% (3.9 standard errors), the mean
    4 standard errors."""
    mg.manual_seed(0)
    layer = nn.Dense(40, 52).to(dtype="float64")
    x = mg.tensor(np.random.default_rng(0).standard_normal((5, 40)))
    sigma, clip, batch = 2.0, 0.5, 4

    def private_gradient(noise_multiplier):
        wrapped = privacy.GradSampleModule(layer, loss_reduction="sum")
        optimizer = privacy.DPOptimizer(optim.SGD(layer.parameters(), lr=0.0), noise_multiplier, clip, batch)
        optimizer.zero_grad()
        wrapped(x).sum().backward()
        optimizer.step()
        wrapped.remove_hooks()
        return np.concatenate([p.grad.numpy().ravel() for p in layer.parameters()])
    noise = private_gradient(sigma) - private_gradient(0.0)
    std = sigma * clip / batch
    assert noise.size == 2132
    assert abs(noise.std() / std - 1) < 0.06, f"noise std {noise.std():.4f}, expected {std}"
    assert abs(noise.mean()) < 4 * std / np.sqrt(noise.size)
    mg.manual_seed(7)
    first = private_gradient(sigma)
    mg.manual_seed(7)
    np.testing.assert_array_equal(private_gradient(sigma), first)     # the noise follows mg.manual_seed


def test_an_empty_batch_takes_a_step_of_pure_noise_and_an_unwrapped_model_is_an_error():
    layer = nn.Dense(2, 3)
    optimizer = privacy.DPOptimizer(optim.SGD(layer.parameters(), lr=1.0), 1.0, 1.0, expected_batch_size=4)
    before = layer.weight.numpy().copy()
    optimizer.zero_grad()
    optimizer.step()                                   # Poisson sampling drew nobody
    change = before - layer.weight.numpy()
    assert np.all(change != 0) and np.abs(change).max() < 3                  # N(0, (1 * 1 / 4)^2)
    layer(mg.randn(2, 2)).sum().backward()             # a gradient, but no per-example one
    with pytest.raises(RuntimeError, match="no per-example gradient.*GradSampleModule"):
        optimizer.step()


def test_arguments_are_checked():
    params = nn.Dense(2, 2).parameters()
    with pytest.raises(ValueError, match="noise_multiplier"):
        privacy.DPOptimizer(optim.SGD(params, lr=0.1), -1.0, 1.0, 4)
    with pytest.raises(ValueError, match="max_grad_norm"):
        privacy.DPOptimizer(optim.SGD(params, lr=0.1), 1.0, 0.0, 4)
    with pytest.raises(ValueError, match="sample_rate"):
        privacy.DPOptimizer(optim.SGD(params, lr=0.1), 1.0, 1.0, 4, accountant=privacy.RDPAccountant())


# ---------------------------------------------------------------- Poisson sampling and make_private
def test_poisson_batches_have_binomial_sizes_and_independent_rows():
    n, q = 400, 0.05
    X, y = np.arange(n * 2).reshape(n, 2), np.arange(n)
    loader = privacy.PoissonLoader((X, y), sample_rate=q, seed=0)
    assert len(loader) == 20
    sizes, counts = [], np.zeros(n)
    for _ in range(50):
        for xb, yb in loader:
            np.testing.assert_array_equal(xb[:, 0], 2 * yb)           # rows stay together
            sizes.append(len(yb))
            counts[yb] += 1
    sizes = np.array(sizes)
    # 1000 batches of Binomial(400, 0.05): mean 20 (standard error 0.14), variance 19
    assert abs(sizes.mean() - n * q) < 0.6 and abs(sizes.var() / (n * q * (1 - q)) - 1) < 0.2
    assert counts.min() > 20           # each row: Binomial(1000, 0.05), mean 50: every row takes part
    empty = next(iter(privacy.PoissonLoader((X, y), sample_rate=1e-9, seed=0)))
    assert empty[0].shape == (0, 2) and empty[0].dtype == X.dtype and empty[1].shape == (0,)
    again = [b[1].tolist() for b in privacy.PoissonLoader((X, y), q, seed=3)]
    assert again == [b[1].tolist() for b in privacy.PoissonLoader((X, y), q, seed=3)]


def test_make_private_trains_and_accounts(device):
    rng = np.random.default_rng(0)
    centers = np.array([[2.0, 0.0], [-2.0, 0.0], [0.0, 2.5]])
    y = rng.integers(0, 3, 300)
    X = (centers[y] + rng.standard_normal((300, 2)) * 0.5).astype(np.float32)
    mg.manual_seed(0)
    model = nn.MLP([2, 16, 3])
    model, optimizer, loader = privacy.make_private(model, optim.SGD(model.parameters(), lr=0.5), (X, y),
                                                    batch_size=30, noise_multiplier=1.0, max_grad_norm=1.0,
                                                    seed=0, grad_sample_mode="ghost")
    assert isinstance(model, privacy.GradSampleModule) and loader.sample_rate == 0.1

    def loss():
        with mg.no_grad():
            return F.cross_entropy(model(mg.tensor(X)), mg.tensor(y)).item()
    first = loss()
    for _ in range(3):
        for xb, yb in loader:
            optimizer.zero_grad()
            if len(xb):
                F.cross_entropy(model(mg.tensor(xb)), mg.tensor(yb)).backward()
            optimizer.step()
    assert loss() < 0.5 * first
    # every step was accounted, at the sampling rate and noise make_private was given
    assert len(optimizer.accountant) == 30 and optimizer.accountant.history == [(1.0, 0.1, 30)]
    assert optimizer.accountant.get_epsilon(1e-5) > 0
    with pytest.raises(ValueError, match="batch_size"):
        privacy.make_private(nn.Dense(2, 2), optim.SGD(nn.Dense(2, 2).parameters(), lr=0.1), X, 0, 1.0, 1.0)


def test_dp_optimizer_passes_the_wrapped_optimizer_through():
    model = nn.Dense(2, 2)
    inner = optim.Adam(model.parameters(), lr=0.1)
    optimizer = privacy.DPOptimizer(inner, 1.0, 1.0, 4)
    assert optimizer.param_groups is inner.param_groups
    scheduler = optim.LambdaLR(optimizer, lambda step: 0.5)
    scheduler.step()
    assert inner.param_groups[0]["lr"] == pytest.approx(0.05)
    assert set(optimizer.state_dict()) == set(inner.state_dict())
