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
  * how these three pieces and a feed-forward network make a Transformer layer;
  * ablations, trained: without positions a model is order-blind (shuffle the input,
    get the same outputs shuffled); without residual connections a deep stack stops
    training;
  * the reading in which the primer's Output = LayerNorm(h_1 + ... + h_n) holds exactly.

Read alongside
  minigrad/nn/attention.py    MultiHeadAttention (split_heads, merge_heads), causal_mask
  minigrad/nn/transformer.py  PositionalEncoding, FeedForward, TransformerEncoderLayer
  minigrad/nn/layers.py       LayerNorm;  minigrad/ops/composite.py  LayerNormOp's forward and backward
  minigrad/nn/module.py       register_forward_hook (collecting the residual stream's pieces)

Run:  python lessons/06_multihead_positional_layernorm.py [--quick] [--out DIR]
Writes heads.png (the two heads of a trained model), positional_encoding.png (the pe
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
from minigrad import optim

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


# ---------------------------------------------------------------------------
section("2. Attention alone ignores word order")
# Swap "cat" and "mat": self-attention is permutation-equivariant, so the outputs
# are the same vectors, swapped. "the cat sat on the mat" and "the mat sat on the cat"
# would look identical to the model, apart from the order of the rows.
order = [0, 5, 2, 3, 4, 1]
swapped_output = attention(x[:, order])
print("attention(x permuted) == attention(x) permuted:",
      np.allclose(swapped_output.numpy(), output.numpy()[:, order], atol=1e-5))
assert np.allclose(swapped_output.numpy(), output.numpy()[:, order], atol=1e-5)

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
beyond_permutation = not np.allclose(attention(swapped_with_positions).numpy(),
                                     attention(with_positions).numpy()[:, order], atol=1e-5)
print("with positions added, swapping cat and mat changes the outputs beyond a permutation:", beyond_permutation)
assert beyond_permutation

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
section("3b. Trained heads, and the same model without positions (an ablation)")
# A task that needs positions: read a row of 8 random letters and output, at every
# position, the letter just before it AND the letter just after it. The model is the
# smallest that can: embed -> (+ positional encoding) -> 2-head attention -> Dense, with
# 2 x 10 logits per position. Trained once with the positional encoding, once without.
letters = list("abcdefghij")
task_rng = np.random.default_rng(0)


def neighbour_batch(n):
    """ids (n, 8) and the targets: the previous letter and the next one (-100 where none)."""
    row_ids = task_rng.integers(0, len(letters), size=(n, 8))
    previous, following = np.full((n, 8), -100), np.full((n, 8), -100)
    previous[:, 1:], following[:, :-1] = row_ids[:, :-1], row_ids[:, 1:]
    return row_ids, previous, following


class NeighbourReader(nn.Module):
    """logits (B, T, 2, 10) = Dense(MultiHead(embed(ids) [+ pe])), [0] = previous, [1] = next."""

    def __init__(self, uses_positions, width=32):
        super().__init__()
        self.embed = nn.Embedding(len(letters), width)
        self.positions = nn.PositionalEncoding(width, max_len=8) if uses_positions else None
        self.attention = nn.MultiHeadAttention(width, 2)
        self.readout = nn.Dense(width, 2 * len(letters))

    def forward(self, row_ids, return_weights=False):
        h = self.embed(row_ids)
        if self.positions is not None:
            h = self.positions(h)
        h, attention_weights = self.attention(h, return_weights=True)
        logits = self.readout(h).reshape(row_ids.shape[0], row_ids.shape[1], 2, len(letters))
        return (logits, attention_weights) if return_weights else logits


def neighbour_loss(logits, previous, following):
    return (F.cross_entropy(logits[:, :, 0], previous, ignore_index=-100)
            + F.cross_entropy(logits[:, :, 1], following, ignore_index=-100))


readers, reader_accuracy = {}, {}
test_ids, test_previous, test_following = neighbour_batch(500)
for uses_positions in (True, False):
    mg.manual_seed(0)
    reader = NeighbourReader(uses_positions)
    reader_optimizer = optim.Adam(reader.parameters(), lr=1e-2)
    reader_losses = []
    for step in range(150 if args.quick else 400):
        batch_ids, previous, following = neighbour_batch(32)
        loss = neighbour_loss(reader(batch_ids), previous, following)
        reader_optimizer.zero_grad()
        loss.backward()
        reader_optimizer.step()
        reader_losses.append(loss.item())
    with mg.no_grad():
        guesses = reader(test_ids).numpy().argmax(-1)                       # (500, 8, 2)
    reader_accuracy[uses_positions] = float(np.mean(np.concatenate(
        [guesses[:, 1:, 0] == test_previous[:, 1:], guesses[:, :-1, 1] == test_following[:, :-1]])))
    readers[uses_positions] = reader
    print(f"  {'with' if uses_positions else 'WITHOUT':7s} positional encoding: first loss {reader_losses[0]:.3f}   "
          f"last loss {reader_losses[-1]:.3f}   accuracy on unseen rows {reader_accuracy[uses_positions]:.3f}")
print(f"(chance: {1 / len(letters):.2f}; without positions the model can still guess letters that occur in "
      f"the row, but not which one is adjacent)")
assert reader_accuracy[True] > 0.95 and reader_accuracy[False] < 0.5

# Order-blind: shuffle a row; the model without positions gives the same outputs, shuffled.
shuffle = np.random.default_rng(1).permutation(8)
with mg.no_grad():
    blind, blind_shuffled = readers[False](test_ids[:4]), readers[False](test_ids[:4, shuffle])
    seeing, seeing_shuffled = readers[True](test_ids[:4]), readers[True](test_ids[:4, shuffle])
blind_same = np.allclose(blind_shuffled.numpy(), blind.numpy()[:, shuffle], atol=1e-4)
seeing_same = np.allclose(seeing_shuffled.numpy(), seeing.numpy()[:, shuffle], atol=1e-4)
print(f"shuffled input -> the same outputs, shuffled: without positions {blind_same}, with positions {seeing_same}")
assert blind_same and not seeing_same

# The heads of the trained model: one learned to look back, the other ahead.
example = test_ids[:1]
with mg.no_grad():
    _, trained_weights = readers[True](example, return_weights=True)       # (1, 2, 8, 8)
trained_weights = trained_weights.numpy()[0]
offset = np.arange(8)[None, :] - np.arange(8)[:, None]                    # key position - query position
looks = [float((trained_weights[head] * offset).sum(-1)[1:-1].mean()) for head in range(2)]
for head in range(2):
    print(f"  head {head}: on average it attends {looks[head]:+.2f} positions from the query's own")
assert min(looks) < -0.4 and max(looks) > 0.4, "one head should look back and the other ahead"
row_letters = [letters[i] for i in example[0]]
figure, panels = plt.subplots(1, 2, figsize=(9, 3.9), constrained_layout=True)
for head, panel in enumerate(panels):
    image = panel.imshow(trained_weights[head], cmap="viridis", vmin=0, vmax=1)
    panel.set_xticks(range(8), [f"{c}@{i}" for i, c in enumerate(row_letters)], fontsize=8)
    panel.set_yticks(range(8), [f"{c}@{i}" for i, c in enumerate(row_letters)], fontsize=8)
    panel.set_xlabel("key (attended to)"); panel.set_title(f"trained head {head}")
panels[0].set_ylabel("query")
figure.colorbar(image, ax=panels, shrink=0.8, label="attention weight")
figure.suptitle("a trained 2-head attention: each position reports its neighbours")
figure.savefig(os.path.join(args.out, "heads.png"), dpi=100)
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

# ---------------------------------------------------------------------------
section("6. The primer's formula: Output = LayerNorm(h_1 + h_2 + ... + h_n)")
# The primer writes the Transformer as Output = LayerNorm(h_1 + ... + h_n), "h_i the output
# of layer i". Taken literally (add up the layers' outputs, normalise) that is not what a
# Transformer computes. But one reading holds exactly: in a pre-LN stack (GPT, lesson 8),
#     x_0 = embedding + positions,  x_i = x_{i-1} + c_i   for each sublayer's contribution c_i
# so the output is LayerNorm(x_0 + c_1 + c_2 + ... + c_2L): the residual stream is a SUM.
# Forward hooks collect the pieces as the stack runs: x_0 from the positional encoding,
# each c_i from the dropout after each sublayer (dropout1: attention, dropout2: feed-forward).
mg.manual_seed(0)
stack = nn.ModuleList([nn.TransformerEncoderLayer(d_model, n_heads, 4 * d_model, dropout=0.0, norm_first=True)
                       for _ in range(3)])
final_norm = nn.LayerNorm(d_model)
pieces = []
hooked = [small_positional] + [module for layer in stack for module in (layer.dropout1, layer.dropout2)]
handles = [module.register_forward_hook(lambda module, inputs, output: pieces.append(output)) for module in hooked]
stream, layer_outputs = small_positional(x), []
for layer in stack:
    stream = layer(stream)
    layer_outputs.append(stream)
stack_output = final_norm(stream)
for handle in handles:
    handle.remove()
as_sum = final_norm(sum(pieces[1:], pieces[0]))
literal = final_norm(sum(layer_outputs[1:], layer_outputs[0]))
print(f"{len(pieces)} pieces: the embedding x_0 and {len(pieces) - 1} contributions (3 layers x 2 sublayers)")
print(f"  max |output - LayerNorm(x_0 + c_1 + ... + c_6)|              = "
      f"{np.abs(stack_output.numpy() - as_sum.numpy()).max():.1e}  (the same, up to float32 rounding)")
print(f"  max |output - LayerNorm(layer_1 out + layer_2 out + layer_3 out)| = "
      f"{np.abs(stack_output.numpy() - literal.numpy()).max():.1e}  (the literal reading: not the same)")
assert np.allclose(stack_output.numpy(), as_sum.numpy(), atol=1e-5)
assert not np.allclose(stack_output.numpy(), literal.numpy(), atol=1e-2)
print("So read h_i as 'the i-th sublayer's contribution to the residual stream' (with h_0 the embedding),")
print("and only for pre-LN: post-LN (section 5, BERT, the paper) normalises each sum right away, so there")
print("the contributions do not simply add up.")

# ---------------------------------------------------------------------------
section("7. Ablation: a deep stack without its residual connections")
# The "+ x" of every sublayer is what makes the stream a sum. Remove it,
#     x = self_attn(norm1(x));  x = feed_forward(norm2(x))     (no "x +")
# and each layer must pass on everything through attention's averaging. The neighbour
# task of section 3b, with a stack of pre-LN layers between the positions and the readout:
depth = 6
deep_steps = 120 if args.quick else 200


class DeepReader(nn.Module):
    """embed + pe -> `depth` pre-LN encoder layers (with or without the residual "+ x") -> LayerNorm -> Dense."""

    def __init__(self, residual, width=32):
        super().__init__()
        self.residual = residual
        self.embed = nn.Embedding(len(letters), width)
        self.positions = nn.PositionalEncoding(width, max_len=8)
        self.layers = nn.ModuleList([nn.TransformerEncoderLayer(width, 2, 2 * width, dropout=0.0, norm_first=True)
                                     for _ in range(depth)])
        self.norm = nn.LayerNorm(width)
        self.readout = nn.Dense(width, 2 * len(letters))

    def forward(self, row_ids):
        h = self.positions(self.embed(row_ids))
        for layer in self.layers:
            if self.residual:
                h = layer(h)                            # h = h + attn(norm1(h)); h = h + ff(norm2(h))
            else:
                h = layer.self_attn(layer.norm1(h))
                h = layer.feed_forward(layer.norm2(h))
        self.last_hidden = h
        return self.readout(self.norm(h)).reshape(row_ids.shape[0], row_ids.shape[1], 2, len(letters))


deep_results = {}
for residual in (True, False):
    mg.manual_seed(0)
    deep = DeepReader(residual)
    deep_optimizer = optim.Adam(deep.parameters(), lr=3e-3)
    deep_losses = []
    for step in range(deep_steps):
        batch_ids, previous, following = neighbour_batch(32)
        loss = neighbour_loss(deep(batch_ids), previous, following)
        if step == 0:                 # at the start: are the 8 positions' vectors still different?
            top = deep.last_hidden.numpy()
            top = top / np.linalg.norm(top, axis=-1, keepdims=True)
            alike = float(np.mean([(row @ row.T)[~np.eye(8, dtype=bool)].mean() for row in top]))
        deep_optimizer.zero_grad()
        loss.backward()
        deep_optimizer.step()
        deep_losses.append(loss.item())
    window = deep_steps // 10
    deep_results[residual] = (np.mean(deep_losses[:window]), np.mean(deep_losses[-window:]), alike)
    print(f"  {depth} layers {'with' if residual else 'WITHOUT':7s} residuals: first loss {deep_losses[0]:.3f}   "
          f"last loss {deep_losses[-1]:.3f}   (mean of the last {window}: {deep_results[residual][1]:.3f});"
          f" at the start, mean cosine between positions at the top {alike:.2f}")
chance_loss = 2 * np.log(len(letters))
print(f"(guessing: 2 ln 10 = {chance_loss:.3f}) Without residuals the stack does not train: its loss stays at")
print("chance. Already at the start its top layer has washed the positions together (cosines near 1):")
print("attention averages, layer after layer, and with no '+ x' nothing carries the input past it.")
assert deep_results[True][1] < 0.5 * deep_results[False][1]
assert abs(deep_results[False][1] - chance_loss) < 0.1
assert deep_results[False][2] > 0.9 > deep_results[True][2]
print(f"\nWrote heads.png, positional_encoding.png and layernorm.png to {args.out}")
