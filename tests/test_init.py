"""nn.init: each initializer's draws against its formula (bounds, means and standard
deviations with tolerances that a wrong gain or a wrong fan would fail), the fans of
Dense's (n_in, n_out) and Conv2d's (out, in, kh, kw) weights, in-place filling of the
same Parameter, and reproducibility under mg.manual_seed on every device."""
import math

import numpy as np
import pytest

import minigrad as mg
import minigrad.nn as nn
from minigrad.nn import init


def fresh(*shape, dtype="float32", device=None):
    return nn.Parameter(mg.zeros(*shape, dtype=dtype, device=device))


def stats(tensor):
    values = tensor.numpy().astype(np.float64)
    return values.mean(), values.std(), np.abs(values).max()


# --------------------------------------------------------------------------- fans and gains
def test_fans_follow_dense_n_in_n_out_layout_and_conv_out_in_kernel():
    assert init.calculate_fan_in_and_fan_out(fresh(30, 70)) == (30, 70)          # Dense (n_in, n_out)
    assert init.calculate_fan_in_and_fan_out(nn.Dense(30, 70).weight) == (30, 70)
    assert init.calculate_fan_in_and_fan_out(fresh(16, 8, 3, 5)) == (8 * 15, 16 * 15)   # conv (O, C, kh, kw)
    with pytest.raises(ValueError, match=r"at least 2 axes, got shape \(5,\)"):
        init.xavier_uniform_(fresh(5))


def test_calculate_gain_is_pytorchs_table():
    assert init.calculate_gain("linear") == init.calculate_gain("sigmoid") == init.calculate_gain("conv2d") == 1
    assert init.calculate_gain("tanh") == pytest.approx(5 / 3)
    assert init.calculate_gain("relu") == pytest.approx(math.sqrt(2))
    assert init.calculate_gain("selu") == 0.75
    assert init.calculate_gain("leaky_relu") == pytest.approx(math.sqrt(2 / (1 + 0.01 ** 2)))
    assert init.calculate_gain("leaky_relu", 0.2) == pytest.approx(math.sqrt(2 / 1.04))
    with pytest.raises(ValueError, match="unknown nonlinearity 'swish'"):
        init.calculate_gain("swish")


# --------------------------------------------------------------------------- the draws against the formulas
def test_constant_zeros_ones():
    t = fresh(3, 4)
    assert np.all(init.ones_(t).numpy() == 1)
    assert np.all(init.constant_(t, 2.5).numpy() == 2.5)
    assert np.all(init.zeros_(t).numpy() == 0)


def test_normal_and_uniform_have_the_requested_moments_and_range():
    mg.manual_seed(0)
    mean, std, _ = stats(init.normal_(fresh(200, 300), mean=1.5, std=0.3))
    assert mean == pytest.approx(1.5, abs=0.003) and std == pytest.approx(0.3, rel=0.01)
    values = init.uniform_(fresh(200, 300), a=-1.0, b=3.0).numpy()
    assert values.min() >= -1.0 and values.max() < 3.0
    assert values.min() < -0.99 and values.max() > 2.99
    assert values.mean() == pytest.approx(1.0, abs=0.01)
    assert values.std() == pytest.approx(4 / math.sqrt(12), rel=0.01)
    with pytest.raises(ValueError, match="a <= b"):
        init.uniform_(fresh(2, 2), 1.0, 0.0)


@pytest.mark.parametrize("gain", [1.0, 2.0])
def test_xavier_uniform_and_normal(gain):
    """bound = gain sqrt(6 / (fan_in + fan_out)); std = gain sqrt(2 / (fan_in + fan_out))."""
    mg.manual_seed(1)
    bound = gain * math.sqrt(6 / (100 + 400))
    mean, std, biggest = stats(init.xavier_uniform_(fresh(100, 400), gain=gain))
    assert bound * 0.999 < biggest <= bound
    assert std == pytest.approx(bound / math.sqrt(3), rel=0.01) and abs(mean) < 0.01 * bound
    mean, std, _ = stats(init.xavier_normal_(fresh(100, 400), gain=gain))
    assert std == pytest.approx(gain * math.sqrt(2 / 500), rel=0.01)


def test_kaiming_uses_the_fan_of_its_mode_and_the_gain_of_its_nonlinearity():
    """std = gain / sqrt(fan): on a (100, 400) weight fan_in = 100 and fan_out = 400, so
    a mix-up of the modes (or of Dense's layout) is off by a factor of 2."""
    mg.manual_seed(2)
    for mode, fan in (("fan_in", 100), ("fan_out", 400)):
        _, std, biggest = stats(init.kaiming_normal_(fresh(100, 400), mode=mode, nonlinearity="relu"))
        assert std == pytest.approx(math.sqrt(2) / math.sqrt(fan), rel=0.01)
        _, std, biggest = stats(init.kaiming_uniform_(fresh(100, 400), mode=mode, nonlinearity="relu"))
        bound = math.sqrt(3) * math.sqrt(2) / math.sqrt(fan)
        assert bound * 0.999 < biggest <= bound and std == pytest.approx(bound / math.sqrt(3), rel=0.01)
    # the defaults: leaky_relu with slope a = 0, i.e. gain sqrt(2), fan_in
    _, std, _ = stats(init.kaiming_normal_(fresh(100, 400)))
    assert std == pytest.approx(math.sqrt(2 / 100), rel=0.01)
    # a = sqrt(5) (PyTorch's Linear default) makes the bound 1 / sqrt(fan_in)
    _, _, biggest = stats(init.kaiming_uniform_(fresh(100, 400), a=math.sqrt(5)))
    assert 0.999 * 0.1 < biggest <= 0.1 * (1 + 1e-6)
    # conv weights: fan_in = C kh kw = 16 * 9 (fan_out would be 128 * 9)
    _, std, _ = stats(init.kaiming_normal_(fresh(128, 16, 3, 3), nonlinearity="relu"))
    assert std == pytest.approx(math.sqrt(2 / 144), rel=0.02)
    with pytest.raises(ValueError, match="mode must be 'fan_in' or 'fan_out'"):
        init.kaiming_normal_(fresh(3, 3), mode="fan_avg")


# --------------------------------------------------------------------------- in place, on every device
def test_initializers_fill_the_same_parameter_in_place_and_bump_its_version():
    layer = nn.Dense(4, 3)
    weight, array, version = layer.weight, layer.weight.data, layer.weight._version
    optimizer = mg.optim.SGD(layer.parameters(), lr=0.1)
    assert init.xavier_normal_(layer.weight) is weight
    assert layer.weight is weight and layer.weight.data is array and weight._version == version + 1
    assert optimizer.param_groups[0]["params"][0] is weight
    # a graph that saved the old values refuses to backpropagate through the new ones
    loss = (weight * weight).sum()
    init.normal_(weight)
    with pytest.raises(RuntimeError, match="in place"):
        loss.backward()
    # no graph is recorded and the dtype stays
    double = fresh(3, 3, dtype="float64")
    init.normal_(double)
    assert double.dtype == np.float64 and double.grad_fn is None and double.requires_grad


def test_a_seed_gives_the_same_draws_on_every_device(device):
    def draw(device, seed=7):
        mg.manual_seed(seed)
        t = fresh(5, 6, device=device)
        return [init.normal_(t).numpy().copy(), init.xavier_uniform_(t).numpy().copy(),
                init.kaiming_uniform_(t, a=1.0).numpy().copy()]
    on_device, on_cpu = draw(device), draw("cpu")
    assert all(np.array_equal(a, b) for a, b in zip(on_device, on_cpu))
    assert not any(np.array_equal(a, b) for a, b in zip(on_cpu, draw("cpu", seed=8)))


def test_library_layers_and_models_initialise_through_nn_init(monkeypatch):
    """One place: every initializer the layers and models use is an nn.init function."""
    called = []
    for name in init.__all__:
        if name.endswith("_") and not name.startswith("calculate"):
            original = getattr(init, name)
            monkeypatch.setattr(init, name,
                                lambda *a, _name=name, _f=original, **k: called.append(_name) or _f(*a, **k))
    from minigrad.models import BERT, GPT, BertConfig, ResNet
    nn.Transformer(5, 6, d_model=8, n_heads=2, n_layers=1, d_ff=16, tie_embeddings=True)
    assert {"xavier_uniform_", "normal_", "zeros_", "ones_", "kaiming_uniform_"} <= set(called)
    called.clear()
    GPT(vocab_size=7, block_size=4, n_layer=1, n_head=2, d_model=4)
    assert {"normal_", "zeros_"} <= set(called)
    called.clear()
    BERT(BertConfig(vocab_size=9, hidden_size=4, num_hidden_layers=1, num_attention_heads=2, intermediate_size=8))
    assert called.count("normal_") >= 3 + 6                     # 3 embeddings and 6 Dense weights
    called.clear()
    ResNet(in_channels=1, num_classes=2, widths=(2,), blocks_per_stage=(1,))
    assert called.count("kaiming_uniform_") == 3 + 1 and "ones_" in called   # 3 convs, fc; batch norms
