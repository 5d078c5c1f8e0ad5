"""The Transformer of "Attention Is All You Need" (Vaswani et al. 2017), in pieces.

    PositionalEncoding        adds sin/cos of the position to each embedding
    FeedForward               FFN(x) = act(x W1 + b1) W2 + b2, applied at every position
    TransformerEncoderLayer   self-attention, then feed-forward (also GPT's block and BERT's layer)
    TransformerDecoderLayer   masked self-attention, cross-attention to the encoder, feed-forward
    Transformer               embeddings -> encoder stack -> decoder stack -> logits

Each sublayer is wrapped in a residual connection and a LayerNorm. Where the norm
goes is a choice with consequences:

    post-LN (the paper):   x = LayerNorm(x + Sublayer(x))
    pre-LN (norm_first):   x = x + Sublayer(LayerNorm(x))

In pre-LN the residual stream is never normalised on its way up: the output of a
stack of n sublayers is h_0 + h_1 + ... + h_n, the input plus every sublayer's
contribution, which is why a final LayerNorm follows the stack and why deep
pre-LN models train without a warm-up. Post-LN normalises after every sublayer;
it needs the learning-rate warm-up of the paper.

Dropout (rate `dropout`) is applied, as in the paper and in PyTorch, to each
sublayer's output before the residual add, to the attention weights, inside the
feed-forward after the activation, and to the sum of embeddings and positions.
"""
import math

from .. import backend
from ..grad_mode import no_grad
from ..tensor import Tensor, as_array
from . import init
from .attention import KVCache, MultiHeadAttention, causal_mask
from .layers import Dense, Dropout, Embedding, LayerNorm, activation_function, empty_parameter
from .module import Module, ModuleList


class PositionalEncoding(Module):
    """Sinusoidal positions added to the embeddings:

        pe[p, 2i]   = sin(p / 10000^(2i / d_model))
        pe[p, 2i+1] = cos(p / 10000^(2i / d_model))
        forward(x) = dropout(x + pe[offset : offset + T])      x (..., T, d_model)

    Each pair of dimensions is a rotation at its own frequency, from 1 down to
    1/10000 radians per position, so pe[p + k] is a fixed linear function of pe[p]
    (attention can learn relative offsets) and every position up to max_len gets a
    distinct code. pe is a buffer (saved, moved by to(), not learned).
    offset: the position of x's first row (decoding with a cache).
    """

    def __init__(self, d_model, max_len=5000, dropout=0.0):
        super().__init__()
        self.d_model, self.max_len = d_model, max_len
        host = backend.numpy
        position = host.arange(max_len, dtype=host.float64)[:, None]             # (max_len, 1)
        frequency = 10000.0 ** (-host.arange(0, d_model, 2, dtype=host.float64) / d_model)  # 1/10000^(2i/d)
        table = host.zeros((max_len, d_model))
        table[:, 0::2] = host.sin(position * frequency)
        table[:, 1::2] = host.cos(position * frequency[: d_model // 2])          # odd d_model: one cos fewer
        self.register_buffer("pe", Tensor(table.astype(backend.default_float()),
                                          device=backend.get_default_device()))
        self.dropout = Dropout(dropout)

    def forward(self, x, offset=0):
        T = x.shape[-2]
        if x.shape[-1] != self.d_model:
            raise ValueError(f"PositionalEncoding: expected last axis d_model = {self.d_model}, got shape {x.shape}")
        if offset + T > self.max_len:
            raise ValueError(f"PositionalEncoding: positions up to {offset + T} requested, max_len is {self.max_len}")
        table = self.pe.data[offset:offset + T]
        if table.dtype != x.dtype:
            table = table.astype(x.dtype)
        return self.dropout(x + Tensor(table))

    def extra_repr(self):
        return f"d_model={self.d_model}, max_len={self.max_len}"


class FeedForward(Module):
    """FFN(x) = linear2(dropout(act(linear1(x)))) = act(x W1 + b1) W2 + b2 (without dropout).
    x (..., d_model) -> (..., d_model); W1 (d_model, d_ff), W2 (d_ff, d_model).
    The same two-layer network at every position; d_ff is usually 4 d_model.
    activation: "relu", "gelu" (exact, x Phi(x)), "gelu_tanh" (GPT-2's tanh
    approximation), "tanh", "sigmoid", or any callable on Tensors."""

    def __init__(self, d_model, d_ff, activation="relu", dropout=0.0):
        super().__init__()
        self.linear1 = Dense(d_model, d_ff)
        self.dropout = Dropout(dropout)
        self.linear2 = Dense(d_ff, d_model)
        self.activation = activation
        self._act = activation_function(activation)

    def forward(self, x):
        return self.linear2(self.dropout(self._act(self.linear1(x))))

    def extra_repr(self):
        return f"activation={getattr(self.activation, '__name__', self.activation)!r}"


class _FeedForwardNames:
    """linear1 and linear2 under the names PyTorch's Transformer layers give them (and
    API.md promises): read-only views of feed_forward.linear1 and .linear2. A state
    dict saved with those names (PyTorch's, or minigrad's before FeedForward became a
    submodule) still loads: Module.load_state_dict reads state_dict_aliases."""

    state_dict_aliases = {"linear1": "feed_forward.linear1", "linear2": "feed_forward.linear2"}
    linear1 = property(lambda self: self.feed_forward.linear1, doc="feed_forward.linear1: (d_model, d_ff)")
    linear2 = property(lambda self: self.feed_forward.linear2, doc="feed_forward.linear2: (d_ff, d_model)")


def _rate(specific, default):
    return default if specific is None else specific


class TransformerEncoderLayer(_FeedForwardNames, Module):
    """One encoder layer: self-attention, then the position-wise feed-forward.

        post-LN (norm_first=False, the paper, BERT):
            x = norm1(x + dropout1(self_attn(x)))
            x = norm2(x + dropout2(feed_forward(x)))
        pre-LN (norm_first=True, GPT-2):
            x = x + dropout1(self_attn(norm1(x)))
            x = x + dropout2(feed_forward(norm2(x)))
    with feed_forward(x) = linear2(dropout(act(linear1(x)))) (FeedForward).
    x (B, T, d_model) -> (B, T, d_model).

    forward(x, mask=None, cache=None): mask broadcastable to (B, n_heads, T, T), True =
    may attend (a padding mask (B, 1, 1, T), or causal_mask for a decoder-only model).
    cache: a KVCache for decoding one position at a time (GPT): x holds only the new
    positions, and self-attention also reads the keys and values cached before.

    Dropout rates: `dropout` on each sublayer's output (dropout1, dropout2), and by
    default also on the attention weights and inside the feed-forward, as in PyTorch.
    attention_dropout and activation_dropout (fairseq's names) set those two apart:
    BERT drops attention weights at attention_probs_dropout_prob and has no dropout
    inside the feed-forward (activation_dropout=0), nor does GPT-2.
    layer_norm_eps: the eps of norm1 and norm2 (BERT uses 1e-12).
    Submodules self_attn, feed_forward, norm1, norm2, dropout1, dropout2; linear1 and
    linear2 name feed_forward's (PyTorch's names).
    """

    def __init__(self, d_model, n_heads, d_ff, dropout=0.1, activation="relu", norm_first=False,
                 layer_norm_eps=1e-5, attention_dropout=None, activation_dropout=None):
        super().__init__()
        self.norm_first = norm_first
        self.self_attn = MultiHeadAttention(d_model, n_heads, dropout=_rate(attention_dropout, dropout))
        self.feed_forward = FeedForward(d_model, d_ff, activation, _rate(activation_dropout, dropout))
        self.norm1, self.norm2 = (LayerNorm(d_model, eps=layer_norm_eps) for _ in range(2))
        self.dropout1, self.dropout2 = (Dropout(dropout) for _ in range(2))

    def forward(self, x, mask=None, cache=None):
        if self.norm_first:
            x = x + self.dropout1(self.self_attn(self.norm1(x), mask=mask, cache=cache))
            x = x + self.dropout2(self.feed_forward(self.norm2(x)))
        else:
            x = self.norm1(x + self.dropout1(self.self_attn(x, mask=mask, cache=cache)))
            x = self.norm2(x + self.dropout2(self.feed_forward(x)))
        return x

    def extra_repr(self):
        return f"norm_first={self.norm_first}"


class TransformerDecoderLayer(_FeedForwardNames, Module):
    """One decoder layer: masked self-attention, attention to the encoder's output
    (memory), then the position-wise feed-forward.

        post-LN (norm_first=False, the paper):
            x = norm1(x + dropout1(self_attn(x, mask=tgt_mask)))
            x = norm2(x + dropout2(cross_attn(x, memory, mask=memory_mask)))
            x = norm3(x + dropout3(feed_forward(x)))
        pre-LN (norm_first=True):
            x = x + dropout1(self_attn(norm1(x), mask=tgt_mask))
            x = x + dropout2(cross_attn(norm2(x), memory, mask=memory_mask))
            x = x + dropout3(feed_forward(norm3(x)))
    x (B, Tt, d_model), memory (B, Ts, d_model) -> (B, Tt, d_model).
    tgt_mask: broadcastable to (B, n_heads, Tt, Tt), usually causal_mask(Tt) (this layer
    does not add it by itself, like PyTorch's); memory_mask: to (B, n_heads, Tt, Ts),
    usually the source's padding mask (B, 1, 1, Ts).
    cache: from new_cache(), for decoding one position at a time (x holds only the
    new positions). The other arguments are TransformerEncoderLayer's.
    """

    def __init__(self, d_model, n_heads, d_ff, dropout=0.1, activation="relu", norm_first=False,
                 layer_norm_eps=1e-5, attention_dropout=None, activation_dropout=None):
        super().__init__()
        self.norm_first = norm_first
        self.self_attn = MultiHeadAttention(d_model, n_heads, dropout=_rate(attention_dropout, dropout))
        self.cross_attn = MultiHeadAttention(d_model, n_heads, dropout=_rate(attention_dropout, dropout))
        self.feed_forward = FeedForward(d_model, d_ff, activation, _rate(activation_dropout, dropout))
        self.norm1, self.norm2, self.norm3 = (LayerNorm(d_model, eps=layer_norm_eps) for _ in range(3))
        self.dropout1, self.dropout2, self.dropout3 = (Dropout(dropout) for _ in range(3))

    @staticmethod
    def new_cache():
        """Empty caches for one decoding run: the self-attention's growing keys and
        values, and the cross-attention's, computed once from memory."""
        return {"self_attn": KVCache(), "cross_attn": KVCache(static=True)}

    def forward(self, x, memory, tgt_mask=None, memory_mask=None, cache=None):
        self_cache, cross_cache = (cache["self_attn"], cache["cross_attn"]) if cache is not None else (None, None)
        if self.norm_first:
            x = x + self.dropout1(self.self_attn(self.norm1(x), mask=tgt_mask, cache=self_cache))
            x = x + self.dropout2(self.cross_attn(self.norm2(x), memory, mask=memory_mask, cache=cross_cache))
            x = x + self.dropout3(self.feed_forward(self.norm3(x)))
        else:
            x = self.norm1(x + self.dropout1(self.self_attn(x, mask=tgt_mask, cache=self_cache)))
            x = self.norm2(x + self.dropout2(self.cross_attn(x, memory, mask=memory_mask, cache=cross_cache)))
            x = self.norm3(x + self.dropout3(self.feed_forward(x)))
        return x

    def extra_repr(self):
        return f"norm_first={self.norm_first}"


class Transformer(Module):
    """Encoder-decoder Transformer for sequence-to-sequence tasks (translation).

        encode:  memory = EncoderStack(PE(src_embed(src) * sqrt(d_model)))
        decode:  h = DecoderStack(PE(tgt_embed(tgt) * sqrt(d_model)), memory)
                 logits = h W_out + b_out      (W_out = tgt_embed.weight^T if tie_embeddings)
    src (B, Ts), tgt (B, Tt) integer ids -> logits (B, Tt, tgt_vocab).

    The stacks have n_layers layers each. In the pre-LN form (norm_first=True) a
    final LayerNorm (encoder_norm, decoder_norm) ends each stack, because pre-LN
    layers leave the residual stream un-normalised. Differences from PyTorch's
    nn.Transformer, which covers only the two stacks: this one includes the
    embeddings, positions and output projection and returns logits; it adds the
    final norms only in the pre-LN form (PyTorch adds them in both, where in post-LN
    they follow a LayerNorm already); and decode() uses causal_mask(Tt) when tgt_mask
    is None (PyTorch applies no mask unless asked) - pass an all-True mask to attend
    everywhere.

    src_mask: broadcastable to (B, 1, Ts, Ts) for the encoder and (B, 1, Tt, Ts) for
    cross-attention, usually padding_mask(src, pad_id) of shape (B, 1, 1, Ts).

    Initialisation: every weight matrix Xavier-uniform and biases zero (as PyTorch's
    nn.Transformer), embeddings N(0, 1/d_model), so that after the sqrt(d_model)
    scaling they have unit variance, the same scale as the positional encoding.
    """

    def __init__(self, src_vocab, tgt_vocab, d_model=512, n_heads=8, n_layers=6, d_ff=2048,
                 dropout=0.1, max_len=5000, norm_first=False, activation="relu", tie_embeddings=False):
        super().__init__()
        self.d_model, self.norm_first, self.tie_embeddings = d_model, norm_first, tie_embeddings
        self.src_embed = Embedding(src_vocab, d_model)
        self.tgt_embed = Embedding(tgt_vocab, d_model)
        self.pos_encoding = PositionalEncoding(d_model, max_len, dropout)
        self.encoder_layers = ModuleList(
            TransformerEncoderLayer(d_model, n_heads, d_ff, dropout, activation, norm_first)
            for _ in range(n_layers))
        self.decoder_layers = ModuleList(
            TransformerDecoderLayer(d_model, n_heads, d_ff, dropout, activation, norm_first)
            for _ in range(n_layers))
        self.encoder_norm = LayerNorm(d_model) if norm_first else None
        self.decoder_norm = LayerNorm(d_model) if norm_first else None
        if tie_embeddings:
            self.out_proj = None
            self.out_bias = init.zeros_(empty_parameter(tgt_vocab))
        else:
            self.out_proj = Dense(d_model, tgt_vocab)
        self._reset_parameters()

    def _reset_parameters(self):
        for module in self.modules():
            if isinstance(module, Dense):
                init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    init.zeros_(module.bias)
            elif isinstance(module, Embedding):
                init.normal_(module.weight, 0.0, self.d_model ** -0.5)

    def embed(self, embedding, ids, offset=0):
        """PE(embedding(ids) * sqrt(d_model)): (B, T) ids -> (B, T, d_model). The scaling
        keeps the learned embedding from being drowned by the positional signal."""
        return self.pos_encoding(embedding(ids) * math.sqrt(self.d_model), offset=offset)

    def encode(self, src, src_mask=None):
        """memory (B, Ts, d_model) from source ids (B, Ts). In the pre-LN form
        memory = encoder_norm(h_0 + h_1 + ... + h_2n), h_0 the embedded input and h_i
        the i-th sublayer's contribution (the output of a layer's dropout1 or dropout2)."""
        x = self.embed(self.src_embed, as_array(src, self.src_embed.weight.device))
        for layer in self.encoder_layers:
            x = layer(x, mask=src_mask)
        return self.encoder_norm(x) if self.encoder_norm is not None else x

    def decode_hidden(self, tgt, memory, src_mask=None, tgt_mask=None, cache=None):
        """The decoder stack's output (B, Tt, d_model), before the output projection.
        cache: from new_cache(); tgt then holds only the positions not yet seen."""
        tgt = as_array(tgt, self.tgt_embed.weight.device)
        offset = len(cache[0]["self_attn"]) if cache is not None else 0
        T = tgt.shape[-1]
        if tgt_mask is None and (cache is None or T > 1):
            tgt_mask = causal_mask(T, offset + T, device=memory.device)
        x = self.embed(self.tgt_embed, tgt, offset=offset)
        for index, layer in enumerate(self.decoder_layers):
            x = layer(x, memory, tgt_mask=tgt_mask, memory_mask=src_mask,
                      cache=cache[index] if cache is not None else None)
        return self.decoder_norm(x) if self.decoder_norm is not None else x

    def project(self, hidden):
        """Logits (..., tgt_vocab) from decoder states (..., d_model)."""
        if self.out_proj is None:
            return hidden @ self.tgt_embed.weight.T + self.out_bias
        return self.out_proj(hidden)

    def decode(self, tgt, memory, src_mask=None, tgt_mask=None, cache=None):
        """Logits (B, Tt, tgt_vocab) for target ids (B, Tt) given memory (B, Ts, d_model).
        Position t's logits predict token t + 1; tgt_mask defaults to causal_mask(Tt)."""
        return self.project(self.decode_hidden(tgt, memory, src_mask, tgt_mask, cache=cache))

    def forward(self, src, tgt, src_mask=None, tgt_mask=None):
        """Logits (B, Tt, tgt_vocab) = decode(tgt, encode(src, src_mask), src_mask, tgt_mask)."""
        return self.decode(tgt, self.encode(src, src_mask), src_mask, tgt_mask)

    def new_cache(self):
        return [layer.new_cache() for layer in self.decoder_layers]

    def translate(self, src, max_len, bos_id, eos_id, src_mask=None, use_cache=True):
        """Greedy decoding: start every target with bos_id, append the most likely next
        token until eos_id or max_len tokens. src (B, Ts) ids -> a list of B lists of
        token ids (without bos and eos). Runs in eval mode without a graph.

        With use_cache (default) each step feeds only the newest token and reuses the
        keys and values of earlier positions (KVCache), so a step costs one position's
        work; use_cache=False recomputes the whole prefix each step (same result).
        """
        xp = backend.xp_for(self.tgt_embed.weight.device)
        src = as_array(src, self.src_embed.weight.device)
        was_training = self.training
        self.eval()
        try:
            with no_grad():
                memory = self.encode(src, src_mask)
                B = src.shape[0]
                tokens = xp.full((B, 1), bos_id, dtype=xp.int64)
                finished = xp.zeros(B, dtype=bool)
                cache = self.new_cache() if use_cache else None
                for _ in range(max_len):
                    step_input = tokens[:, -1:] if use_cache else tokens
                    logits = self.decode(step_input, memory, src_mask, cache=cache)
                    next_token = logits.data[:, -1].argmax(axis=-1)
                    next_token = xp.where(finished, eos_id, next_token)
                    tokens = xp.concatenate([tokens, next_token[:, None]], axis=1)
                    finished |= next_token == eos_id
                    if bool(finished.all()):
                        break
        finally:
            self.train(was_training)
        result = []
        for row in backend.to_numpy(tokens[:, 1:]).tolist():
            result.append(row[:row.index(eos_id)] if eos_id in row else row)
        return result

    def extra_repr(self):
        return f"d_model={self.d_model}, norm_first={self.norm_first}, tie_embeddings={self.tie_embeddings}"
