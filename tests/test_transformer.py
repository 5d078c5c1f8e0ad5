"""Transformer pieces against their equations, computed with numpy alone from the
modules' own weights: the positional table, the feed-forward, each layer's sublayer
equations in post-LN and pre-LN form, the pre-LN residual stream of a whole stack,
the full model; gradients by central differences; greedy decoding."""
import math

import numpy as np
import pytest

import minigrad as mg
import minigrad.nn as nn
from test_attention import dense_np, module_gradcheck, np_mha


# --------------------------------------------------------------------------- numpy references
def np_layer_norm(x, norm):
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + norm.eps) * norm.weight.numpy() + norm.bias.numpy()


def np_ffn(x, linear1, linear2, activation="relu", hidden=None):
    (w1, b1), (w2, b2) = dense_np(linear1), dense_np(linear2)
    h = x @ w1 + b1
    if hidden is not None:
        h = hidden(h)
    elif activation == "relu":
        h = np.maximum(h, 0)
    else:                                                   # GPT-2's tanh GELU
        h = 0.5 * h * (1 + np.tanh(np.sqrt(2 / np.pi) * (h + 0.044715 * h ** 3)))
    return h @ w2 + b2


def np_encoder_layer(layer, x, mask=None):
    """Returns the output and the sublayer contributions [attention, feed-forward]."""
    if layer.norm_first:
        a = np_mha(layer.self_attn, *(np_layer_norm(x, layer.norm1),) * 3, mask)[0]
        x = x + a
        f = np_ffn(np_layer_norm(x, layer.norm2), layer.linear1, layer.linear2)
        return x + f, [a, f]
    a = np_mha(layer.self_attn, x, x, x, mask)[0]
    x = np_layer_norm(x + a, layer.norm1)
    f = np_ffn(x, layer.linear1, layer.linear2)
    return np_layer_norm(x + f, layer.norm2), [a, f]


def np_decoder_layer(layer, x, memory, tgt_mask=None, memory_mask=None):
    if layer.norm_first:
        h = np_layer_norm(x, layer.norm1)
        s = np_mha(layer.self_attn, h, h, h, tgt_mask)[0]
        x = x + s
        c = np_mha(layer.cross_attn, np_layer_norm(x, layer.norm2), memory, memory, memory_mask)[0]
        x = x + c
        f = np_ffn(np_layer_norm(x, layer.norm3), layer.linear1, layer.linear2)
        return x + f, [s, c, f]
    s = np_mha(layer.self_attn, x, x, x, tgt_mask)[0]
    x = np_layer_norm(x + s, layer.norm1)
    c = np_mha(layer.cross_attn, x, memory, memory, memory_mask)[0]
    x = np_layer_norm(x + c, layer.norm2)
    f = np_ffn(x, layer.linear1, layer.linear2)
    return np_layer_norm(x + f, layer.norm3), [s, c, f]


def np_positional_table(max_len, d_model):
    table = np.zeros((max_len, d_model))
    for p in range(max_len):
        for j in range(d_model):
            angle = p / 10000 ** ((j - j % 2) / d_model)
            table[p, j] = math.sin(angle) if j % 2 == 0 else math.cos(angle)
    return table


def np_embed(model, embedding, ids, offset=0):
    e = embedding.weight.numpy().astype(np.float64)[ids] * math.sqrt(model.d_model)
    return e + np_positional_table(offset + ids.shape[1], model.d_model)[offset:]


def np_transformer(model, src, tgt, src_mask=None, tgt_mask=None):
    x = np_embed(model, model.src_embed, src)
    for layer in model.encoder_layers:
        x = np_encoder_layer(layer, x, src_mask)[0]
    memory = np_layer_norm(x, model.encoder_norm) if model.norm_first else x
    y = np_embed(model, model.tgt_embed, tgt)
    for layer in model.decoder_layers:
        y = np_decoder_layer(layer, y, memory, tgt_mask, src_mask)[0]
    if model.norm_first:
        y = np_layer_norm(y, model.decoder_norm)
    if model.tie_embeddings:
        return y @ model.tgt_embed.weight.numpy().T + model.out_bias.numpy()
    w, b = dense_np(model.out_proj)
    return y @ w + b


def record_outputs(modules):
    """Forward hooks that append each module's output, in call order, to the list
    returned (with the handles, to remove them)."""
    outputs = []
    handles = [module.register_forward_hook(lambda module, args, output: outputs.append(output))
               for module in modules]
    return outputs, handles


def contribution_modules(layer):
    """The modules whose outputs are a layer's sublayer contributions (dropout_i(...))."""
    return [module for name, module in layer.named_children() if name.startswith("dropout")]


def close(actual, expected, tol=2e-5):
    np.testing.assert_allclose(actual.numpy() if isinstance(actual, mg.Tensor) else actual, expected,
                               rtol=tol, atol=tol)


# --------------------------------------------------------------------------- positional encoding
@pytest.mark.parametrize("d_model", [6, 7])
def test_positional_table_is_sin_on_even_and_cos_on_odd_dims(d_model):
    module = nn.PositionalEncoding(d_model, max_len=50)
    assert module.pe.shape == (50, d_model)
    assert "pe" in module.state_dict() and not module.parameters()
    close(module.pe, np_positional_table(50, d_model), 1e-6)


def test_positional_encoding_adds_rows_from_the_offset():
    module = nn.PositionalEncoding(8, max_len=20)
    x = np.random.default_rng(0).standard_normal((2, 5, 8)).astype(np.float32)
    table = np_positional_table(20, 8)
    close(module(mg.tensor(x)), x + table[:5], 1e-6)
    close(module(mg.tensor(x), offset=3), x + table[3:8], 1e-6)
    with pytest.raises(ValueError, match="max_len"):
        module(mg.tensor(x), offset=16)
    assert mg.gradcheck(lambda x: module(x, offset=2), mg.tensor(x[:1, :3].astype(np.float64), requires_grad=True))


# --------------------------------------------------------------------------- feed-forward
def test_feed_forward_matches_formula_and_gradients():
    mg.manual_seed(0)
    module = nn.FeedForward(4, 8)
    x = np.random.default_rng(1).standard_normal((2, 3, 4))
    close(module(mg.tensor(x.astype(np.float32))), np_ffn(x, module.linear1, module.linear2))
    assert module_gradcheck(module, module, [mg.tensor(x, requires_grad=True)])


# --------------------------------------------------------------------------- layers, both LN placements
@pytest.mark.parametrize("norm_first", [False, True])
def test_encoder_layer_matches_its_sublayer_equations(device, norm_first):
    mg.manual_seed(1)
    layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, norm_first=norm_first)
    x = np.random.default_rng(2).standard_normal((2, 5, 8)).astype(np.float32)
    ids = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    mask = nn.padding_mask(ids, 0)
    residuals, _ = record_outputs(contribution_modules(layer))
    out = layer(mg.tensor(x), mask=mask)
    expected, contributions = np_encoder_layer(layer, x.astype(np.float64), mask.numpy())
    close(out, expected)
    assert len(residuals) == 2
    for got, want in zip(residuals, contributions):
        close(got, want)
    if norm_first:                                          # x_out = x + attention + feed-forward
        close(out, x + residuals[0].numpy() + residuals[1].numpy())


@pytest.mark.parametrize("norm_first", [False, True])
def test_decoder_layer_matches_its_sublayer_equations(norm_first):
    mg.manual_seed(2)
    layer = nn.TransformerDecoderLayer(8, 4, 16, dropout=0.0, norm_first=norm_first)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 4, 8)).astype(np.float32)
    memory = rng.standard_normal((2, 6, 8)).astype(np.float32)
    memory_mask = nn.padding_mask(np.array([[1, 1, 1, 1, 0, 0], [1] * 6]), 0)
    tgt_mask = nn.causal_mask(4)
    residuals, _ = record_outputs(contribution_modules(layer))
    out = layer(mg.tensor(x), mg.tensor(memory), tgt_mask=tgt_mask, memory_mask=memory_mask)
    expected, contributions = np_decoder_layer(layer, x.astype(np.float64), memory.astype(np.float64),
                                               tgt_mask.numpy(), memory_mask.numpy())
    close(out, expected)
    assert len(residuals) == 3
    for got, want in zip(residuals, contributions):
        close(got, want)
    if norm_first:
        close(out, x + sum(r.numpy() for r in residuals))
    assert [n for n, _ in layer.named_children()] == ["self_attn", "cross_attn", "feed_forward", "norm1",
                                                      "norm2", "norm3", "dropout1", "dropout2", "dropout3"]


@pytest.mark.parametrize("norm_first", [False, True])
def test_layer_gradients_of_input_memory_and_every_weight(norm_first):
    mg.manual_seed(3)
    rng = np.random.default_rng(4)
    x = mg.tensor(rng.standard_normal((2, 3, 4)), requires_grad=True)
    memory = mg.tensor(rng.standard_normal((2, 2, 4)), requires_grad=True)
    encoder = nn.TransformerEncoderLayer(4, 2, 6, dropout=0.0, norm_first=norm_first)
    mask = nn.padding_mask(np.array([[1, 1, 0], [1, 1, 1]]), 0)
    assert module_gradcheck(encoder, lambda x: encoder(x, mask=mask), [x])
    decoder = nn.TransformerDecoderLayer(4, 2, 6, dropout=0.0, norm_first=norm_first)
    assert module_gradcheck(decoder, lambda x, m: decoder(x, m, tgt_mask=nn.causal_mask(3)), [x, memory])


def test_dropout_is_active_in_training_and_off_in_eval():
    mg.manual_seed(4)
    layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.5)
    x = mg.randn(2, 4, 8)
    assert not np.allclose(layer(x).numpy(), layer(x).numpy())
    layer.eval()
    np.testing.assert_array_equal(layer(x).numpy(), layer(x).numpy())


# --------------------------------------------------------------------------- stacks and the model
def test_pre_ln_stack_output_is_layer_norm_of_the_sum_of_residual_contributions():
    """memory = LayerNorm(h_0 + h_1 + ... + h_n), h_0 the embedded input and h_i each
    sublayer's contribution, all recomputed here in numpy from the weights."""
    mg.manual_seed(5)
    model = nn.Transformer(11, 13, d_model=8, n_heads=2, n_layers=3, d_ff=16, dropout=0.0, norm_first=True)
    src = np.array([[3, 4, 5, 6, 0], [7, 8, 9, 0, 0]])
    mask = nn.padding_mask(src, 0)
    # h_0 is what the positional encoding returns; each h_i what a layer's dropout_i returns
    encoder_parts = [model.pos_encoding] + [m for layer in model.encoder_layers for m in contribution_modules(layer)]
    residuals, handles = record_outputs(encoder_parts)
    memory = model.encode(src, mask)
    for handle in handles:
        handle.remove()
    # numpy: walk the stack collecting contributions
    x = np_embed(model, model.src_embed, src)
    contributions = [x]
    for layer in model.encoder_layers:
        x, parts = np_encoder_layer(layer, x, mask.numpy())
        contributions += parts
    assert len(residuals) == len(contributions) == 1 + 2 * 3
    for got, want in zip(residuals, contributions):
        close(got, want)
    close(memory, np_layer_norm(sum(contributions), model.encoder_norm))
    # and the sum of what the hooks saw is the stream itself
    close(memory, np_layer_norm(sum(r.numpy().astype(np.float64) for r in residuals), model.encoder_norm))
    # the same for the decoder stack: 3 sublayers per layer
    tgt = np.array([[1, 5, 6], [1, 7, 2]])
    decoder_parts = [model.pos_encoding] + [m for layer in model.decoder_layers for m in contribution_modules(layer)]
    residuals, _ = record_outputs(decoder_parts)
    hidden = model.decode_hidden(tgt, memory, mask)
    y = np_embed(model, model.tgt_embed, tgt)
    parts_all = [y]
    for layer in model.decoder_layers:
        y, parts = np_decoder_layer(layer, y, memory.numpy().astype(np.float64),
                                    np.tril(np.ones((3, 3), bool)), mask.numpy())
        parts_all += parts
    assert len(residuals) == len(parts_all) == 1 + 3 * 3
    for got, want in zip(residuals, parts_all):
        close(got, want)
    close(hidden, np_layer_norm(sum(r.numpy().astype(np.float64) for r in residuals), model.decoder_norm))


@pytest.mark.parametrize("norm_first,tie", [(False, False), (True, True)])
def test_transformer_forward_matches_numpy(norm_first, tie):
    mg.manual_seed(6)
    model = nn.Transformer(9, 10, d_model=8, n_heads=2, n_layers=2, d_ff=16, dropout=0.0,
                           norm_first=norm_first, tie_embeddings=tie)
    src = np.array([[3, 4, 5, 0], [6, 7, 8, 2]])
    tgt = np.array([[1, 4, 5], [1, 6, 7]])
    mask = nn.padding_mask(src, 0)
    logits = model(src, tgt, src_mask=mask)
    assert logits.shape == (2, 3, 10)
    causal = np.tril(np.ones((3, 3), dtype=bool))
    close(logits, np_transformer(model, src, tgt, mask.numpy(), causal), 5e-5)
    # decode defaults to the causal mask; an all-True mask really changes the result
    np.testing.assert_array_equal(logits.numpy(), model(src, tgt, mask, tgt_mask=nn.causal_mask(3)).numpy())
    assert not np.allclose(logits.numpy(), model(src, tgt, mask, tgt_mask=np.ones((3, 3), bool)).numpy())
    assert (model.encoder_norm is not None) == norm_first
    assert (model.out_proj is None) == tie
    np.testing.assert_array_equal(model(src.tolist(), tgt.tolist(), mask).numpy(), logits.numpy())


def test_later_target_tokens_do_not_change_earlier_logits():
    mg.manual_seed(7)
    model = nn.Transformer(9, 10, d_model=8, n_heads=2, n_layers=2, d_ff=16)
    model.eval()
    src = np.array([[3, 4, 5]])
    a = model(src, np.array([[1, 4, 5, 6]])).numpy()
    b = model(src, np.array([[1, 4, 9, 2]])).numpy()
    np.testing.assert_allclose(a[:, :2], b[:, :2], rtol=1e-6)
    assert not np.allclose(a[:, 2:], b[:, 2:])


def test_transformer_gradients_of_every_weight():
    mg.manual_seed(8)
    model = nn.Transformer(5, 6, d_model=4, n_heads=2, n_layers=1, d_ff=6, dropout=0.0, norm_first=True,
                           tie_embeddings=True)
    src, tgt = np.array([[1, 2, 3]]), np.array([[1, 4]])
    assert module_gradcheck(model, lambda: model(src, tgt, nn.padding_mask(src, 0)), [])


def test_embeddings_are_scaled_by_sqrt_d_model_and_init_is_xavier():
    mg.manual_seed(9)
    model = nn.Transformer(50, 60, d_model=64, n_heads=4, n_layers=1, d_ff=128)
    # embeddings N(0, 1/d), so the scaled ones have unit variance like the positional table
    assert model.src_embed.weight.numpy().std() == pytest.approx(64 ** -0.5, rel=0.1)
    w = model.encoder_layers[0].linear1.weight.numpy()
    assert np.abs(w).max() <= math.sqrt(6 / (64 + 128)) and w.std() == pytest.approx(
        math.sqrt(6 / 192) / math.sqrt(3), rel=0.1)
    assert np.all(model.encoder_layers[0].self_attn.q_proj.bias.numpy() == 0)


def test_translate_greedy_with_and_without_cache_agree_and_stop_at_eos(device):
    mg.manual_seed(10)
    model = nn.Transformer(9, 10, d_model=16, n_heads=2, n_layers=2, d_ff=32, norm_first=False)
    src = mg.tensor(np.array([[3, 4, 5, 6], [7, 8, 0, 0], [5, 5, 5, 5]]))
    mask = nn.padding_mask(src, 0)
    cached = model.translate(src, 7, bos_id=1, eos_id=2, src_mask=mask)
    plain = model.translate(src, 7, bos_id=1, eos_id=2, src_mask=mask, use_cache=False)
    assert cached == plain and model.training
    # each step's token is the argmax of the logits for the prefix so far
    for row, tokens in enumerate(cached):
        prefix = [1]
        for token in tokens + ([2] if len(tokens) < 7 else []):
            logits = model.eval()(src.numpy()[row:row + 1], np.array([prefix]), mask.numpy()[row:row + 1])
            assert int(logits.numpy()[0, -1].argmax()) == token
            prefix.append(token)
        model.train()
        assert 2 not in tokens and len(tokens) <= 7


def test_transformer_names_its_parts():
    model = nn.Transformer(5, 6, d_model=8, n_heads=2, n_layers=2, d_ff=16)
    names = set(model.state_dict())
    for name in ("src_embed.weight", "tgt_embed.weight", "pos_encoding.pe", "out_proj.weight",
                 "encoder_layers.1.self_attn.q_proj.weight", "decoder_layers.0.cross_attn.out_proj.bias",
                 "decoder_layers.1.norm3.weight", "encoder_layers.0.feed_forward.linear2.bias"):
        assert name in names
    assert model.d_model == 8 and "pos_encoding.pe" not in dict(model.named_parameters())


# --------------------------------------------------------------------------- one layer family: its options
def test_linear1_and_linear2_are_the_feed_forwards_and_read_only():
    for layer in (nn.TransformerEncoderLayer(8, 2, 16), nn.TransformerDecoderLayer(8, 2, 16)):
        assert layer.linear1 is layer.feed_forward.linear1 and layer.linear2 is layer.feed_forward.linear2
        assert layer.linear1.weight.shape == (8, 16) and layer.linear2.weight.shape == (16, 8)
        names = [name for name, _ in layer.named_parameters()]
        assert "feed_forward.linear1.weight" in names and not any(n.startswith("linear") for n in names)
        with pytest.raises(AttributeError):
            layer.linear1 = nn.Dense(8, 16)


@pytest.mark.parametrize("make", [lambda: nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0),
                                  lambda: nn.TransformerDecoderLayer(8, 2, 16, dropout=0.0)])
def test_a_state_dict_with_pytorch_names_linear1_linear2_loads(make):
    mg.manual_seed(11)
    source, target = make(), make()
    saved = {name.replace("feed_forward.", ""): value.numpy() for name, value in source.state_dict().items()}
    assert "linear1.weight" in saved and "linear2.bias" in saved
    result = target.load_state_dict(saved)
    assert result.missing_keys == [] and result.unexpected_keys == []
    for name, value in source.state_dict().items():
        np.testing.assert_array_equal(target.state_dict()[name].numpy(), value.numpy())
    # inside a model too, and a key that fits nowhere is still an error
    model = nn.Transformer(5, 6, d_model=8, n_heads=2, n_layers=1, d_ff=16)
    state = {name.replace("feed_forward.", ""): value for name, value in model.state_dict().items()}
    state["encoder_layers.0.linear1.weight"] = mg.zeros(8, 16)
    model.load_state_dict(state)
    assert np.all(model.encoder_layers[0].feed_forward.linear1.weight.numpy() == 0)
    state["encoder_layers.0.linear3.weight"] = mg.zeros(8, 16)
    with pytest.raises(RuntimeError, match="unexpected keys: 'encoder_layers.0.linear3.weight'"):
        model.load_state_dict(state)


def test_layer_norm_eps_activation_and_the_three_dropout_rates_are_configurable():
    layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.3, activation="gelu", layer_norm_eps=1e-12,
                                       attention_dropout=0.2, activation_dropout=0.0)
    assert layer.norm1.eps == layer.norm2.eps == 1e-12
    assert layer.self_attn.dropout == 0.2 and layer.feed_forward.dropout.p == 0.0
    assert layer.dropout1.p == layer.dropout2.p == 0.3
    default = nn.TransformerDecoderLayer(8, 2, 16, dropout=0.3)          # PyTorch: one rate everywhere
    assert default.self_attn.dropout == default.cross_attn.dropout == default.feed_forward.dropout.p == 0.3
    assert default.norm3.eps == 1e-5
    x = np.random.default_rng(12).standard_normal((2, 3, 8))
    module = nn.FeedForward(8, 16, activation="gelu")
    exact = np_ffn(x, module.linear1, module.linear2,
                   hidden=lambda h: h * 0.5 * (1 + np.vectorize(math.erf)(h / math.sqrt(2))))
    close(module(mg.tensor(x)), exact, 1e-6)
    custom = nn.FeedForward(8, 16, activation=lambda h: h * h)               # any callable
    close(custom(mg.tensor(x)), np_ffn(x, custom.linear1, custom.linear2, hidden=np.square), 1e-6)


@pytest.mark.parametrize("norm_first", [False, True])
def test_encoder_layer_with_a_cache_continues_the_causal_sequence(device, norm_first):
    """Decoding one position at a time through the cache gives the rows of one causal pass."""
    mg.manual_seed(13)
    layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, norm_first=norm_first)
    x = mg.randn(2, 5, 8)
    full = layer(x, mask=nn.causal_mask(5)).numpy()
    cache = nn.KVCache()
    first = layer(x[:, :3], mask=nn.causal_mask(3), cache=cache)
    steps = [layer(x[:, t:t + 1], cache=cache).numpy() for t in (3, 4)]
    assert len(cache) == 5
    close(np.concatenate([first.numpy()] + steps, axis=1), full, 1e-5)
