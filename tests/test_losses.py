"""mse_loss and cross_entropy against numpy formulas (ignore_index, label_smoothing,
reductions, class axis last), and their gradients by central differences."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import minigrad as mg
import minigrad.functional as F

REDUCTIONS = ["mean", "sum", "none"]


def np_reduce(values, reduction, count=None):
    if reduction == "none":
        return values
    if reduction == "sum":
        return values.sum()
    return values.sum() / (values.size if count is None else count)


def np_log_softmax(x):
    shifted = x - x.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


def np_cross_entropy(logits, target, ignore_index=None, label_smoothing=0.0, reduction="mean"):
    """PyTorch's definition, written out: q = (1 - e) onehot + e / C, loss = -sum q log p,
    ignored positions give 0 and "mean" divides by the number of the others."""
    n_classes = logits.shape[-1]
    log_p = np_log_softmax(logits)
    valid = np.ones(target.shape, bool) if ignore_index is None else target != ignore_index
    ids = np.where(valid, target, 0)
    q = (1 - label_smoothing) * np.eye(n_classes)[ids] + label_smoothing / n_classes
    per_position = -(q * log_p).sum(-1) * valid
    return np_reduce(per_position, reduction, count=valid.sum())


# ---------------------------------------------------------------- mse_loss
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_mse_loss_matches_numpy_and_gradcheck(reduction, device):
    rng = np.random.default_rng(0)
    pred, target = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    loss = F.mse_loss(mg.tensor(pred), mg.tensor(target), reduction=reduction)
    np.testing.assert_allclose(loss.numpy(), np_reduce((pred - target) ** 2, reduction), rtol=1e-12)
    assert mg.gradcheck(lambda p: F.mse_loss(p, mg.tensor(target), reduction=reduction),
                        [mg.tensor(pred, requires_grad=True)])


def test_mse_loss_gradient_is_two_times_the_error_over_n():
    pred = mg.tensor(np.array([1.0, 2.0, 4.0]), requires_grad=True)
    F.mse_loss(pred, np.array([0.0, 2.0, 1.0])).backward()
    np.testing.assert_allclose(pred.grad.numpy(), 2 * np.array([1.0, 0.0, 3.0]) / 3)


def test_mse_loss_refuses_shapes_that_would_broadcast():
    with pytest.raises(ValueError, match=r"mse_loss.*\(4, 1\).*\(4,\)"):
        F.mse_loss(mg.zeros(4, 1), mg.zeros(4))
    with pytest.raises(ValueError, match="reduction"):
        F.mse_loss(mg.zeros(2), mg.zeros(2), reduction="avg")


# ---------------------------------------------------------------- cross_entropy
@settings(max_examples=40, deadline=None)
@given(lead=st.lists(st.integers(1, 4), min_size=1, max_size=2).map(tuple), n_classes=st.integers(1, 5),
       seed=st.integers(0, 2 ** 16), use_ignore=st.booleans(),
       label_smoothing=st.sampled_from([0.0, 0.1, 0.5]), reduction=st.sampled_from(REDUCTIONS))
def test_cross_entropy_matches_pytorchs_formula(lead, n_classes, seed, use_ignore, label_smoothing, reduction):
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal(lead + (n_classes,)) * 3
    target = rng.integers(0, n_classes, size=lead)
    ignore_index = None
    if use_ignore:
        ignore_index = -100
        target = np.where(rng.random(lead) < 0.3, -100, target)
    loss = F.cross_entropy(mg.tensor(logits), mg.tensor(target), ignore_index=ignore_index,
                           label_smoothing=label_smoothing, reduction=reduction)
    if reduction == "mean" and use_ignore and not (target != -100).any():
        expected = 0.0                          # nothing to average: 0 (PyTorch gives nan)
    else:
        expected = np_cross_entropy(logits, target, ignore_index, label_smoothing, reduction)
    assert loss.shape == np.shape(expected)
    np.testing.assert_allclose(loss.numpy(), expected, rtol=1e-10, atol=1e-12)


@settings(max_examples=20, deadline=None)
@given(lead=st.lists(st.integers(1, 3), min_size=1, max_size=2).map(tuple), n_classes=st.integers(2, 4),
       seed=st.integers(0, 2 ** 16), label_smoothing=st.sampled_from([0.0, 0.2]),
       reduction=st.sampled_from(REDUCTIONS))
def test_cross_entropy_gradients_match_central_differences(lead, n_classes, seed, label_smoothing, reduction):
    rng = np.random.default_rng(seed)
    logits = mg.tensor(rng.standard_normal(lead + (n_classes,)), requires_grad=True)
    target = rng.integers(0, n_classes, size=lead)
    target.reshape(-1)[0] = 7                  # one ignored position
    assert mg.gradcheck(lambda z: F.cross_entropy(z, target, ignore_index=7, label_smoothing=label_smoothing,
                                                  reduction=reduction), [logits])


def test_cross_entropy_gradient_is_softmax_minus_smoothed_target_over_count(device):
    rng = np.random.default_rng(1)
    logits = mg.tensor(rng.standard_normal((5, 4)), dtype="float64", requires_grad=True)
    target = np.array([0, 3, -1, 2, 3])
    F.cross_entropy(logits, mg.tensor(target), ignore_index=-1, label_smoothing=0.1).backward()
    x = logits.numpy()
    probs = np.exp(x) / np.exp(x).sum(-1, keepdims=True)
    q = 0.9 * np.eye(4)[np.where(target < 0, 0, target)] + 0.1 / 4
    expected = (probs - q) * (target >= 0)[:, None] / 4       # 4 positions are not ignored
    np.testing.assert_allclose(logits.grad.numpy(), expected, rtol=1e-10, atol=1e-12)
    assert logits.grad.device == device


def test_cross_entropy_takes_the_class_axis_last():
    rng = np.random.default_rng(2)
    logits = rng.standard_normal((2, 3, 5))                  # (B, T, C), as a language model gives
    target = rng.integers(0, 5, size=(2, 3))
    per_token = F.cross_entropy(mg.tensor(logits), target, reduction="none")
    assert per_token.shape == (2, 3)
    np.testing.assert_allclose(per_token.numpy(), -np.take_along_axis(np_log_softmax(logits),
                                                                       target[..., None], -1)[..., 0])
    with pytest.raises(ValueError, match=r"cross_entropy: target shape \(2, 5\)"):
        F.cross_entropy(mg.tensor(logits), target.repeat(2, axis=1)[:, :5])


def test_cross_entropy_is_stable_for_huge_logits(device):
    logits = mg.tensor([[1e4, 0.0, -1e4], [0.0, 1e4, 0.0]], requires_grad=True)
    loss = F.cross_entropy(logits, mg.tensor([2, 1]))
    loss.backward()
    assert np.isfinite(loss.item()) and np.isfinite(logits.grad.numpy()).all()
    np.testing.assert_allclose(loss.item(), 2e4 / 2, rtol=1e-6)        # (2e4 + 0) / 2


def test_cross_entropy_with_probability_targets_and_smoothing():
    rng = np.random.default_rng(3)
    logits = rng.standard_normal((4, 3))
    probs = rng.dirichlet(np.ones(3), size=4)
    loss = F.cross_entropy(mg.tensor(logits), mg.tensor(probs), label_smoothing=0.2)
    q = 0.8 * probs + 0.2 / 3
    np.testing.assert_allclose(loss.item(), -(q * np_log_softmax(logits)).sum(-1).mean(), rtol=1e-12)


def test_cross_entropy_rejects_bad_targets():
    logits = mg.zeros(3, 4)
    with pytest.raises(ValueError, match=r"target ids must lie in \[0, 4\).*0 to 4"):
        F.cross_entropy(logits, np.array([0, 4, 1]))
    with pytest.raises(TypeError, match="class ids must be integers"):
        F.cross_entropy(logits, np.array([0.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match="label_smoothing"):
        F.cross_entropy(logits, np.array([0, 1, 2]), label_smoothing=1.5)


# --------------------------------------------------------------------------- issue 11, items 7 and 8
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_cross_entropy_ignored_positions_with_nonfinite_logits_do_not_poison_the_loss(device, bad):
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((4, 5))
    target = np.array([1, -100, 3, -100])
    logits[1, :] = bad
    logits[3, 2] = bad
    x = mg.tensor(logits, requires_grad=True)
    loss = F.cross_entropy(x, target, ignore_index=-100)
    loss.backward()
    clean = F.cross_entropy(mg.tensor(logits[[0, 2]]), target[[0, 2]])
    np.testing.assert_allclose(loss.item(), clean.item(), rtol=1e-12)
    assert np.all(np.isfinite(x.grad.numpy()))
    np.testing.assert_array_equal(x.grad.numpy()[[1, 3]], 0.0)
    per_position = F.cross_entropy(mg.tensor(logits), target, ignore_index=-100, reduction="none").numpy()
    np.testing.assert_array_equal(per_position[[1, 3]], 0.0)
    assert np.all(np.isfinite(per_position))
    # the same through grad of grad (the Tensor backward)
    x2 = mg.tensor(logits, requires_grad=True)
    (g,) = mg.grad(F.cross_entropy(x2, target, ignore_index=-100, label_smoothing=0.1), [x2], create_graph=True)
    assert np.all(np.isfinite(g.numpy())) and np.all(g.numpy()[[1, 3]] == 0.0)


def test_cross_entropy_probability_targets_get_their_gradient(device):
    rng = np.random.default_rng(1)
    logits = rng.standard_normal((3, 4))
    probs = rng.dirichlet(np.ones(4), size=3)
    for smoothing in (0.0, 0.2):
        x = mg.tensor(logits, requires_grad=True)
        t = mg.tensor(probs, requires_grad=True)
        F.cross_entropy(x, t, label_smoothing=smoothing).backward()
        # d/dt_c of -(1/N) sum_i (1 - e) sum_c t_ic log p_ic = -(1 - e) log p_ic / N
        np.testing.assert_allclose(t.grad.numpy(), -(1 - smoothing) * np_log_softmax(logits) / 3, rtol=1e-12)
        assert mg.gradcheck(lambda a, b: F.cross_entropy(a, b, label_smoothing=smoothing),
                            [mg.tensor(logits, requires_grad=True), mg.tensor(probs, requires_grad=True)])


def test_cross_entropy_of_float16_logits_is_float16_computed_in_float32(device):
    logits = np.full((2, 3000), 0.01, dtype=np.float16)
    logits[:, 7] = 12.0
    got = F.cross_entropy(mg.tensor(logits), np.array([7, 0]), reduction="none")
    assert got.dtype == mg.float16
    want = np_cross_entropy(logits.astype(np.float64), np.array([7, 0]), reduction="none")
    np.testing.assert_allclose(got.numpy().astype(np.float64), want, rtol=2e-3)
