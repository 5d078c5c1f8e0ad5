"""Fused ops (softmax, log_softmax, layer_norm, gelu) agree with their composed
versions in value, gradient and gradient of gradient, and pass gradcheck."""
import numpy as np
import pytest
from hypothesis import given, strategies as st
from hypothesis.extra import numpy as hnp

import minigrad as mg
import minigrad.functional as F
from minigrad.ops import composite

shapes = hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=5)
values = st.floats(-4, 4, allow_nan=False, allow_subnormal=False)


def _axis(data, ndim):
    return data.draw(st.integers(-ndim, ndim - 1))


FUSED = {   # name -> (fused, composed); each takes (x, axis)
    "softmax": (lambda x, axis: F.softmax(x, axis=axis), lambda x, axis: composite.softmax_composed(x, axis=axis)),
    "log_softmax": (lambda x, axis: F.log_softmax(x, axis=axis),
                    lambda x, axis: composite.log_softmax_composed(x, axis=axis)),
    "gelu": (lambda x, axis: F.gelu(x), lambda x, axis: composite.gelu_composed(x)),
    "gelu_tanh": (lambda x, axis: F.gelu(x, approximate="tanh"),
                  lambda x, axis: composite.gelu_composed(x, approximate="tanh")),
}


def assert_same_value_and_gradients(fused, composed, inputs):
    """Equal outputs, equal first gradients and equal gradients of a gradient."""
    out_fused, out_composed = fused(*inputs), composed(*inputs)
    np.testing.assert_allclose(out_fused.numpy(), out_composed.numpy(), rtol=1e-10, atol=1e-12)
    weights = mg.tensor(np.random.default_rng(1).standard_normal(out_fused.shape))
    first_fused = mg.grad((out_fused * weights).sum(), inputs, create_graph=True)
    first_composed = mg.grad((out_composed * weights).sum(), inputs, create_graph=True)
    for a, b in zip(first_fused, first_composed):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-9, atol=1e-12)
    # differentiate the gradient once more (Hessian times the weights)
    second_fused = mg.grad(sum((g * g).sum() for g in first_fused), inputs)
    second_composed = mg.grad(sum((g * g).sum() for g in first_composed), inputs)
    for a, b in zip(second_fused, second_composed):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("name", sorted(FUSED))
@given(data=st.data())
def test_fused_op_equals_composed_version_in_value_and_gradient(device, name, data):
    a = data.draw(hnp.arrays(np.float64, data.draw(shapes), elements=values))
    axis = _axis(data, a.ndim)
    fused, composed = FUSED[name]
    x = mg.tensor(a, requires_grad=True)
    assert fused(x, axis).device == device
    assert_same_value_and_gradients(lambda t: fused(t, axis), lambda t: composed(t, axis), [x])
    assert mg.gradcheck(lambda t: fused(t, axis), [x])


@given(data=st.data())
def test_layer_norm_equals_composed_version_in_value_and_gradient(device, data):
    a = data.draw(hnp.arrays(np.float64, data.draw(shapes), elements=values))
    d = a.shape[-1]
    weight = mg.tensor(data.draw(hnp.arrays(np.float64, (d,), elements=values)), requires_grad=True)
    bias = mg.tensor(data.draw(hnp.arrays(np.float64, (d,), elements=values)), requires_grad=True)
    x = mg.tensor(a, requires_grad=True)
    fused = lambda x, w, b: F.layer_norm(x, w, b, eps=1e-5)              # noqa: E731
    composed = lambda x, w, b: composite.layer_norm_composed(x, w, b, 1e-5)      # noqa: E731
    assert_same_value_and_gradients(fused, composed, [x, weight, bias])
    assert mg.gradcheck(fused, [x, weight, bias])


def test_layer_norm_matches_its_formula_in_numpy(device):
    rng = np.random.default_rng(0)
    a, w, b = rng.standard_normal((2, 3, 8)), rng.standard_normal(8), rng.standard_normal(8)
    expected = (a - a.mean(-1, keepdims=True)) / np.sqrt(a.var(-1, keepdims=True) + 1e-5) * w + b
    out = F.layer_norm(mg.tensor(a), mg.tensor(w), mg.tensor(b))
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-10)


def test_softmax_and_log_softmax_are_stable_for_huge_logits(device):
    x = mg.tensor([[1000.0, 1000.0, -1000.0], [-1e30, 0.0, 1e30]], requires_grad=True)
    probs = F.softmax(x)
    log_probs = F.log_softmax(x)
    np.testing.assert_allclose(probs.numpy(), [[0.5, 0.5, 0.0], [0.0, 0.0, 1.0]])
    np.testing.assert_allclose(log_probs.numpy()[0, :2], [np.log(0.5)] * 2, rtol=1e-6)
    (probs.sum() + log_probs[:, :2].sum()).backward()
    assert np.isfinite(x.grad.numpy()).all()


def test_gelu_matches_its_formulas_in_numpy(device):
    from math import erf
    a = np.linspace(-5, 5, 41)
    exact = a * 0.5 * (1 + np.array([erf(v / np.sqrt(2)) for v in a]))
    approx = 0.5 * a * (1 + np.tanh(np.sqrt(2 / np.pi) * (a + 0.044715 * a ** 3)))
    np.testing.assert_allclose(F.gelu(mg.tensor(a)).numpy(), exact, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(F.gelu(mg.tensor(a), approximate="tanh").numpy(), approx, rtol=1e-12)


def test_fused_ops_keep_float32(device):
    x = mg.tensor([[0.5, -1.0, 2.0]])
    for y in (F.softmax(x), F.log_softmax(x), F.gelu(x), F.gelu(x, approximate="tanh"), F.layer_norm(x)):
        assert y.dtype == np.float32


def test_gelu_rejects_an_unknown_approximation(device):
    with pytest.raises(ValueError, match="gelu"):
        F.gelu(mg.tensor([1.0]), approximate="fast")
