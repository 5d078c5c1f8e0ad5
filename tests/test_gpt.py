"""GPT: the forward pass against numpy from its own weights, GPT-2 initialisation,
causality, gradients, generation (cached == uncached, one position per new token,
temperature / top-k / seed), and a few training steps on the stdlib corpus."""
import math
import re

import numpy as np
import pytest

import minigrad as mg
import minigrad.functional as F
from minigrad.models import GPT
from minigrad.data import lm_batch, train_val_split
from minigrad.datasets import CharTokenizer, stdlib_corpus
from test_attention import module_gradcheck, np_mha, np_softmax
from test_datasets import one_blas_thread
from test_transformer import np_ffn, np_layer_norm


def np_gpt(model, ids):
    T = ids.shape[1]
    wte = model.tok_emb.weight.numpy().astype(np.float64)
    x = wte[ids] + model.pos_emb.weight.numpy()[:T]
    causal = np.tril(np.ones((T, T), dtype=bool))
    for block in model.blocks:
        h = np_layer_norm(x, block.norm1)
        x = x + np_mha(block.self_attn, h, h, h, causal)[0]
        x = x + np_ffn(np_layer_norm(x, block.norm2), block.feed_forward.linear1, block.feed_forward.linear2, "gelu_tanh")
    return np_layer_norm(x, model.ln_f) @ wte.T


def test_forward_matches_numpy_pre_ln_blocks_with_tied_output(device):
    mg.manual_seed(0)
    model = GPT(vocab_size=11, block_size=8, n_layer=2, n_head=2, d_model=8)
    # larger weights than GPT-2's init, so that every part visibly matters
    for p in model.parameters():
        p.data = p.data * 20 if p.ndim == 2 else p.data
    ids = np.random.default_rng(0).integers(0, 11, size=(2, 6))
    logits = model(mg.tensor(ids))
    assert logits.shape == (2, 6, 11) and logits.device == device
    np.testing.assert_allclose(logits.numpy(), np_gpt(model, ids), rtol=1e-4, atol=1e-4)
    assert "head" not in dict(model.named_parameters())       # the output layer IS tok_emb.weight


def test_gpt2_initialisation_scales_residual_projections():
    mg.manual_seed(1)
    model = GPT(vocab_size=100, block_size=64, n_layer=8, n_head=4, d_model=128)
    assert model.tok_emb.weight.numpy().std() == pytest.approx(0.02, rel=0.05)
    assert model.blocks[0].feed_forward.linear1.weight.numpy().std() == pytest.approx(0.02, rel=0.05)
    residual_std = 0.02 / math.sqrt(2 * 8)
    for block in model.blocks:
        assert block.self_attn.out_proj.weight.numpy().std() == pytest.approx(residual_std, rel=0.05)
        assert block.feed_forward.linear2.weight.numpy().std() == pytest.approx(residual_std, rel=0.05)
        assert np.all(block.self_attn.q_proj.bias.numpy() == 0)


def test_logits_at_t_do_not_depend_on_later_tokens():
    mg.manual_seed(2)
    model = GPT(13, 8, 2, 2, 16)
    a = model(np.array([[1, 2, 3, 4, 5]])).numpy()
    b = model(np.array([[1, 2, 3, 9, 0]])).numpy()
    np.testing.assert_allclose(a[:, :3], b[:, :3], rtol=1e-6, atol=1e-7)
    assert not np.allclose(a[:, 3:], b[:, 3:])
    with pytest.raises(ValueError, match="block_size"):
        model(np.zeros((1, 9), dtype=np.int64))


def test_gpt_gradients_of_every_weight():
    mg.manual_seed(3)
    model = GPT(5, 4, 1, 2, 4)
    ids, targets = np.array([[1, 2, 3]]), np.array([[2, 3, 4]])
    assert module_gradcheck(model, lambda: F.cross_entropy(model(ids), targets), [])


def test_cached_and_uncached_generation_give_the_same_tokens_past_block_size():
    mg.manual_seed(4)
    model = GPT(17, 8, 2, 2, 16)
    prompt = np.array([[1, 2, 3], [4, 5, 6]])
    for kwargs in ({"temperature": 0}, {"temperature": 0.8, "top_k": 5, "seed": 7}, {"seed": 3}):
        cached = model.generate(prompt, 20, **kwargs).numpy()
        plain = model.generate(prompt, 20, use_cache=False, **kwargs).numpy()
        assert cached.shape == (2, 23)
        np.testing.assert_array_equal(cached, plain)
        np.testing.assert_array_equal(cached[:, :3], prompt)
    long_prompt = np.arange(26).reshape(2, 13) % 17             # longer than block_size itself
    np.testing.assert_array_equal(model.generate(long_prompt, 9, seed=5).numpy(),
                                  model.generate(long_prompt, 9, seed=5, use_cache=False).numpy())


def test_each_new_token_costs_one_position_with_the_cache():
    mg.manual_seed(5)
    model = GPT(17, 16, 1, 2, 8)
    positions = []
    original = GPT.forward

    def counting_forward(self, idx, cache=None):
        positions.append(np.shape(idx)[1])
        return original(self, idx, cache)

    model.forward = counting_forward.__get__(model)
    model.generate(np.array([[1, 2, 3, 4]]), 8, seed=0)
    assert positions == [4] + [1] * 7                        # the prompt once, then one position each
    positions.clear()
    model.generate(np.array([[1, 2, 3, 4]]), 8, seed=0, use_cache=False)
    assert positions == list(range(4, 12))                   # the whole context every time
    positions.clear()
    model.generate(np.array([[1, 2, 3]]), 30, seed=0)        # past block_size: cropped to its last 8
    assert max(positions) <= 16 and sum(positions) < 3 + 30 + 3 * 8


def test_greedy_and_top_1_pick_the_argmax():
    mg.manual_seed(6)
    model = GPT(17, 8, 1, 2, 8)
    prompt = np.array([[3, 1, 4]])
    greedy = model.generate(prompt, 5, temperature=0).numpy()
    np.testing.assert_array_equal(model.generate(prompt, 5, top_k=1, seed=9).numpy(), greedy)
    context = prompt
    for _ in range(5):
        next_id = model(context).numpy()[0, -1].argmax()
        context = np.concatenate([context, [[next_id]]], axis=1)
    np.testing.assert_array_equal(greedy, context)


@pytest.mark.parametrize("settings, message", [
    (dict(temperature=float("nan")), "temperature must be a finite number >= 0, got nan"),
    (dict(temperature=float("inf")), "temperature must be a finite number >= 0, got inf"),
    (dict(temperature=-0.5), "temperature must be a finite number >= 0, got -0.5"),
    (dict(temperature="1"), "temperature must be a finite number >= 0, got '1'"),
    (dict(top_k=2.5), "top_k must be None or an integer >= 1, got 2.5"),
    (dict(top_k=0), "top_k must be None or an integer >= 1, got 0"),
    (dict(max_new_tokens=2.5), "max_new_tokens must be an integer >= 0, got 2.5"),
    (dict(max_new_tokens=-1), "max_new_tokens must be an integer >= 0, got -1"),
])
def test_generate_rejects_sampling_settings_that_would_sample_nonsense(settings, message):
    # a NaN temperature made every probability NaN, and every draw id 0
    model = GPT(7, 8, 1, 2, 8)
    arguments = dict(max_new_tokens=3, **settings) if "max_new_tokens" not in settings else settings
    with pytest.raises(ValueError, match=re.escape(f"GPT.generate: {message}")):
        model.generate(np.array([[1, 2]]), **arguments)


def test_gpt_on_an_empty_sequence_names_the_shape():
    model = GPT(7, 8, 1, 2, 8)
    with pytest.raises(ValueError, match=re.escape("GPT: expected ids of shape (B, T) with T >= 1, got (1, 0)")):
        model(np.zeros((1, 0), dtype=np.int64))
    with pytest.raises(ValueError, match=re.escape("GPT.generate: expected a non-empty prompt")):
        model.generate(np.zeros((1, 0), dtype=np.int64), 2)


def test_samples_follow_softmax_over_temperature_and_respect_top_k():
    mg.manual_seed(7)
    model = GPT(6, 8, 1, 2, 8)
    for p in model.parameters():                   # a peaked, non-uniform next-token distribution
        p.data = p.data * 30 if p.ndim == 2 else p.data
    prompt = np.tile([[2, 3]], (4000, 1))
    logits = model(prompt[:1]).numpy()[0, -1].astype(np.float64)
    for temperature in (0.5, 2.0):
        draws = model.generate(prompt, 1, temperature=temperature, seed=1).numpy()[:, -1]
        frequencies = np.bincount(draws, minlength=6) / len(draws)
        np.testing.assert_allclose(frequencies, np_softmax(logits / temperature), atol=0.03)
    draws = model.generate(prompt, 1, top_k=2, seed=2).numpy()[:, -1]
    assert set(draws.tolist()) == set(np.argsort(logits)[-2:].tolist())
    same = model.generate(prompt[:3], 6, seed=11).numpy()
    np.testing.assert_array_equal(same, model.generate(prompt[:3], 6, seed=11).numpy())
    assert not np.array_equal(same, model.generate(prompt[:3], 6, seed=12).numpy())


def test_a_tiny_gpt_learns_from_the_stdlib_corpus():
    text = stdlib_corpus(max_chars=60_000)
    tokenizer = CharTokenizer(text)
    train, val = train_val_split(tokenizer.encode(text))
    mg.manual_seed(8)
    model = GPT(tokenizer.vocab_size, block_size=32, n_layer=2, n_head=2, d_model=32)
    optimizer = mg.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
    rng = np.random.default_rng(0)
    x_val, y_val = lm_batch(val, 32, 64, np.random.default_rng(1))

    def val_loss():
        with mg.no_grad():
            return F.cross_entropy(model(x_val), y_val).item()

    start = val_loss()
    assert start == pytest.approx(math.log(tokenizer.vocab_size), rel=0.05)   # ~uniform at init
    with one_blas_thread():
        for _ in range(60):
            x, y = lm_batch(train, 32, 16, rng)
            loss = F.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    assert val_loss() < start - 1.0
