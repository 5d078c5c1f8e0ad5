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
    clipping, watching the loss on held-out text (validation), and why a log can show
    validation below training loss (a running mean lags behind the weights);
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
import json
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
from minigrad.tools import progress

parser = argparse.ArgumentParser(description="Lesson 8: a GPT trained on Python's standard library")
parser.add_argument("--quick", action="store_true", help="a run of a few seconds (used by the tests)")
parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                  "output", "08_gpt"),
                    help="folder for the files this lesson writes")
args = parser.parse_args()
os.makedirs(args.out, exist_ok=True)
# What the full run reached, recorded from `python lessons/08_gpt.py` (no --quick): a --quick
# model is far too small and short-trained to write Python, so it prints this beside its own text.
FULL_RUN_RECORD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "08_gpt.json")


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
eval_batches = 2 if args.quick else 4
val_batches = [lm_batch(val_ids, block_size, batch_size, val_rng) for _ in range(eval_batches)]
train_rng = np.random.default_rng(2)
fixed_train_batches = [lm_batch(train_ids, block_size, batch_size, train_rng) for _ in range(eval_batches)]


def mean_loss(batches):
    """The mean loss on fixed windows, at the current weights (no graph, no dropout)."""
    model.eval()
    with mg.no_grad():
        value = np.mean([F.cross_entropy(model(bx), by).item() for bx, by in batches])
    model.train()
    return float(value)


def validation_loss():
    return mean_loss(val_batches)


# Two ways to report the training loss: the running mean of the last 20 batches (free,
# what most training logs print), and the loss at the current weights on fixed training
# windows (costs a forward pass). Section 4's last lines say why they differ.
losses, validation, train_now = [], [(0, validation_loss())], [(0, mean_loss(fixed_train_batches))]
start = time.time()
bar = progress(range(steps), desc="training", disable=args.quick)
for step in bar:
    x, y = lm_batch(train_ids, block_size, batch_size, rng)
    loss = F.cross_entropy(model(x), y)                       # mean over batch_size * block_size predictions
    optimizer.zero_grad()
    loss.backward()
    optim.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    scheduler.step()
    losses.append(loss.item())
    bar.set_postfix(loss=losses[-1])
    if (step + 1) % max(1, steps // 6) == 0 or step == steps - 1:
        validation.append((step + 1, validation_loss()))
        train_now.append((step + 1, mean_loss(fixed_train_batches)))
        print(f"  step {step + 1:4d}  train loss: mean of the last 20 batches {np.mean(losses[-20:]):.3f}, "
              f"at the current weights {train_now[-1][1]:.3f}   validation loss {validation[-1][1]:.3f}  "
              f"({time.time() - start:.0f} s)")
print(f"first loss {losses[0]:.4f}   last loss {losses[-1]:.4f}   "
      f"(validation {validation[0][1]:.4f} -> {validation[-1][1]:.4f})")
assert validation[-1][1] < validation[0][1], \
    f"training should reduce the held-out loss: {validation[0][1]:.4f} -> {validation[-1][1]:.4f}"
# A log that shows validation BELOW training loss looks like a bug (the model should do
# better on what it trained on). Here it is an artefact of the running mean: it averages
# the last 20 batches, most of them seen at older, worse weights, while the validation
# loss is measured at the current weights. Measured at the same weights, training and
# validation losses agree closely (the model is too small to memorise a million characters).
first_check = int(max(1, steps // 6))
running_at_first = float(np.mean(losses[max(0, first_check - 20):first_check]))
print(f"At step {first_check}, while the loss still falls fast, the running mean of the last batches (up to 20) was "
      f"{running_at_first:.3f},\nbut the loss at the weights of that moment was {train_now[1][1]:.3f}: the running mean "
      f"lags behind.")
below = validation[1][1] < running_at_first
print(f"Validation, measured at those same weights, was {validation[1][1]:.3f}: "
      + ("BELOW the running mean, and nothing is wrong." if below else
         "above the running mean here; where the loss falls faster, the lag\nis larger and validation can end up below it."))
assert running_at_first > train_now[1][1], "the running mean should lag behind the current weights' loss"
gap = max(abs(t - v) for (_, t), (_, v) in zip(train_now[1:], validation[1:]))
print(f"Largest gap between training and validation loss at the same weights: {gap:.3f} nats.")
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
if args.quick:
    print(f"(--quick: {model.num_parameters():,} parameters trained for {steps} steps, so the text above is mostly noise.)")
    if os.path.exists(FULL_RUN_RECORD):
        with open(FULL_RUN_RECORD, encoding="utf-8") as handle:
            full = json.load(handle)
        print(f"The full run ({full['parameters']:,} parameters, {full['steps']} steps; recorded in "
              f"lessons/results/) reached validation loss {full['validation_loss']:.3f} (perplexity "
              f"{math.exp(full['validation_loss']):.1f}) and wrote, at temperature 0.8:\n{full['sample_0.8']}")
        print("Still not Python: a model this small, trained for a minute, learns indentation, 'self', 'return'"
              "\nand common words, not programs (benchmarks/train_gpt.py trains longer).")
        assert "self" in full["sample_0.8"] and "return" in full["sample_0.8"] and "\n    " in full["sample_0.8"]
else:
    with open(os.path.join(args.out, "full_run.json"), "w", encoding="utf-8") as handle:
        json.dump({"parameters": model.num_parameters(), "steps": steps, "seconds": round(time.time() - start),
                   "validation_loss": validation[-1][1], "first_loss": losses[0], "last_loss": losses[-1],
                   "sample_0.8": samples[1].split("\n", 1)[1].rstrip()}, handle, indent=1)

figure, axes = plt.subplots(figsize=(6, 3.8), constrained_layout=True)
axes.plot(losses, alpha=0.4, label="training batch")
axes.plot(*zip(*train_now), "s-", label="training, at the current weights")
axes.plot(*zip(*validation), "o-", label="validation")
axes.set_xlabel("step"); axes.set_ylabel("cross-entropy (nats per character)"); axes.legend()
axes.set_title(f"GPT: {n_layer} layers, d_model {d_model}, {model.num_parameters():,} parameters")
figure.savefig(os.path.join(args.out, "loss.png"), dpi=100)
plt.close(figure)
print(f"Wrote loss.png and samples.txt to {args.out}")
