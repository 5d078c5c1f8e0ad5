"""Layers against their formulas in numpy (from each module's own weights), their
gradients by central differences, their initialisation, and dropout's statistics."""
import math
import re

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import minigrad as mg
import minigrad.nn as nn


def module_gradcheck(module, *inputs):
    """mg.gradcheck of module(*inputs) with respect to the inputs that require grad and
    every parameter: gradcheck perturbs float64 copies, so the module's parameter
    attributes are pointed at those copies while it runs (attributes are plain
    instance attributes, which forward reads)."""
    slots = [(owner, name) for owner in module.modules() for name, p in owner._parameters.items()
             if p is not None]
    originals = [owner.__dict__[name] for owner, name in slots]
    n_inputs = len(inputs)

    def fn(*tensors):
        for (owner, name), copy in zip(slots, tensors[n_inputs:]):
            owner.__dict__[name] = copy
        return module(*tensors[:n_inputs])

    try:
        return mg.gradcheck(fn, list(inputs) + originals)
    finally:
        for (owner, name), original in zip(slots, originals):
            owner.__dict__[name] = original


def host(t):
    return t.numpy().astype(np.float64)


def erf(x):
    return np.vectorize(math.erf)(x)


# ---------------------------------------------------------------- Neuron, Dense, MLP
def test_neuron_is_activation_of_dot_plus_bias(device):
    mg.manual_seed(0)
    neuron = nn.Neuron(4)
    x = mg.randn(5, 4)
    expected = np.tanh(host(x) @ host(neuron.weight) + host(neuron.bias))
    assert neuron.weight.shape == (4,) and neuron.bias.shape == ()
    np.testing.assert_allclose(neuron(x).numpy(), expected, rtol=1e-5, atol=1e-6)
    relu_neuron = nn.Neuron(4, activation="relu")
    np.testing.assert_allclose(relu_neuron(x).numpy(),
                               np.maximum(host(x) @ host(relu_neuron.weight) + host(relu_neuron.bias), 0),
                               rtol=1e-5, atol=1e-6)


def test_neuron_gradients_match_central_differences():
    neuron = nn.Neuron(3).to(dtype="float64")
    assert module_gradcheck(neuron, mg.randn(4, 3, dtype="float64", requires_grad=True))


@settings(max_examples=25, deadline=None)
@given(batch=st.lists(st.integers(1, 3), min_size=0, max_size=2), n_in=st.integers(1, 5),
       n_out=st.integers(1, 5), bias=st.booleans())
def test_dense_is_x_at_weight_plus_bias_for_any_batch_shape(batch, n_in, n_out, bias):
    layer = nn.Dense(n_in, n_out, bias=bias)
    x = mg.randn(*batch, n_in)
    expected = host(x) @ host(layer.weight) + (host(layer.bias) if bias else 0.0)
    y = layer(x)
    assert y.shape == tuple(batch) + (n_out,)
    assert layer.weight.shape == (n_in, n_out)
    assert [name for name, _ in layer.named_parameters()] == (["weight", "bias"] if bias else ["weight"])
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-5, atol=1e-5)


def test_dense_runs_on_the_device_and_matches_numpy(device):
    layer = nn.Dense(3, 2)
    x = mg.randn(4, 3)
    assert layer.weight.device == device and layer(x).device == device
    np.testing.assert_allclose(layer(x).numpy(), host(x) @ host(layer.weight) + host(layer.bias), rtol=1e-5)


def test_dense_gradients_match_central_differences(device):
    layer = nn.Dense(3, 2).to(dtype="float64")
    assert module_gradcheck(layer, mg.randn(2, 4, 3, dtype="float64", requires_grad=True))


def test_dense_rejects_a_wrong_input_width_naming_the_shapes():
    with pytest.raises(ValueError, match=r"Dense.*3.*\(2, 4\)"):
        nn.Dense(3, 2)(mg.zeros(2, 4))


def test_linear_is_dense():
    assert nn.Linear is nn.Dense


def test_mlp_applies_the_activation_between_layers_but_not_after_the_last(device):
    mlp = nn.MLP([3, 5, 4, 2], activation="relu")
    x = mg.randn(6, 3)
    h = host(x)
    for index, layer in enumerate(mlp.layers):
        h = h @ host(layer.weight) + host(layer.bias)
        if index < 2:
            h = np.maximum(h, 0)
    np.testing.assert_allclose(mlp(x).numpy(), h, rtol=1e-5, atol=1e-6)
    mlp.layers[2].bias.data[...] = -10.0                    # no ReLU on the output: it stays negative
    assert (mlp(x).numpy() < -5).all()
    assert [name for name, _ in mlp.named_parameters()] == [
        f"layers.{i}.{kind}" for i in range(3) for kind in ("weight", "bias")]
    assert mlp.num_parameters() == 3 * 5 + 5 + 5 * 4 + 4 + 4 * 2 + 2


def test_mlp_gradients_match_central_differences():
    mlp = nn.MLP([2, 3, 2], activation="tanh").to(dtype="float64")
    assert module_gradcheck(mlp, mg.randn(3, 2, dtype="float64", requires_grad=True))


def test_unknown_activation_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown activation 'swish'"):
        nn.MLP([2, 2, 2], activation="swish")


# ---------------------------------------------------------------- initialisation
def test_dense_and_neuron_initialise_uniform_in_one_over_sqrt_fan_in():
    mg.manual_seed(0)
    layer = nn.Dense(400, 300)
    bound = 1 / math.sqrt(400)
    for values in (layer.weight.numpy(), layer.bias.numpy()):
        assert np.abs(values).max() <= bound
        assert np.abs(values).max() > 0.95 * bound
    # U(-b, b) has standard deviation b / sqrt(3) and mean 0
    assert abs(layer.weight.numpy().std() - bound / math.sqrt(3)) < 0.01 * bound
    assert abs(layer.weight.numpy().mean()) < 0.01 * bound
    neuron = nn.Neuron(25)
    assert np.abs(neuron.weight.numpy()).max() <= 0.2


def test_embedding_initialises_standard_normal_and_layer_norm_as_identity():
    mg.manual_seed(0)
    table = nn.Embedding(1000, 64).weight.numpy()
    assert abs(table.mean()) < 0.01 and abs(table.std() - 1) < 0.01
    norm = nn.LayerNorm(6)
    np.testing.assert_array_equal(norm.weight.numpy(), np.ones(6))
    np.testing.assert_array_equal(norm.bias.numpy(), np.zeros(6))


def test_initialisation_is_reproducible_with_manual_seed(device):
    mg.manual_seed(123)
    first = nn.MLP([3, 8, 2]).state_dict()
    mg.manual_seed(123)
    second = nn.MLP([3, 8, 2]).state_dict()
    mg.manual_seed(124)
    third = nn.MLP([3, 8, 2]).state_dict()
    for name in first:
        np.testing.assert_array_equal(first[name].numpy(), second[name].numpy())
    assert not np.array_equal(first["layers.0.weight"].numpy(), third["layers.0.weight"].numpy())


def test_a_seed_gives_the_same_weights_on_every_device(device):
    mg.manual_seed(7)
    here = nn.Dense(4, 3)
    mg.set_default_device("cpu")
    mg.manual_seed(7)
    on_cpu = nn.Dense(4, 3)
    np.testing.assert_array_equal(here.weight.numpy(), on_cpu.weight.numpy())


# ---------------------------------------------------------------- activations
ACTIVATIONS = {
    "ReLU": (nn.ReLU(), lambda x: np.maximum(x, 0)),
    "Tanh": (nn.Tanh(), np.tanh),
    "Sigmoid": (nn.Sigmoid(), lambda x: 1 / (1 + np.exp(-x))),
    "GELU": (nn.GELU(), lambda x: 0.5 * x * (1 + erf(x / math.sqrt(2)))),
    "GELU-tanh": (nn.GELU(approximate="tanh"),
                  lambda x: 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))),
}


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_modules_match_their_formulas(name, device):
    module, formula = ACTIVATIONS[name]
    x = mg.tensor(np.linspace(-4, 4, 41), dtype="float64")
    np.testing.assert_allclose(module(x).numpy(), formula(np.linspace(-4, 4, 41)), rtol=1e-7, atol=1e-9)
    assert module.parameters() == []


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_module_gradients_match_central_differences(name):
    module, _ = ACTIVATIONS[name]
    # away from 0, where ReLU has its kink
    x = mg.tensor(np.array([-2.5, -1.1, -0.3, 0.4, 1.7, 3.2]), requires_grad=True)
    assert module_gradcheck(module, x)


# ---------------------------------------------------------------- LayerNorm
def test_layer_norm_module_matches_the_formula_with_its_own_weights(device):
    mg.manual_seed(0)
    norm = nn.LayerNorm(5, eps=1e-3)
    norm.weight.data[...] = mg.randn(5).data
    norm.bias.data[...] = mg.randn(5).data
    x = mg.randn(2, 3, 5) * 0.05                            # variance comparable to eps
    h = host(x)
    mean = h.mean(-1, keepdims=True)
    var = ((h - mean) ** 2).mean(-1, keepdims=True)        # biased: divides by d
    expected = (h - mean) / np.sqrt(var + 1e-3) * host(norm.weight) + host(norm.bias)
    np.testing.assert_allclose(norm(x).numpy(), expected, rtol=1e-4, atol=1e-5)


def test_layer_norm_gradients_match_central_differences():
    mg.manual_seed(1)
    norm = nn.LayerNorm(4).to(dtype="float64")
    norm.weight.data[...] = mg.randn(4, dtype="float64").data
    assert module_gradcheck(norm, mg.randn(3, 4, dtype="float64", requires_grad=True))


def test_layer_norm_rejects_a_wrong_width():
    with pytest.raises(ValueError, match=r"LayerNorm.*5.*\(2, 4\)"):
        nn.LayerNorm(5)(mg.zeros(2, 4))


# ---------------------------------------------------------------- Embedding
def test_embedding_looks_up_rows_and_adds_gradients_of_repeated_ids(device):
    embedding = nn.Embedding(6, 3)
    ids = np.array([[1, 4, 1], [0, 1, 5]])
    out = embedding(mg.tensor(ids))
    np.testing.assert_array_equal(out.numpy(), embedding.weight.numpy()[ids])
    upstream = np.arange(18, dtype=np.float32).reshape(2, 3, 3)
    out.backward(mg.tensor(upstream))
    expected = np.zeros((6, 3), dtype=np.float32)
    np.add.at(expected, ids, upstream)
    np.testing.assert_array_equal(embedding.weight.grad.numpy(), expected)
    np.testing.assert_array_equal(embedding([2, 3]).numpy(), embedding.weight.numpy()[[2, 3]])


def test_embedding_gradient_matches_central_differences():
    embedding = nn.Embedding(4, 2).to(dtype="float64")
    assert module_gradcheck(embedding, np.array([3, 0, 3, 1]))


def test_embedding_reverse_reads_the_table_backwards_as_a_tied_output_layer(device):
    embedding = nn.Embedding(5, 3).to(dtype="float64")
    x = np.random.default_rng(0).standard_normal((2, 4, 3))
    out = embedding(mg.tensor(x), reverse=True)                          # x @ weight^T
    np.testing.assert_allclose(out.numpy(), x @ embedding.weight.numpy().T, rtol=1e-12)
    table = embedding.weight

    def reverse_with(x, weight):
        embedding.__dict__["weight"] = weight            # gradcheck perturbs a float64 copy
        return embedding(x, reverse=True)
    try:
        assert mg.gradcheck(reverse_with, [mg.tensor(x, requires_grad=True), table])
    finally:
        embedding.__dict__["weight"] = table
    with pytest.raises(ValueError, match=r"Embedding\(reverse=True\).*last axis 3"):
        embedding(mg.tensor(np.ones((2, 4))), reverse=True)


def test_embedding_rejects_out_of_range_and_non_integer_ids():
    embedding = nn.Embedding(4, 2)
    with pytest.raises(IndexError, match=r"Embedding.*\[0, 4\).*-1 to 4"):
        embedding(np.array([-1, 4]))
    with pytest.raises(TypeError, match="Embedding.*integers"):
        embedding(np.array([0.0, 1.0]))


@pytest.mark.parametrize("make, message", [
    (lambda: nn.Dense(0, 3), "Dense: n_in must be a positive integer, got 0"),
    (lambda: nn.Dense(-2, 3), "Dense: n_in must be a positive integer, got -2"),
    (lambda: nn.Dense(3, 0), "Dense: n_out must be a positive integer, got 0"),
    (lambda: nn.Linear(2.5, 3), "Dense: n_in must be a positive integer, got float 2.5"),
    (lambda: nn.Embedding(-1, 3), "Embedding: num must be a positive integer, got -1"),
    (lambda: nn.Embedding(4, 0), "Embedding: dim must be a positive integer, got 0"),
    (lambda: nn.LayerNorm(-3), "LayerNorm: d must be a positive integer, got -3"),
    (lambda: nn.Neuron(0), "Neuron: n_in must be a positive integer, got 0"),
    (lambda: nn.MultiHeadAttention(8, 0), "MultiHeadAttention: n_heads must be a positive integer, got 0"),
    (lambda: nn.Conv2d(0, 4, 3), "Conv2d: in_channels must be a positive integer, got 0"),
    (lambda: nn.BatchNorm2d(True), "BatchNorm2d: num_features must be a positive integer, got bool True"),
])
def test_layers_with_sizes_that_are_not_positive_integers_name_the_argument(make, message):
    with pytest.raises((ValueError, TypeError), match=re.escape(message)):
        make()


def test_embedding_id_equal_to_num_raises_embeddings_own_error(device):
    # cupy wraps an out-of-range index around instead of raising, so the check is minigrad's
    embedding = nn.Embedding(4, 2)
    with pytest.raises(IndexError, match=re.escape("Embedding: ids must lie in [0, 4), got values from 0 to 4")):
        embedding(mg.tensor(np.array([0, 4]), device=device))
    with pytest.raises(IndexError, match=re.escape("Embedding: ids must lie in [0, 4), got values from 4 to 4")):
        embedding(np.array([[4]]))
    assert embedding(np.array([3])).shape == (1, 2)


# ---------------------------------------------------------------- Dropout
def test_dropout_zeroes_a_fraction_p_and_preserves_the_mean(device):
    mg.manual_seed(0)
    p, n = 0.3, 200_000
    dropout = nn.Dropout(p)
    y = dropout(mg.ones(n)).numpy()
    zeroed = (y == 0).mean()
    # binomial: standard deviation sqrt(p (1 - p) / n) ~ 0.001; allow 5 of them
    assert abs(zeroed - p) < 5 * math.sqrt(p * (1 - p) / n)
    np.testing.assert_allclose(y[y != 0], 1 / (1 - p), rtol=1e-6)        # inverted: survivors scaled up
    assert abs(y.mean() - 1) < 5 * math.sqrt(p / (1 - p) / n)


def test_dropout_gradient_is_the_same_mask_scaled():
    mg.manual_seed(0)
    x = mg.randn(1000, requires_grad=True)
    y = nn.Dropout(0.5)(x)
    y.sum().backward()
    mask = y.numpy() / x.numpy()
    np.testing.assert_allclose(x.grad.numpy(), mask, rtol=1e-6)
    assert set(np.round(np.unique(mask), 5)) == {0.0, 2.0}


def test_dropout_is_the_identity_in_eval_mode_and_for_p_zero(device):
    x = mg.randn(50, 4)
    np.testing.assert_array_equal(nn.Dropout(0.9).eval()(x).numpy(), x.numpy())
    np.testing.assert_array_equal(nn.Dropout(0.0)(x).numpy(), x.numpy())
    assert not nn.Dropout(1.0)(x).numpy().any()


def test_dropout_masks_are_reproducible_with_manual_seed(device):
    x = mg.ones(100)
    mg.manual_seed(5)
    first = nn.Dropout(0.5)(x).numpy()
    mg.manual_seed(5)
    second = nn.Dropout(0.5)(x).numpy()
    third = nn.Dropout(0.5)(x).numpy()
    np.testing.assert_array_equal(first, second)
    assert not np.array_equal(second, third)


def test_dropout_rejects_p_outside_zero_one():
    with pytest.raises(ValueError, match="Dropout: p must be in"):
        nn.Dropout(1.5)
