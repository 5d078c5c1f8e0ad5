"""Tests for minigrad.data: the DataLoader and the synthetic datasets."""
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from minigrad.data import DataLoader, make_blobs, make_linear_regression, make_moons, make_spirals

FAST = settings(max_examples=50, deadline=None)


# ----------------------------------------------------------------------------- DataLoader

@FAST
@given(st.integers(0, 60), st.integers(1, 20), st.booleans(), st.booleans())
def test_number_and_sizes_of_batches(n, batch_size, drop_last, shuffle):
    X = np.arange(n * 2).reshape(n, 2)
    loader = DataLoader(X, batch_size, shuffle=shuffle, drop_last=drop_last, seed=0)
    sizes = [len(batch) for batch in loader]
    expected = n // batch_size if drop_last else math.ceil(n / batch_size)
    assert len(loader) == len(sizes) == expected
    assert all(size == batch_size for size in sizes[:-1])
    if sizes:
        assert sizes[-1] == (batch_size if drop_last or n % batch_size == 0 else n % batch_size)


def test_last_partial_batch_is_kept_or_dropped():
    X = np.arange(10)
    assert [len(b) for b in DataLoader(X, 4)] == [4, 4, 2]
    assert [len(b) for b in DataLoader(X, 4, drop_last=True)] == [4, 4]
    assert len(DataLoader(X, 4)) == 3 and len(DataLoader(X, 4, drop_last=True)) == 2


def test_without_shuffle_batches_are_in_order_and_pair_x_with_y():
    X = np.arange(14).reshape(7, 2)
    y = np.arange(7) * 10
    batches = list(DataLoader((X, y), batch_size=3))
    assert all(isinstance(batch, tuple) and len(batch) == 2 for batch in batches)
    np.testing.assert_array_equal(np.concatenate([xb for xb, _ in batches]), X)
    np.testing.assert_array_equal(np.concatenate([yb for _, yb in batches]), y)


def test_a_single_array_yields_arrays_not_tuples():
    batch = next(iter(DataLoader(np.ones((5, 3)), batch_size=2)))
    assert isinstance(batch, np.ndarray) and batch.shape == (2, 3)


def test_a_list_of_arrays_yields_tuples():
    batch = next(iter(DataLoader([np.ones((5, 3)), np.zeros(5)], batch_size=2)))
    assert isinstance(batch, tuple) and batch[0].shape == (2, 3) and batch[1].shape == (2,)


@FAST
@given(st.integers(1, 80), st.integers(1, 16), st.integers(0, 2**32 - 1))
def test_shuffle_visits_every_sample_exactly_once_per_epoch(n, batch_size, seed):
    X = np.arange(n)
    y = -np.arange(n)
    loader = DataLoader((X, y), batch_size, shuffle=True, seed=seed)
    for _ in range(2):
        seen_x, seen_y = zip(*loader)
        seen_x, seen_y = np.concatenate(seen_x), np.concatenate(seen_y)
        np.testing.assert_array_equal(np.sort(seen_x), X)
        np.testing.assert_array_equal(seen_y, -seen_x)          # rows stay paired


def test_same_seed_gives_the_same_batches_every_epoch():
    X = np.arange(100)
    first = DataLoader(X, 16, shuffle=True, seed=123)
    second = DataLoader(X, 16, shuffle=True, seed=123)
    for _ in range(3):
        for a, b in zip(first, second):
            np.testing.assert_array_equal(a, b)


def test_different_seeds_give_different_orders():
    X = np.arange(100)
    a = np.concatenate(list(DataLoader(X, 10, shuffle=True, seed=1)))
    b = np.concatenate(list(DataLoader(X, 10, shuffle=True, seed=2)))
    assert not np.array_equal(a, b)


def test_each_epoch_draws_a_new_order():
    loader = DataLoader(np.arange(100), 10, shuffle=True, seed=0)
    epoch_one = np.concatenate(list(loader))
    epoch_two = np.concatenate(list(loader))
    assert not np.array_equal(epoch_one, epoch_two)
    assert not np.array_equal(epoch_one, np.arange(100))     # and it really is shuffled


def test_drop_last_with_shuffle_drops_different_samples_but_never_repeats():
    loader = DataLoader(np.arange(10), 3, shuffle=True, drop_last=True, seed=0)
    batches = np.concatenate(list(loader))
    assert len(batches) == 9 and len(set(batches.tolist())) == 9


def test_mismatched_lengths_are_an_error_naming_the_lengths():
    with pytest.raises(ValueError, match=r"\[5, 4\]"):
        DataLoader((np.ones(5), np.ones(4)), batch_size=2)


@pytest.mark.parametrize("batch_size", [0, -1, 2.5, True, None])
def test_bad_batch_size_is_an_error(batch_size):
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader(np.ones(5), batch_size=batch_size)


def test_empty_tuple_and_zero_d_arrays_are_errors():
    with pytest.raises(ValueError):
        DataLoader((), batch_size=2)
    with pytest.raises(ValueError, match="0-d"):
        DataLoader(np.float32(3.0), batch_size=2)


# ----------------------------------------------------------------------------- datasets

@pytest.mark.parametrize("make, kwargs, classes", [
    (make_spirals, dict(n=200, classes=2), 2),
    (make_spirals, dict(n=301, classes=3), 3),
    (make_moons, dict(n=200), 2),
    (make_moons, dict(n=151), 2),
    (make_blobs, dict(n=200, centers=3), 3),
    (make_blobs, dict(n=50, centers=4), 4),
])
def test_classification_sets_have_shapes_dtypes_and_balanced_classes(make, kwargs, classes):
    X, y = make(**kwargs)
    n = kwargs["n"]
    assert X.shape == (n, 2) and X.dtype == np.float32
    assert y.shape == (n,) and y.dtype == np.int64
    counts = np.bincount(y, minlength=classes)
    assert len(counts) == classes
    assert counts.max() - counts.min() <= 1 and counts.sum() == n
    assert np.all(np.isfinite(X))


@pytest.mark.parametrize("make", [make_spirals, make_moons, make_blobs])
def test_datasets_are_reproducible_from_the_seed(make):
    X1, y1 = make(seed=7)
    X2, y2 = make(seed=7)
    X3, _ = make(seed=8)
    np.testing.assert_array_equal(X1, X2)
    np.testing.assert_array_equal(y1, y2)
    assert not np.array_equal(X1, X3)


@pytest.mark.parametrize("make", [make_spirals, make_moons, make_blobs])
def test_rows_are_shuffled_not_grouped_by_class(make):
    _, y = make(n=200)
    assert not np.array_equal(y, np.sort(y))


def test_spirals_without_noise_lie_on_their_arms():
    X, y = make_spirals(n=300, classes=3, noise=0.0)
    radius = np.hypot(X[:, 0], X[:, 1])
    assert radius.max() <= 1.0 + 1e-6
    # radius = t and angle = 4 t + 2 pi k / classes, so each point satisfies the arm equation
    angle = np.arctan2(X[:, 0], X[:, 1])
    expected = 4.0 * radius + 2.0 * np.pi * y / 3
    wrapped = np.angle(np.exp(1j * (angle - expected)))
    assert np.all(np.abs(wrapped[radius > 1e-3]) < 1e-4)


def test_moons_without_noise_lie_on_their_half_circles():
    X, y = make_moons(n=100, noise=0.0)
    upper, lower = X[y == 0], X[y == 1]
    np.testing.assert_allclose(np.hypot(upper[:, 0], upper[:, 1]), 1.0, atol=1e-6)
    assert np.all(upper[:, 1] >= -1e-6)
    np.testing.assert_allclose(np.hypot(lower[:, 0] - 1.0, lower[:, 1] - 0.5), 1.0, atol=1e-6)
    assert np.all(lower[:, 1] <= 0.5 + 1e-6)


def test_blobs_gather_around_given_centres_with_the_given_spread():
    centers = np.array([[0.0, 0.0, 0.0], [20.0, 0.0, 5.0]])
    X, y = make_blobs(n=4000, centers=centers, std=0.5, seed=1)
    assert X.shape == (4000, 3)
    for k in range(2):
        np.testing.assert_allclose(X[y == k].mean(axis=0), centers[k], atol=0.05)
        np.testing.assert_allclose(X[y == k].std(axis=0), 0.5, atol=0.03)


def test_linear_regression_data_follows_y_equals_x_w_plus_b_within_noise():
    noise = 0.01
    X, y, w, b = make_linear_regression(n=2000, n_features=3, noise=noise, seed=0)
    assert X.shape == (2000, 3) and y.shape == (2000, 1)
    assert w.shape == (3, 1) and b.shape == (1,)
    assert all(a.dtype == np.float32 for a in (X, y, w, b))
    residual = y - (X @ w + b)
    assert abs(residual.mean()) < 4 * noise / np.sqrt(2000)
    assert 0.9 * noise < residual.std() < 1.1 * noise       # the residual is the noise, nothing else


def test_least_squares_recovers_the_true_weights_and_bias():
    X, y, w, b = make_linear_regression(n=500, n_features=4, noise=0.01, seed=3)
    design = np.concatenate([X, np.ones((500, 1), np.float32)], axis=1)
    solution, *_ = np.linalg.lstsq(design.astype(np.float64), y.astype(np.float64), rcond=None)
    np.testing.assert_allclose(solution[:4], w, atol=5e-3)
    np.testing.assert_allclose(solution[4], b, atol=5e-3)


@pytest.mark.parametrize("make, kwargs", [
    (make_spirals, dict(n=0)), (make_spirals, dict(classes=0)), (make_moons, dict(n=0)),
    (make_blobs, dict(centers=0)), (make_blobs, dict(centers=np.zeros(3))),
    (make_linear_regression, dict(n_features=0)),
])
def test_impossible_sizes_are_errors(make, kwargs):
    with pytest.raises(ValueError):
        make(**kwargs)
