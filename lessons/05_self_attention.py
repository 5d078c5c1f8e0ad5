"""Lesson 5: self-attention, by hand.

What you will learn
  * every token of a sentence asks a question (its query q), advertises what it
    contains (its key k) and offers some content (its value v):
        Q = X W_q,   K = X W_k,   V = X W_v            X (T, d_model)
  * the attention formula in four steps:
        1. scores  S = Q K^T                  how well query i matches key j   (T, T)
        2. scale   S / sqrt(d_k)              keeps the scores' spread independent of d_k
        3. softmax A = softmax(S / sqrt(d_k)) each row: weights >= 0 that sum to 1
        4. mix     Y = A V                    each output is a weighted average of values
    that is  Attention(Q, K, V) = softmax(Q K^T / sqrt(d_k)) V;
  * why the scale matters (dot products of random vectors grow like sqrt(d_k)), and
    what goes wrong without it: softmax saturates and the gradient vanishes (measured);
  * a causal mask, so a token can look only at itself and the tokens before it;
  * the same computation through F.scaled_dot_product_attention.

Read alongside
  minigrad/functional.py   scaled_dot_product_attention (the four steps, commented)
  minigrad/ops/composite.py  SoftmaxOp (forward and backward)

Run:  python lessons/05_self_attention.py [--quick] [--out DIR]
Writes attention_map.png (the weights A, full and causal) into the output folder.
"""
import argparse
import math
import os

import matplotlib
matplotlib.use("Agg")                    # write PNG files, never open a window
import matplotlib.pyplot as plt
import numpy as np

import minigrad as mg
import minigrad.functional as F

parser = argparse.ArgumentParser(description="Lesson 5: self-attention by hand")
parser.add_argument("--quick", action="store_true", help="a run of a few seconds (used by the tests)")
parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                  "output", "05_self_attention"),
                    help="folder for the pictures this lesson writes")
args = parser.parse_args()
os.makedirs(args.out, exist_ok=True)
np.set_printoptions(precision=3, suppress=True, linewidth=110)


def section(title):
    print(f"\n=== {title} " + "=" * max(0, 70 - len(title)))


# ---------------------------------------------------------------------------
section("0. A sentence of toy embeddings")
# Hand-made 4-dimensional embeddings, one feature per meaning, so that the
# numbers below can be read:  [thing, action, place, grammar word]
tokens = ["the", "cat", "sat", "on", "the", "mat"]
features = {
    "the": [0.0, 0.0, 0.0, 1.0],
    "cat": [1.0, 0.0, 0.0, 0.0],
    "sat": [0.0, 1.0, 0.0, 0.0],
    "on":  [0.0, 0.0, 0.5, 1.0],
    "mat": [0.0, 0.0, 1.0, 0.0],
}
X = mg.tensor([features[token] for token in tokens])                 # (T, d_model) = (6, 4)
print("tokens:", tokens)
print("X (T=6, d_model=4), columns = [thing, action, place, grammar]:\n", X.numpy())

# The projections. A key says what a token IS: [thing, action, place];
# a query says what a token LOOKS FOR:
#   a thing looks for an action (what did I do?), an action for a thing and a
#   place (who, where?), a grammar word for a thing or a place. Not one NEARBY:
#   nothing here says where a token stands, so attention cannot prefer near to
#   far (section 3 checks it; lesson 6 adds positions).
# In a real model these matrices are learned; here they are written by hand.
# (The factor 3 sharpens the softmax: it plays the role of a learned scale.)
W_k = mg.tensor([[1, 0, 0],          # thing   -> key "thing"
                 [0, 1, 0],          # action  -> key "action"
                 [0, 0, 1],          # place   -> key "place"
                 [0, 0, 0]], dtype="float32") * 3.0   # grammar -> nothing to offer
W_q = mg.tensor([[0, 1, 0],          # a thing looks for an action
                 [1, 0, 1],          # an action looks for a thing and a place
                 [0, 1, 0],          # a place looks for an action
                 [1, 0, 1]], dtype="float32") * 3.0   # a grammar word looks for a thing or a place
W_v = mg.tensor(np.eye(4, dtype=np.float32))     # values = the embeddings themselves, to read the mix
d_k = W_k.shape[1]

# ---------------------------------------------------------------------------
section("1. Queries, keys, values and the scores S = Q K^T")
Q = X @ W_q                                    # (6, 3)
K = X @ W_k                                    # (6, 3)
V = X @ W_v                                    # (6, 4)
print("Q = X W_q:\n", Q.numpy())
print("K = X W_k:\n", K.numpy())
scores = Q @ K.T                               # (6, 6): scores[i, j] = q_i . k_j
print("S = Q K^T (row i: how much token i's query matches each key):\n", scores.numpy())

# ---------------------------------------------------------------------------
section(f"2. Scale by 1 / sqrt(d_k) = 1 / sqrt({d_k})")
scaled = scores / math.sqrt(d_k)
print("S / sqrt(d_k):\n", scaled.numpy())
# Why: for q, k with independent N(0, 1) entries, q . k is a sum of d_k terms of
# variance 1, so its variance is d_k. Large scores push softmax to a one-hot
# vector whose gradient is almost zero; dividing by sqrt(d_k) brings the variance back to 1.
mg.manual_seed(0)
samples = 500 if args.quick else 4000
for width in (4, 64, 512):
    q, k = mg.randn(samples, width), mg.randn(samples, width)
    dots = (q * k).sum(axis=1)
    print(f"  d_k = {width:3d}: variance of q.k = {dots.var().item():7.1f},  "
          f"of q.k / sqrt(d_k) = {(dots / math.sqrt(width)).var().item():.2f}")

# Ablation: drop the 1 / sqrt(d_k). Random queries and keys (T = 16 tokens), and a
# random upstream gradient G standing in for the rest of a network: how peaked is
# softmax, and how much gradient flows back through it to the scores?
#     dL/dS_ij = A_ij (G_ij - sum_l A_il G_il)     ~ 0 when a row of A is one-hot
print("Ablation: the same random attention with and without the 1/sqrt(d_k)")
print("   d_k   scaled?   mean largest weight   median |dL/dS| per query   queries with |dL/dS| < 1e-3")
saturation = {}
for width in (4, 64, 512):
    q, k = mg.randn(32 if args.quick else 128, 16, width), mg.randn(32 if args.quick else 128, 16, width)
    upstream = mg.randn(q.shape[0], 16, 16)
    for scaled_run in (True, False):
        raw_scores = (q @ k.transpose(0, 2, 1)) * (1 / math.sqrt(width) if scaled_run else 1.0)
        raw_scores.requires_grad = True
        attention = F.softmax(raw_scores, axis=-1)
        (score_gradient,) = mg.grad((attention * upstream).sum(), [raw_scores])
        row_norms = np.linalg.norm(score_gradient.numpy(), axis=-1)
        saturation[width, scaled_run] = (attention.numpy().max(-1).mean(), np.median(row_norms),
                                         (row_norms < 1e-3).mean())
        print(f"  {width:4d}   {'yes' if scaled_run else 'no ':3s}       {saturation[width, scaled_run][0]:10.3f}"
              f"            {saturation[width, scaled_run][1]:12.2e}               {saturation[width, scaled_run][2]:6.0%}")
shrink = saturation[512, True][1] / saturation[512, False][1]
print(f"without the scale, at d_k = 512 softmax is nearly one-hot and the median gradient reaching the "
      f"scores is {shrink:.0f}x smaller:\nthose queries barely learn. With it, nothing changes with d_k.")
assert saturation[512, False][0] > 0.9 and shrink > 100
assert abs(saturation[512, True][1] / saturation[4, True][1] - 1) < 0.2

# ---------------------------------------------------------------------------
section("3. Softmax along each row: the attention weights A")
# softmax(s)_j = exp(s_j) / sum_l exp(s_l); computed stably by subtracting the row maximum first
weights = F.softmax(scaled, axis=-1)                              # (6, 6)
print("A = softmax(S / sqrt(d_k)):\n", weights.numpy())
print("every row sums to 1:", weights.sum(axis=-1).numpy())
# The two "the"s (positions 0 and 4) have the same embedding, so the same query: their
# rows are identical, although "mat" is next to the second and far from the first.
print("the rows of 'the'@0 and 'the'@4 are identical (no positions, so no 'nearby'):",
      np.array_equal(weights.numpy()[0], weights.numpy()[4]))
assert np.array_equal(weights.numpy()[0], weights.numpy()[4])
for i, token in enumerate(tokens):
    first, second = np.argsort(-weights.numpy()[i])[:2]
    print(f"  {token:>4s} (position {i}) attends to {tokens[first]!r}@{first} "
          f"({weights.numpy()[i, first]:.2f}) and {tokens[second]!r}@{second} ({weights.numpy()[i, second]:.2f})")

# ---------------------------------------------------------------------------
section("4. Mix the values: Y = A V")
Y = weights @ V                                                   # (6, 4)
print("Y = A V, columns = [thing, action, place, grammar]:\n", Y.numpy())
print("Row 'sat' now carries 'thing' and 'place' features: it gathered who sat ('cat') and where ('mat').")
assert Y.numpy()[2, 0] > 0.4 and Y.numpy()[2, 2] > 0.4, "row 'sat' should carry 'thing' and 'place'"

# ---------------------------------------------------------------------------
section("5. The same through F.scaled_dot_product_attention")
output, library_weights = F.scaled_dot_product_attention(Q, K, V, return_weights=True)
print("max |Y_by_hand - Y_library| =", float(np.abs(output.numpy() - Y.numpy()).max()))
print("max |A_by_hand - A_library| =", float(np.abs(library_weights.numpy() - weights.numpy()).max()))
assert np.allclose(output.numpy(), Y.numpy(), atol=1e-6)

# A batch works the same way: leading axes are carried along, (B, T, d) -> (B, T, d_v).
batch = mg.stack([X, X * 0.5], axis=0)                            # (2, 6, 4)
print("batched:", batch.shape, "->",
      F.scaled_dot_product_attention(batch @ W_q, batch @ W_k, batch @ W_v).shape)

# ---------------------------------------------------------------------------
section("6. A causal mask: look only backwards")
# mask[i, j] = True where token i may attend to token j, i.e. j <= i. The
# forbidden scores are set to a huge negative number before the softmax, so
# their weights are exactly 0. This is how GPT (lesson 8) predicts the next token
# without seeing it.
causal = np.tril(np.ones((len(tokens), len(tokens)), dtype=bool))
print("mask (1 = may attend):\n", causal.astype(int))
causal_output, causal_weights = F.scaled_dot_product_attention(Q, K, V, mask=causal, return_weights=True)
print("A with the causal mask:\n", causal_weights.numpy())
assert np.allclose(np.triu(causal_weights.numpy(), k=1), 0.0), "no weight may fall on a later token"

# Attention is differentiable: the gradient reaches the projection matrices, which
# is how a real model learns them.
W_q_learnable = mg.tensor(W_q.numpy(), requires_grad=True)
F.scaled_dot_product_attention(X @ W_q_learnable, K, V).sum().backward()
print("d(sum of outputs)/dW_q has shape", W_q_learnable.grad.shape,
      "and norm", round(float(np.linalg.norm(W_q_learnable.grad.numpy())), 4))

# ---------------------------------------------------------------------------
figure, panels = plt.subplots(1, 2, figsize=(11, 4.5), constrained_layout=True)
for panel, matrix, title in ((panels[0], weights, "self-attention weights A"),
                             (panels[1], causal_weights, "with a causal mask")):
    image = panel.imshow(matrix.numpy(), cmap="viridis", vmin=0, vmax=1)
    panel.set_xticks(range(len(tokens)), tokens)
    panel.set_yticks(range(len(tokens)), tokens)
    panel.set_xlabel("key (attended to)")
    panel.set_title(title)
    for i in range(len(tokens)):
        for j in range(len(tokens)):
            panel.text(j, i, f"{matrix.numpy()[i, j]:.2f}", ha="center", va="center",
                       color="white" if matrix.numpy()[i, j] < 0.5 else "black", fontsize=7)
panels[0].set_ylabel("query (attending)")
figure.colorbar(image, ax=panels, shrink=0.8)
figure.savefig(os.path.join(args.out, "attention_map.png"), dpi=100)
plt.close(figure)
print(f"\nWrote attention_map.png to {args.out}")
