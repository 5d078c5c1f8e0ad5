"""The Transformer of "Attention Is All You Need" (Vaswani et al. 2017), in pieces.

    PositionalEncoding        adds sin/cos of the position to each embedding
    FeedForward               FFN(x) = act(x W1 + b1) W2 + b2, applied at every position
    TransformerEncoderLayer   self-attention, then feed-forward
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
from ..tensor import Tensor, no_grad
from .attention import KVCache, MultiHeadAttention, causal_mask
from .layers import (Dense, Dropout, Embedding, LayerNorm, activation_function, constant_parameter,
                     normal_, uniform_)
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
    The same two-layer network at every position; d_ff is usually 4 d_model."""

    def __init__(self, d_model, d_ff, activation="relu", dropout=0.0):
        super().__init__()
        self.linear1 = Dense(d_model, d_ff)
        self.linear2 = Dense(d_ff, d_model)
        self.dropout = Dropout(dropout)
        self.activation = activation
        self._act = activation_function(activation)

    def forward(self, x):
        return _position_wise(self, x)


def _position_wise(layer, x):
    """FFN(x) = linear2(dropout(act(linear1(x)))) from `layer`'s own linear1, linear2,
    dropout and _act: FeedForward and both Transformer layers (which keep linear1 and
    linear2 as direct submodules, the names PyTorch's checkpoints use) share it."""
    return layer.linear2(layer.dropout(layer._act(layer.linear1(x))))


def _record(residuals, contribution):
    if residuals is not None:
        residuals.append(contribution)
    return contribution


class TransformerEncoderLayer(Module):
    """One encoder layer: self-attention, then the position-wise feed-forward.

        post-LN (norm_first=False, the paper):
            x = norm1(x + dropout1(self_attn(x)))
            x = norm2(x + dropout2(FFN(x)))
        pre-LN (norm_first=True):
            x = x + dropout1(self_attn(norm1(x)))
            x = x + dropout2(FFN(norm2(x)))
    with FFN(x) = linear2(dropout(act(linear1(x)))).   x (B, T, d_model) -> (B, T, d_model).

    forward(x, mask=None, residuals=None): mask broadcastable to (B, n_heads, T, T),
    True = may attend (a padding mask (B, 1, 1, T) typically). If `residuals` is a
    list, each sublayer's contribution (the dropout1(...) and dropout2(...) terms
    above) is appended to it; in pre-LN the output is exactly x plus their sum.
    """

    def __init__(self, d_model, n_heads, d_ff, dropout=0.1, activation="relu", norm_first=False):
        super().__init__()
        self.norm_first = norm_first
        self.self_attn = MultiHeadAttention(d_model, n_heads, dropout=dropout)
        self.linear1 = Dense(d_model, d_ff)
        self.linear2 = Dense(d_ff, d_model)
        self.norm1 = LayerNorm(d_model)
        self.norm2 = LayerNorm(d_model)
        self.dropout = Dropout(dropout)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)
        self.activation = activation
        self._act = activation_function(activation)

    def feed_forward(self, x):
        return _position_wise(self, x)

    def forward(self, x, mask=None, residuals=None):
        if self.norm_first:
            x = x + _record(residuals, self.dropout1(self.self_attn(self.norm1(x), mask=mask)))
            x = x + _record(residuals, self.dropout2(self.feed_forward(self.norm2(x))))
        else:
            x = self.norm1(x + _record(residuals, self.dropout1(self.self_attn(x, mask=mask))))
            x = self.norm2(x + _record(residuals, self.dropout2(self.feed_forward(x))))
        return x

    def extra_repr(self):
        return f"norm_first={self.norm_first}"


class TransformerDecoderLayer(Module):
    """One decoder layer: masked self-attention, attention to the encoder's output
    (memory), then the position-wise feed-forward.

        post-LN (norm_first=False, the paper):
            x = norm1(x + dropout1(self_attn(x, mask=tgt_mask)))
            x = norm2(x + dropout2(cross_attn(x, memory, mask=memory_mask)))
            x = norm3(x + dropout3(FFN(x)))
        pre-LN (norm_first=True):
            x = x + dropout1(self_attn(norm1(x), mask=tgt_mask))
            x = x + dropout2(cross_attn(norm2(x), memory, mask=memory_mask))
            x = x + dropout3(FFN(norm3(x)))
    x (B, Tt, d_model), memory (B, Ts, d_model) -> (B, Tt, d_model).
    tgt_mask: broadcastable to (B, n_heads, Tt, Tt), usually causal_mask(Tt) (this layer
    does not add it by itself, like PyTorch's); memory_mask: to (B, n_heads, Tt, Ts),
    usually the source's padding mask (B, 1, 1, Ts).
    residuals: as in TransformerEncoderLayer. cache: from new_cache(), for decoding
    one position at a time (x holds only the new positions).
    """

    def __init__(self, d_model, n_heads, d_ff, dropout=0.1, activation="relu", norm_first=False):
        super().__init__()
        self.norm_first = norm_first
        self.self_attn = MultiHeadAttention(d_model, n_heads, dropout=dropout)
        self.cross_attn = MultiHeadAttention(d_model, n_heads, dropout=dropout)
        self.linear1 = Dense(d_model, d_ff)
        self.linear2 = Dense(d_ff, d_model)
        self.norm1 = LayerNorm(d_model)
        self.norm2 = LayerNorm(d_model)
        self.norm3 = LayerNorm(d_model)
        self.dropout = Dropout(dropout)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)
        self.dropout3 = Dropout(dropout)
        self.activation = activation
        self._act = activation_function(activation)

    @staticmethod
    def new_cache():
        """Empty caches for one decoding run: the self-attention's growing keys and
        values, and the cross-attention's, computed once from memory."""
        return {"self_attn": KVCache(), "cross_attn": KVCache(static=True)}

    def feed_forward(self, x):
        return _position_wise(self, x)

    def forward(self, x, memory, tgt_mask=None, memory_mask=None, residuals=None, cache=None):
        self_cache = cache["self_attn"] if cache is not None else None
        cross_cache = cache["cross_attn"] if cache is not None else None

        def self_block(h):
            return _record(residuals, self.dropout1(self.self_attn(h, mask=tgt_mask, cache=self_cache)))

        def cross_block(h):
            return _record(residuals, self.dropout2(
                self.cross_attn(h, memory, mask=memory_mask, cache=cross_cache)))

        def ff_block(h):
            return _record(residuals, self.dropout3(self.feed_forward(h)))

        if self.norm_first:
            x = x + self_block(self.norm1(x))
            x = x + cross_block(self.norm2(x))
            x = x + ff_block(self.norm3(x))
        else:
            x = self.norm1(x + self_block(x))
            x = self.norm2(x + cross_block(x))
            x = self.norm3(x + ff_block(x))
        return x

    def extra_repr(self):
        return f"norm_first={self.norm_first}"


def _ids(ids, device):
    """Token ids (Tensor, array or nested list) as an integer array on `device`."""
    return ids.data if isinstance(ids, Tensor) else backend.to_device(ids, device)


def xavier_uniform_(weight):
    """Refill a (n_in, n_out) weight with U(-a, a), a = sqrt(6 / (n_in + n_out)) (Glorot and
    Bengio): forward activations and backward gradients keep about the same variance."""
    n_in, n_out = weight.shape
    uniform_(weight, math.sqrt(6.0 / (n_in + n_out)))


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
            self.out_bias = constant_parameter((tgt_vocab,), 0.0)
        else:
            self.out_proj = Dense(d_model, tgt_vocab)
        self._reset_parameters()

    def _reset_parameters(self):
        for module in self.modules():
            if isinstance(module, Dense):
                xavier_uniform_(module.weight)
                if module.bias is not None:
                    module.bias.data = module.bias.data * 0
            elif isinstance(module, Embedding):
                normal_(module.weight, self.d_model ** -0.5)

    def embed(self, embedding, ids, offset=0):
        """PE(embedding(ids) * sqrt(d_model)): (B, T) ids -> (B, T, d_model). The scaling
        keeps the learned embedding from being drowned by the positional signal."""
        return self.pos_encoding(embedding(ids) * math.sqrt(self.d_model), offset=offset)

    def encode(self, src, src_mask=None, residuals=None):
        """memory (B, Ts, d_model) from source ids (B, Ts). If `residuals` is a list it
        receives h_0 (the embedded input) and then every sublayer's contribution; in the
        pre-LN form memory = encoder_norm(h_0 + h_1 + ... + h_2n)."""
        x = self.embed(self.src_embed, _ids(src, self.src_embed.weight.device))
        _record(residuals, x)
        for layer in self.encoder_layers:
            x = layer(x, mask=src_mask, residuals=residuals)
        return self.encoder_norm(x) if self.encoder_norm is not None else x

    def decode_hidden(self, tgt, memory, src_mask=None, tgt_mask=None, residuals=None, cache=None):
        """The decoder stack's output (B, Tt, d_model), before the output projection.
        cache: from new_cache(); tgt then holds only the positions not yet seen."""
        tgt = _ids(tgt, self.tgt_embed.weight.device)
        offset = len(cache[0]["self_attn"]) if cache is not None else 0
        T = tgt.shape[-1]
        if tgt_mask is None and (cache is None or T > 1):
            tgt_mask = causal_mask(T, offset + T, device=memory.device)
        x = self.embed(self.tgt_embed, tgt, offset=offset)
        _record(residuals, x)
        for index, layer in enumerate(self.decoder_layers):
            x = layer(x, memory, tgt_mask=tgt_mask, memory_mask=src_mask, residuals=residuals,
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
        src = _ids(src, self.src_embed.weight.device)
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
