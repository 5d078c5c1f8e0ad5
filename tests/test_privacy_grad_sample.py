"""Per-example gradients (privacy.GradSampleModule) against the definition: the same
model run on one example at a time, its ordinary gradient taken each time. And the
ghost-clipping norms (privacy/per_example.py) against the norms of materialised
per-example gradients."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import minigrad as mg
import minigrad.functional as F
import minigrad.nn as nn
from minigrad import privacy
from minigrad.models import GPT
from minigrad.privacy.grad_sample import per_example_gradient
from minigrad.privacy.per_example import OuterProducts, RowSums


def one_at_a_time(model, inputs, targets, loss_fn):
    """{parameter name: (B, *shape)}: example b's gradient from a forward and backward of
    example b alone (the definition GradSampleModule must reproduce)."""
    grads = {name: [] for name, _ in model.named_parameters()}
    for b in range(len(inputs)):
        model.zero_grad()
        loss_fn(model(inputs[b:b + 1]), targets[b:b + 1]).backward()
        for name, param in model.named_parameters():
            grads[name].append(param.grad.numpy())
    return {name: np.stack(values) for name, values in grads.items()}


def batched(model, inputs, targets, loss_fn, mode, reduction):
    wrapped = privacy.GradSampleModule(model, loss_reduction=reduction, grad_sample_mode=mode)
    wrapped.zero_grad()
    loss_fn(wrapped(inputs), targets, reduction).backward()
    forms = {name: per_example_gradient(param) for name, param in model.named_parameters()}
    wrapped.remove_hooks()
    return forms


def squared_error(output, target, reduction="sum"):
    """Per example: the sum of squares over its outputs; over the batch: sum or mean."""
    per_example = ((output - target) ** 2).reshape(output.shape[0], -1).sum(axis=1)
    return per_example.mean() if reduction == "mean" else per_example.sum()


def token_cross_entropy(logits, target, reduction="sum"):
    """Per example: the mean over its tokens; over the batch: sum or mean (a mean over all
    tokens, as language models train, is this with reduction="mean")."""
    per_token = F.cross_entropy(logits, target, reduction="none")            # (B, T)
    per_example = per_token.mean(axis=1)
    return per_example.mean() if reduction == "mean" else per_example.sum()


def host(array):
    """A per-example array on the host, whatever device computed it."""
    return mg.Tensor(array).numpy()


def check_against_one_at_a_time(model, inputs, targets, loss_fn):
    expected = one_at_a_time(model, inputs, targets, lambda o, t: loss_fn(o, t, "sum"))
    for mode in ("hooks", "ghost"):
        for reduction in ("sum", "mean"):
            forms = batched(model, inputs, targets, loss_fn, mode, reduction)
            assert set(forms) == set(expected)
            for name, form in forms.items():
                np.testing.assert_allclose(host(form.materialise()), expected[name], rtol=1e-9, atol=1e-12,
                                           err_msg=f"{name} ({mode}, loss {reduction})")
                np.testing.assert_allclose(host(form.squared_norms()),
                                           (expected[name].reshape(len(inputs), -1) ** 2).sum(axis=1),
                                           rtol=1e-9, atol=1e-12, err_msg=f"{name} norms ({mode})")


def float64(module):
    return module.to(dtype="float64")


@settings(max_examples=8, deadline=None)
@given(B=st.integers(1, 4), T=st.sampled_from([None, 1, 3]), n_in=st.integers(1, 4), n_out=st.integers(1, 3),
       bias=st.booleans())
def test_dense_per_example_gradients_equal_one_example_at_a_time(B, T, n_in, n_out, bias):
    rng = np.random.default_rng(B * 100 + n_in)
    shape = (B, n_in) if T is None else (B, T, n_in)
    x = mg.tensor(rng.standard_normal(shape))
    target = mg.tensor(rng.standard_normal(shape[:-1] + (n_out,)))
    check_against_one_at_a_time(float64(nn.Dense(n_in, n_out, bias=bias)), x, target, squared_error)


def test_every_supported_layer_on_every_device(device):
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 5, (3, 4))
    ids[0, :2] = 2                                                      # a repeated id adds up
    cases = [
        (nn.Embedding(5, 3), mg.tensor(ids), rng.standard_normal((3, 4, 3))),
        (nn.LayerNorm(4), mg.tensor(rng.standard_normal((3, 2, 4))), rng.standard_normal((3, 2, 4))),
        (nn.Conv2d(2, 3, 3, stride=2, padding=1), mg.tensor(rng.standard_normal((3, 2, 5, 4))),
         rng.standard_normal((3, 3, 3, 2))),
        (nn.Sequential(nn.Dense(4, 5), nn.Tanh(), nn.Dense(5, 2)), mg.tensor(rng.standard_normal((3, 4))),
         rng.standard_normal((3, 2))),
    ]
    for layer, x, target in cases:
        check_against_one_at_a_time(float64(layer), x, mg.tensor(target), squared_error)


def test_layer_norm_per_example_gradients_in_float16_are_as_precise_as_its_batch_gradient():
    """The forward normalises float16 inputs in float32; so must the per-example rule.
    Inputs far from zero (mean 20, spread 0.05) lose most of their digits when x - mean
    is formed in float16."""
    rng = np.random.default_rng(3)
    x = (20.0 + 0.05 * rng.standard_normal((4, 8, 64))).astype(np.float16)
    g = rng.standard_normal((4, 8, 64)).astype(np.float16)
    x64 = x.astype(np.float64)
    xhat = (x64 - x64.mean(-1, keepdims=True)) / np.sqrt(x64.var(-1, keepdims=True) + 1e-5)
    expected = (g * xhat).sum(axis=1)                                       # (B, d), float64
    layer = nn.LayerNorm(64).to(dtype="float16")
    wrapped = privacy.GradSampleModule(layer, loss_reduction="sum")
    (wrapped(mg.tensor(x)) * mg.tensor(g)).sum().backward()
    assert layer.weight.grad_sample.dtype == "float16"
    per_example = layer.weight.grad_sample.numpy().astype(np.float64)
    np.testing.assert_allclose(per_example, expected, atol=2e-3 * np.abs(expected).max())
    np.testing.assert_allclose(layer.weight.grad.numpy(), expected.sum(axis=0),
                               atol=2e-3 * np.abs(expected.sum(axis=0)).max())


def test_embedding_read_backwards_as_an_output_layer():
    class TiedLanguageModel(nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = nn.Embedding(6, 3)

        def forward(self, ids):
            return self.embedding(self.embedding(ids).tanh(), reverse=True)    # (B, T, 6)
    ids = np.random.default_rng(1).integers(0, 6, (3, 4))
    check_against_one_at_a_time(float64(TiedLanguageModel()), mg.tensor(ids), mg.tensor((ids + 1) % 6),
                                token_cross_entropy)


def test_transformer_block_and_gpt_equal_one_example_at_a_time():
    """Attention mixes positions (not examples): each example's gradient is its own."""
    rng = np.random.default_rng(2)
    block = float64(nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, norm_first=True))
    x = mg.tensor(rng.standard_normal((3, 5, 8)))
    check_against_one_at_a_time(block, x, mg.tensor(rng.standard_normal((3, 5, 8))), squared_error)
    gpt = float64(GPT(vocab_size=7, block_size=6, n_layer=1, n_head=2, d_model=8))
    ids = rng.integers(0, 7, (3, 6))
    check_against_one_at_a_time(gpt, mg.tensor(ids), mg.tensor(rng.integers(0, 7, (3, 6))), token_cross_entropy)


# ---------------------------------------------------------------- ghost norms
@settings(max_examples=15, deadline=None)
@given(B=st.integers(1, 3), T=st.integers(1, 6), m=st.integers(1, 6), n=st.integers(1, 6),
       force=st.sampled_from([None, "gram", "materialise"]))
def test_ghost_norms_of_outer_products_equal_materialised_norms(B, T, m, n, force):
    rng = np.random.default_rng(B + 10 * T + 100 * m + 1000 * n)
    form = OuterProducts(rng.standard_normal((B, T, m)), rng.standard_normal((B, T, n)), (m, n))
    grads = np.einsum("btm,btn->bmn", form.a, form.g)
    np.testing.assert_allclose(form.squared_norms(force=force), (grads ** 2).sum(axis=(1, 2)), rtol=1e-10)
    factors = rng.random(B)
    np.testing.assert_allclose(form.weighted_sum(factors), np.einsum("b,bmn->mn", factors, grads),
                               rtol=1e-10, atol=1e-12)


@settings(max_examples=15, deadline=None)
@given(B=st.integers(1, 3), T=st.integers(1, 6), rows=st.integers(1, 4), n=st.integers(1, 3))
def test_ghost_norms_of_embedding_rows_equal_materialised_norms(B, T, rows, n):
    rng = np.random.default_rng(B + 10 * T + 100 * rows + 1000 * n)
    form = RowSums(rng.integers(0, rows, (B, T)), rng.standard_normal((B, T, n)), rows)
    grads = np.zeros((B, rows, n))
    for b in range(B):
        for t in range(T):
            grads[b, form.ids[b, t]] += form.g[b, t]
    np.testing.assert_allclose(form.materialise(), grads, rtol=1e-12)
    np.testing.assert_allclose(form.squared_norms(), (grads ** 2).sum(axis=(1, 2)), rtol=1e-10)
    factors = rng.random(B)
    np.testing.assert_allclose(form.weighted_sum(factors), np.einsum("b,brn->rn", factors, grads),
                               rtol=1e-10, atol=1e-12)


def test_ghost_mode_never_materialises_a_dense_weight():
    layer = nn.Dense(6, 4)
    wrapped = privacy.GradSampleModule(layer, grad_sample_mode="ghost")
    wrapped(mg.randn(5, 3, 6)).sum().backward()
    assert layer.weight.grad_sample is None
    assert [type(part) for part in layer.weight.grad_sample_parts] == [OuterProducts]


# ---------------------------------------------------------------- what it refuses
def test_a_layer_without_a_rule_is_an_error_naming_it():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2))
    with pytest.raises(ValueError, match=r"1 \(BatchNorm2d\).*mixes the examples"):
        privacy.GradSampleModule(model)
    frozen = nn.Sequential(nn.Dense(2, 2), nn.BatchNorm2d(2))
    frozen[1].requires_grad_(False)                       # nothing to train there: accepted
    privacy.GradSampleModule(frozen)


def test_a_parameter_used_outside_its_layer_is_an_error_naming_it():
    class ReadsAWeightDirectly(nn.Module):
        def __init__(self):
            super().__init__()
            self.layer = nn.Dense(3, 3)

        def forward(self, x):
            return self.layer(x) @ self.layer.weight           # a second use, outside the layer
    wrapped = privacy.GradSampleModule(ReadsAWeightDirectly())
    with pytest.raises(RuntimeError, match=r"'layer.weight' is used 2 time\(s\).*only 1"):
        wrapped(mg.randn(2, 3))
    with mg.no_grad():
        wrapped(mg.randn(2, 3))                            # no graph, nothing to check


@pytest.mark.parametrize("pack", [lambda y: (y,), lambda y: {"y": y}, lambda y: {"outputs": [{"y": y}]}],
                         ids=["tuple", "dict", "nested"])
def test_a_parameter_used_outside_its_layer_is_found_in_any_output_container(pack):
    """Models return dicts (Hugging Face style) and nested containers too: the check
    must look inside them, or a tied use is missed and the per-example gradients are
    silently wrong."""
    class ReturnsContainer(nn.Module):
        def __init__(self):
            super().__init__()
            self.layer = nn.Dense(3, 3)

        def forward(self, x):
            return pack(self.layer(x) @ self.layer.weight)
    wrapped = privacy.GradSampleModule(ReturnsContainer())
    with pytest.raises(RuntimeError, match=r"'layer.weight' is used 2 time\(s\).*only 1"):
        wrapped(mg.randn(2, 3))


def test_loss_reduction_and_mode_are_checked():
    with pytest.raises(ValueError, match="loss_reduction"):
        privacy.GradSampleModule(nn.Dense(2, 2), loss_reduction="avg")
    with pytest.raises(ValueError, match="grad_sample_mode"):
        privacy.GradSampleModule(nn.Dense(2, 2), grad_sample_mode="ew")


def test_a_second_batch_of_another_size_needs_zero_grad():
    wrapped = privacy.GradSampleModule(nn.Dense(2, 1))
    wrapped(mg.randn(3, 2)).sum().backward()
    wrapped(mg.randn(3, 2)).sum().backward()               # same size: adds up, as .grad does
    with pytest.raises(RuntimeError, match="3 examples.*now gets 4.*zero_grad"):
        wrapped(mg.randn(4, 2)).sum().backward()
    wrapped.zero_grad()
    wrapped(mg.randn(4, 2)).sum().backward()
    assert wrapped.module.weight.grad_sample.shape == (4, 2, 1)


def test_the_wrapper_passes_the_model_through():
    model = GPT(vocab_size=5, block_size=4, n_layer=1, n_head=1, d_model=4)
    wrapped = privacy.GradSampleModule(model)
    assert list(wrapped.state_dict()) == list(model.state_dict())
    assert [name for name, _ in wrapped.named_parameters()] == [name for name, _ in model.named_parameters()]
    assert wrapped.block_size == 4
    tokens = wrapped.generate(mg.tensor([[1, 2]]), max_new_tokens=3, temperature=0)   # no graph: no hooks fire
    assert tokens.shape == (1, 5) and model.tok_emb.weight.grad_sample is None
    wrapped.eval()
    assert not model.training
