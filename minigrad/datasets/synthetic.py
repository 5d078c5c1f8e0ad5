"""Synthetic point clouds for classification and regression, generated from a formula.

    make_spirals             interleaved spiral arms, one per class (not linearly separable)
    make_moons               two interleaving half circles
    make_blobs               Gaussian blobs around a few centres
    make_linear_regression   y = X w + b + noise, with the true w and b returned

Each set comes from a seeded numpy Generator by the formula in its docstring, so it
needs no download and is the same on every machine. Features are float32, minigrad's
(and PyTorch's) default float; class labels are int64. Rows are shuffled, so any
slice is a fair sample. Plain host-side numpy: wrap the arrays in mg.tensor to train.
"""
import numpy as np

__all__ = ["make_spirals", "make_moons", "make_blobs", "make_linear_regression"]


def _split_evenly(n, parts):
    """Sizes of `parts` groups that add up to n and differ by at most one: (7, 3) -> [3, 2, 2]."""
    return [n // parts + (1 if k < n % parts else 0) for k in range(parts)]


def _shuffled(rng, X, y):
    """X and y with their rows in one random order; features float32, labels int64."""
    order = rng.permutation(len(y))
    return X[order].astype(np.float32), y[order].astype(np.int64)


def _check_positive(function, **values):
    """A clear error naming the function and the argument when a size is below 1."""
    for name, value in values.items():
        if value < 1:
            raise ValueError(f"{function}: {name} must be at least 1, got {value}")


def make_spirals(n=200, classes=2, noise=0.2, seed=0):
    """Interleaved spiral arms, one per class: the classic "not linearly separable" toy set.

    Class k gets about n / classes points (sizes differ by at most one). Its i-th of m
    points has t = i / (m - 1) in [0, 1] and
        radius = t
        angle  = 4 * t + 2 * pi * k / classes + noise * N(0, 1)       (radians)
        x = (radius * sin(angle), radius * cos(angle))
    so the arms wind out from the centre, rotated evenly apart; noise blurs the angle.
    Returns X (n, 2) float32 and y (n,) int64 in [0, classes), rows shuffled.
    """
    _check_positive("make_spirals", n=n, classes=classes)
    rng = np.random.default_rng(seed)
    points, labels = [], []
    for k, m in enumerate(_split_evenly(n, classes)):
        t = np.linspace(0.0, 1.0, m)
        angle = 4.0 * t + 2.0 * np.pi * k / classes + noise * rng.standard_normal(m)
        points.append(np.stack([t * np.sin(angle), t * np.cos(angle)], axis=1))
        labels.append(np.full(m, k))
    return _shuffled(rng, np.concatenate(points), np.concatenate(labels))


def make_moons(n=200, noise=0.1, seed=0):
    """Two interleaving half circles (as in scikit-learn's make_moons).

    ceil(n / 2) points of class 0 and floor(n / 2) of class 1, with theta evenly
    spaced in [0, pi]:
        class 0 (upper moon): (cos theta,     sin theta)
        class 1 (lower moon): (1 - cos theta, 0.5 - sin theta)
    plus Gaussian noise of standard deviation `noise` on each coordinate.
    Returns X (n, 2) float32 and y (n,) int64 in {0, 1}, rows shuffled.
    """
    _check_positive("make_moons", n=n)
    rng = np.random.default_rng(seed)
    n_upper, n_lower = _split_evenly(n, 2)
    theta_upper = np.linspace(0.0, np.pi, n_upper)
    theta_lower = np.linspace(0.0, np.pi, n_lower)
    upper = np.stack([np.cos(theta_upper), np.sin(theta_upper)], axis=1)
    lower = np.stack([1.0 - np.cos(theta_lower), 0.5 - np.sin(theta_lower)], axis=1)
    X = np.concatenate([upper, lower]) + noise * rng.standard_normal((n, 2))
    y = np.concatenate([np.zeros(n_upper), np.ones(n_lower)])
    return _shuffled(rng, X, y)


def make_blobs(n=200, centers=3, std=1.0, seed=0):
    """Gaussian blobs around a few centres.

    centers: a number k (the k centres are drawn uniformly from the box [-10, 10]^2)
    or an array (k, d) of centres. Blob k gets about n / k points (sizes differ by at
    most one): x = centers[k] + std * N(0, I).
    Returns X (n, d) float32 and y (n,) int64 in [0, k), rows shuffled.
    """
    rng = np.random.default_rng(seed)
    if np.ndim(centers) == 0:
        _check_positive("make_blobs", n=n, centers=int(centers))
        centers = rng.uniform(-10.0, 10.0, size=(int(centers), 2))
    centers = np.asarray(centers, dtype=np.float64)
    if centers.ndim != 2 or len(centers) == 0:
        raise ValueError(f"make_blobs: centers must be a count or an array (k, d), got shape {centers.shape}")
    _check_positive("make_blobs", n=n)
    points, labels = [], []
    for k, m in enumerate(_split_evenly(n, len(centers))):
        points.append(centers[k] + std * rng.standard_normal((m, centers.shape[1])))
        labels.append(np.full(m, k))
    return _shuffled(rng, np.concatenate(points), np.concatenate(labels))


def make_linear_regression(n=100, n_features=3, noise=0.01, seed=0):
    """Data from a known linear model, so that a test can check that training recovers it.

        X ~ N(0, 1)          (n, n_features)
        w ~ N(0, 1)          (n_features, 1)    the true weights
        b ~ N(0, 1)          (1,)               the true bias
        y = X @ w + b + noise * N(0, 1)          (n, 1)

    Returns X, y, w, b (all float32). The shapes are those of nn.Dense(n_features, 1):
    its weight is (n_in, n_out) and its output (n, 1), so `layer.weight` compares
    directly with w, and y has the output's shape (a (n,) target against a (n, 1)
    prediction would silently broadcast to (n, n) in the loss).
    """
    _check_positive("make_linear_regression", n=n, n_features=n_features)
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, n_features))
    weight = rng.standard_normal((n_features, 1))
    bias = rng.standard_normal(1)
    y = X @ weight + bias + noise * rng.standard_normal((n, 1))
    return X.astype(np.float32), y.astype(np.float32), weight.astype(np.float32), bias.astype(np.float32)
