"""BERT: a bidirectional Transformer encoder, able to load real pretrained weights.

    >>> from minigrad.models import BERT, BertTokenizer
    >>> model = BERT.from_pretrained(model_dir)          # config.json + model.safetensors
    >>> tokenizer = BertTokenizer.from_pretrained(model_dir)
    >>> batch = tokenizer(["A cat sits.", "A dog runs in the park."])
    >>> hidden = model(batch["input_ids"], batch["attention_mask"])   # (B, T, H)
    >>> embeddings = sentence_embeddings(hidden, batch["attention_mask"])  # (B, H), unit length

The model, for token ids x_1..x_T of one sentence:

    embeddings   h_t = LayerNorm(E_word[x_t] + E_pos[t] + E_type[s_t])       then dropout
    L encoder layers, each a post-LN nn.TransformerEncoderLayer (the original
    Transformer's order), with exact gelu and LayerNorm eps 1e-12:
                 a = norm1(h + dropout1(self_attn(h, mask)))
                 h = norm2(a + dropout2(linear2(gelu(linear1(a)))))
    output       the last h: one H-vector per token, (B, T, H)

s_t is the segment (token type) of token t: 0 for the first sentence, 1 for
the second of a pair. "Bidirectional" means that every token attends to every
other real token, left and right; padding is hidden from the attention by the
mask, so a padded row gives the same vectors at its real tokens as the
sentence run alone. gelu is the exact one, x * Phi(x) with Phi from erf
(hidden_act="gelu" in config.json).

Sentence embeddings (sentence-transformers' recipe for all-MiniLM-L6-v2):
average the token vectors over the real tokens, then scale to unit length, so
that the dot product of two embeddings is their cosine similarity.

The package, by idea:
    model.py        this file: BertConfig, BertEmbeddings, BERT, BertPooler,
                    BERT's initialisation, sentence embeddings
    checkpoint.py   Hugging Face checkpoint names -> minigrad's, and loading them
    masked_lm.py    the masked-language-model head and masking, to pre-train

Differences from transformers.BertModel: forward returns the last hidden
state only (the pooler output is `model.pool(hidden)`, when the model has a
pooler); no relative position embeddings, no cross-attention or key/value
cache; position ids are always 0..T-1.
"""
import json
import numbers
import os
from dataclasses import dataclass, fields

from ... import backend, nn
from ... import functional as F
from ...grad_mode import no_grad
from ...io import load
from ...ops import concatenate
from ...tensor import Tensor, as_array
from .checkpoint import checkpoint_has_pooler, load_bert_checkpoint

__all__ = ["BertConfig", "BERT", "BertEmbeddings", "BertPooler", "bert_encoder_layer",
           "initialize_bert_weights", "mean_pooling", "normalize", "sentence_embeddings"]


# ----------------------------------------------------------------------------
# Configuration
# ----------------------------------------------------------------------------

# hidden_act in config.json -> the name nn's activation table knows: "gelu" is the
# exact x * Phi(x) (erf), "gelu_new" and friends the tanh approximation.
ACTIVATIONS = {"gelu": "gelu", "gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh",
               "gelu_fast": "gelu_tanh", "relu": "relu"}


@dataclass
class BertConfig:
    """The sizes of a BERT model; field names follow config.json.

    Defaults are BERT-base's. all-MiniLM-L6-v2: hidden_size=384,
    num_hidden_layers=6, num_attention_heads=12, intermediate_size=1536.
    """
    vocab_size: int = 30522
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    initializer_range: float = 0.02
    pad_token_id: int = 0
    position_embedding_type: str = "absolute"

    def __post_init__(self):
        for name in ("vocab_size", "hidden_size", "num_attention_heads", "intermediate_size",
                     "max_position_embeddings", "type_vocab_size", "num_hidden_layers", "pad_token_id"):
            value = getattr(self, name)
            lowest = 0 if name in ("num_hidden_layers", "pad_token_id") else 1
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < lowest:
                raise ValueError(f"BertConfig: {name} must be an integer >= {lowest}, got {value!r}")
        for name, allowed, rule in (("hidden_dropout_prob", lambda p: 0 <= p <= 1, "in [0, 1]"),
                                    ("attention_probs_dropout_prob", lambda p: 0 <= p <= 1, "in [0, 1]"),
                                    ("layer_norm_eps", lambda eps: eps > 0, "> 0"),
                                    ("initializer_range", lambda std: std >= 0, ">= 0")):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not allowed(value):
                raise ValueError(f"BertConfig: {name} must be a number {rule}, got {value!r}")
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(f"BertConfig: hidden_size {self.hidden_size} is not a multiple of "
                             f"num_attention_heads {self.num_attention_heads}")
        if not isinstance(self.hidden_act, str) or self.hidden_act not in ACTIVATIONS:
            raise ValueError(f"BertConfig: hidden_act {self.hidden_act!r} is not supported; "
                             f"choose from {sorted(ACTIVATIONS)}")
        if self.position_embedding_type != "absolute":
            raise ValueError(f"BertConfig: only absolute position embeddings are implemented, "
                             f"got position_embedding_type={self.position_embedding_type!r}")

    @classmethod
    def from_dict(cls, values):
        """Keys that BertConfig does not know (architectures, model_type, ...) are ignored."""
        known = {field.name for field in fields(cls)}
        return cls(**{key: value for key, value in values.items() if key in known})

    @classmethod
    def from_json_file(cls, path):
        """The config in a config.json; a file that is not valid JSON, not an object, or
        that holds a bad value is a ValueError naming the file."""
        with open(path, encoding="utf-8") as handle:
            try:
                values = json.load(handle)
            except (ValueError, UnicodeDecodeError) as error:      # JSONDecodeError is a ValueError
                raise ValueError(f"BertConfig: {path} is not valid JSON ({error})") from None
        if not isinstance(values, dict):
            raise ValueError(f"BertConfig: {path} must hold a JSON object, got a JSON {type(values).__name__}")
        try:
            return cls.from_dict(values)
        except ValueError as error:
            raise ValueError(f"{error} (in {path})") from None

    def to_dict(self):
        return {field.name: getattr(self, field.name) for field in fields(self)}


# ----------------------------------------------------------------------------
# The model
# ----------------------------------------------------------------------------

def _ids_array(ids, device, name):
    """Token ids (list, numpy/cupy array or Tensor) as an integer array (B, T) on `device`."""
    array = as_array(ids, device)
    if array.ndim != 2:
        raise ValueError(f"BERT: {name} must have shape (B, T), got shape {tuple(array.shape)}")
    if array.dtype.kind not in "iub":
        raise TypeError(f"BERT: {name} must hold integers, got dtype {array.dtype}")
    return array


class BertEmbeddings(nn.Module):
    """h = dropout(LayerNorm(E_word[input_ids] + E_pos[0..T-1] + E_type[token_type_ids])).

    input_ids, token_type_ids (B, T) integers -> (B, T, H).
    Position embeddings are learned (one row per position up to
    max_position_embeddings), not the sinusoids of the original Transformer.
    """

    def __init__(self, config):
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, input_ids, token_type_ids=None):
        length = input_ids.shape[1]
        if length > self.position_embeddings.num:
            raise ValueError(f"BertEmbeddings: sequence of {length} tokens is longer than "
                             f"max_position_embeddings={self.position_embeddings.num}")
        # positions are 0..T-1 for every row, so the slice of the table is the lookup
        positions = self.position_embeddings.weight[:length]                    # (T, H)
        if token_type_ids is None:
            types = self.token_type_embeddings.weight[0]                        # (H,)
        else:
            types = self.token_type_embeddings(token_type_ids)                   # (B, T, H)
        h = self.word_embeddings(input_ids) + positions + types                  # (B, T, H)
        return self.dropout(self.norm(h))


def bert_encoder_layer(config):
    """One BERT layer: a post-LN nn.TransformerEncoderLayer,

        a = norm1(h + dropout1(self_attn(h, mask)))
        y = norm2(a + dropout2(linear2(act(linear1(a)))))

    h (B, T, H) -> y (B, T, H); act from config.hidden_act (exact gelu for BERT),
    LayerNorm eps config.layer_norm_eps (1e-12). Dropout as in Hugging Face's
    BertLayer: attention_probs_dropout_prob on the attention weights,
    hidden_dropout_prob on each sublayer's output, none between act and linear2.
    The checkpoint calls the parts attention.self.{query,key,value},
    attention.output.dense and .LayerNorm, intermediate.dense, output.dense and
    .LayerNorm (see checkpoint.py)."""
    return nn.TransformerEncoderLayer(
        config.hidden_size, config.num_attention_heads, config.intermediate_size,
        dropout=config.hidden_dropout_prob, activation=ACTIVATIONS[config.hidden_act], norm_first=False,
        layer_norm_eps=config.layer_norm_eps, attention_dropout=config.attention_probs_dropout_prob,
        activation_dropout=0.0)


class BertPooler(nn.Module):
    """pooled = tanh(dense(h[:, 0])): the [CLS] vector through one trained layer
    (pre-training used it for next-sentence prediction). (B, T, H) -> (B, H)."""

    def __init__(self, config):
        super().__init__()
        self.dense = nn.Dense(config.hidden_size, config.hidden_size)

    def forward(self, hidden):
        return F.tanh(self.dense(hidden[:, 0]))


class BERT(nn.Module):
    """The BERT encoder: token ids -> one contextual vector per token.

    BERT(config, add_pooler=False, initialize=True)
    forward(input_ids, attention_mask=None, token_type_ids=None) -> (B, T, H)

    input_ids (B, T) integers; attention_mask (B, T) 1 for real tokens and 0
    for padding (None: all real); token_type_ids (B, T) segment ids (None: all 0).
    Weights start as BERT's initialisation: N(0, initializer_range^2) for the
    Dense and embedding weights, zero biases, LayerNorm weight 1 and bias 0
    (initialize=False skips it, for from_pretrained, which overwrites them all).
    """

    def __init__(self, config, add_pooler=False, initialize=True):
        super().__init__()
        self.config = config
        self.embeddings = BertEmbeddings(config)
        self.layers = nn.ModuleList(bert_encoder_layer(config) for _ in range(config.num_hidden_layers))
        self.pooler = BertPooler(config) if add_pooler else None
        if initialize:
            initialize_bert_weights(self, config.initializer_range)

    @staticmethod
    def extended_attention_mask(attention_mask):
        """(B, T) of 0/1 -> boolean key mask (B, 1, 1, T): every query of row b
        (and every head) may attend to key t when attention_mask[b, t] == 1.
        Queries at padded positions still attend to the real tokens, so their
        outputs are finite (and ignored by pooling)."""
        return attention_mask.astype(bool)[:, None, None, :]

    def forward(self, input_ids, attention_mask=None, token_type_ids=None):
        device = self.embeddings.word_embeddings.weight.device
        input_ids = _ids_array(input_ids, device, "input_ids")
        if input_ids.shape[1] == 0:
            raise ValueError(f"BERT: input_ids of shape {tuple(input_ids.shape)} hold no tokens; need at "
                             f"least one (the tokenizer always writes [CLS] and [SEP])")
        if token_type_ids is not None:
            token_type_ids = _ids_array(token_type_ids, device, "token_type_ids")
        if attention_mask is not None:
            attention_mask = _ids_array(attention_mask, device, "attention_mask")
        for name, array in (("attention_mask", attention_mask), ("token_type_ids", token_type_ids)):
            if array is not None and array.shape != input_ids.shape:
                raise ValueError(f"BERT: {name} has shape {tuple(array.shape)}, but input_ids "
                                 f"has shape {tuple(input_ids.shape)}")
        mask = None
        if attention_mask is not None:
            mask = Tensor(self.extended_attention_mask(attention_mask))          # (B, 1, 1, T)
        h = self.embeddings(input_ids, token_type_ids)                           # (B, T, H)
        for layer in self.layers:
            h = layer(h, mask)
        return h

    def pool(self, hidden):
        """The pooler's output tanh(W h[:, 0] + b), (B, H); needs add_pooler=True."""
        if self.pooler is None:
            raise RuntimeError("BERT.pool: this model has no pooler (build it with add_pooler=True, "
                               "or load a checkpoint that has pooler.dense weights)")
        return self.pooler(hidden)

    @classmethod
    def from_pretrained(cls, model_dir, device=None, add_pooler=None):
        """Read model_dir/config.json and model_dir/model.safetensors (Hugging Face
        BertModel names; see load_bert_checkpoint). add_pooler=None: keep a
        pooler exactly when the checkpoint has one. Returns the model in eval mode."""
        model_dir = os.fspath(model_dir)
        config_path = os.path.join(model_dir, "config.json")
        weights_path = os.path.join(model_dir, "model.safetensors")
        for path in (config_path, weights_path):
            if not os.path.isfile(path):
                raise FileNotFoundError(f"BERT.from_pretrained: {path} not found")
        config = BertConfig.from_json_file(config_path)
        checkpoint = load(weights_path)
        if add_pooler is None:
            add_pooler = checkpoint_has_pooler(checkpoint)
        model = cls(config, add_pooler=add_pooler, initialize=False)
        load_bert_checkpoint(model, checkpoint)
        if device is not None:
            model.to(device)
        return model.eval()

    @no_grad()
    def encode_sentences(self, tokenizer, texts, batch_size=32, max_length=None):
        """Sentence embeddings (N, H) of a list of texts: mean of the last hidden
        state over the real tokens, L2-normalised. Runs in no_grad; texts are
        sorted by length (in characters) and batched, so that rows in a batch
        carry little padding; the result is in the order of `texts`."""
        if isinstance(texts, str):
            texts = [texts]
        if not isinstance(texts, (list, tuple)):
            raise TypeError(f"BERT.encode_sentences: texts must be a str or a list of str, "
                            f"got {type(texts).__name__}")
        for index, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"BERT.encode_sentences: texts[{index}] must be a str, got {type(text).__name__}")
        if not texts:
            return Tensor(backend.xp_for(self.embeddings.norm.weight.device).zeros(
                (0, self.config.hidden_size), dtype=self.embeddings.norm.weight.dtype))
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        pieces = []
        for start in range(0, len(texts), batch_size):
            chosen = [texts[i] for i in order[start:start + batch_size]]
            batch = tokenizer(chosen, max_length=max_length)
            hidden = self(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
            pieces.append(sentence_embeddings(hidden, batch["attention_mask"]))
        embeddings = concatenate(pieces, axis=0)                                 # sorted order
        inverse = [0] * len(order)
        for position, index in enumerate(order):
            inverse[index] = position
        return embeddings[inverse]


def initialize_bert_weights(model, std):
    """BERT's initialisation, applied to every Dense and Embedding in `model`:
    weights ~ N(0, std^2), biases 0 (LayerNorm keeps weight 1, bias 0)."""
    for module in model.modules():
        if isinstance(module, (nn.Dense, nn.Embedding)):
            nn.init.normal_(module.weight, 0.0, std)
        if isinstance(module, nn.Dense) and module.bias is not None:
            nn.init.zeros_(module.bias)


# ----------------------------------------------------------------------------
# Sentence embeddings
# ----------------------------------------------------------------------------

def _mask_tensor(attention_mask, like):
    return Tensor(as_array(attention_mask, like.device).astype(like.dtype))


def mean_pooling(hidden, attention_mask):
    """Mean of the token vectors over the real tokens:
    pooled[b] = sum_t m[b, t] h[b, t] / max(sum_t m[b, t], 1e-9).
    hidden (B, T, H), attention_mask (B, T) of 0/1 -> (B, H)."""
    if tuple(attention_mask.shape) != tuple(hidden.shape[:2]):
        raise ValueError(f"mean_pooling: attention_mask shape {tuple(attention_mask.shape)} does "
                         f"not match hidden shape {hidden.shape} (expected {hidden.shape[:2]})")
    mask = _mask_tensor(attention_mask, hidden).reshape(hidden.shape[0], hidden.shape[1], 1)
    summed = (hidden * mask).sum(axis=1)                                         # (B, H)
    counts = mask.sum(axis=1).clip(1e-9)                                         # (B, 1)
    return summed / counts


def normalize(x, axis=-1, eps=1e-12):
    """L2 normalisation: x / max(||x||_2, eps) along `axis` (torch's F.normalize)."""
    norm = (x * x).sum(axis=axis, keepdims=True).sqrt().clip(eps)
    return x / norm


def sentence_embeddings(hidden, attention_mask):
    """normalize(mean_pooling(hidden, attention_mask)): (B, T, H) -> (B, H) unit
    vectors, so that a @ b.T is the matrix of cosine similarities."""
    return normalize(mean_pooling(hidden, attention_mask))
