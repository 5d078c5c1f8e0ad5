"""GPT: a decoder-only Transformer language model (GPT-2's architecture, small).

    x_0 = tok_emb[idx] + pos_emb[0..T-1]                          (B, T, d_model)
    for each block:   x = x + self_attn(norm1(x), causal)          pre-LN: the residual
                      x = x + feed_forward(norm2(x))               stream is never normalised
    logits = ln_f(x) @ tok_emb^T                                   (B, T, vocab), tied weights

Position t's logits predict token t + 1 from tokens 0..t (the causal mask hides the
rest), so one forward pass trains on all T next-token predictions at once.

Generation samples one token at a time. A KVCache per block keeps every earlier
position's keys and values, so each new token is one position of work (its own
q, k, v and a row of attention) instead of a pass over the whole context.
"""
import math
import numbers

from .. import backend
from ..grad_mode import no_grad
from ..nn import Dense, Dropout, Embedding, KVCache, LayerNorm, Module, ModuleList, TransformerEncoderLayer
from ..nn import causal_mask, init
from ..tensor import Tensor, as_array


class GPT(Module):
    """GPT(vocab_size, block_size, n_layer, n_head, d_model, dropout=0.0)

    forward(idx) -> logits: idx (B, T) integer ids with T <= block_size -> (B, T, vocab_size).
    Submodules tok_emb (vocab, d_model), pos_emb (block_size, d_model, learned
    positions as in GPT-2), blocks, ln_f; the output layer is tok_emb's weight,
    transposed (tied: one matrix maps ids to vectors and back).

    Each of the n_layer blocks is a pre-LN nn.TransformerEncoderLayer (GPT-2's block):
        x = x + dropout1(self_attn(norm1(x), mask=causal))
        x = x + dropout2(feed_forward(norm2(x))),  feed_forward(x) = linear2(gelu_tanh(linear1(x)))
    with d_ff = 4 d_model, GELU's tanh approximation, `dropout` on the attention weights
    and on each sublayer's output, and none inside the feed-forward (as GPT-2).

    Initialisation (GPT-2): every weight matrix and embedding ~ N(0, 0.02^2), biases 0;
    the two projections that write into the residual stream in each block
    (self_attn.out_proj, feed_forward.linear2) ~ N(0, (0.02 / sqrt(2 n_layer))^2), because
    the stream is a sum of 2 n_layer such contributions and its variance should not grow
    with depth.
    """

    def __init__(self, vocab_size, block_size, n_layer, n_head, d_model, dropout=0.0):
        super().__init__()
        self.vocab_size, self.block_size = vocab_size, block_size
        self.n_layer, self.n_head, self.d_model = n_layer, n_head, d_model
        self.tok_emb = Embedding(vocab_size, d_model)
        self.pos_emb = Embedding(block_size, d_model)
        self.dropout = Dropout(dropout)
        self.blocks = ModuleList(
            TransformerEncoderLayer(d_model, n_head, 4 * d_model, dropout, activation="gelu_tanh",
                                    norm_first=True, activation_dropout=0.0)
            for _ in range(n_layer))
        self.ln_f = LayerNorm(d_model)
        self._init_weights()

    def _init_weights(self):
        for module in self.modules():
            if isinstance(module, Dense):
                init.normal_(module.weight, 0.0, 0.02)
                if module.bias is not None:
                    init.zeros_(module.bias)
            elif isinstance(module, Embedding):
                init.normal_(module.weight, 0.0, 0.02)
        for block in self.blocks:
            init.normal_(block.self_attn.out_proj.weight, 0.0, 0.02 / math.sqrt(2 * self.n_layer))
            init.normal_(block.feed_forward.linear2.weight, 0.0, 0.02 / math.sqrt(2 * self.n_layer))

    def forward(self, idx, cache=None):
        """Logits (B, T, vocab_size) for ids (B, T). With `cache` (from new_cache()), idx
        holds only positions not yet seen; they continue after the cached ones."""
        ids = as_array(idx, self.tok_emb.weight.device)
        if ids.ndim != 2 or ids.shape[1] == 0:
            raise ValueError(f"GPT: expected ids of shape (B, T) with T >= 1, got {tuple(ids.shape)}")
        offset = len(cache[0]) if cache is not None else 0
        T = ids.shape[1]
        if offset + T > self.block_size:
            raise ValueError(f"GPT: {offset + T} positions exceed block_size {self.block_size}; crop the context")
        # the position ids of every row, (B, T): through the layer's call, so that hooks
        # see each example's use of the table (per-example gradients, privacy/). It costs a
        # gather and a scatter-add of B*T rows where a slice of the table would do: about
        # 1 ms of a 250 ms training step at B 16, T 128, d 256 (0.4%), for one code path.
        xp = backend.get_array_module(ids)
        positions = xp.broadcast_to(xp.arange(offset, offset + T), ids.shape)
        x = self.dropout(self.tok_emb(ids) + self.pos_emb(positions))
        mask = causal_mask(T, offset + T, device=x.device) if T > 1 else None   # one new token sees all
        for index, block in enumerate(self.blocks):
            x = block(x, mask=mask, cache=cache[index] if cache is not None else None)
        return self.tok_emb(self.ln_f(x), reverse=True)                           # ln_f(x) @ tok_emb^T

    def new_cache(self):
        """One empty KVCache per block."""
        return [KVCache() for _ in self.blocks]

    def generate(self, idx, max_new_tokens, temperature=1.0, top_k=None, seed=None, use_cache=True):
        """Extend each row of idx (B, T) by max_new_tokens sampled tokens; returns (B, T + new)
        int64 ids as a Tensor. Runs in eval mode (no dropout) without a graph.

        Each token is drawn from softmax(logits / temperature) of the last position,
        restricted to the top_k most likely when top_k is given (ties at the k-th value
        kept); temperature=0 picks the most likely token. seed: the draws come from
        their own generator seeded with it (else from mg.manual_seed's generator).

        Context: at most block_size tokens fit. When the context would exceed it, it is
        cropped to its last block_size // 2 tokens (not slid by one token as in nanoGPT):
        learned positions mean that sliding the window changes every cached key, so a
        one-token slide would cost a full pass per token; halving keeps the cost per new
        token at one position on average. use_cache=False recomputes the whole context
        every step with the same cropping, and gives the same tokens.
        """
        _check_sampling(max_new_tokens, temperature, top_k)
        device = self.tok_emb.weight.device
        host = backend.numpy
        rng = host.random.default_rng(seed) if seed is not None else backend.rng()
        tokens = as_array(idx, "cpu").astype(host.int64)
        if tokens.ndim != 2 or tokens.shape[1] == 0:
            raise ValueError(f"GPT.generate: expected a non-empty prompt of shape (B, T), got {tokens.shape}")
        start = max(0, tokens.shape[1] - self.block_size)      # first position in the context
        keep = max(1, self.block_size // 2)
        cache = None
        was_training = self.training
        self.eval()
        try:
            with no_grad():
                for _ in range(max_new_tokens):
                    restart = tokens.shape[1] - start > self.block_size
                    if restart:
                        start = tokens.shape[1] - keep
                    if not use_cache:
                        logits = self(backend.to_device(tokens[:, start:], device))
                    elif cache is None or restart:
                        cache = self.new_cache()
                        logits = self(backend.to_device(tokens[:, start:], device), cache=cache)
                    else:
                        logits = self(backend.to_device(tokens[:, -1:], device), cache=cache)
                    last = backend.to_numpy(logits.data[:, -1]).astype(host.float64)   # (B, vocab)
                    next_token = _sample(last, temperature, top_k, rng)
                    tokens = host.concatenate([tokens, next_token[:, None]], axis=1)
        finally:
            self.train(was_training)
        return Tensor(backend.to_device(tokens, device))

    def extra_repr(self):
        return (f"vocab_size={self.vocab_size}, block_size={self.block_size}, n_layer={self.n_layer}, "
                f"n_head={self.n_head}, d_model={self.d_model}")


def _is_integer(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _check_sampling(max_new_tokens, temperature, top_k):
    """Raise on settings that would sample nonsense: a NaN temperature turns every
    probability into NaN, and the draw then always lands on id 0."""
    if not _is_integer(max_new_tokens) or max_new_tokens < 0:
        raise ValueError(f"GPT.generate: max_new_tokens must be an integer >= 0, got {max_new_tokens!r}")
    if (isinstance(temperature, bool) or not isinstance(temperature, numbers.Real)
            or not math.isfinite(temperature) or temperature < 0):
        raise ValueError(f"GPT.generate: temperature must be a finite number >= 0, got {temperature!r}")
    if top_k is not None and (not _is_integer(top_k) or top_k < 1):
        raise ValueError(f"GPT.generate: top_k must be None or an integer >= 1, got {top_k!r}")


def _sample(logits, temperature, top_k, rng):
    """One id per row of host logits (B, V): argmax at temperature 0, else a draw from
    softmax(logits / temperature) over the top_k largest (all when top_k is None)."""
    host = backend.numpy
    if temperature == 0:
        return logits.argmax(axis=-1)
    logits = logits / temperature
    if top_k is not None and top_k < logits.shape[-1]:
        kth = -host.partition(-logits, top_k - 1, axis=-1)[:, top_k - 1:top_k]    # k-th largest
        logits = host.where(logits < kth, -host.inf, logits)
    probs = host.exp(logits - logits.max(axis=-1, keepdims=True))
    cdf = host.cumsum(probs, axis=-1)
    cdf = cdf / cdf[:, -1:]                       # ends at exactly 1, so u < 1 always lands
    u = rng.random((logits.shape[0], 1))
    # the first index whose cumulative probability exceeds u; zero-probability ids never qualify
    return (cdf <= u).sum(axis=-1).astype(host.int64)
