"""Scaled dot-product attention and multi-head attention against their formulas,
computed here with numpy alone from the modules' own weights, and their gradients
against central differences (float64)."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import minigrad as mg
import minigrad.functional as F
import minigrad.nn as nn


# --------------------------------------------------------------------------- numpy references
def np_softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def np_attention(q, k, v, mask=None):
    """softmax(q k^T / sqrt(d_k)) v with masked keys excluded; a row with no allowed key -> 0."""
    scores = q @ np.swapaxes(k, -1, -2) / np.sqrt(q.shape[-1])
    if mask is None:
        weights = np_softmax(scores)
    else:
        allowed = np.broadcast_to(np.asarray(mask).astype(bool), scores.shape)
        safe = np.where(allowed, scores, -1e300)
        weights = np.where(allowed, np_softmax(safe), 0.0)
        weights = np.where(allowed.any(axis=-1, keepdims=True), weights, 0.0)
    return weights @ v, weights


def dense_np(layer):
    """(weight, bias) of an nn.Dense as float64 arrays."""
    bias = layer.bias.numpy().astype(np.float64) if layer.bias is not None else 0.0
    return layer.weight.numpy().astype(np.float64), bias


def np_mha(module, xq, xk, xv, mask=None):
    """Concat(head_1..head_h) W^O + b^O, head_i = attention on the i-th d_head columns."""
    (wq, bq), (wk, bk), (wv, bv), (wo, bo) = (dense_np(module.q_proj), dense_np(module.k_proj),
                                              dense_np(module.v_proj), dense_np(module.out_proj))
    Q, K, V = xq @ wq + bq, xk @ wk + bk, xv @ wv + bv
    h, d_head = module.n_heads, module.d_model // module.n_heads
    B, Tq, Tk = xq.shape[0], xq.shape[1], xk.shape[1]
    full_mask = None if mask is None else np.broadcast_to(np.asarray(mask).astype(bool), (B, h, Tq, Tk))
    heads, weights = [], []
    for i in range(h):
        columns = slice(i * d_head, (i + 1) * d_head)
        out, w = np_attention(Q[..., columns], K[..., columns], V[..., columns],
                              None if full_mask is None else full_mask[:, i])
        heads.append(out)
        weights.append(w)
    return np.concatenate(heads, axis=-1) @ wo + bo, np.stack(weights, axis=1)


# --------------------------------------------------------------------------- gradcheck of modules
def module_gradcheck(module, call, inputs, atol=1e-5, rtol=1e-4):
    """gradcheck `call(*inputs)` with respect to the float inputs that require grad and
    every parameter of `module`, in float64. The parameters are swapped for gradcheck's
    float64 copies while `call` runs (a functional call of the module)."""
    module.to(dtype="float64")
    module.eval()
    named = list(module.named_parameters())
    owners = []
    for name, _ in named:
        *path, attr = name.split(".")
        owner = module
        for part in path:
            owner = getattr(owner, part)
        owners.append((owner, attr))
    params = [mg.Tensor(p.data, requires_grad=True) for _, p in named]
    n_inputs = len(inputs)

    def fn(*tensors):
        originals = [owner.__dict__[attr] for owner, attr in owners]
        for (owner, attr), tensor in zip(owners, tensors[n_inputs:]):
            object.__setattr__(owner, attr, tensor)
        try:
            return call(*tensors[:n_inputs])
        finally:
            for (owner, attr), original in zip(owners, originals):
                object.__setattr__(owner, attr, original)

    return mg.gradcheck(fn, list(inputs) + params, atol=atol, rtol=rtol)


# --------------------------------------------------------------------------- strategies
@st.composite
def attention_case(draw, with_mask=True):
    batch = tuple(draw(st.lists(st.integers(1, 3), max_size=2)))
    Tq, Tk, d_k, d_v = (draw(st.integers(1, 4)) for _ in range(4))
    seed = draw(st.integers(0, 2 ** 31 - 1))
    rng = np.random.default_rng(seed)
    q = rng.standard_normal(batch + (Tq, d_k))
    k = rng.standard_normal(batch + (Tk, d_k))
    v = rng.standard_normal(batch + (Tk, d_v))
    mask = None
    if with_mask and draw(st.booleans()):
        # each axis either full size or 1, so that the mask broadcasts to the scores
        full = batch + (Tq, Tk)
        shape = tuple(s if draw(st.booleans()) else 1 for s in full)
        shape = shape[draw(st.integers(0, len(batch))):]          # maybe fewer leading axes
        mask = rng.random(shape) < 0.6
    return q, k, v, mask


# --------------------------------------------------------------------------- scaled dot-product attention
@settings(max_examples=40, deadline=None)
@given(attention_case())
def test_attention_matches_the_formula_with_any_broadcast_mask(case):
    q, k, v, mask = case
    out, weights = F.scaled_dot_product_attention(mg.tensor(q), mg.tensor(k), mg.tensor(v), mask=mask,
                                                  return_weights=True)
    expected, expected_weights = np_attention(q, k, v, mask)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(weights.numpy(), expected_weights, rtol=1e-10, atol=1e-12)


def test_attention_formula_on_each_device(device):
    rng = np.random.default_rng(1)
    q, k, v = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 5, 4)), rng.standard_normal((2, 5, 3))
    mask = rng.random((2, 3, 5)) < 0.5
    mask[0, 1] = False                                           # one query with nothing to see
    out = F.scaled_dot_product_attention(mg.tensor(q), mg.tensor(k), mg.tensor(v), mask=mg.tensor(mask))
    assert out.device == device
    np.testing.assert_allclose(out.numpy(), np_attention(q, k, v, mask)[0], atol=1e-12)


@settings(max_examples=30, deadline=None)
@given(attention_case())
def test_attention_gradients_match_central_differences(case):
    q, k, v, mask = case
    tensors = [mg.tensor(a, requires_grad=True) for a in (q, k, v)]
    assert mg.gradcheck(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, mask=mask), tensors)


def test_scores_are_divided_by_sqrt_dk():
    # one query and two keys: the weight on the first key is sigmoid((s1 - s2) / sqrt(d_k))
    d_k = 16
    q = np.ones((1, d_k))
    k = np.stack([np.full(d_k, 0.5), np.zeros(d_k)])
    v = np.array([[1.0], [0.0]])
    out = F.scaled_dot_product_attention(mg.tensor(q), mg.tensor(k), mg.tensor(v))
    assert out.item() == pytest.approx(1 / (1 + np.exp(-0.5 * d_k / np.sqrt(d_k))), rel=1e-12)


def test_a_query_that_may_attend_to_nothing_gives_zeros_and_finite_gradients():
    rng = np.random.default_rng(0)
    q, k, v = (mg.tensor(rng.standard_normal(s), requires_grad=True) for s in ((3, 4), (5, 4), (5, 2)))
    mask = np.ones((3, 5), dtype=bool)
    mask[1] = False
    out, weights = F.scaled_dot_product_attention(q, k, v, mask=mask, return_weights=True)
    assert np.all(out.numpy()[1] == 0) and np.all(weights.numpy()[1] == 0)
    np.testing.assert_allclose(weights.numpy()[[0, 2]].sum(axis=-1), 1.0, rtol=1e-12)
    (out * out).sum().backward()
    for t in (q, k, v):
        assert np.isfinite(t.grad.numpy()).all()
    assert np.all(q.grad.numpy()[1] == 0)
    # and a float32 model with an all-False mask still produces no NaN
    out32 = F.scaled_dot_product_attention(mg.randn(2, 3), mg.randn(4, 3), mg.randn(4, 3),
                                           mask=np.zeros((2, 4), dtype=bool))
    assert np.all(out32.numpy() == 0)


def test_mask_may_be_bool_or_01_as_array_list_or_tensor():
    rng = np.random.default_rng(2)
    q, k, v = (mg.tensor(rng.standard_normal(s)) for s in ((2, 3), (4, 3), (4, 2)))
    mask = np.array([[1, 0, 1, 1], [0, 0, 1, 0]])
    reference = F.scaled_dot_product_attention(q, k, v, mask=mask.astype(bool)).numpy()
    for variant in (mask, mask.tolist(), mg.tensor(mask), mg.tensor(mask.astype(bool)), mask.astype(np.float32)):
        np.testing.assert_array_equal(F.scaled_dot_product_attention(q, k, v, mask=variant).numpy(), reference)
    masked_key_changed = v.numpy().copy()
    masked_key_changed[1] += 100.0                               # key 1 is hidden from both queries
    np.testing.assert_allclose(F.scaled_dot_product_attention(q, k, mg.tensor(masked_key_changed),
                                                              mask=mask).numpy(), reference)


def test_dropout_on_weights_keeps_or_scales_each_weight():
    mg.manual_seed(0)
    rng = np.random.default_rng(3)
    q, k, v = (mg.tensor(rng.standard_normal(s)) for s in ((8, 16, 4), (8, 16, 4), (8, 16, 3)))
    p = 0.25
    plain = F.scaled_dot_product_attention(q, k, v, return_weights=True)[1].numpy()
    out, dropped = F.scaled_dot_product_attention(q, k, v, dropout_p=p, return_weights=True)
    dropped = dropped.numpy()
    kept = dropped != 0
    np.testing.assert_allclose(dropped[kept], plain[kept] / (1 - p), rtol=1e-6)
    assert abs((~kept).mean() - p) < 0.03
    np.testing.assert_allclose(out.numpy(), dropped @ v.numpy(), rtol=1e-5, atol=1e-6)
    off = F.scaled_dot_product_attention(q, k, v, dropout_p=p, training=False, return_weights=True)[1]
    np.testing.assert_array_equal(off.numpy(), plain)


def test_attention_rejects_mismatched_shapes_and_masks():
    q, k, v = mg.randn(2, 3, 4), mg.randn(2, 5, 4), mg.randn(2, 5, 6)
    with pytest.raises(ValueError, match="d_k"):
        F.scaled_dot_product_attention(q, mg.randn(2, 5, 3), v)
    with pytest.raises(ValueError, match="Tk"):
        F.scaled_dot_product_attention(q, k, mg.randn(2, 4, 6))
    with pytest.raises(ValueError, match=r"mask of shape \(3, 3\)"):
        F.scaled_dot_product_attention(q, k, v, mask=np.ones((3, 3), dtype=bool))


# --------------------------------------------------------------------------- masks
def test_causal_mask_is_lower_triangular_and_shifts_for_cached_keys():
    np.testing.assert_array_equal(nn.causal_mask(4).numpy(), np.tril(np.ones((4, 4), dtype=bool)))
    assert nn.causal_mask(4).dtype == np.bool_
    # 2 new queries after 3 cached positions: query 0 is position 3, query 1 is position 4
    np.testing.assert_array_equal(nn.causal_mask(2, 5).numpy(),
                                  [[1, 1, 1, 1, 0], [1, 1, 1, 1, 1]])
    with pytest.raises(ValueError):
        nn.causal_mask(3, 2)


def test_padding_mask_hides_pad_keys_for_every_head_and_query():
    ids = np.array([[5, 6, 0, 0], [7, 0, 8, 9]])
    mask = nn.padding_mask(ids, pad_id=0).numpy()
    assert mask.shape == (2, 1, 1, 4)
    np.testing.assert_array_equal(mask[:, 0, 0], ids != 0)


# --------------------------------------------------------------------------- multi-head attention
@pytest.mark.parametrize("n_heads", [1, 2, 4])
def test_self_attention_matches_per_head_formula_and_concatenation(device, n_heads):
    mg.manual_seed(n_heads)
    module = nn.MultiHeadAttention(8, n_heads)
    x = np.random.default_rng(0).standard_normal((2, 5, 8)).astype(np.float32)
    out, weights = module(mg.tensor(x), return_weights=True)
    expected, expected_weights = np_mha(module, x.astype(np.float64), x, x)
    assert out.shape == (2, 5, 8) and weights.shape == (2, n_heads, 5, 5)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(weights.numpy(), expected_weights, rtol=1e-5, atol=1e-6)


def test_cross_attention_with_padding_and_causal_masks_matches_formula():
    mg.manual_seed(1)
    module = nn.MultiHeadAttention(6, 3)
    rng = np.random.default_rng(1)
    xq = rng.standard_normal((2, 4, 6)).astype(np.float32)
    memory = rng.standard_normal((2, 5, 6)).astype(np.float32)
    ids = np.array([[1, 2, 3, 0, 0], [1, 2, 3, 4, 5]])
    pad = nn.padding_mask(ids, 0)
    out = module(mg.tensor(xq), mg.tensor(memory), mask=pad)
    expected, _ = np_mha(module, xq.astype(np.float64), memory, memory, pad.numpy())
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-5, atol=1e-5)
    # self-attention with padding AND causal: (B, 1, T, T)
    ids_t = np.array([[4, 5, 6, 0], [4, 5, 0, 0]])
    combined = nn.padding_mask(ids_t, 0).numpy() & nn.causal_mask(4).numpy()
    assert combined.shape == (2, 1, 4, 4)
    out, weights = module(mg.tensor(xq), mask=combined, return_weights=True)
    expected, expected_weights = np_mha(module, xq.astype(np.float64), xq, xq, combined)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-5, atol=1e-5)
    assert np.all(weights.numpy()[~np.broadcast_to(combined, weights.shape)] == 0)


def test_value_defaults_to_key_and_key_to_query():
    mg.manual_seed(2)
    module = nn.MultiHeadAttention(4, 2)
    x, m = mg.randn(1, 3, 4), mg.randn(1, 2, 4)
    np.testing.assert_array_equal(module(x).numpy(), module(x, x, x).numpy())
    np.testing.assert_array_equal(module(x, m).numpy(), module(x, m, m).numpy())


def test_split_and_merge_heads_are_inverse_reshape_transpose():
    module = nn.MultiHeadAttention(6, 3)
    x = np.arange(2 * 4 * 6, dtype=np.float64).reshape(2, 4, 6)
    split = module.split_heads(mg.tensor(x)).numpy()
    assert split.shape == (2, 3, 4, 2)
    np.testing.assert_array_equal(split[:, 1], x[..., 2:4])             # head 1 = columns 2..3
    np.testing.assert_array_equal(module.merge_heads(mg.tensor(split)).numpy(), x)


def test_mha_submodules_and_errors():
    module = nn.MultiHeadAttention(8, 2, bias=False)
    assert [n for n, _ in module.named_children()] == ["q_proj", "k_proj", "v_proj", "out_proj"]
    assert all(p.shape == (8, 8) for p in module.parameters())
    with pytest.raises(ValueError, match="divisible"):
        nn.MultiHeadAttention(6, 4)
    with pytest.raises(ValueError, match="d_model = 8"):
        module(mg.randn(1, 3, 5))


@pytest.mark.parametrize("masked", [False, True])
def test_mha_gradients_of_inputs_and_every_weight(masked):
    mg.manual_seed(3)
    module = nn.MultiHeadAttention(4, 2)
    rng = np.random.default_rng(4)
    xq = mg.tensor(rng.standard_normal((2, 3, 4)), requires_grad=True)
    xk = mg.tensor(rng.standard_normal((2, 2, 4)), requires_grad=True)
    mask = np.array([[[[True, False]]], [[[False, False]]]]) if masked else None   # batch 1 sees nothing
    assert module_gradcheck(module, lambda q, k: module(q, k, mask=mask), [xq, xk])


def test_kv_cache_gives_the_same_output_one_position_at_a_time():
    mg.manual_seed(4)
    module = nn.MultiHeadAttention(8, 2)
    x = mg.randn(2, 5, 8)
    full = module(x, mask=nn.causal_mask(5)).numpy()
    cache = nn.KVCache()
    steps = [module(x[:, t:t + 1], cache=cache).numpy() for t in range(5)]
    assert len(cache) == 5
    np.testing.assert_allclose(np.concatenate(steps, axis=1), full, rtol=1e-5, atol=1e-6)
