"""Lesson 8: GPT: a language model trained on Python's own source code.

What you will learn
  * a language model predicts the next token from the ones before it:
        p(x_1 ... x_n) = prod_t p(x_t | x_1 ... x_{t-1})
    and is trained with the cross-entropy of every next-token prediction;
  * GPT is a stack of pre-LN decoder blocks with a causal mask:
        x_0 = tok_emb[idx] + pos_emb[0..T-1]
        x = x + self_attn(norm1(x), causal);  x = x + feed_forward(norm2(x))   (n_layer times)
        logits = ln_f(x) @ tok_emb^T                             (tied weights)
    one forward pass makes T predictions at once, one per position;
  * training with AdamW, a warm-up + cosine learning-rate schedule and gradient
    clipping, watching the loss on held-out text (validation);
  * generation: sample a token from softmax(logits / temperature) (optionally
    among the top k), append it, repeat. Low temperature = safe and repetitive,
    high = varied and wrong more often.

Read alongside
  minigrad/models/gpt.py       GPT (blocks: nn.TransformerEncoderLayer), generate (with a key/value cache)
  minigrad/datasets/text.py    stdlib_corpus, CharTokenizer
  minigrad/data.py             lm_batch, train_val_split
  minigrad/nn/transformer.py   TransformerEncoderLayer (norm_first=True: pre-LN)
  minigrad/nn/attention.py     causal_mask, KVCache
  minigrad/optim.py            AdamW, WarmupCosine, clip_grad_norm_

Run:  python lessons/08_gpt.py [--quick] [--out DIR]
Writes loss.png (training and validation loss) and samples.txt (generated text).
"""
import argparse
import math
import os
import time

import matplotlib
matplotlib.use("Agg")                    # write PNG files, never open a window
import matplotlib.pyplot as plt
import numpy as np

import minigrad as mg
import minigrad.functional as F
from minigrad import optim
from minigrad.models import GPT
from minigrad.data import lm_batch, train_val_split
from minigrad.datasets import CharTokenizer, stdlib_corpus

parser = argparse.ArgumentParser(description="Lesson 8: a GPT trained on Python's standard library")
parser.add_argument("--quick", action="store_true", help="a run of a few seconds (used by the tests)")
parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                  "output", "08_gpt"),
                    help="folder for the files this lesson writes")
args = parser.parse_args()
os.makedirs(args.out, exist_ok=True)


def section(title):
    print(f"\n=== {title} " + "=" * max(0, 70 - len(title)))


if args.quick:
    block_size, n_layer, n_head, d_model, batch_size, steps = 32, 2, 2, 32, 16, 30
else:
    block_size, n_layer, n_head, d_model, batch_size, steps = 64, 3, 4, 96, 24, 600

# ---------------------------------------------------------------------------
section("1. The corpus: Python's standard library, character by character")
text = stdlib_corpus(max_chars=300_000 if args.quick else None)
tokenizer = CharTokenizer(text)
ids = tokenizer.encode(text)                                  # (N,) int64
train_ids, val_ids = train_val_split(ids, val_fraction=0.1)
print(f"{len(text):,} characters; {tokenizer.vocab_size} distinct ones; "
      f"{len(train_ids):,} for training, {len(val_ids):,} held out")
print("a piece of it:\n" + "-" * 60 + "\n" + text[5000:5300] + "\n" + "-" * 60)
print(f"encode('def f(x):') = {tokenizer.encode('def f(x):').tolist()}")

# ---------------------------------------------------------------------------
section("2. Next-character prediction")
rng = np.random.default_rng(0)
x, y = lm_batch(train_ids, block_size, 2, rng)                # y is x shifted left by one
print(f"x {x.shape}, y {y.shape}; y[:, t] is the character after x[:, t]")
print(f"  x[0] = {tokenizer.decode(x[0])!r}")
print(f"  y[0] = {tokenizer.decode(y[0])!r}")
print("Position t is trained to predict y[t] from x[0..t]: one window gives "
      f"{block_size} training examples at once.")

# ---------------------------------------------------------------------------
section("3. The model")
mg.manual_seed(0)
model = GPT(tokenizer.vocab_size, block_size, n_layer, n_head, d_model, dropout=0.0)
print(model.extra_repr())
for name, child in model.named_children():
    print(f"  {name:8s} {child.num_parameters():9,d} parameters  {type(child).__name__}")
print(f"{model.num_parameters():,} parameters in all (the output layer is tok_emb, reused). One block:")
print(model.blocks[0])
logits = model(x)                                             # (2, block_size, vocab)
loss = F.cross_entropy(logits, y)
print(f"logits {logits.shape}; loss before training {loss.item():.3f} "
      f"(uniform guessing: ln {tokenizer.vocab_size} = {math.log(tokenizer.vocab_size):.3f})")

# ---------------------------------------------------------------------------
section(f"4. Training: {steps} steps of {batch_size} windows of {block_size} characters")
optimizer = optim.AdamW(model.parameters(), lr=3e-3, betas=(0.9, 0.95), weight_decay=0.01)
scheduler = optim.WarmupCosine(optimizer, warmup=max(1, steps // 20), total_steps=steps, min_lr=3e-4)
val_rng = np.random.default_rng(1)
val_batches = [lm_batch(val_ids, block_size, batch_size, val_rng) for _ in range(4)]


def validation_loss():
    """The mean loss on fixed held-out windows (no graph, no dropout)."""
    model.eval()
    with mg.no_grad():
        value = np.mean([F.cross_entropy(model(vx), vy).item() for vx, vy in val_batches])
    model.train()
    return float(value)


losses, validation = [], [(0, validation_loss())]
start = time.time()
for step in range(steps):
    x, y = lm_batch(train_ids, block_size, batch_size, rng)
    loss = F.cross_entropy(model(x), y)                       # mean over batch_size * block_size predictions
    optimizer.zero_grad()
    loss.backward()
    optim.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    scheduler.step()
    losses.append(loss.item())
    if (step + 1) % max(1, steps // 6) == 0 or step == steps - 1:
        validation.append((step + 1, validation_loss()))
        print(f"  step {step + 1:4d}  train loss {np.mean(losses[-20:]):.3f}  "
              f"validation loss {validation[-1][1]:.3f}  ({time.time() - start:.0f} s)")
print(f"first loss {losses[0]:.4f}   last loss {losses[-1]:.4f}   "
      f"(validation {validation[0][1]:.4f} -> {validation[-1][1]:.4f})")
assert validation[-1][1] < validation[0][1], \
    f"training should reduce the held-out loss: {validation[0][1]:.4f} -> {validation[-1][1]:.4f}"
print(f"A loss of {validation[-1][1]:.2f} nats means the model is, on average, as unsure as a choice "
      f"among {math.exp(validation[-1][1]):.1f} equally likely characters (perplexity).")

# ---------------------------------------------------------------------------
section("5. Generating text")
# One step of sampling by hand: the distribution of the character after "def ".
prompt = tokenizer.encode("    def ")[None]                 # (1, T)
with mg.no_grad():
    model.eval()
    probabilities = F.softmax(model(prompt)[0, -1], axis=-1).numpy()
top = np.argsort(-probabilities)[:5]
print("after '    def ' the model expects:",
      ", ".join(f"{tokenizer.decode([i])!r} {probabilities[i]:.2f}" for i in top))

new_tokens = 120 if args.quick else 400
samples = []
for temperature in (0.0, 0.8, 1.2):
    generated = model.generate(tokenizer.encode("class ")[None], new_tokens, temperature=temperature,
                               top_k=None if temperature == 0 else 20, seed=0)
    sample = tokenizer.decode(generated.numpy()[0])
    samples.append(f"--- temperature {temperature} ---\n{sample}\n")
    print(samples[-1])
with open(os.path.join(args.out, "samples.txt"), "w", encoding="utf-8") as handle:
    handle.write("\n".join(samples))

figure, axes = plt.subplots(figsize=(6, 3.8), constrained_layout=True)
axes.plot(losses, alpha=0.4, label="training batch")
axes.plot(*zip(*validation), "o-", label="validation")
axes.set_xlabel("step"); axes.set_ylabel("cross-entropy (nats per character)"); axes.legend()
axes.set_title(f"GPT: {n_layer} layers, d_model {d_model}, {model.num_parameters():,} parameters")
figure.savefig(os.path.join(args.out, "loss.png"), dpi=100)
plt.close(figure)
print(f"Wrote loss.png and samples.txt to {args.out}")
