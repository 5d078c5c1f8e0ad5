"""The newer activations (F.silu, leaky_relu, elu, softplus, logsigmoid and their modules),
one_hot, and the losses nll_loss, binary_cross_entropy and binary_cross_entropy_with_logits:
each against its formula computed in numpy, gradients (targets' too) against central
differences in float64, on "cpu" and on the cupy double."""
import numpy as np
import pytest
from hypothesis import given, strategies as st
from hypothesis.extra import numpy as hnp

import minigrad as mg
import minigrad.functional as F
from minigrad import nn
from test_ops_grad import AWAY_FROM_ZERO, arrays, check, floats, shapes


def np_sigmoid(a):
    return 1 / (1 + np.exp(-a))


ACTIVATIONS = {
    "silu": (F.silu, lambda a: a * np_sigmoid(a), floats(-5, 5)),
    "leaky_relu": (F.leaky_relu, lambda a: np.where(a > 0, a, 0.01 * a), AWAY_FROM_ZERO),
    "leaky_relu_0.2": (lambda x: F.leaky_relu(x, 0.2), lambda a: np.where(a > 0, a, 0.2 * a), AWAY_FROM_ZERO),
    "elu": (F.elu, lambda a: np.where(a > 0, a, np.exp(a) - 1), AWAY_FROM_ZERO),
    "elu_0.5": (lambda x: F.elu(x, 0.5), lambda a: np.where(a > 0, a, 0.5 * (np.exp(a) - 1)), AWAY_FROM_ZERO),
    "softplus": (F.softplus, lambda a: np.log1p(np.exp(a)), floats(-5, 5)),
    "softplus_beta2": (lambda x: F.softplus(x, beta=2.0), lambda a: np.log1p(np.exp(2 * a)) / 2, floats(-5, 5)),
    "logsigmoid": (F.logsigmoid, lambda a: np.log(np_sigmoid(a)), floats(-5, 5)),
}


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
@given(data=st.data())
def test_activation_matches_its_formula_and_gradcheck(device, name, data):
    fn, formula, elements = ACTIVATIONS[name]
    check(device, fn, formula, data.draw(arrays(shapes, elements)))


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_is_finite_for_huge_inputs_and_keeps_float32(device, name):
    fn = ACTIVATIONS[name][0]
    x = mg.tensor([-1000.0, -30.0, 30.0, 1000.0], requires_grad=True)
    y = fn(x)
    assert y.dtype == np.float32
    y.sum().backward()
    assert np.isfinite(y.numpy()).all() and np.isfinite(x.grad.numpy()).all()


def test_softplus_is_x_above_the_threshold_and_leaky_relu_slope_at_zero(device):
    x = mg.tensor([25.0, 5.0], dtype="float64", requires_grad=True)
    y = F.softplus(x, beta=1.0, threshold=20.0)
    assert y.numpy()[0] == 25.0
    y.sum().backward()
    assert x.grad.numpy()[0] == 1.0 and x.grad.numpy()[1] == pytest.approx(np_sigmoid(5.0))
    z = mg.tensor([0.0], requires_grad=True)
    F.leaky_relu(z, 0.1).sum().backward()
    assert z.grad.item() == pytest.approx(0.1)         # x > 0 is false at 0: the slope, as PyTorch


@pytest.mark.parametrize("module, fn", [
    (nn.SiLU(), F.silu), (nn.LeakyReLU(0.3), lambda x: F.leaky_relu(x, 0.3)),
    (nn.Softplus(2.0, 10.0), lambda x: F.softplus(x, 2.0, 10.0)), (nn.ELU(0.7), lambda x: F.elu(x, 0.7)),
    (nn.Identity(5, bias=False), lambda x: x)])
def test_activation_modules_apply_their_function(device, module, fn):
    x = mg.randn(3, 4)
    np.testing.assert_array_equal(module(x).numpy(), fn(x).numpy())
    assert list(module.parameters()) == []


def test_identity_returns_its_input_itself(device):
    x = mg.randn(2)
    assert nn.Identity()(x) is x


# --------------------------------------------------------------------------- one_hot
def test_one_hot_matches_numpy(device):
    ids = np.array([[0, 2], [1, 2]])
    out = F.one_hot(mg.tensor(ids), 4)
    assert out.dtype == np.int64 and out.shape == (2, 2, 4)
    np.testing.assert_array_equal(out.numpy(), np.eye(4, dtype=np.int64)[ids])
    assert F.one_hot(ids).shape == (2, 2, 3)               # num_classes -1: largest id + 1
    with pytest.raises(ValueError, match=r"one_hot: ids must lie in \[0, 2\), got 0 to 2"):
        F.one_hot(ids, 2)
    with pytest.raises(TypeError, match="one_hot: ids must be integers"):
        F.one_hot(mg.tensor([0.0]), 2)


# --------------------------------------------------------------------------- nll_loss
@st.composite
def classification(draw):
    lead = draw(hnp.array_shapes(min_dims=0, max_dims=2, min_side=1, max_side=3))
    n_classes = draw(st.integers(1, 4))
    log_probs = draw(arrays(lead + (n_classes,), floats(-3, 0)))
    target = draw(hnp.arrays(np.int64, lead, elements=st.integers(0, n_classes - 1)))
    return log_probs, target


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@given(case=classification())
def test_nll_loss_matches_numpy_and_gradcheck(device, reduction, case):
    log_probs, target = case
    picked = -np.take_along_axis(log_probs, target[..., None], -1)[..., 0]
    expected = {"mean": picked.mean(), "sum": picked.sum(), "none": picked}[reduction]
    check(device, lambda x: F.nll_loss(x, target, reduction=reduction), lambda x: expected, log_probs)


def test_nll_loss_ignore_index_selects_so_nan_at_ignored_positions_stays_out(device):
    log_probs = mg.tensor([[-0.5, -1.0], [np.nan, -np.inf], [-2.0, -0.1]], requires_grad=True)
    target = np.array([1, -100, 0])
    loss = F.nll_loss(log_probs, target, ignore_index=-100)
    assert loss.item() == pytest.approx((1.0 + 2.0) / 2)
    loss.backward()
    np.testing.assert_array_equal(log_probs.grad.numpy(), [[0, -0.5], [0, 0], [-0.5, 0]])
    per_position = F.nll_loss(log_probs, target, ignore_index=-100, reduction="none")
    np.testing.assert_array_equal(per_position.numpy(), [1.0, 0.0, 2.0])


def test_nll_loss_equals_cross_entropy_on_log_softmax(device):
    logits = mg.randn(4, 5, requires_grad=True)
    target = np.array([0, 4, 2, 2])
    np.testing.assert_allclose(F.nll_loss(F.log_softmax(logits), target).item(),
                               F.cross_entropy(logits, target).item(), rtol=1e-6)


def test_nll_loss_errors_name_the_shapes_and_ids(device):
    with pytest.raises(ValueError, match=r"nll_loss: target must be integer ids of shape \(3,\)"):
        F.nll_loss(mg.zeros(3, 2), np.array([0, 1]))
    with pytest.raises(ValueError, match=r"nll_loss: target ids must lie in \[0, 2\)"):
        F.nll_loss(mg.zeros(2, 2), np.array([0, 2]))


# --------------------------------------------------------------------------- binary cross-entropy
@st.composite
def probability_pairs(draw):
    shape = draw(shapes)
    return draw(arrays(shape, floats(0.05, 0.95))), draw(arrays(shape, floats(0.0, 1.0)))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@given(case=probability_pairs())
def test_binary_cross_entropy_matches_numpy_and_gradcheck_for_both_inputs(device, reduction, case):
    p, t = case
    per_element = -(t * np.log(p) + (1 - t) * np.log(1 - p))
    expected = {"mean": per_element.mean(), "sum": per_element.sum(), "none": per_element}[reduction]
    check(device, lambda x, y: F.binary_cross_entropy(x, y, reduction=reduction), lambda x, y: expected, p, t)


def test_binary_cross_entropy_clamps_the_log_at_minus_100_with_finite_gradients(device):
    p = mg.tensor([0.0, 1.0, 0.0], dtype="float64", requires_grad=True)
    t = mg.tensor([1.0, 0.0, 0.0], dtype="float64", requires_grad=True)
    loss = F.binary_cross_entropy(p, t, reduction="none")
    np.testing.assert_array_equal(loss.numpy(), [100.0, 100.0, 0.0])
    loss.sum().backward()
    assert np.isfinite(p.grad.numpy()).all() and np.isfinite(t.grad.numpy()).all()
    np.testing.assert_allclose(t.grad.numpy(), [100.0, -100.0, 100.0])
    # near (not at) 0 and 1 the exact gradient (p - t) / (p (1 - p)) holds: the clamp is tiny
    q = mg.tensor([1e-6, 1 - 1e-6], dtype="float64", requires_grad=True)
    F.binary_cross_entropy(q, mg.tensor([0.0, 1.0], dtype="float64"), reduction="sum").backward()
    np.testing.assert_allclose(q.grad.numpy(), [1 / (1 - 1e-6), -1 / (1 - 1e-6)], rtol=1e-9)


def test_binary_cross_entropy_weight_and_errors(device):
    p, t = mg.tensor([0.25, 0.5]), mg.tensor([1.0, 0.0])
    weighted = F.binary_cross_entropy(p, t, weight=mg.tensor([2.0, 0.0]), reduction="sum")
    assert weighted.item() == pytest.approx(-2 * np.log(0.25), rel=1e-6)
    with pytest.raises(ValueError, match=r"probabilities in \[0, 1\]"):
        F.binary_cross_entropy(mg.tensor([1.5]), mg.tensor([1.0]))
    with pytest.raises(ValueError, match=r"input shape \(2,\) and target shape \(1,\) differ"):
        F.binary_cross_entropy(p, mg.tensor([1.0]))


@st.composite
def logit_pairs(draw):
    shape = draw(shapes)
    return draw(arrays(shape, floats(-4, 4))), draw(arrays(shape, floats(0.0, 1.0)))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@given(case=logit_pairs(), pos_weight=st.sampled_from([None, 3.0]))
def test_bce_with_logits_matches_numpy_and_gradcheck_for_both_inputs(device, reduction, case, pos_weight):
    x, t = case
    weight = 1.0 if pos_weight is None else pos_weight
    per_element = -(weight * t * np.log(np_sigmoid(x)) + (1 - t) * np.log(1 - np_sigmoid(x)))
    expected = {"mean": per_element.mean(), "sum": per_element.sum(), "none": per_element}[reduction]
    check(device, lambda a, b: F.binary_cross_entropy_with_logits(a, b, pos_weight=pos_weight, reduction=reduction),
          lambda a, b: expected, x, t)


def test_bce_with_logits_is_stable_for_huge_logits(device):
    x = mg.tensor([1000.0, -1000.0, 1000.0], requires_grad=True)
    t = mg.tensor([1.0, 0.0, 0.0])
    loss = F.binary_cross_entropy_with_logits(x, t, reduction="none")
    np.testing.assert_allclose(loss.numpy(), [0.0, 0.0, 1000.0])
    loss.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [0.0, 0.0, 1.0])
