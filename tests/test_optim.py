"""Optimizers against their update equations written out in numpy, step by step;
clip_grad_norm_; the learning-rate schedules."""
import math

import numpy as np
import pytest

import minigrad as mg
import minigrad.nn as nn
from minigrad import optim

STEPS = 6


class Problem:
    """A least-squares loss L(w) = mean((X w - y)^2), whose gradient numpy can write:
    dL/dw = 2 X^T (X w - y) / n."""

    def __init__(self, seed=0):
        rng = np.random.default_rng(seed)
        self.X = rng.standard_normal((8, 3))
        self.y = rng.standard_normal((8, 2))
        self.w0 = rng.standard_normal((3, 2))

    def grad(self, w):
        return 2 * self.X.T @ (self.X @ w - self.y) / self.y.size

    def run_minigrad(self, make_optimizer, steps=STEPS):
        """The weights after each of `steps` updates by the minigrad optimizer."""
        w = nn.Parameter(mg.tensor(self.w0.copy()))    # float64, on the default device (mg.tensor shares host memory)
        optimizer = make_optimizer([w])
        X, y = mg.tensor(self.X), mg.tensor(self.y)
        history = []
        for _ in range(steps):
            optimizer.zero_grad()
            F_loss = ((X @ w - y) ** 2).mean()
            F_loss.backward()
            optimizer.step()
            history.append(w.numpy().copy())
        return history


def numpy_sgd(problem, lr, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0, steps=STEPS):
    """torch.optim.SGD's algorithm, line by line."""
    w, buffer, history = problem.w0.copy(), None, []
    for _ in range(steps):
        g = problem.grad(w)
        if weight_decay:
            g = g + weight_decay * w
        if momentum:
            buffer = g.copy() if buffer is None else momentum * buffer + (1 - dampening) * g
            g = g + momentum * buffer if nesterov else buffer
        w = w - lr * g
        history.append(w)
    return history


def numpy_adam(problem, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, decoupled=False, steps=STEPS):
    """Adam / AdamW with the bias correction as in the paper and torch:
    m_hat = m / (1 - b1^t), v_hat = v / (1 - b2^t), w -= lr * m_hat / (sqrt(v_hat) + eps)."""
    b1, b2 = betas
    w = problem.w0.copy()
    m, v, history = np.zeros_like(w), np.zeros_like(w), []
    for t in range(1, steps + 1):
        g = problem.grad(w)
        if decoupled:
            w = w - lr * weight_decay * w
        elif weight_decay:
            g = g + weight_decay * w
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        m_hat = m / (1 - b1 ** t)
        v_hat = v / (1 - b2 ** t)
        w = w - lr * m_hat / (np.sqrt(v_hat) + eps)
        history.append(w)
    return history


def assert_histories_equal(got, expected):
    for step, (a, b) in enumerate(zip(got, expected), start=1):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14, err_msg=f"after step {step}")


def test_gd_is_w_minus_lr_times_grad(device):
    problem = Problem()
    got = problem.run_minigrad(lambda params: optim.GD(params, lr=0.05))
    assert_histories_equal(got, numpy_sgd(problem, lr=0.05))


SGD_VARIANTS = {
    "plain": dict(lr=0.1),
    "momentum": dict(lr=0.05, momentum=0.9),
    "nesterov": dict(lr=0.05, momentum=0.9, nesterov=True),
    "weight_decay": dict(lr=0.1, weight_decay=0.1),
    "momentum_weight_decay": dict(lr=0.05, momentum=0.8, weight_decay=0.01),
    "nesterov_weight_decay": dict(lr=0.05, momentum=0.5, nesterov=True, weight_decay=0.2),
    "dampening": dict(lr=0.05, momentum=0.9, dampening=0.3),
}


@pytest.mark.parametrize("variant", sorted(SGD_VARIANTS))
def test_sgd_follows_pytorchs_update_rule(variant, device):
    settings = SGD_VARIANTS[variant]
    problem = Problem(seed=1)
    got = problem.run_minigrad(lambda params: optim.SGD(params, **settings))
    assert_histories_equal(got, numpy_sgd(problem, **settings))


ADAM_VARIANTS = {
    "default": dict(lr=0.01),
    "betas": dict(lr=0.02, betas=(0.8, 0.95), eps=1e-6),
    "l2": dict(lr=0.01, weight_decay=0.1),
}


@pytest.mark.parametrize("variant", sorted(ADAM_VARIANTS))
def test_adam_follows_its_equations_with_bias_correction(variant, device):
    settings = ADAM_VARIANTS[variant]
    problem = Problem(seed=2)
    got = problem.run_minigrad(lambda params: optim.Adam(params, **settings))
    assert_histories_equal(got, numpy_adam(problem, **settings))


@pytest.mark.parametrize("weight_decay", [0.0, 0.01, 0.5])
def test_adamw_decays_the_weights_before_the_adam_step(weight_decay, device):
    problem = Problem(seed=3)
    got = problem.run_minigrad(lambda params: optim.AdamW(params, lr=0.02, weight_decay=weight_decay))
    assert_histories_equal(got, numpy_adam(problem, lr=0.02, weight_decay=weight_decay, decoupled=True))


def test_adamw_default_decay_differs_from_adams_l2_penalty():
    problem = Problem(seed=3)
    adamw = problem.run_minigrad(lambda params: optim.AdamW(params, lr=0.02))          # weight_decay 0.01
    adam_l2 = problem.run_minigrad(lambda params: optim.Adam(params, lr=0.02, weight_decay=0.01))
    assert np.abs(adamw[-1] - adam_l2[-1]).max() > 1e-6


def test_first_adam_step_moves_each_weight_by_about_lr():
    # with bias correction, m_hat / sqrt(v_hat) = g / |g| at t = 1
    problem = Problem(seed=4)
    first = problem.run_minigrad(lambda params: optim.Adam(params, lr=0.01), steps=1)[0]
    np.testing.assert_allclose(np.abs(first - problem.w0), 0.01, rtol=1e-5)


def test_float32_parameters_stay_float32(device):
    layer = nn.Dense(3, 2)
    for make in (lambda p: optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=0.1), optim.Adam, optim.AdamW):
        optimizer = make(layer.parameters())
        layer(mg.randn(4, 3)).sum().backward()
        optimizer.step()
        assert all(p.dtype == np.float32 and p.device == device for p in layer.parameters())
        state = optimizer.state_dict()
        assert all(value.dtype != np.float64 for key, value in state.items() if key.startswith("state.")
                   and not key.endswith(".step"))


def test_param_groups_take_their_own_settings():
    a = nn.Parameter(mg.tensor([1.0, 1.0], dtype="float64"))
    b = nn.Parameter(mg.tensor([1.0], dtype="float64"))
    optimizer = optim.SGD([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=0.1)
    a.grad, b.grad = mg.tensor([1.0, 2.0], dtype="float64"), mg.tensor([4.0], dtype="float64")
    optimizer.step()
    np.testing.assert_allclose(a.numpy(), [0.9, 0.8])
    np.testing.assert_allclose(b.numpy(), [-1.0])
    assert optimizer.param_groups[1]["momentum"] == 0.0      # defaults fill the rest


def test_parameters_without_gradients_are_left_alone_and_zero_grad_clears():
    a, b = nn.Parameter(mg.ones(2)), nn.Parameter(mg.ones(2))
    optimizer = optim.Adam([a, b], lr=0.1)
    a.grad = mg.ones(2)
    optimizer.step()
    assert b.numpy().tolist() == [1.0, 1.0] and b not in optimizer.state
    assert optimizer.state[a]["step"] == 1
    optimizer.zero_grad()
    assert a.grad is None


def test_optimizers_reject_bad_arguments():
    with pytest.raises(ValueError, match="SGD: got an empty list"):
        optim.SGD([], lr=0.1)
    with pytest.raises(ValueError, match="SGD: nesterov momentum needs momentum > 0 and dampening = 0, got momentum 0.0"):
        optim.SGD([nn.Parameter(mg.ones(1))], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="unknown settings \\['momentun'\\]"):
        optim.SGD([{"params": [nn.Parameter(mg.ones(1))], "momentun": 0.9}], lr=0.1)
    with pytest.raises(TypeError, match="require grad"):
        optim.Adam([mg.ones(1)])
    p = nn.Parameter(mg.ones(1))
    with pytest.raises(ValueError, match="more than one param group"):
        optim.GD([{"params": [p]}, {"params": [p]}], lr=0.1)


def one_param():
    return [nn.Parameter(mg.ones(1))]


BAD_SETTINGS = [                      # (optimizer, keyword arguments, the error's words)
    (optim.GD, dict(lr=-0.1), "lr must be >= 0, got -0.1"),
    (optim.SGD, dict(lr=float("nan")), "lr must be finite, got nan"),
    (optim.SGD, dict(lr=float("inf")), "lr must be finite, got inf"),
    (optim.SGD, dict(lr=0.1, momentum=-0.9), "momentum must be >= 0, got -0.9"),
    (optim.SGD, dict(lr=0.1, weight_decay=-1e-4), "weight_decay must be >= 0, got -0.0001"),
    (optim.SGD, dict(lr=0.1, momentum=0.9, dampening=-0.5), "dampening must be >= 0"),
    (optim.Adam, dict(betas=(1.0, 0.999)), r"betas\[0\] must be in \[0, 1\), got 1.0"),
    (optim.Adam, dict(betas=(0.9, 1.5)), r"betas\[1\] must be in \[0, 1\), got 1.5"),
    (optim.Adam, dict(betas=(-0.1, 0.9)), r"betas\[0\] must be in \[0, 1\)"),
    (optim.AdamW, dict(eps=0.0), "eps must be > 0, got 0.0"),
    (optim.Adam, dict(eps=-1e-8), "eps must be > 0"),
    (optim.AdamW, dict(weight_decay=-0.01), "weight_decay must be >= 0"),
    (optim.AdamW, dict(lr=float("-inf")), "lr must be finite"),
]


@pytest.mark.parametrize("make, settings, message", BAD_SETTINGS,
                         ids=[f"{make.__name__}-{kw}" for make, kw, _ in BAD_SETTINGS])
def test_optimizers_reject_out_of_range_hyperparameters_when_made(make, settings, message):
    with pytest.raises(ValueError, match=f"{make.__name__}: {message}"):
        make(one_param(), **settings)


def test_a_param_group_override_is_checked_like_the_defaults():
    with pytest.raises(ValueError, match="SGD: lr must be >= 0, got -1"):
        optim.SGD([{"params": one_param()}, {"params": one_param(), "lr": -1}], lr=0.1)
    with pytest.raises(ValueError, match=r"Adam: betas\[1\] must be in \[0, 1\)"):
        optim.Adam([{"params": one_param(), "betas": (0.9, 1.0)}])


def test_optimizers_name_what_came_when_given_the_wrong_kind_of_argument():
    model = nn.Dense(2, 2)
    with pytest.raises(TypeError, match="SGD: expected an iterable of parameters, got the module Dense; "
                                        r"pass model.parameters\(\)"):
        optim.SGD(model, lr=0.1)
    with pytest.raises(TypeError, match="got the module Sequential"):    # iterable, but of modules
        optim.Adam(nn.Sequential(nn.Dense(2, 2)))
    with pytest.raises(TypeError, match="SGD: expected an iterable of parameters or of param-group dicts, got Parameter"):
        optim.SGD(model.weight, lr=0.1)
    with pytest.raises(TypeError, match="SGD: lr must be a real number, got str '0.1'"):
        optim.SGD(model.parameters(), lr="0.1")
    with pytest.raises(TypeError, match="SGD: momentum must be a real number, got NoneType None"):
        optim.SGD(model.parameters(), lr=0.1, momentum=None)
    with pytest.raises(TypeError, match=r"Adam: betas must be a pair \(beta1, beta2\), got float 0.9"):
        optim.Adam(model.parameters(), betas=0.9)
    with pytest.raises(TypeError, match=r"Adam: betas must be a pair \(beta1, beta2\), got tuple \(0.9,\)"):
        optim.Adam(model.parameters(), betas=(0.9,))
    with pytest.raises(TypeError, match="SGD: nesterov must be True or False, got 'yes'"):
        optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov="yes")
    with pytest.raises(TypeError, match="SGD: lr must be a real number, got bool True"):
        optim.SGD(model.parameters(), lr=True)
    with pytest.raises(TypeError, match="a param group must be a dict with a 'params' entry"):
        optim.SGD([{"lr": 0.1}], lr=0.1)


def test_betas_given_as_a_list_are_kept_as_a_tuple():
    optimizer = optim.Adam(one_param(), betas=[0.8, 0.9])
    assert optimizer.param_groups[0]["betas"] == (0.8, 0.9)


def test_a_parameter_listed_twice_is_rejected_rather_than_updated_twice():
    p = nn.Parameter(mg.ones(1))
    with pytest.raises(ValueError, match="SGD: a parameter is listed twice in one param group"):
        optim.SGD([p, p], lr=0.1)
    model = nn.Dense(2, 2)
    with pytest.raises(ValueError, match="listed twice"):
        optim.Adam(model.parameters() + [model.weight])


def test_zero_learning_rate_and_zero_decay_are_allowed_and_change_nothing():
    p = nn.Parameter(mg.tensor([1.0, 2.0], dtype="float64"))
    optimizer = optim.SGD([p], lr=0.0, momentum=0.0, weight_decay=0.0)
    p.grad = mg.tensor([5.0, 5.0], dtype="float64")
    optimizer.step()
    assert p.numpy().tolist() == [1.0, 2.0]


# ---------------------------------------------------------------- clip_grad_norm_
def test_clip_grad_norm_returns_the_norm_before_and_scales_to_max_norm(device):
    a, b = nn.Parameter(mg.zeros(2, 2)), nn.Parameter(mg.zeros(3))
    c = nn.Parameter(mg.zeros(1))                             # no gradient: skipped
    ga, gb = np.array([[3.0, 0.0], [0.0, 4.0]]), np.array([12.0, 0.0, 0.0])
    a.grad, b.grad = mg.tensor(ga), mg.tensor(gb)
    total = optim.clip_grad_norm_([a, b, c], max_norm=6.5)
    assert isinstance(total, float) and total == pytest.approx(13.0)
    scale = 6.5 / (13.0 + 1e-6)
    np.testing.assert_allclose(a.grad.numpy(), ga * scale, rtol=1e-6)
    np.testing.assert_allclose(b.grad.numpy(), gb * scale, rtol=1e-6)
    assert a.grad.device == device
    # under the limit nothing changes
    assert optim.clip_grad_norm_([a, b], max_norm=100.0) == pytest.approx(6.5, rel=1e-5)
    np.testing.assert_allclose(a.grad.numpy(), ga * scale, rtol=1e-6)


def test_clip_grad_norm_with_the_infinity_norm():
    a = nn.Parameter(mg.zeros(3))
    a.grad = mg.tensor([1.0, -8.0, 2.0])
    assert optim.clip_grad_norm_([a], max_norm=2.0, norm_type=math.inf) == 8.0
    np.testing.assert_allclose(a.grad.numpy(), np.array([1.0, -8.0, 2.0]) * 2.0 / (8.0 + 1e-6), rtol=1e-6)


def test_clip_grad_norm_of_all_zero_gradients_is_zero_and_leaves_them_zero(device):
    a, b = nn.Parameter(mg.ones(2, 3)), nn.Parameter(mg.ones(4))
    a.grad, b.grad = mg.zeros(2, 3), mg.zeros(4)
    for norm_type in (2.0, 1.0, math.inf):
        total = optim.clip_grad_norm_([a, b], max_norm=1.0, norm_type=norm_type)
        assert isinstance(total, float) and total == 0.0
        assert not a.grad.numpy().any() and not b.grad.numpy().any()    # no NaN from 0 / 0


def test_clip_grad_norm_of_no_gradients_is_zero():
    assert optim.clip_grad_norm_([nn.Parameter(mg.ones(2))], max_norm=1.0) == 0.0


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_clip_grad_norm_raises_on_a_nonfinite_norm_when_asked(bad, device):
    a, b = nn.Parameter(mg.ones(2)), nn.Parameter(mg.ones(1))
    a.grad, b.grad = mg.tensor([1.0, bad]), mg.tensor([2.0])
    with pytest.raises(RuntimeError, match=f"clip_grad_norm_: the total norm of order 2.0 of the gradients is {bad}"):
        optim.clip_grad_norm_([a, b], max_norm=1.0, error_if_nonfinite=True)
    assert b.grad.numpy().tolist() == [2.0]                 # raised before touching anything


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")
def test_clip_grad_norm_scales_by_nan_or_zero_on_a_nonfinite_norm_as_pytorch_does():
    # PyTorch: coefficient = clamp(max_norm / (total + 1e-6), max=1); NaN stays NaN, inf gives 0
    a, b = nn.Parameter(mg.ones(2)), nn.Parameter(mg.ones(1))
    a.grad, b.grad = mg.tensor([1.0, float("nan")]), mg.tensor([2.0])
    assert math.isnan(optim.clip_grad_norm_([a, b], max_norm=1.0))
    assert np.isnan(b.grad.numpy()).all()
    a.grad, b.grad = mg.tensor([1.0, float("inf")]), mg.tensor([2.0])
    assert optim.clip_grad_norm_([a, b], max_norm=1.0) == math.inf
    assert b.grad.numpy().tolist() == [0.0] and np.isnan(a.grad.numpy()[1])


# ---------------------------------------------------------------- schedules
def lrs_over(scheduler, optimizer, steps):
    """The lr each of the first `steps` updates uses (read before the update, as step() would)."""
    lrs = []
    for _ in range(steps):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return lrs


def noam(s, d_model, warmup, factor=1.0):
    return factor * d_model ** -0.5 * min(s ** -0.5, s * warmup ** -1.5)


def test_noam_schedule_is_the_papers_formula_from_step_one():
    optimizer = optim.Adam([nn.Parameter(mg.ones(1))], lr=123.0, betas=(0.9, 0.98), eps=1e-9)
    scheduler = optim.NoamScheduler(optimizer, d_model=512, warmup=10, factor=2.0)
    lrs = lrs_over(scheduler, optimizer, 30)
    assert lrs == pytest.approx([noam(s, 512, 10, 2.0) for s in range(1, 31)], rel=1e-12)
    assert max(lrs) == lrs[9] == pytest.approx(2.0 / math.sqrt(512 * 10))   # the peak at s = warmup
    assert all(x < y for x, y in zip(lrs[:9], lrs[1:10])) and all(x > y for x, y in zip(lrs[9:], lrs[10:]))
    assert scheduler.get_last_lr() == [pytest.approx(noam(31, 512, 10, 2.0))]


def test_warmup_cosine_rises_linearly_then_follows_the_cosine_to_min_lr():
    optimizer = optim.SGD([nn.Parameter(mg.ones(1))], lr=0.1)
    scheduler = optim.WarmupCosine(optimizer, warmup=5, total_steps=20, min_lr=0.01)
    lrs = lrs_over(scheduler, optimizer, 25)
    expected = [0.1 * s / 5 if s <= 5 else
                0.01 + 0.09 * 0.5 * (1 + math.cos(math.pi * (s - 5) / 15)) if s <= 20 else 0.01
                for s in range(1, 26)]
    assert lrs == pytest.approx(expected, rel=1e-12)
    assert lrs[4] == pytest.approx(0.1) and lrs[19] == pytest.approx(0.01) and lrs[0] == pytest.approx(0.02)


def test_lambda_lr_scales_each_groups_base_lr():
    a, b = nn.Parameter(mg.ones(1)), nn.Parameter(mg.ones(1))
    optimizer = optim.SGD([{"params": [a]}, {"params": [b], "lr": 1.0}], lr=0.1)
    scheduler = optim.LambdaLR(optimizer, lambda step: 0.5 ** step)
    scheduler.step()
    scheduler.step()
    assert scheduler.get_last_lr() == [pytest.approx(0.025), pytest.approx(0.25)]


def test_scheduler_state_dict_resumes_the_schedule():
    def make():
        optimizer = optim.SGD([nn.Parameter(mg.ones(1))], lr=0.3)
        return optimizer, optim.WarmupCosine(optimizer, warmup=3, total_steps=12)
    optimizer, scheduler = make()
    straight = lrs_over(scheduler, optimizer, 10)
    optimizer, scheduler = make()
    first = lrs_over(scheduler, optimizer, 4)
    saved = scheduler.state_dict()
    assert saved["last_step"].item() == 4
    optimizer, scheduler = make()
    scheduler.load_state_dict(saved)
    assert first + lrs_over(scheduler, optimizer, 6) == straight


def test_warmup_cosine_with_warmup_equal_to_total_steps_rises_then_holds_min_lr():
    # no cosine phase at all: the formula's (s - warmup) / (total - warmup) would divide by zero
    optimizer = optim.SGD([nn.Parameter(mg.ones(1))], lr=0.4)
    scheduler = optim.WarmupCosine(optimizer, warmup=4, total_steps=4, min_lr=0.05)
    lrs = lrs_over(scheduler, optimizer, 7)
    assert lrs == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.05, 0.05, 0.05], rel=1e-12)
