"""Lesson 6: multi-head attention, positional encoding and LayerNorm.

What you will learn
  * multi-head attention runs h attentions side by side, each on its own
    d_head = d_model / h columns of learned projections, and mixes them:
        head_i = softmax(Q_i K_i^T / sqrt(d_head)) V_i
        MultiHead(X) = Concat(head_1, ..., head_h) W^O + b^O
    (one (d_model, d_model) matrix per projection; a reshape cuts it into heads);
  * attention alone does not know word order: permuting the tokens only permutes
    the outputs. The sinusoidal positional encoding fixes that:
        pe[p, 2i] = sin(p / 10000^(2i/d_model)),  pe[p, 2i+1] = cos(p / 10000^(2i/d_model))
  * LayerNorm rescales each token's vector to mean 0 and variance 1, then
    applies a learned gain and shift:  y = (x - mean) / sqrt(var + eps) * gamma + beta;
  * how these three pieces and a feed-forward network make a Transformer layer.

Read alongside
  minigrad/nn/attention.py    MultiHeadAttention (split_heads, merge_heads), causal_mask
  minigrad/nn/transformer.py  PositionalEncoding, FeedForward, TransformerEncoderLayer
  minigrad/nn/layers.py       LayerNorm;  minigrad/ops/composite.py  LayerNormOp's forward and backward

Run:  python lessons/06_multihead_positional_layernorm.py [--quick] [--out DIR]
Writes heads.png (each head's attention map), positional_encoding.png (the pe
table and a few of its columns) and layernorm.png into the output folder.
"""
import argparse
import os

import matplotlib
matplotlib.use("Agg")                    # write PNG files, never open a window
import matplotlib.pyplot as plt
import numpy as np

import minigrad as mg
import minigrad.functional as F
import minigrad.nn as nn

parser = argparse.ArgumentParser(description="Lesson 6: multi-head attention, positions, LayerNorm")
parser.add_argument("--quick", action="store_true", help="a run of a few seconds (used by the tests)")
parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                  "output", "06_multihead_positional_layernorm"),
                    help="folder for the pictures this lesson writes")
args = parser.parse_args()
os.makedirs(args.out, exist_ok=True)
np.set_printoptions(precision=3, suppress=True, linewidth=110)


def section(title):
    print(f"\n=== {title} " + "=" * max(0, 70 - len(title)))


mg.manual_seed(0)
tokens = ["the", "cat", "sat", "on", "the", "mat"]
T, d_model, n_heads = len(tokens), 8, 2
vocabulary = sorted(set(tokens))
embedding = nn.Embedding(len(vocabulary), d_model)
ids = np.array([[vocabulary.index(token) for token in tokens]])          # (B=1, T=6)
x = embedding(ids)                                                       # (1, 6, 8)
print(f"sentence {tokens} -> ids {ids.tolist()} -> embeddings {x.shape} (B, T, d_model)")

# ---------------------------------------------------------------------------
section(f"1. Multi-head attention: d_model = {d_model}, h = {n_heads}, d_head = {d_model // n_heads}")
attention = nn.MultiHeadAttention(d_model, n_heads)
print(attention)
output, weights = attention(x, return_weights=True)
print(f"output {output.shape} (B, T, d_model); weights {weights.shape} (B, h, T, T)")

# The same, step by step, from the module's own weights:
d_head = d_model // n_heads
Q = x @ attention.q_proj.weight + attention.q_proj.bias       # (1, 6, 8)
K = x @ attention.k_proj.weight + attention.k_proj.bias
V = x @ attention.v_proj.weight + attention.v_proj.bias
heads = []
for i in range(n_heads):
    columns = slice(i * d_head, (i + 1) * d_head)              # head i owns these d_head columns
    heads.append(F.scaled_dot_product_attention(Q[..., columns], K[..., columns], V[..., columns]))
    print(f"  head {i}: columns {columns.start}..{columns.stop - 1} of Q, K, V -> {heads[-1].shape}")
by_hand = mg.concatenate(heads, axis=-1) @ attention.out_proj.weight + attention.out_proj.bias
print("Concat(head_0, head_1) W^O + b^O equals the module's output:",
      np.allclose(by_hand.numpy(), output.numpy(), atol=1e-5))
assert np.allclose(by_hand.numpy(), output.numpy(), atol=1e-5)
print("(The module does all heads in one batched matmul: (B, T, d_model) is reshaped to "
      "(B, T, h, d_head) and transposed to (B, h, T, d_head).)")

figure, panels = plt.subplots(1, n_heads, figsize=(4.2 * n_heads, 3.8), constrained_layout=True)
for i, panel in enumerate(panels):
    panel.imshow(weights.numpy()[0, i], cmap="viridis", vmin=0, vmax=1)
    panel.set_xticks(range(T), tokens); panel.set_yticks(range(T), tokens)
    panel.set_title(f"head {i} (random, untrained weights)")
figure.savefig(os.path.join(args.out, "heads.png"), dpi=100)
plt.close(figure)

# ---------------------------------------------------------------------------
section("2. Attention alone ignores word order")
# Swap "cat" and "mat": self-attention is permutation-equivariant, so the outputs
# are the same vectors, swapped. "the cat sat on the mat" and "the mat sat on the cat"
# would look identical to the model, apart from the order of the rows.
order = [0, 5, 2, 3, 4, 1]
swapped_output = attention(x[:, order])
print("attention(x permuted) == attention(x) permuted:",
      np.allclose(swapped_output.numpy(), output.numpy()[:, order], atol=1e-5))

# ---------------------------------------------------------------------------
section("3. Sinusoidal positional encoding")
max_len, pe_width = 100, 64
positional = nn.PositionalEncoding(pe_width, max_len=max_len)
table = positional.pe.numpy()                                            # (max_len, d_model), a buffer
position = np.arange(max_len)[:, None]
frequency = 1.0 / 10000 ** (np.arange(0, pe_width, 2) / pe_width)       # one per pair (2i, 2i+1)
formula = np.zeros((max_len, pe_width))
formula[:, 0::2] = np.sin(position * frequency)
formula[:, 1::2] = np.cos(position * frequency)
print(f"pe {table.shape}; matches the formula: {np.allclose(table, formula, atol=1e-6)}")
assert np.allclose(table, formula, atol=1e-6)
print("pe[0, :8] =", table[0, :8], "(position 0: sin 0 = 0, cos 0 = 1)")
print("pe[1, :8] =", table[1, :8])
# The dot product of two positions' codes depends only on their distance:
# sum_i cos(omega_i (p - q)), so attention can learn "look k places back".
for p in (10, 40):
    print(f"  pe[{p}] . pe[{p}+3] = {table[p] @ table[p + 3]:.4f}    pe[{p}] . pe[{p}+20] = {table[p] @ table[p + 20]:.4f}")
print(f"not learned: in parameters()? {'pe' in dict(positional.named_parameters())};  "
      f"in state_dict()? {'pe' in positional.state_dict()}")

small_positional = nn.PositionalEncoding(d_model, max_len=32)
with_positions = small_positional(x)                                     # x + pe[:T]
swapped_with_positions = small_positional(x[:, order])
print("with positions added, swapping cat and mat changes the outputs beyond a permutation:",
      not np.allclose(attention(swapped_with_positions).numpy(),
                      attention(with_positions).numpy()[:, order], atol=1e-5))

figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
image = left.imshow(table, aspect="auto", cmap="RdBu", vmin=-1, vmax=1)
left.set_xlabel("dimension (even: sin, odd: cos)"); left.set_ylabel("position p")
left.set_title(f"positional encoding table pe ({max_len} x {pe_width})")
figure.colorbar(image, ax=left)
for column in (0, 1, 10, 30):
    right.plot(table[:, column], label=f"dimension {column}")
right.set_xlabel("position p"); right.legend(fontsize=8)
right.set_title("low dimensions turn fast, high ones slowly")
figure.savefig(os.path.join(args.out, "positional_encoding.png"), dpi=100)
plt.close(figure)

# ---------------------------------------------------------------------------
section("4. LayerNorm")
norm = nn.LayerNorm(d_model)
print(norm, " gamma", norm.weight.shape, " beta", norm.bias.shape)
raw = mg.tensor(np.array([[1.0, 2, 3, 4, 5, 6, 7, 8],
                          [100, 200, 300, 400, 500, 600, 700, 800],
                          [-3, 0, 0, 0, 0, 0, 0, 3]], dtype=np.float32))
normed = norm(raw)
mean = raw.numpy().mean(-1, keepdims=True)
variance = raw.numpy().var(-1, keepdims=True)                             # biased: divides by d
formula = (raw.numpy() - mean) / np.sqrt(variance + norm.eps) * norm.weight.numpy() + norm.bias.numpy()
print("rows before: mean", mean.ravel(), " variance", variance.ravel())
print("rows after:  mean", normed.numpy().mean(-1), " variance", normed.numpy().var(-1))
print("matches (x - mean) / sqrt(var + eps) * gamma + beta:", np.allclose(normed.numpy(), formula, atol=1e-5))
print("rows 0 and 1 differ only by scale and come out the same:",
      np.allclose(normed.numpy()[0], normed.numpy()[1], atol=1e-4))
assert np.allclose(normed.numpy(), formula, atol=1e-5)
assert np.allclose(normed.numpy()[0], normed.numpy()[1], atol=1e-4)
# gamma and beta are learned: the network can undo the normalisation where that helps.

figure, panels = plt.subplots(1, 2, figsize=(9, 3.2), constrained_layout=True)
for index, row in enumerate(raw.numpy()):
    panels[0].plot(row, "o-", label=f"row {index}")
    panels[1].plot(normed.numpy()[index], "o-", label=f"row {index}")
panels[0].set_yscale("symlog"); panels[0].set_title("before LayerNorm"); panels[0].legend(fontsize=8)
panels[1].set_title("after: mean 0, variance 1 per row")
figure.savefig(os.path.join(args.out, "layernorm.png"), dpi=100)
plt.close(figure)

# ---------------------------------------------------------------------------
section("5. Putting them together: one Transformer encoder layer")
# post-LN (the paper):  x = LayerNorm(x + MultiHead(x));  x = LayerNorm(x + FFN(x))
# pre-LN:               x = x + MultiHead(LayerNorm(x));  x = x + FFN(LayerNorm(x))
layer = nn.TransformerEncoderLayer(d_model, n_heads, d_ff=4 * d_model, dropout=0.0)
print(layer)
encoded = layer(with_positions)
print(f"encoder layer: {with_positions.shape} -> {encoded.shape}, {layer.num_parameters()} parameters")
h = layer.norm1(with_positions + layer.self_attn(with_positions))
ffn = layer.linear2(F.relu(layer.linear1(h)))
print("by hand, norm2(h + FFN(h)) with h = norm1(x + attention(x)), matches:",
      np.allclose(layer.norm2(h + ffn).numpy(), encoded.numpy(), atol=1e-5))
assert np.allclose(layer.norm2(h + ffn).numpy(), encoded.numpy(), atol=1e-5)
print(f"\nWrote heads.png, positional_encoding.png and layernorm.png to {args.out}")
