"""mg.viz.attention_weights / save_attention_heatmap / save_heatmap.

The weights are checked against softmax(Q K^T / sqrt(d_head)) computed here in numpy
from the layer's own projection weights applied to the inputs that a forward hook of
the test's own saw.
"""
import sys

import numpy as np
import pytest

import minigrad as mg
from minigrad import nn
from minigrad.models import BERT, GPT, BertConfig

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def numpy_attention_weights(module, query, key, mask=None):
    """softmax((query W_q + b_q)_h (key W_k + b_k)_h^T / sqrt(d_head)) per head h, masked
    keys (False) at weight 0: (B, h, Tq, Tk), from the module's weights in float64."""
    def project(x, dense):
        y = x.numpy().astype(np.float64) @ dense.weight.numpy().astype(np.float64)
        y = y + dense.bias.numpy()
        B, T, _ = y.shape
        return y.reshape(B, T, module.n_heads, module.d_head).transpose(0, 2, 1, 3)
    q, k = project(query, module.q_proj), project(key, module.k_proj)
    scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(module.d_head)
    if mask is not None:
        allowed = np.broadcast_to(mask.numpy() if isinstance(mask, mg.Tensor) else np.asarray(mask),
                                  scores.shape)
        scores = np.where(allowed, scores, -np.inf)
    scores = scores - scores.max(axis=-1, keepdims=True)
    weights = np.exp(scores)
    return weights / weights.sum(axis=-1, keepdims=True)


def recorded_by_hand(model, module, *inputs, **kwargs):
    """The query, key and mask `module` is called with in one eval-mode forward, and
    the weights it returns itself when asked, seen by a forward hook (the way a user could)."""
    recorded = {}

    def hook(module, args, kwargs, output):
        call = {**dict(zip(("query", "key", "value", "mask"), args)), **kwargs}
        key = call["query"] if call.get("key") is None else call["key"]
        recorded.update(query=call["query"], key=key, mask=call.get("mask"))
        # forward, not module(...): calling the module would run this hook again
        recorded["weights"] = module.forward(call["query"], key, mask=call.get("mask"), return_weights=True)[1]

    handle = module.register_forward_hook(hook, with_kwargs=True)
    model.eval()
    with mg.no_grad():
        model(*inputs, **kwargs)
    handle.remove()
    return recorded


def small_gpt():
    return GPT(vocab_size=13, block_size=12, n_layer=3, n_head=2, d_model=8)


def test_no_hook_is_left_behind():
    model = small_gpt()
    mg.viz.attention_weights(model, np.zeros((1, 4), dtype=np.int64), layer=1)
    for _, module in model.named_modules():
        assert not module._forward_hooks and not module._forward_pre_hooks


@pytest.mark.parametrize("build", ["gpt", "transformer"])
def test_rows_sum_to_one_even_when_the_model_trains_with_dropout(build):
    """The weights are eval-mode ones (no dropout), whatever mode the model is in."""
    mg.manual_seed(5)
    if build == "gpt":
        model = GPT(vocab_size=13, block_size=12, n_layer=2, n_head=2, d_model=8, dropout=0.5)
        inputs = (np.random.default_rng(4).integers(0, 13, size=(3, 9)),)
    else:
        model = nn.Transformer(9, 10, d_model=8, n_heads=2, n_layers=2, d_ff=16, dropout=0.5)
        rng = np.random.default_rng(4)
        inputs = (rng.integers(1, 9, size=(3, 6)), rng.integers(1, 10, size=(3, 4)))
    model.train()
    for layer in range(len(mg.viz.attention_modules(model))):
        weights = mg.viz.attention_weights(model, *inputs, layer=layer).numpy()
        np.testing.assert_allclose(weights.sum(axis=-1), 1.0, rtol=1e-5)
        np.testing.assert_array_equal(weights, mg.viz.attention_weights(model, *inputs, layer=layer).numpy())
    assert model.training


@pytest.mark.parametrize("layer", [0, 2, -1])
def test_gpt_weights_match_numpy_formula_and_are_causal(layer):
    model = small_gpt()
    ids = np.random.default_rng(1).integers(0, 13, size=(2, 7))
    module = mg.viz.attention_modules(model)[layer][1]
    recorded = recorded_by_hand(model, module, ids)
    assert recorded["query"] is recorded["key"] or np.array_equal(recorded["query"].numpy(),
                                                                  recorded["key"].numpy())
    weights = mg.viz.attention_weights(model, ids, layer=layer)
    assert weights.shape == (2, 2, 7, 7)
    np.testing.assert_allclose(weights.numpy(), recorded["weights"].numpy())
    expected = numpy_attention_weights(module, recorded["query"], recorded["key"], recorded["mask"])
    np.testing.assert_allclose(weights.numpy(), expected, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(weights.numpy().sum(axis=-1), 1.0, rtol=1e-5)
    above_diagonal = np.triu(np.ones((7, 7), dtype=bool), k=1)
    assert np.all(weights.numpy()[..., above_diagonal] == 0)
    assert np.all(weights.numpy()[..., ~above_diagonal] > 0)


def test_bert_padding_keys_get_zero_weight():
    config = BertConfig(vocab_size=23, hidden_size=8, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=12, max_position_embeddings=10, hidden_dropout_prob=0.0,
                        attention_probs_dropout_prob=0.0)
    model = BERT(config)
    ids = np.array([[2, 5, 7, 9, 3], [2, 6, 3, 0, 0]])
    attention_mask = (ids != 0).astype(np.int64)
    module = mg.viz.attention_modules(model)[1][1]
    weights = mg.viz.attention_weights(model, ids, attention_mask, layer=1)
    recorded = recorded_by_hand(model, module, ids, attention_mask)
    expected = numpy_attention_weights(module, recorded["query"], recorded["key"],
                                       attention_mask[:, None, None, :].astype(bool))
    np.testing.assert_allclose(weights.numpy(), expected, rtol=1e-4, atol=1e-6)
    assert np.all(weights.numpy()[1, :, :, 3:] == 0)


def test_transformer_layers_are_encoder_then_decoder_self_and_cross():
    model = nn.Transformer(9, 10, d_model=8, n_heads=2, n_layers=2, d_ff=16, dropout=0.0)
    names = [name for name, _ in mg.viz.attention_modules(model)]
    assert len(names) == 6 and sum("cross_attn" in name for name in names) == 2
    src = np.random.default_rng(2).integers(0, 9, size=(2, 5))
    tgt = np.random.default_rng(3).integers(0, 10, size=(2, 4))
    cross = names.index(next(name for name in names if "cross_attn" in name))
    module = mg.viz.attention_modules(model)[cross][1]
    weights = mg.viz.attention_weights(model, src, tgt, layer=cross)
    assert weights.shape == (2, 2, 4, 5)                           # queries: target, keys: source
    recorded = recorded_by_hand(model, module, src, tgt)
    expected = numpy_attention_weights(module, recorded["query"], recorded["key"], recorded["mask"])
    np.testing.assert_allclose(weights.numpy(), expected, rtol=1e-4, atol=1e-6)
    by_name = mg.viz.attention_weights(model, src, tgt, layer=names[cross])
    np.testing.assert_allclose(by_name.numpy(), weights.numpy())


def test_mode_restored_and_hook_removed_even_on_error():
    model = small_gpt()
    model.train()
    mg.viz.attention_weights(model, np.zeros((1, 3), dtype=np.int64), layer=1)
    assert model.training
    with pytest.raises(ValueError, match="block_size"):
        mg.viz.attention_weights(model, np.zeros((1, 20), dtype=np.int64), layer=1)   # too long
    assert model.training
    for _, module in mg.viz.attention_modules(model):
        assert not module._forward_hooks


def test_with_a_kv_cache_the_new_query_reads_every_cached_key():
    """One new token after a cached prefix: its row of weights is the last row of the
    weights over the whole sequence (the keys come from the cache)."""
    model = small_gpt()
    ids = np.random.default_rng(6).integers(0, 13, size=(2, 6))
    full = mg.viz.attention_weights(model, ids, layer=1).numpy()              # (2, 2, 6, 6)
    cache = model.new_cache()
    with mg.no_grad():
        model.eval()(ids[:, :5], cache=cache)
    step = mg.viz.attention_weights(model, ids[:, 5:], cache=cache, layer=1).numpy()
    assert step.shape == (2, 2, 1, 6)
    np.testing.assert_allclose(step[:, :, 0], full[:, :, 5], rtol=1e-5, atol=1e-7)


def test_wrong_layer_or_head_is_a_clear_error(tmp_path):
    model = small_gpt()
    ids = np.zeros((1, 3), dtype=np.int64)
    with pytest.raises(IndexError, match=r"layer 3 is out of range: GPT has 3 attention modules"):
        mg.viz.attention_weights(model, ids, layer=3)
    with pytest.raises(ValueError, match="no attention module named 'nope'"):
        mg.viz.attention_weights(model, ids, layer="nope")
    with pytest.raises(ValueError, match="has no nn.MultiHeadAttention"):
        mg.viz.attention_weights(nn.Dense(2, 2), mg.zeros((1, 2)))
    pytest.importorskip("matplotlib")
    with pytest.raises(IndexError, match=r"head 2 is out of range: layer 0 has 2 heads"):
        mg.viz.save_attention_heatmap(model, ids, path=tmp_path / "x.png", head=2)
    with pytest.raises(ValueError, match="2 tokens for 3 query positions"):
        mg.viz.save_attention_heatmap(model, ids, path=tmp_path / "x.png", tokens=["a", "b"])
    assert not (tmp_path / "x.png").exists()


def test_heatmap_png_is_written(tmp_path):
    pytest.importorskip("matplotlib")
    model = small_gpt()
    ids = np.array([[1, 2, 3, 4], [4, 3, 2, 1]])
    path = tmp_path / "attention.png"
    drawn = mg.viz.save_attention_heatmap(model, ids, path=path, layer=2, head=1, tokens=list("abcd"),
                                          batch_index=1)
    assert path.read_bytes()[:8] == PNG_MAGIC
    np.testing.assert_allclose(drawn, mg.viz.attention_weights(model, ids, layer=2).numpy()[1, 1])
    plain = tmp_path / "plain.png"
    mg.viz.save_heatmap(np.eye(3), plain, x_labels="xyz", y_labels="abc", title="eye")
    assert plain.read_bytes()[:8] == PNG_MAGIC
    with pytest.raises(ValueError, match="2 x_labels"):
        mg.viz.save_heatmap(np.eye(3), plain, x_labels="xy")
    with pytest.raises(ValueError, match="2-D"):
        mg.viz.save_heatmap(np.ones((2, 2, 2)), plain)


def test_missing_matplotlib_is_named(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)          # import matplotlib -> ImportError
    with pytest.raises(ImportError, match="pip install matplotlib"):
        mg.viz.save_heatmap(np.eye(2), tmp_path / "x.png")
