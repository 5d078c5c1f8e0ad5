"""Per-example gradients, held as what a layer knows about them.

DP-SGD needs two things from the B per-example gradients G_b of a parameter
(b = 1..B, one per example of the batch):

    squared_norms()       ||G_b||^2 for every b                          (B,)
    weighted_sum(c)       sum_b c_b G_b, c_b the example's clipping factor  the parameter's shape

Neither needs the (B, *shape) array of all G_b, if the layer says how each G_b is
made. Three forms cover Dense, Embedding, LayerNorm and Conv2d:

    Materialised(grads)      G_b = grads[b]: the array itself, (B, *shape)
    OuterProducts(a, g)      G_b = sum_t a[b, t] (outer) g[b, t]         a (B, T, m), g (B, T, n)
                             (Dense: a = inputs, g = output gradients, summed over the
                             T positions of a sequence; Conv2d: over the output pixels)
    RowSums(ids, g, rows)    G_b = sum_t e_{ids[b, t]} (outer) g[b, t]   ids (B, T), g (B, T, n)
                             (an Embedding lookup: row ids[b, t] of the table gets g[b, t])

The norm of an outer-product sum, without forming it ("ghost clipping", Li, Tramer,
Liang, Hashimoto 2021, "Large Language Models Can Be Strong Differentially Private
Learners", section 4):

    ||sum_t a_t g_t^T||_F^2 = sum_{t,s} (a_t . a_s)(g_t . g_s) = <A A^T, G G^T>_F

two T x T Gram matrices per example: B T^2 (m + n) multiply-adds instead of the
B T m n of forming G_b. With T = 1 it is ||a||^2 ||g||^2. The weighted sum is one
matrix product, sum_b c_b G_b = (c * A)^T G over the B*T rows: the ordinary weight
gradient with each example's rows scaled (the "book-keeping" form of Bu et al. 2022,
so no second backward pass is needed). Nothing of size B x m x n is ever stored.

Every form works on the arrays of the parameter's device (numpy or cupy).
"""
from .. import backend
from ..backend.kernels.linalg import matmul      # large products shared over the kernel threads


class Materialised:
    """G_b = grads[b]; grads (B, *shape)."""

    def __init__(self, grads):
        self.grads = grads

    @property
    def batch_size(self):
        return self.grads.shape[0]

    def materialise(self):
        return self.grads

    def squared_norms(self):
        flat = self.grads.reshape(self.grads.shape[0], -1)
        # einsum reads the array once; (flat * flat).sum(1) would first write a copy of it
        # (400 MB for the MLP of bench_privacy: 2.3 s instead of 0.03 s)
        return backend.get_array_module(flat).einsum("bi,bi->b", flat, flat)

    def weighted_sum(self, factors):
        xp = backend.get_array_module(self.grads)
        return xp.tensordot(factors.astype(self.grads.dtype), self.grads, axes=1)


class OuterProducts:
    """G_b = sum_t a[b, t] (outer) g[b, t], reshaped to `shape`.   a (B, T, m), g (B, T, n).

    squared_norms picks the cheaper exact formula per call: the Gram form
    <A A^T, G G^T> when T (m + n) < m n (fewer multiply-adds), else every G_b formed
    and squared (B m n numbers, freed at once: for short sequences of wide layers
    that is less work than the two Gram matrices).
    force="gram" or "materialise" takes one path (the tests check both)."""

    def __init__(self, a, g, shape):
        self.a, self.g, self.shape = a, g, tuple(shape)

    @property
    def batch_size(self):
        return self.a.shape[0]

    def materialise(self):
        B, T, m = self.a.shape
        if T == 1:      # plain outer products: a broadcast product is 3x faster than matmul with k = 1
            grads = self.a.reshape(B, m, 1) * self.g.reshape(B, 1, -1)
        else:
            grads = matmul(self.a.swapaxes(1, 2), self.g)               # (B, m, n)
        return grads.reshape((B,) + self.shape)

    def squared_norms(self, force=None):
        a, g = self.a, self.g
        (_, T, m), n = a.shape, g.shape[-1]
        if T == 1:
            return (a * a).sum(axis=(1, 2)) * (g * g).sum(axis=(1, 2))
        use_gram = force == "gram" or (force is None and T * (m + n) < m * n)
        if use_gram:
            gram_a = matmul(a, a.swapaxes(1, 2))                     # (B, T, T): a_t . a_s
            gram_g = matmul(g, g.swapaxes(1, 2))                     # (B, T, T): g_t . g_s
            return (gram_a * gram_g).sum(axis=(1, 2))
        return Materialised(self.materialise()).squared_norms()

    def weighted_sum(self, factors):
        scaled = self.a * factors.astype(self.a.dtype)[:, None, None]
        rows_a = scaled.reshape(-1, scaled.shape[-1])                 # (B*T, m)
        rows_g = self.g.reshape(-1, self.g.shape[-1])                 # (B*T, n)
        return matmul(rows_a.T, rows_g).reshape(self.shape)

    def joined(self, other):
        """One OuterProducts for both (the same parameter used twice): the positions of
        the two calls side by side, T1 + T2, since G_b is a sum over positions."""
        xp = backend.get_array_module(self.a)
        return OuterProducts(xp.concatenate([self.a, other.a], axis=1),
                             xp.concatenate([self.g, other.g], axis=1), self.shape)


class RowSums:
    """G_b = sum_t e_{ids[b, t]} (outer) g[b, t]: row ids[b, t] of a (rows, n) table
    receives g[b, t].   ids (B, T) integers, g (B, T, n).

    G_b has at most T non-zero rows, so its norm needs no (rows, n) array: the rows an
    example touches are summed first (repeated ids add up), then squared,
        ||G_b||^2 = sum_v ||sum_{t: ids[b,t] = v} g[b, t]||^2,
    with B T n work for any table size."""

    def __init__(self, ids, g, rows):
        self.ids, self.g, self.rows = ids, g, rows

    @property
    def batch_size(self):
        return self.ids.shape[0]

    def materialise(self):
        xp = backend.get_array_module(self.g)
        B, T, n = self.g.shape
        grads = xp.zeros((B, self.rows, n), dtype=self.g.dtype)
        example = xp.broadcast_to(xp.arange(B)[:, None], (B, T))
        backend.scatter_add(grads, (example, self.ids), self.g)
        return grads

    def squared_norms(self):
        xp = backend.get_array_module(self.g)
        B, T, n = self.g.shape
        # one key per (example, row) pair; equal keys are the same row of the same G_b
        keys = (xp.arange(B)[:, None] * self.rows + self.ids).reshape(-1)
        unique_keys, slot = xp.unique(keys, return_inverse=True)
        row_sums = xp.zeros((unique_keys.shape[0], n), dtype=self.g.dtype)
        backend.scatter_add(row_sums, slot.reshape(-1), self.g.reshape(-1, n))
        norms = xp.zeros(B, dtype=self.g.dtype)
        backend.scatter_add(norms, unique_keys // self.rows, (row_sums * row_sums).sum(axis=1))
        return norms

    def weighted_sum(self, factors):
        xp = backend.get_array_module(self.g)
        n = self.g.shape[-1]
        total = xp.zeros((self.rows, n), dtype=self.g.dtype)
        scaled = self.g * factors.astype(self.g.dtype)[:, None, None]
        backend.scatter_add(total, self.ids.reshape(-1), scaled.reshape(-1, n))
        return total

    def joined(self, other):
        xp = backend.get_array_module(self.g)
        return RowSums(xp.concatenate([self.ids, other.ids], axis=1),
                       xp.concatenate([self.g, other.g], axis=1), self.rows)


def combine(parts):
    """The per-example gradient of a parameter used by several layer calls, as one form:
    G_b is the sum of the parts' G_b. Parts of one kind (two Dense calls, two lookups)
    are joined along their positions, so the ghost norm stays exact (the norm of a sum
    is not the sum of norms); mixed kinds (a tied embedding: a lookup and an output
    layer) are materialised and added."""
    if len(parts) == 1:
        return parts[0]
    kinds = {type(part) for part in parts}
    if len(kinds) == 1 and kinds.pop() in (OuterProducts, RowSums):
        joined = parts[0]
        for part in parts[1:]:
            joined = joined.joined(part)
        return joined
    total = parts[0].materialise()
    for part in parts[1:]:
        total = total + part.materialise()
    return Materialised(total)
