"""minigrad.functional (activations, softmax, layer_norm, dropout) against numpy
formulas, with gradients by central differences over hypothesis-drawn shapes."""
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import minigrad as mg
import minigrad.functional as F

shapes = st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple)
seeds = st.integers(0, 2 ** 16)


def draw(shape, seed, scale=2.0):
    return np.random.default_rng(seed).standard_normal(shape) * scale


def np_softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def np_log_softmax(x, axis):
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def np_gelu(x):
    return 0.5 * x * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))


def np_gelu_tanh(x):
    return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))


# ---------------------------------------------------------------- softmax and log_softmax
@settings(max_examples=30, deadline=None)
@given(shape=shapes, seed=seeds, data=st.data())
def test_softmax_and_log_softmax_match_numpy_along_any_axis(shape, seed, data):
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    x = draw(shape, seed)
    np.testing.assert_allclose(F.softmax(mg.tensor(x), axis=axis).numpy(), np_softmax(x, axis), rtol=1e-12)
    np.testing.assert_allclose(F.log_softmax(mg.tensor(x), axis=axis).numpy(), np_log_softmax(x, axis),
                               rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(F.softmax(mg.tensor(x), axis=axis).numpy().sum(axis=axis), 1.0, rtol=1e-12)


@settings(max_examples=20, deadline=None)
@given(shape=shapes, seed=seeds, data=st.data())
def test_softmax_and_log_softmax_gradients_match_central_differences(shape, seed, data):
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    x = mg.tensor(draw(shape, seed), requires_grad=True)
    assert mg.gradcheck(lambda t: F.softmax(t, axis=axis), [x])
    assert mg.gradcheck(lambda t: F.log_softmax(t, axis=axis), [x])


def test_softmax_is_stable_for_huge_logits(device):
    logits = mg.tensor([[1e4, 0.0, -1e4], [1e4, 1e4, 1e4], [-1e4, -1e4 + 1.0, -1e4]], requires_grad=True)
    probs = F.softmax(logits)
    log_probs = F.log_softmax(logits)
    assert np.isfinite(probs.numpy()).all() and np.isfinite(log_probs.numpy()).all()
    np.testing.assert_allclose(probs.numpy()[0], [1.0, 0.0, 0.0])
    np.testing.assert_allclose(probs.numpy()[1], [1 / 3] * 3, rtol=1e-6)
    e = math.e
    np.testing.assert_allclose(probs.numpy()[2], [1 / (2 + e), e / (2 + e), 1 / (2 + e)], rtol=1e-5)
    np.testing.assert_allclose(log_probs.numpy()[0], [0.0, -1e4, -2e4])
    (log_probs * mg.tensor([[1.0, 2.0, 3.0]] * 3)).sum().backward()
    assert np.isfinite(logits.grad.numpy()).all()


def test_softmax_runs_on_the_device(device):
    x = mg.randn(3, 4)
    assert F.softmax(x).device == device
    np.testing.assert_allclose(F.softmax(x, axis=0).numpy(), np_softmax(x.numpy(), 0), rtol=1e-5)


# ---------------------------------------------------------------- activations
@pytest.mark.parametrize("fn, formula", [
    (F.relu, lambda x: np.maximum(x, 0)),
    (F.sigmoid, lambda x: 1 / (1 + np.exp(-x))),
    (F.tanh, np.tanh),
    (F.gelu, np_gelu),
    (lambda x: F.gelu(x, approximate="tanh"), np_gelu_tanh),
], ids=["relu", "sigmoid", "tanh", "gelu", "gelu_tanh"])
def test_activations_match_their_formulas_and_gradients(fn, formula, device):
    x = np.linspace(-5, 5, 23) + 0.01                  # misses ReLU's kink at 0
    np.testing.assert_allclose(fn(mg.tensor(x)).numpy(), formula(x), rtol=1e-7, atol=1e-10)
    assert mg.gradcheck(fn, [mg.tensor(x, requires_grad=True)])


def test_gelu_exact_and_tanh_forms_differ_as_expected():
    x = mg.tensor(np.array([-3.0, -1.0, 0.5, 2.0]))
    exact = F.gelu(x).numpy()
    approx = F.gelu(x, approximate="tanh").numpy()
    np.testing.assert_allclose(exact, np_gelu(x.numpy()), rtol=1e-12)
    assert 0 < np.abs(exact - approx).max() < 1e-3          # close, but not the same function
    with pytest.raises(ValueError, match="gelu"):
        F.gelu(x, approximate="fast")


@settings(max_examples=20, deadline=None)
@given(shape=shapes, seed=seeds)
def test_gelu_gradients_match_central_differences_for_any_shape(shape, seed):
    x = mg.tensor(draw(shape, seed), requires_grad=True)
    assert mg.gradcheck(F.gelu, [x])
    assert mg.gradcheck(lambda t: F.gelu(t, approximate="tanh"), [x])


# ---------------------------------------------------------------- layer_norm
def np_layer_norm(x, weight, bias, eps):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)        # biased
    return (x - mean) / np.sqrt(var + eps) * weight + bias  # eps inside the square root


@settings(max_examples=25, deadline=None)
@given(shape=shapes, seed=seeds)
def test_layer_norm_matches_the_formula_with_biased_variance_and_eps_inside_the_sqrt(shape, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape) * 0.01                  # variance 1e-4: eps = 1e-3 matters
    weight, bias = rng.standard_normal(shape[-1]), rng.standard_normal(shape[-1])
    y = F.layer_norm(mg.tensor(x), mg.tensor(weight), mg.tensor(bias), eps=1e-3)
    np.testing.assert_allclose(y.numpy(), np_layer_norm(x, weight, bias, 1e-3), rtol=1e-10, atol=1e-12)


def test_layer_norm_is_not_the_unbiased_or_eps_outside_variant():
    x = np.array([[0.0, 0.01, 0.03]])
    y = F.layer_norm(mg.tensor(x), eps=1e-4).numpy()
    centred = x - x.mean()
    unbiased = centred / np.sqrt(centred.var(ddof=1) + 1e-4)
    eps_outside = centred / (np.sqrt(centred.var()) + 1e-4)
    np.testing.assert_allclose(y, centred / np.sqrt(centred.var() + 1e-4), rtol=1e-12)
    assert np.abs(y - unbiased).max() > 1e-2 and np.abs(y - eps_outside).max() > 1e-2


@settings(max_examples=20, deadline=None)
@given(shape=shapes, seed=seeds)
def test_layer_norm_gradients_match_central_differences(shape, seed):
    rng = np.random.default_rng(seed)
    x = mg.tensor(rng.standard_normal(shape), requires_grad=True)
    weight = mg.tensor(rng.standard_normal(shape[-1]), requires_grad=True)
    bias = mg.tensor(rng.standard_normal(shape[-1]), requires_grad=True)
    assert mg.gradcheck(lambda a, w, b: F.layer_norm(a, w, b), [x, weight, bias])


def test_layer_norm_rejects_weights_of_the_wrong_width():
    with pytest.raises(ValueError, match=r"layer_norm: weight has shape \(3,\), expected \(4,\)"):
        F.layer_norm(mg.zeros(2, 4), mg.ones(3), mg.zeros(4))


# ---------------------------------------------------------------- dropout
def test_functional_dropout_follows_the_training_flag(device):
    mg.manual_seed(0)
    x = mg.ones(10_000)
    np.testing.assert_array_equal(F.dropout(x, 0.5, training=False).numpy(), x.numpy())
    y = F.dropout(x, 0.5, training=True).numpy()
    assert set(np.unique(y)) == {0.0, 2.0} and abs((y == 0).mean() - 0.5) < 0.03
    with pytest.raises(ValueError, match="dropout: p must be in"):
        F.dropout(x, -0.1)
