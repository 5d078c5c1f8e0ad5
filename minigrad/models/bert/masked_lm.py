"""Masked language modelling, BERT's pre-training task, for training from scratch.

    model = BertForMaskedLM(config)
    masked, labels = mask_tokens(ids, tokenizer.mask_token_id, config.vocab_size,
                                 special_ids=tokenizer.all_special_ids)
    loss = model.loss(model(masked, attention_mask), labels)

About 15% of the real tokens are chosen; the model sees them masked (mostly as
[MASK]) and is scored only on predicting the original ids there.
"""
import numpy  # host-side only: preparing MLM training batches (mask_tokens), as the tokenizer does

from ... import backend, nn
from ... import functional as F
from ...nn.layers import activation_function
from ...tensor import as_array
from .model import ACTIVATIONS, BERT, initialize_bert_weights

__all__ = ["BertMLMHead", "BertForMaskedLM", "mask_tokens"]


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
        self._act = activation_function(ACTIVATIONS[config.hidden_act])

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
        return F.cross_entropy(logits, as_array(labels, logits.device), ignore_index=self.ignore_index)


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
    ids = numpy.array(as_array(input_ids, "cpu"), dtype=numpy.int64)
    rng = backend.rng() if seed is None else numpy.random.default_rng(seed)
    candidates = ~numpy.isin(ids, list(special_ids))
    if attention_mask is not None:
        candidates &= as_array(attention_mask, "cpu").astype(bool)
    chosen = candidates & (rng.random(ids.shape) < mask_prob)
    labels = numpy.where(chosen, ids, BertForMaskedLM.ignore_index)
    roll = rng.random(ids.shape)
    masked = ids.copy()
    masked[chosen & (roll < 0.8)] = mask_token_id
    swap = chosen & (roll >= 0.8) & (roll < 0.9)
    masked[swap] = rng.integers(0, vocab_size, size=int(swap.sum()))
    return masked, labels
