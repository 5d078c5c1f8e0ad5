"""Lesson 16: Privacy: what a language model memorises, and differentially private training.

What you will learn
  * models memorise rare secrets in their training data. A "canary" ("my PIN is 4 7 1 9.")
    planted a few times in the text is measured by its exposure (Carlini et al. 2019,
    "The Secret Sharer"): rank the canary among all 10^4 PINs of the same format by the
    model's likelihood, then
        exposure = log2(#candidates) - log2(rank)          (0 .. 13.3 bits here)
    a random guess scores about log2(e) = 1.4 bits on average; the full 13.3 bits mean the
    canary is the model's favourite PIN, and the model completes "my PIN is " with it;
  * per-example gradients from one backward pass (privacy.GradSampleModule);
  * DP-SGD (Abadi et al. 2016): clip each example's gradient to norm C, add Gaussian noise
    N(0, sigma^2 C^2) to the sum, sample batches by Poisson sampling; an RDP accountant turns
    (sigma, sample rate, steps) into (epsilon, delta);
  * the same training with DP-SGD brings the exposure down to chance at a stated epsilon,
    and costs validation loss: the utility price, at a few epsilons;
  * what epsilon and delta mean, in plain words.

Read alongside
  minigrad/privacy/grad_sample.py    per-example gradients from hooks (one backward pass)
  minigrad/privacy/per_example.py    ghost clipping: norms without materialising
  minigrad/privacy/optimizer.py      DPOptimizer: clip, sum, noise, step
  minigrad/privacy/accountant.py     RDP of the sampled Gaussian, RDP -> (epsilon, delta)
  minigrad/privacy/training.py       Poisson sampling and make_private
  minigrad/models/gpt.py             the model (positions and output layer through Embedding)

Run:  python lessons/16_privacy.py [--quick] [--out DIR]
Writes utility.png (validation loss against epsilon, and exposure) and canary.json (the numbers);
a full run also writes them as full_run.json, the record lessons/results/16_privacy.json is made from.
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
from minigrad import optim, privacy
from minigrad.data import DataLoader
from minigrad.datasets import CharTokenizer, stdlib_docstrings
from minigrad.models import GPT
from minigrad.tools import progress

parser = argparse.ArgumentParser(description="Lesson 16: memorisation and differentially private training")
parser.add_argument("--quick", action="store_true", help="a run of a few seconds (used by the tests)")
parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "output",
                                                  "16_privacy"),
                    help="folder for the files this lesson writes")
args = parser.parse_args()
os.makedirs(args.out, exist_ok=True)


def section(title):
    print(f"\n=== {title} " + "=" * max(0, 70 - len(title)))


if args.quick:
    n_examples, block, n_layer, d_model, epochs, copies, epsilons = 160, 24, 1, 32, 3, 2, [8.0]
else:
    n_examples, block, n_layer, d_model, epochs, copies, epsilons = 1200, 32, 2, 64, 25, 6, [1.0, 8.0, 32.0]
batch_size, delta, max_grad_norm, lr = 32, 1e-5, 1.0, 3e-3
CANARY_PREFIX, SECRET = "my PIN is ", "4 7 1 9"
CANARY = CANARY_PREFIX + SECRET + ". "
started = time.time()
# What the full run reached, recorded from `python lessons/16_privacy.py` (no --quick): a --quick
# run is too short to memorise the canary, so it prints these beside its own numbers.
FULL_RUN_RECORD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "16_privacy.json")
full = None
if args.quick and os.path.exists(FULL_RUN_RECORD):
    with open(FULL_RUN_RECORD, encoding="utf-8") as handle:
        full = json.load(handle)
    assert not full["quick"] and full["canary"] == CANARY.strip(), "the record should be a full run on this canary"

# ---------------------------------------------------------------------------
section("1. The data, with a secret planted in it")
train_text, val_text = (" ".join(part) for part in stdlib_docstrings())
tokenizer = CharTokenizer(train_text + val_text + CANARY + "0123456789")
window = block + 1                      # block_size inputs and the next character of each


def windows(text, count):
    """`count` consecutive windows of block + 1 characters: one training example each."""
    ids = tokenizer.encode(text[:count * window])
    return ids.reshape(count, window)


examples = windows(train_text, n_examples)
planted = np.random.default_rng(0).choice(n_examples, copies, replace=False)
canary_ids = tokenizer.encode(CANARY)
examples[planted, :len(canary_ids)] = canary_ids            # the record begins with the secret
X, Y = examples[:, :-1], examples[:, 1:]                    # Y[:, t] is the character after X[:, t]
validation = windows(val_text, 100)
VX, VY = validation[:, :-1], validation[:, 1:]
print(f"{n_examples} training examples of {block} characters from Python's docstrings "
      f"(vocabulary {tokenizer.vocab_size}); {len(validation)} held-out examples.")
print(f"The canary {CANARY.strip()!r} begins {copies} of them, e.g. example {planted[0]}:")
print(f"  {tokenizer.decode(examples[planted[0]])!r}")

# ---------------------------------------------------------------------------
section("2. Exposure: how much better than a guess does the model know the PIN?")
digits, space = tokenizer.encode("0123456789"), int(tokenizer.encode(" ")[0])
prefix = tokenizer.encode(CANARY_PREFIX)
P = len(prefix)
# All 10^4 candidates "a b c d" need only 1000 forward passes: the sequence
# prefix + "a b c " gives, at its last positions, p(a | prefix), p(" " | ..a), p(b | ..a ),
# ... and p(d | ..c ) for all ten d at once.
firsts = np.arange(1000)
a, b, c = firsts // 100, firsts // 10 % 10, firsts % 10
contexts = np.concatenate([np.tile(prefix, (1000, 1)),
                           np.stack([digits[a], np.full(1000, space), digits[b], np.full(1000, space),
                                     digits[c], np.full(1000, space)], axis=1)], axis=1)     # (1000, P + 6)


def candidate_log_likelihoods(model):
    """log p(candidate | prefix) for every PIN 0000..9999, a (10000,) array (index = the PIN)."""
    model.eval()
    with mg.no_grad():
        log_p = np.concatenate([F.log_softmax(model(mg.tensor(contexts[i:i + 250])), axis=-1).numpy()
                                for i in range(0, 1000, 250)])                          # (1000, P+6, V)
    model.train()
    rows = np.arange(1000)
    first_three = (log_p[rows, P - 1, digits[a]] + log_p[rows, P, space] + log_p[rows, P + 1, digits[b]]
                   + log_p[rows, P + 2, space] + log_p[rows, P + 3, digits[c]] + log_p[rows, P + 4, space])
    return (first_three[:, None] + log_p[:, P + 5][:, digits]).reshape(-1)             # PIN abcd = 10 abc + d


def exposure(model):
    """(exposure in bits, rank): rank 1 = the canary is the most likely of the 10^4 PINs."""
    scores = candidate_log_likelihoods(model)
    rank = 1 + int((scores > scores[int(SECRET.replace(" ", ""))]).sum())
    return math.log2(len(scores)) - math.log2(rank), rank


def completion(model):
    """The model's greedy continuation of "my PIN is " (temperature 0)."""
    tokens = model.generate(mg.tensor(prefix[None]), max_new_tokens=len(SECRET), temperature=0)
    return tokenizer.decode(tokens.numpy()[0, P:])


def validation_loss(model):
    model.eval()
    with mg.no_grad():
        value = F.cross_entropy(model(mg.tensor(VX)), mg.tensor(VY)).item()
    model.train()
    return value


def new_model():
    mg.manual_seed(0)
    return GPT(tokenizer.vocab_size, block, n_layer, n_head=4, d_model=d_model)


untrained = new_model()
bits, rank = exposure(untrained)
print(f"{len(digits) ** 4} candidates: at most log2(10^4) = {math.log2(1e4):.1f} bits of exposure; a guess "
      f"averages log2(e) = {math.log2(math.e):.2f}.")
print(f"Untrained model: the canary ranks {rank} of 10000, exposure {bits:.2f} bits.")


def train(model, optimizer, loader, label):
    """Epochs over the loader; returns the batch losses. An empty Poisson batch still steps."""
    losses = []
    start = time.time()
    bar = progress(total=epochs * len(loader), desc=label, disable=args.quick)
    for _ in range(epochs):
        for xb, yb in loader:
            optimizer.zero_grad()
            if len(xb):
                loss = F.cross_entropy(model(mg.tensor(xb)), mg.tensor(yb))   # mean over the batch's tokens
                loss.backward()
                losses.append(loss.item())
                bar.set_postfix(loss=losses[-1])
            optimizer.step()
            bar.update()
    bar.close()
    print(f"  {label}: {epochs} epochs in {time.time() - start:.0f} s; first loss {losses[0]:.3f}   "
          f"last loss {losses[-1]:.3f}")
    return losses


# ---------------------------------------------------------------------------
section("3. Ordinary training memorises the canary")
model = new_model()
train(model, optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0),
      DataLoader((X, Y), batch_size, shuffle=True, seed=0), "without privacy")
plain_bits, plain_rank = exposure(model)
plain_loss, plain_completion = validation_loss(model), completion(model)
print(f"Exposure {plain_bits:.2f} bits (rank {plain_rank} of 10000); validation loss {plain_loss:.3f}.")
print(f"Asked to complete {CANARY_PREFIX!r}, the model writes {plain_completion!r}.")
if not args.quick:
    assert plain_bits >= 10, f"the model should have memorised the canary: exposure {plain_bits:.2f} bits"
    assert plain_completion == SECRET, f"the model should complete the PIN: {plain_completion!r}"
    print(f"It has memorised the PIN: {copies} copies among {n_examples} examples were enough.")
else:
    print("(--quick is too short a run to check memorisation; the full run asserts it.)")
    if full:
        print(f"The full run ({full['n_examples']} examples, {full['copies']} of them the canary, {full['epochs']} "
              f"epochs; recorded in lessons/results/)\nreached exposure {full['no_privacy']['exposure_bits']:.2f} "
              f"bits (rank {full['no_privacy']['rank']} of 10000) and completed {CANARY_PREFIX!r} with "
              f"{full['no_privacy']['completion']!r}: it had memorised the PIN.")
        assert full["no_privacy"]["completion"] == SECRET and full["no_privacy"]["exposure_bits"] >= 10

# ---------------------------------------------------------------------------
section("4. Per-example gradients: one backward pass, B gradients")
probe = privacy.GradSampleModule(new_model())             # loss_reduction="mean"
loss = F.cross_entropy(probe(mg.tensor(X[:8])), mg.tensor(Y[:8]))
loss.backward()
weight = probe.module.blocks[0].feed_forward.linear1.weight
print(f"feed_forward.linear1.weight {weight.shape}: grad {weight.grad.shape}, grad_sample {weight.grad_sample.shape}")
difference = np.abs(weight.grad_sample.numpy().mean(axis=0) - weight.grad.numpy()).max()
assert difference < 1e-5, difference
print(f"For a mean loss, the batch gradient is the mean of the per-example ones (max difference {difference:.1e}).")
norms = np.sqrt(sum((p.grad_sample.numpy().reshape(8, -1) ** 2).sum(axis=1) for p in probe.parameters()))
print("Each example's gradient norm over all parameters: " + ", ".join(f"{n:.2f}" for n in norms))
print(f"DP-SGD clips each to C = {max_grad_norm}: scaled by min(1, C / norm), so no example moves the "
      f"sum by more than C; then noise of std sigma * C hides whether any one was there.")

# ---------------------------------------------------------------------------
section("5. DP-SGD: the same training, private")
sample_rate = batch_size / n_examples
steps = epochs * round(1 / sample_rate)
runs = []
for target in epsilons:
    sigma = privacy.get_noise_multiplier(target, delta, sample_rate, steps)
    model = new_model()
    model, optimizer, loader = privacy.make_private(
        model, optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0), (X, Y), batch_size,
        noise_multiplier=sigma, max_grad_norm=max_grad_norm, seed=0, grad_sample_mode="ghost")
    train(model, optimizer, loader, f"epsilon {target:g} (sigma {sigma:.2f})")
    spent = optimizer.accountant.get_epsilon(delta)
    assert spent <= target, (spent, target)
    run_bits, run_rank = exposure(model)
    runs.append(dict(target_epsilon=target, epsilon=spent, noise_multiplier=sigma, exposure_bits=run_bits,
                     rank=run_rank, validation_loss=validation_loss(model), completion=completion(model)))
    print(f"  spent epsilon {spent:.2f} at delta {delta:g}; exposure {run_bits:.2f} bits (rank {run_rank}); "
          f"validation loss {runs[-1]['validation_loss']:.3f}; completes the prefix with {runs[-1]['completion']!r}")
stated = next(run for run in runs if run["target_epsilon"] == 8.0)
print(f"\nAt epsilon {stated['epsilon']:.2f} (delta {delta:g}, sigma {stated['noise_multiplier']:.2f}, "
      f"q {sample_rate:.3f}, {steps} steps) the canary ranks {stated['rank']} of 10000: "
      f"exposure {stated['exposure_bits']:.2f} bits, against {plain_bits:.2f} without privacy.")
if not args.quick:
    assert stated["exposure_bits"] < 5, f"DP-SGD should hide the canary: {stated['exposure_bits']:.2f} bits"
    assert stated["completion"] != SECRET
    print("That is within the range of a guess (5 bits = the top 3% of PINs): the model no longer knows the PIN.")

# ---------------------------------------------------------------------------
section("6. The price: validation loss at each epsilon")
print(f"  {'epsilon':>10s}  {'validation loss':>15s}  {'exposure (bits)':>15s}")
for run in runs:
    print(f"  {run['epsilon']:10.2f}  {run['validation_loss']:15.3f}  {run['exposure_bits']:15.2f}")
print(f"  {'inf':>10s}  {plain_loss:15.3f}  {plain_bits:15.2f}   (no privacy)")
best_private = min(run["validation_loss"] for run in runs)
assert plain_loss < best_private, (plain_loss, best_private)
print(f"Privacy costs accuracy here: every private model is worse than the non-private {plain_loss:.3f}. The noise "
      f"added to a step's mean gradient is sigma C / (q n) per coordinate, so more data at the same sampling "
      f"rate (larger batches) shrinks the price; {n_examples} examples is very little.")
if full:
    print(f"(--quick trains too little for these numbers to mean much.) The full run ({full['n_examples']} examples, "
          f"{full['epochs']} epochs, {full['steps']} steps; recorded in lessons/results/) reached:")
    for run in full["private"]:
        print(f"  {run['epsilon']:10.2f}  {run['validation_loss']:15.3f}  {run['exposure_bits']:15.2f}"
              f"   (rank {run['rank']}; completes the prefix with {run['completion']!r})")
    print(f"  {'inf':>10s}  {full['no_privacy']['validation_loss']:15.3f}  {full['no_privacy']['exposure_bits']:15.2f}"
          f"   (no privacy)")
    print("DP-SGD brought the canary's exposure down to the level of a guess at every epsilon, at a price in "
          "validation loss.")
    assert all(run["exposure_bits"] < 5 for run in full["private"]) and \
        all(run["validation_loss"] > full["no_privacy"]["validation_loss"] for run in full["private"])

figure, (left, right) = plt.subplots(1, 2, figsize=(9, 3.6), constrained_layout=True)
eps_axis = [run["epsilon"] for run in runs]
left.plot(eps_axis, [run["validation_loss"] for run in runs], "o-", label="DP-SGD")
left.axhline(plain_loss, color="gray", linestyle="--", label="no privacy")
left.set_xscale("log"); left.set_xlabel("epsilon (delta = 1e-5)"); left.set_ylabel("validation loss (nats/char)")
left.set_title("utility"); left.legend()
right.plot(eps_axis, [run["exposure_bits"] for run in runs], "o-", label="DP-SGD")
right.axhline(plain_bits, color="gray", linestyle="--", label="no privacy")
right.axhline(math.log2(math.e), color="green", linestyle=":", label="chance (mean)")
right.set_xscale("log"); right.set_xlabel("epsilon"); right.set_ylabel("canary exposure (bits)")
right.set_title("memorisation"); right.legend()
figure.savefig(os.path.join(args.out, "utility.png"), dpi=100)
plt.close(figure)

# ---------------------------------------------------------------------------
section("7. What epsilon and delta mean")
factor = math.exp(stated["epsilon"])
assert delta < 1 / n_examples
print(f"""(epsilon, delta)-DP is a promise about the training procedure, not about one model: take the data set
with or without any one example. The probability of every possible outcome (every set of trained weights,
and so anything anyone concludes from them) differs between the two by at most a factor e^epsilon, up to
an extra probability delta:
    P[outcome | with it] <= e^epsilon * P[outcome | without it] + delta.
Here epsilon = {stated['epsilon']:.2f}: a factor of at most {factor:,.0f}, and delta = {delta:g}, below 1/n = {1 / n_examples:.1e}
(a delta near 1/n would allow leaking one example outright). Small epsilons (around 1) are strong; large ones
(8 and more) are weak on paper{", yet as here they can still stop the extraction of a secret in practice" if not args.quick else ""}.
The guarantee is per example: the canary fills {copies} examples, and a group of k examples gets roughly k
times the epsilon (group privacy), so a secret repeated often is protected less.""")

result = dict(canary=CANARY.strip(), copies=copies, n_examples=n_examples, candidates=10000, delta=delta,
              sample_rate=sample_rate, steps=steps, epochs=epochs, max_grad_norm=max_grad_norm,
              quick=args.quick, model=dict(block=block, n_layer=n_layer, d_model=d_model, n_head=4),
              untrained=dict(exposure_bits=bits, rank=rank),
              no_privacy=dict(exposure_bits=plain_bits, rank=plain_rank, validation_loss=plain_loss,
                              completion=plain_completion),
              private=runs, seconds=round(time.time() - started))
with open(os.path.join(args.out, "canary.json"), "w") as handle:
    json.dump(result, handle, indent=2)
if not args.quick:                       # this run's record, for lessons/results/16_privacy.json
    with open(os.path.join(args.out, "full_run.json"), "w", encoding="utf-8") as handle:
        json.dump(result, handle, indent=1)
print(f"\nWrote utility.png{'' if args.quick else ', full_run.json'} and canary.json to {args.out} "
      f"({time.time() - started:.0f} s)")
