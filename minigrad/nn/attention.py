"""Multi-head attention, the masks it takes, and a key/value cache for decoding.

One head of attention is F.scaled_dot_product_attention:

    Attention(Q, K, V) = softmax(Q K^T / sqrt(d_k)) V

Multi-head attention runs n_heads of them side by side on learned projections
and mixes their outputs with one more projection (Vaswani et al. 2017, 3.2.2):

    head_i = Attention(X_q W^Q_i, X_k W^K_i, X_v W^V_i)
    MultiHead(X_q, X_k, X_v) = Concat(head_1, ..., head_h) W^O

Instead of h small matrices W^Q_i (d_model, d_head) there is one (d_model,
d_model) projection whose output columns are cut into h groups of d_head: a
reshape (..., T, d_model) -> (..., T, h, d_head) and a transpose to
(..., h, T, d_head) put every head on its own batch axis, so all heads run in
one batched matmul. The concatenation is the same reshape and transpose undone.

Masks are boolean with True = may attend, broadcast to (B, n_heads, Tq, Tk):
    padding_mask(ids, pad_id)   (B, 1, 1, Tk): no query looks at a padding key
    causal_mask(T)              (T, T): position t sees positions <= t only
    padding & causal            (B, 1, T, T): both
"""

from .. import backend
from .. import functional as F
from ..ops import concatenate
from ..tensor import Tensor, as_array
from .layers import Dense, check_sizes
from .module import Module


def causal_mask(T, T_keys=None, device=None):
    """Boolean (T, T) Tensor, True on and below the diagonal: query t may attend to keys <= t.

    With T_keys > T the T queries are the last T of T_keys positions (decoding with a
    cache of T_keys - T earlier positions): query i sits at position T_keys - T + i and
    may attend to keys j <= T_keys - T + i; the mask is (T, T_keys).
    PyTorch's nn.Transformer.generate_square_subsequent_mask gives the same pattern as
    a float mask (0 and -inf); here True means "may attend".
    """
    T_keys = T if T_keys is None else T_keys
    if T_keys < T:
        raise ValueError(f"causal_mask: {T} queries cannot be the last of only {T_keys} keys")
    xp = backend.xp_for(device or backend.get_default_device())
    return Tensor(xp.tril(xp.ones((T, T_keys), dtype=bool), k=T_keys - T))


def padding_mask(ids, pad_id):
    """Boolean (B, 1, 1, T) Tensor from token ids (B, T): True where ids != pad_id, so that
    no query attends to a padding key. It broadcasts over heads and queries."""
    data = as_array(ids)
    if data.ndim != 2:
        raise ValueError(f"padding_mask: expected ids of shape (B, T), got {tuple(data.shape)}")
    return Tensor((data != pad_id)[:, None, None, :])


class KVCache:
    """The keys and values of the positions already processed, per layer, for decoding
    one token at a time: a new token's query needs every earlier key and value, and
    those do not change (causal attention), so they are kept instead of recomputed.

    k, v: (B, n_heads, T_so_far, d_head) or None.
    static=True is for cross-attention: its keys and values come from the encoder's
    output (memory), which is the same at every step, so they are computed once.
    """

    def __init__(self, static=False):
        self.k = self.v = None
        self.static = static

    def __len__(self):
        return 0 if self.k is None else self.k.shape[-2]

    def update(self, k, v):
        """Append this step's keys and values along the time axis; return all of them."""
        if self.k is None or self.static:
            self.k, self.v = k, v
        else:
            self.k = concatenate([self.k, k], axis=-2)
            self.v = concatenate([self.v, v], axis=-2)
        return self.k, self.v


class MultiHeadAttention(Module):
    """MultiHead(Q, K, V) = Concat(head_1, ..., head_h) W^O + b^O,
    head_i = softmax(Q_i K_i^T / sqrt(d_head)) V_i,  Q_i, K_i, V_i = the i-th d_head
    columns of (query W^Q + b^Q), (key W^K + b^K), (value W^V + b^V);  d_head = d_model / h.

    query (..., Tq, d_model); key and value (..., Tk, d_model), both default to query
    (self-attention); value defaults to key when only key is given (cross-attention on
    an encoder's output). Output (..., Tq, d_model).
    mask: broadcastable to (B, n_heads, Tq, Tk), True = may attend.
    return_weights=True also returns the weights (B, n_heads, Tq, Tk) of every head
    (PyTorch averages them over heads unless average_attn_weights=False).
    cache: a KVCache for incremental decoding (see KVCache).
    To look at the weights of a model's attention without changing its code, see
    mg.viz.attention_weights (a forward hook on this module).

    Submodules q_proj, k_proj, v_proj, out_proj: Dense(d_model, d_model) each (PyTorch
    packs the first three into one in_proj_weight, and stores weights transposed).
    """

    def __init__(self, d_model, n_heads, dropout=0.0, bias=True):
        super().__init__()
        check_sizes("MultiHeadAttention", d_model=d_model, n_heads=n_heads)
        if d_model % n_heads:
            raise ValueError(f"MultiHeadAttention: d_model {d_model} is not divisible by n_heads {n_heads}")
        self.d_model, self.n_heads, self.d_head = d_model, n_heads, d_model // n_heads
        self.dropout = dropout
        self.q_proj = Dense(d_model, d_model, bias=bias)
        self.k_proj = Dense(d_model, d_model, bias=bias)
        self.v_proj = Dense(d_model, d_model, bias=bias)
        self.out_proj = Dense(d_model, d_model, bias=bias)

    def split_heads(self, x):
        """(..., T, d_model) -> (..., n_heads, T, d_head): head i gets columns i*d_head ... (i+1)*d_head - 1."""
        *lead, T, _ = x.shape
        return x.reshape(*lead, T, self.n_heads, self.d_head).swapaxes(-2, -3)

    def merge_heads(self, x):
        """(..., n_heads, T, d_head) -> (..., T, d_model): the heads concatenated, head 0 first."""
        x = x.swapaxes(-2, -3)
        return x.reshape(*x.shape[:-2], self.d_model)

    def forward(self, query, key=None, value=None, mask=None, return_weights=False, cache=None):
        key = query if key is None else key
        value = key if value is None else value
        for name, x in (("query", query), ("key", key), ("value", value)):
            if x.shape[-1] != self.d_model:
                raise ValueError(f"MultiHeadAttention: {name} has shape {x.shape}, expected last axis "
                                 f"d_model = {self.d_model}")
        if key.shape[-2] != value.shape[-2]:
            raise ValueError(f"MultiHeadAttention: key {key.shape} and value {value.shape} need the same length")
        q = self.split_heads(self.q_proj(query))                     # (B, h, Tq, d_head)
        if cache is not None and cache.static and cache.k is not None:
            k, v = cache.k, cache.v                                  # memory's keys, made once
        else:
            k = self.split_heads(self.k_proj(key))                   # (B, h, Tk, d_head)
            v = self.split_heads(self.v_proj(value))
            if cache is not None:
                k, v = cache.update(k, v)
        attended = F.scaled_dot_product_attention(
            q, k, v, mask=mask, dropout_p=self.dropout, return_weights=return_weights, training=self.training)
        heads, weights = attended if return_weights else (attended, None)
        output = self.out_proj(self.merge_heads(heads))              # (B, Tq, d_model)
        return (output, weights) if return_weights else output

    def extra_repr(self):
        return f"d_model={self.d_model}, n_heads={self.n_heads}, dropout={self.dropout}"

