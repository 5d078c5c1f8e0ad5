"""BERT: a bidirectional Transformer encoder, able to load real pretrained weights.

    >>> from minigrad.models import BERT, BertTokenizer
    >>> model = BERT.from_pretrained(model_dir)          # config.json + model.safetensors
    >>> tokenizer = BertTokenizer.from_pretrained(model_dir)
    >>> batch = tokenizer(["A cat sits.", "A dog runs in the park."])
    >>> hidden = model(batch["input_ids"], batch["attention_mask"])   # (B, T, H)
    >>> embeddings = sentence_embeddings(hidden, batch["attention_mask"])  # (B, H), unit length

The model, for token ids x_1..x_T of one sentence:

    embeddings   h_t = LayerNorm(E_word[x_t] + E_pos[t] + E_type[s_t])       then dropout
    L encoder layers, each post-LN (the original Transformer's order):
                 a = LayerNorm1(h + dropout(MultiHeadAttention(h, mask)))
                 h = LayerNorm2(a + dropout(W2 gelu(W1 a + b1) + b2))
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

Checkpoint names. Hugging Face saves BertModel with names such as
"encoder.layer.0.attention.self.query.weight" and its Linear weights as
(out, in); minigrad's Dense keeps (in, out). `from_pretrained` renames
(CHECKPOINT_MODULES below) and transposes; a name it cannot place, a weight it
needs but does not find, or a shape that does not fit is an error that lists
them all by name.

Differences from transformers.BertModel: forward returns the last hidden
state only (the pooler output is `model.pool(hidden)`, when the model has a
pooler); no relative position embeddings, no cross-attention or key/value
cache; position ids are always 0..T-1.
"""
import json
import os
import re
from dataclasses import dataclass, fields

import numpy  # host-side only: preparing MLM training batches (mask_tokens), as the tokenizer does

from .. import backend, nn
from .. import functional as F
from ..io import load
from ..ops import concatenate
from ..nn.layers import activation_function
from ..tensor import Tensor, no_grad

__all__ = ["BertConfig", "BERT", "BertLayer", "BertEmbeddings", "BertPooler",
           "BertForMaskedLM", "BertMLMHead", "mean_pooling", "normalize",
           "sentence_embeddings", "mask_tokens", "load_bert_checkpoint"]


# ----------------------------------------------------------------------------
# Configuration
# ----------------------------------------------------------------------------

# hidden_act in config.json -> the name nn's activation table knows: "gelu" is the
# exact x * Phi(x) (erf), "gelu_new" and friends the tanh approximation.
_ACTIVATIONS = {"gelu": "gelu", "gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh",
                "gelu_fast": "gelu_tanh", "relu": "relu"}


def _activation(hidden_act):
    """The function for config.hidden_act, from nn.layers' table of activations."""
    return activation_function(_ACTIVATIONS[hidden_act])


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
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(f"BertConfig: hidden_size {self.hidden_size} is not a multiple of "
                             f"num_attention_heads {self.num_attention_heads}")
        if self.hidden_act not in _ACTIVATIONS:
            raise ValueError(f"BertConfig: hidden_act {self.hidden_act!r} is not supported; "
                             f"choose from {sorted(_ACTIVATIONS)}")
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
        with open(path, encoding="utf-8") as handle:
            return cls.from_dict(json.load(handle))

    def to_dict(self):
        return {field.name: getattr(self, field.name) for field in fields(self)}


# ----------------------------------------------------------------------------
# The model
# ----------------------------------------------------------------------------

def _ids_array(ids, device, name):
    """Token ids (list, numpy/cupy array or Tensor) as an integer array (B, T) on `device`."""
    ids = ids.data if isinstance(ids, Tensor) else ids
    array = backend.to_device(ids, device)
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


class BertLayer(nn.Module):
    """One post-LN encoder layer.

        a = norm1(h + dropout1(self_attn(h, mask)))
        y = norm2(a + dropout2(linear2(act(linear1(a)))))

    h (B, T, H) -> y (B, T, H); mask broadcastable to (B, heads, T, T), True = may attend.
    The submodule names are nn.TransformerEncoderLayer's; the checkpoint calls
    them attention.self.{query,key,value}, attention.output.dense and
    .LayerNorm, intermediate.dense, output.dense and .LayerNorm.
    """

    def __init__(self, config):
        super().__init__()
        hidden, inner = config.hidden_size, config.intermediate_size
        self.self_attn = nn.MultiHeadAttention(hidden, config.num_attention_heads,
                                               dropout=config.attention_probs_dropout_prob)
        self.dropout1 = nn.Dropout(config.hidden_dropout_prob)
        self.norm1 = nn.LayerNorm(hidden, eps=config.layer_norm_eps)
        self.linear1 = nn.Dense(hidden, inner)
        self.linear2 = nn.Dense(inner, hidden)
        self.dropout2 = nn.Dropout(config.hidden_dropout_prob)
        self.norm2 = nn.LayerNorm(hidden, eps=config.layer_norm_eps)
        self.hidden_act = config.hidden_act
        self._act = _activation(config.hidden_act)

    def feed_forward(self, a):
        """linear2(act(linear1(a))): (B, T, H) -> (B, T, I) -> (B, T, H)."""
        return self.linear2(self._act(self.linear1(a)))

    def forward(self, h, mask=None):
        a = self.norm1(h + self.dropout1(self.self_attn(h, mask=mask)))
        return self.norm2(a + self.dropout2(self.feed_forward(a)))


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
        self.layers = nn.ModuleList(BertLayer(config) for _ in range(config.num_hidden_layers))
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
            add_pooler = any(_strip_prefix(name).startswith("pooler.") for name in checkpoint)
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
            shape = module.weight.shape
            values = backend.rng().standard_normal(shape, dtype="float32") * std
            module.weight.data = backend.to_device(values, module.weight.device)
        if isinstance(module, nn.Dense) and module.bias is not None:
            module.bias.data = module.bias.data * 0


# ----------------------------------------------------------------------------
# Sentence embeddings
# ----------------------------------------------------------------------------

def _mask_tensor(attention_mask, like):
    data = attention_mask.data if isinstance(attention_mask, Tensor) else attention_mask
    return Tensor(backend.to_device(data, like.device).astype(like.dtype))


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


# ----------------------------------------------------------------------------
# Loading Hugging Face checkpoints
# ----------------------------------------------------------------------------

# (checkpoint module, minigrad module); "{i}" stands for a layer index. The
# parameter name after the module (weight, bias) is carried over.
CHECKPOINT_MODULES = (
    ("embeddings.word_embeddings", "embeddings.word_embeddings"),
    ("embeddings.position_embeddings", "embeddings.position_embeddings"),
    ("embeddings.token_type_embeddings", "embeddings.token_type_embeddings"),
    ("embeddings.LayerNorm", "embeddings.norm"),
    ("encoder.layer.{i}.attention.self.query", "layers.{i}.self_attn.q_proj"),
    ("encoder.layer.{i}.attention.self.key", "layers.{i}.self_attn.k_proj"),
    ("encoder.layer.{i}.attention.self.value", "layers.{i}.self_attn.v_proj"),
    ("encoder.layer.{i}.attention.output.dense", "layers.{i}.self_attn.out_proj"),
    ("encoder.layer.{i}.attention.output.LayerNorm", "layers.{i}.norm1"),
    ("encoder.layer.{i}.intermediate.dense", "layers.{i}.linear1"),
    ("encoder.layer.{i}.output.dense", "layers.{i}.linear2"),
    ("encoder.layer.{i}.output.LayerNorm", "layers.{i}.norm2"),
    ("pooler.dense", "pooler.dense"),
)
# Checkpoint entries that are deliberately not loaded, and why:
#   embeddings.position_ids   a saved buffer holding 0..max_len-1; we slice the table instead
#   cls.*                     pre-training heads (masked LM, next sentence), not part of the encoder
IGNORED_CHECKPOINT_NAMES = (r"embeddings\.position_ids", r"cls\..*")
# Older checkpoints (converted from TensorFlow) call LayerNorm's weight and bias gamma and beta.
_PARAMETER_ALIASES = {"gamma": "weight", "beta": "bias"}
_PREFIX = "bert."


def _template_regex(template):
    return re.compile(re.escape(template).replace(re.escape("{i}"), r"(\d+)") + r"$")


_TO_MINIGRAD = [(_template_regex(source), target) for source, target in CHECKPOINT_MODULES]
_TO_CHECKPOINT = [(_template_regex(target), source) for source, target in CHECKPOINT_MODULES]


def _rename(name, table):
    """Translate one dotted parameter name through `table`; None when no entry fits."""
    module, _, parameter = name.rpartition(".")
    for pattern, replacement in table:
        match = pattern.match(module)
        if match:
            renamed = replacement.replace("{i}", match.group(1)) if match.groups() else replacement
            return f"{renamed}.{parameter}"
    return None


def _strip_prefix(name):
    """BertForPreTraining / BertForMaskedLM checkpoints put the encoder under "bert."."""
    return name[len(_PREFIX):] if name.startswith(_PREFIX) else name


def checkpoint_to_minigrad_name(name):
    """"encoder.layer.3.attention.self.query.weight" -> "layers.3.self_attn.q_proj.weight";
    None for a name with no place in BERT."""
    name = _strip_prefix(name)
    module, _, parameter = name.rpartition(".")
    return _rename(f"{module}.{_PARAMETER_ALIASES.get(parameter, parameter)}", _TO_MINIGRAD)


def minigrad_to_checkpoint_name(name):
    """The inverse of checkpoint_to_minigrad_name (without the "bert." prefix)."""
    return _rename(name, _TO_CHECKPOINT)


def load_bert_checkpoint(model, checkpoint):
    """Copy a Hugging Face BertModel state (name -> Tensor or array) into `model`.

    Each name is translated (CHECKPOINT_MODULES; an optional "bert." prefix and
    gamma/beta are accepted); the weights of Dense layers are transposed from
    PyTorch's (out, in) to Dense's (in, out). Raises one KeyError that lists
    every checkpoint name that has no place in the model (unexpected), every
    model weight that the checkpoint lacks (missing, by its checkpoint name)
    and every shape that does not fit. The names in IGNORED_CHECKPOINT_NAMES
    (and pooler weights, when the model has no pooler) are skipped.
    Returns the list of skipped checkpoint names.
    """
    own = model.state_dict()
    modules = dict(model.named_modules())
    translated, unexpected, ignored, mismatched, misfits = {}, [], [], [], set()
    for name, value in checkpoint.items():
        stripped = _strip_prefix(name)
        if any(re.fullmatch(pattern, stripped) for pattern in IGNORED_CHECKPOINT_NAMES) or (
                stripped.startswith("pooler.") and model.pooler is None):
            ignored.append(name)
            continue
        target = checkpoint_to_minigrad_name(name)
        if target is None or target not in own:
            unexpected.append(name)
            continue
        array = value.data if isinstance(value, Tensor) else value
        module_name, _, parameter = target.rpartition(".")
        if isinstance(modules[module_name], nn.Dense) and parameter == "weight":
            # PyTorch's Linear stores (out, in) and computes x W^T; Dense stores (in, out)
            array = backend.get_array_module(array).ascontiguousarray(array.T)
        if tuple(array.shape) != own[target].shape:
            mismatched.append(f"{name} {tuple(array.shape)} for {target} {own[target].shape}")
            misfits.add(target)
            continue
        translated[target] = array
    missing = [f"{minigrad_to_checkpoint_name(key)} (for {key})" for key in own
               if key not in translated and key not in misfits]
    problems = []
    if unexpected:
        problems.append("unexpected weights (no place in the model): " + ", ".join(unexpected))
    if missing:
        problems.append("missing weights: " + ", ".join(missing))
    if mismatched:
        problems.append("shape mismatches (checkpoint, after transposing Linear weights, vs model): "
                        + "; ".join(mismatched))
    if problems:
        raise KeyError(f"BERT checkpoint does not fit {type(model).__name__}: " + " | ".join(problems))
    model.load_state_dict(translated)
    return ignored


# ----------------------------------------------------------------------------
# Masked language modelling (BERT's pre-training task), for training from scratch
# ----------------------------------------------------------------------------

class BertMLMHead(nn.Module):
    """Predicts the vocabulary id of every position from its hidden vector:

        z = norm(gelu(dense(h)))               (B, T, H)
        logits = z @ E_word^T + bias           (B, T, V)

    The output matrix is the word-embedding table itself (tied weights, as in
    BERT): the same vector that reads a token in also scores it on the way out.
    """

    def __init__(self, config, word_embeddings):
        super().__init__()
        self.dense = nn.Dense(config.hidden_size, config.hidden_size)
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.bias = nn.Parameter(backend.xp_for(word_embeddings.weight.device).zeros(
            config.vocab_size, dtype=word_embeddings.weight.dtype))
        # a plain attribute, not a submodule: the table is registered once, by the encoder
        object.__setattr__(self, "word_embeddings", word_embeddings)
        self.hidden_act = config.hidden_act
        self._act = _activation(config.hidden_act)

    def forward(self, hidden):
        z = self.norm(self._act(self.dense(hidden)))                            # (B, T, H)
        return z @ self.word_embeddings.weight.T + self.bias                    # (B, T, V)


class BertForMaskedLM(nn.Module):
    """BERT with a masked-language-model head, to train from scratch (the
    all-MiniLM-L6-v2 checkpoint has no such head).

    forward(input_ids, attention_mask=None, token_type_ids=None) -> logits (B, T, V)
    loss(logits, labels) = cross-entropy over the positions whose label is not
    ignore_index (-100, PyTorch's convention; see mask_tokens).
    """

    ignore_index = -100

    def __init__(self, config):
        super().__init__()
        self.config = config
        self.bert = BERT(config)
        self.head = BertMLMHead(config, self.bert.embeddings.word_embeddings)
        initialize_bert_weights(self.head, config.initializer_range)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None):
        return self.head(self.bert(input_ids, attention_mask, token_type_ids))

    def loss(self, logits, labels):
        labels = labels.data if isinstance(labels, Tensor) else labels
        return F.cross_entropy(logits, backend.to_device(labels, logits.device),
                               ignore_index=self.ignore_index)


def mask_tokens(input_ids, mask_token_id, vocab_size, mask_prob=0.15, special_ids=(),
                attention_mask=None, seed=None):
    """BERT's masking rule for masked-language-model training.

    Chooses each real, non-special position with probability mask_prob; of the
    chosen ones 80% become [MASK], 10% a random token, 10% stay as they are
    (so the model cannot rely on [MASK] marking what it is asked for).
    input_ids (B, T) integers -> (masked_ids, labels), both (B, T) numpy int64:
    labels hold the original id at chosen positions and -100 elsewhere.
    Draws come from minigrad's generator (mg.manual_seed), or from `seed`.
    """
    ids = numpy.array(backend.to_numpy(input_ids.data if isinstance(input_ids, Tensor) else input_ids),
                      dtype=numpy.int64)
    rng = backend.rng() if seed is None else numpy.random.default_rng(seed)
    candidates = ~numpy.isin(ids, list(special_ids))
    if attention_mask is not None:
        candidates &= backend.to_numpy(attention_mask).astype(bool)
    chosen = candidates & (rng.random(ids.shape) < mask_prob)
    labels = numpy.where(chosen, ids, BertForMaskedLM.ignore_index)
    roll = rng.random(ids.shape)
    masked = ids.copy()
    masked[chosen & (roll < 0.8)] = mask_token_id
    swap = chosen & (roll >= 0.8) & (roll < 0.9)
    masked[swap] = rng.integers(0, vocab_size, size=int(swap.sum()))
    return masked, labels
