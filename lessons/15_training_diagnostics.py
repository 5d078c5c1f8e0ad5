"""Lesson 15: training diagnostics: the first loss, activations and gradients per layer, overfitting.

What you will learn (the checks Karpathy's makemore series makes before trusting a run)
  * three splits: train (fit the weights), validation (choose steps, sizes, learning
    rates), test (looked at once, at the end); input statistics come from train only;
  * the first loss says whether the initialisation is sane: a network that knows
    nothing should give every one of C classes probability 1/C, a loss of log(C);
    a far larger first loss means confidently wrong logits, and steps wasted undoing them;
  * per-layer statistics of a deep tanh network at initialisation: with weights too
    small the activations shrink layer by layer, too large and the tanh units
    saturate at +-1 where their gradient 1 - tanh^2 vanishes; the gain 5/3 / sqrt(fan_in)
    keeps them steady (histograms per layer, and a heat map over gains);
  * the update-to-data ratio std(delta W) / std(W) per layer and step: about 1e-3
    to 1e-2 trains well here, 1e-5 crawls, 1e-1 rewrites the weights every step;
  * overfitting: a model that memorises (60 examples, or random labels, learned
    perfectly and useless on new data) against one that generalises (all the
    data), early stopping on the validation loss, and one honest test score.

Read alongside
  minigrad/nn/module.py     register_forward_hook: how the activations are collected
  minigrad/tensor.py        Tensor.register_hook: how the gradients are collected
  minigrad/nn/init.py       normal_, calculate_gain (5/3 for tanh)
  minigrad/functional.py    cross_entropy
  minigrad/datasets/digits.py   load_digits
  minigrad/optim.py         SGD, AdamW

Run:  python lessons/15_training_diagnostics.py [--quick] [--out DIR]
Writes first_loss.png, layer_statistics.png, init_sweep.png, update_ratio.png and
overfitting.png into the output folder.
"""
import argparse
import math
import os

# The matrices here are small (64 x 100): BLAS threads cost more than they bring and fight
# other processes for the cores (27 ms against 3 ms a step, measured on a busy 2-core machine).
for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(variable, "1")

import matplotlib
matplotlib.use("Agg")                    # write PNG files, never open a window
import matplotlib.pyplot as plt
import numpy as np

import minigrad as mg
import minigrad.functional as F
import minigrad.nn as nn
from minigrad import optim
from minigrad.datasets import load_digits

parser = argparse.ArgumentParser(description="Lesson 15: training diagnostics")
parser.add_argument("--quick", action="store_true", help="a run of a few seconds (used by the tests)")
parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                  "output", "15_training_diagnostics"),
                    help="folder for the pictures this lesson writes")
args = parser.parse_args()
os.makedirs(args.out, exist_ok=True)


def section(title):
    print(f"\n=== {title} " + "=" * max(0, 70 - len(title)))


def save(figure, name):
    figure.tight_layout()
    figure.savefig(os.path.join(args.out, name), dpi=100)
    plt.close(figure)


# ---------------------------------------------------------------------------
section("1. Three splits: train, validation, test")
X_rest, y_rest, X_test, y_test = load_digits(test_fraction=0.2, seed=0)     # (n, 1, 8, 8) images
X_rest, X_test = X_rest.reshape(len(X_rest), -1), X_test.reshape(len(X_test), -1)   # (n, 64) pixels
n_val = len(X_rest) // 5                          # load_digits shuffled the rows: take the first fifth
X_val, y_val, X_train, y_train = X_rest[:n_val], y_rest[:n_val], X_rest[n_val:], y_rest[n_val:]
# Standardise every pixel with the TRAINING set's mean and spread. Statistics taken from the
# validation or test images would let them leak into training.
pixel_mean, pixel_std = X_train.mean(axis=0), X_train.std(axis=0) + 0.01     # + 0.01: border pixels are ~0
X_train, X_val, X_test = ((X - pixel_mean) / pixel_std for X in (X_train, X_val, X_test))
print(f"train {len(X_train)} images (to fit the weights), validation {len(X_val)} (to choose settings "
      f"and when to stop), test {len(X_test)} (once, at the end)")
print("class counts in train:", np.bincount(y_train, minlength=10).tolist())
n_classes = 10
assert set(np.unique(y_train)) == set(range(n_classes))


def mlp(sizes, gain=5 / 3, output_scale=1.0):
    """Dense layers with tanh between them. Hidden weights ~ N(0, (gain / sqrt(fan_in))^2),
    the output layer's ~ N(0, 1 / fan_in) times output_scale; biases 0."""
    layers = []
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layer = nn.Dense(fan_in, fan_out)
        last = i == len(sizes) - 2
        nn.init.normal_(layer.weight, 0.0, (output_scale if last else gain) / math.sqrt(fan_in))
        nn.init.zeros_(layer.bias)
        layers += [layer] if last else [layer, nn.Tanh()]
    return nn.Sequential(*layers)


def evaluate(model, X, y):
    """(mean cross-entropy, accuracy) of model on (X, y), without recording a graph."""
    with mg.no_grad():
        logits = model(mg.tensor(X))
        return F.cross_entropy(logits, y).item(), float((logits.numpy().argmax(axis=-1) == y).mean())


def loss_on(model, X, y):
    return evaluate(model, X, y)[0]


def accuracy(model, X, y):
    return evaluate(model, X, y)[1]


def sgd_steps(model, steps, lr, momentum=0.0, seed=0, batch_size=64, watch=None):
    """Mini-batch SGD on the training set; returns the batch losses. watch(step) runs after each step."""
    optimizer = optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    rng = np.random.default_rng(seed)
    losses = []
    for step in range(steps):
        rows = rng.integers(0, len(X_train), batch_size)
        loss = F.cross_entropy(model(mg.tensor(X_train[rows])), y_train[rows])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if watch:
            watch(step)
    return losses


# ---------------------------------------------------------------------------
section("2. The first loss: log(C) for a network that knows nothing")
expected_first = math.log(n_classes)
print(f"With {n_classes} classes, uniform guessing gives p = 1/{n_classes} to the right class: "
      f"loss -log(1/{n_classes}) = log({n_classes}) = {expected_first:.3f}")
init_steps = 100 if args.quick else 600
first_loss_runs = {}
for scale, label in ((10.0, "output weights x10"), (1.0, "output weights 1/sqrt(fan_in)"),
                     (0.01, "output weights x0.01")):
    mg.manual_seed(0)
    model = mlp([64, 100, 100, n_classes], output_scale=scale)
    first = loss_on(model, X_train, y_train)
    validation_curve = []                    # (step, validation loss) every 10 steps
    losses = sgd_steps(model, init_steps, lr=0.05, momentum=0.9,
                       watch=lambda step, model=model, curve=validation_curve: step % 10 == 9 and curve.append(
                           (step + 1, loss_on(model, X_val, y_val))))
    first_loss_runs[label] = dict(scale=scale, first=first, losses=losses, curve=np.array(validation_curve),
                                  validation=loss_on(model, X_val, y_val), accuracy=accuracy(model, X_val, y_val))
    print(f"  {label:30s} first loss {first:6.3f}   last loss {np.mean(losses[-20:]):.4f} (20 steps' mean)   "
          f"validation: loss {first_loss_runs[label]['validation']:.3f}, accuracy "
          f"{first_loss_runs[label]['accuracy']:.3f}")
big, plain, small = first_loss_runs.values()
assert abs(small["first"] - expected_first) < 0.01
assert big["first"] > 3 * expected_first
assert np.mean(big["losses"][:20]) > 1.5 * np.mean(small["losses"][:20])
assert big["validation"] > 2 * small["validation"] and abs(big["accuracy"] - small["accuracy"]) < 0.05
print(f"x0.01 starts at log(10) (within {abs(small['first'] - expected_first):.4f}): its logits are all near 0.")
print(f"x10 starts {big['first'] / expected_first:.1f} times higher: large random logits, confidently wrong.")
print(f"Its first 20 steps average {np.mean(big['losses'][:20]):.2f} against {np.mean(small['losses'][:20]):.2f}: "
      f"steps spent shrinking the logits (the 'hockey stick').")
print(f"After {init_steps} steps it classifies about as well, but its validation loss is "
      f"{big['validation'] / small['validation']:.1f} times higher: it stayed overconfident")
print("where it is wrong. Check the first loss of every new model against log(C).")
figure, (left, right) = plt.subplots(1, 2, figsize=(13, 4))
for label, run in first_loss_runs.items():
    left.semilogy(run["losses"][:40], "o-", ms=3, label=f"{label} (first {run['first']:.2f})", alpha=0.8)
    right.plot(run["curve"][:, 0], run["curve"][:, 1], "o-", ms=3, label=label)
left.axhline(expected_first, color="black", ls=":", label=f"log(10) = {expected_first:.2f}")
left.set_xlabel("SGD step"); left.set_ylabel("training loss (batch of 64)"); left.grid(alpha=0.3)
left.set_title("The first 40 steps: a confident random init starts high"); left.legend()
right.set_xlabel("SGD step"); right.set_ylabel("validation loss"); right.set_yscale("log"); right.grid(alpha=0.3)
right.set_title("Validation loss: the x10 network stays overconfident"); right.legend()
save(figure, "first_loss.png")

# ---------------------------------------------------------------------------
section("3. Activations and gradients, layer by layer, at initialisation")
depth, width = 5, 100
probe_rows = np.arange(256)


def layer_statistics(gain):
    """A fresh 5-hidden-layer tanh network with this gain: each tanh layer's output and the
    gradient of the loss with respect to it, on 256 training images."""
    mg.manual_seed(0)
    model = mlp([64] + [width] * depth + [n_classes], gain=gain, output_scale=0.1)
    outputs, gradients = [], {}

    def keep(module, inputs, output):          # a forward hook: runs after each tanh layer
        k = len(outputs)
        outputs.append(output)
        output.register_hook(lambda grad: gradients.__setitem__(k, grad.numpy()))   # dL/d(output)

    handles = [module.register_forward_hook(keep) for module in model.children() if isinstance(module, nn.Tanh)]
    F.cross_entropy(model(mg.tensor(X_train[probe_rows])), y_train[probe_rows]).backward()
    for handle in handles:
        handle.remove()
    return [output.numpy() for output in outputs], [gradients[k] for k in range(len(outputs))]


def saturated(activation):
    return float(np.mean(np.abs(activation) > 0.97))     # where 1 - tanh^2 < 0.06


cases = {"gain 0.5 (too small)": 0.5, "gain 5/3 (tanh's)": 5 / 3, "gain 5 (too large)": 5.0}
print("layer:            " + "".join(f"{k:>15d}" for k in range(1, depth + 1)))
statistics = {}
for label, gain in cases.items():
    activations, gradients = layer_statistics(gain)
    statistics[label] = (activations, gradients)
    print(f"{label}")
    print("  activation std  " + "".join(f"{a.std():15.3f}" for a in activations))
    print("  saturated       " + "".join(f"{saturated(a):15.0%}" for a in activations))
    print("  gradient std    " + "".join(f"{g.std():15.2e}" for g in gradients))
small_acts, small_grads = statistics["gain 0.5 (too small)"]
good_acts, good_grads = statistics["gain 5/3 (tanh's)"]
large_acts, large_grads = statistics["gain 5 (too large)"]
assert small_acts[-1].std() < 0.1 * small_acts[0].std()
assert all(0.4 < b.std() / a.std() < 0.6 for a, b in zip(small_acts, small_acts[1:]))
assert small_grads[0].std() < 0.2 * small_grads[-1].std()
assert all(saturated(a) > 0.5 for a in large_acts) and large_grads[0].std() > 3 * large_grads[-1].std()
assert all(saturated(a) < 0.2 for a in good_acts)
good_std = [a.std() for a in good_acts]
assert max(good_std) < 1.2 * min(good_std)
print("Too small: each layer multiplies the spread by about 0.5 (std falls from "
      f"{small_acts[0].std():.2f} to {small_acts[-1].std():.3f}), and the gradient shrinks on its way back")
print(f"to the first layers ({small_grads[-1].std():.1e} -> {small_grads[0].std():.1e}).")
print(f"Too large: {min(saturated(a) for a in large_acts):.0%} or more of the units of every layer sit at +-1, "
      f"where tanh passes back almost no gradient")
print(f"(those units stop learning; the gradients of the others grow towards the input: "
      f"{large_grads[-1].std():.1e} -> {large_grads[0].std():.1e}).")
print(f"Gain 5/3: std steady at {min(good_std):.2f}-{max(good_std):.2f}, few units saturated: "
      "Kaiming init with tanh's gain (nn.init.calculate_gain('tanh') = 5/3).")
assert abs(nn.init.calculate_gain("tanh") - 5 / 3) < 1e-12

figure, axes = plt.subplots(2, 3, figsize=(15, 7))
for column, (label, (activations, gradients)) in enumerate(statistics.items()):
    for k, (a, g) in enumerate(zip(activations, gradients)):
        counts, edges = np.histogram(a, bins=50, range=(-1, 1), density=True)
        axes[0, column].plot((edges[:-1] + edges[1:]) / 2, counts,
                             label=f"layer {k + 1}: std {a.std():.2f}, sat. {saturated(a):.0%}")
        limit = 4 * max(gr.std() for gr in gradients)
        counts, edges = np.histogram(g, bins=50, range=(-limit, limit), density=True)
        axes[1, column].plot((edges[:-1] + edges[1:]) / 2, counts, label=f"layer {k + 1}: std {g.std():.1e}")
    axes[0, column].set_title(f"{label}: tanh outputs"); axes[0, column].set_xlabel("activation")
    axes[1, column].set_title(f"{label}: gradients dL/d(output)"); axes[1, column].set_xlabel("gradient")
    for row in (0, 1):
        axes[row, column].set_ylabel("density"); axes[row, column].legend(fontsize=7)
        axes[row, column].grid(alpha=0.3)
    axes[1, column].ticklabel_format(axis="x", style="sci", scilimits=(0, 0))
save(figure, "layer_statistics.png")

gains = [0.25, 0.5, 1.0, 5 / 3, 2.5, 4.0, 6.0] if args.quick else [0.25, 0.5, 0.75, 1.0, 1.25, 5 / 3, 2.0, 2.5,
                                                                     3.0, 4.0, 6.0, 8.0]
sweep = [layer_statistics(gain) for gain in gains]
saturation_map = np.array([[saturated(a) for a in activations] for activations, _ in sweep]).T   # (layer, gain)
gradient_map = np.log10(np.array([[g.std() for g in gradients] for _, gradients in sweep])).T
figure, axes = plt.subplots(1, 2, figsize=(14, 4))
for ax, grid, title, colour_label, cmap in (
        (axes[0], 100 * saturation_map, "saturated tanh units (%)", "% of units with |tanh| > 0.97", "Reds"),
        (axes[1], gradient_map, "gradient size per layer", "log10 std of dL/d(output)", "viridis")):
    image = ax.imshow(grid, aspect="auto", cmap=cmap, origin="lower")
    figure.colorbar(image, ax=ax, label=colour_label)
    ax.set_xticks(range(len(gains)), [f"{g:.2g}" for g in gains])
    ax.set_yticks(range(depth), [f"layer {k + 1}" for k in range(depth)])
    ax.set_xlabel("gain (weights ~ N(0, gain^2 / fan_in))"); ax.set_title(title)
    for (row, column), value in np.ndenumerate(grid):
        ax.text(column, row, f"{value:.0f}" if ax is axes[0] else f"{value:.1f}", ha="center", va="center",
                fontsize=7, color="white" if (value > 50 if ax is axes[0] else value < grid.mean()) else "black")
save(figure, "init_sweep.png")
assert saturation_map[-1, 0] == 0.0 and saturation_map[-1, -1] > 0.5
print(f"Swept over {len(gains)} gains (init_sweep.png): saturation in the last layer rises from "
      f"{saturation_map[-1, 0]:.0%} to {saturation_map[-1, -1]:.0%}.")

# ---------------------------------------------------------------------------
section("4. The update-to-data ratio: how much each step changes each layer")
# log10( std(W_after - W_before) / std(W_before) ) for every weight matrix, every step.
ratio_steps = 60 if args.quick else 400
learning_rates = [0.001, 0.03, 0.3, 3.0]
ratio_runs = {}
for lr in learning_rates:
    mg.manual_seed(0)
    model = mlp([64] + [width] * depth + [n_classes], output_scale=0.1)
    weights = [p for name, p in model.named_parameters() if name.endswith("weight")]
    before, ratios = [None], []

    def remember(step, weights=weights, before=before, ratios=ratios):
        now = [w.numpy().copy() for w in weights]
        if before[0] is not None:
            ratios.append([np.log10((n - b).std() / b.std()) for n, b in zip(now, before[0])])
        before[0] = now

    remember(-1)
    losses = sgd_steps(model, ratio_steps, lr=lr, watch=remember)
    ratio_runs[lr] = dict(ratios=np.array(ratios), loss=float(np.mean(losses[-20:])),
                          validation=accuracy(model, X_val, y_val))
    # the hidden layers over the first 50 steps, while the network learns the most (the output
    # layer starts 10x smaller, so its ratio reads high)
    early = ratio_runs[lr]["ratios"][:50, :-1]
    ratio_runs[lr]["early"] = float(early.mean())
    print(f"  lr {lr:<6g} log10 ratio (hidden layers, first 50 steps) {early.mean():5.2f}   last loss "
          f"{ratio_runs[lr]['loss']:.3f}   validation accuracy {ratio_runs[lr]['validation']:.2f}")
crawl, fair, good, wild = (ratio_runs[lr] for lr in learning_rates)
assert crawl["early"] < -4.5 and crawl["loss"] > 0.5 * expected_first
assert -3.0 < good["early"] < -2.0 and good["validation"] > 0.9
assert wild["early"] > -1.5 and wild["loss"] > expected_first
assert good["validation"] > max(ratio["validation"] for ratio in (crawl, fair, wild))
print(f"lr 0.001 changes each weight matrix by ~{10 ** crawl['early']:.0e} of its size per step: after "
      f"{ratio_steps} steps its loss is still {crawl['loss']:.2f}.")
print(f"lr 3 changes {10 ** wild['early']:.0%} of it every step, and its loss ends at {wild['loss']:.2f}, worse "
      f"than guessing (log(10) = {expected_first:.2f}).")
print(f"The best run here, lr 0.3, changes {10 ** good['early']:.0e} per step, between 1e-3 and 1e-2. The rule of "
      f"thumb from makemore")
print("is about 1e-3: plot the ratio, and distrust a run far below it (crawling) or far above (thrashing).")
figure, axes = plt.subplots(1, len(learning_rates), figsize=(16, 3.8), sharey=True)
for ax, lr in zip(axes, learning_rates):
    for k in range(depth + 1):
        ax.plot(ratio_runs[lr]["ratios"][:, k], label=f"layer {k + 1}" + (" (output)" if k == depth else ""))
    ax.axhline(-3, color="black", ls=":", label="1e-3")
    ax.set_title(f"lr {lr:g}: last loss {ratio_runs[lr]['loss']:.2f}"); ax.set_xlabel("SGD step")
    ax.grid(alpha=0.3)
axes[0].set_ylabel("log10 std(update) / std(weight)"); axes[0].legend(fontsize=7)
save(figure, "update_ratio.png")

# ---------------------------------------------------------------------------
section("5. Memorising against generalising; early stopping; one test score")


def train_epochs(X, y, epochs, seed=0, wide=256, lr=3e-3):
    """AdamW (no weight decay) on (X, y), mini-batches of 64; per epoch the training and
    validation loss and accuracy, and the weights of the epoch with the lowest validation loss."""
    mg.manual_seed(seed)
    model = mlp([64, wide, wide, n_classes], output_scale=0.1)
    optimizer = optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    rng = np.random.default_rng(seed)
    history, best = [], (math.inf, None, -1)
    for epoch in range(epochs):
        order = rng.permutation(len(X))
        for start in range(0, len(X), 64):
            rows = order[start:start + 64]
            loss = F.cross_entropy(model(mg.tensor(X[rows])), y[rows])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        (train_loss, train_acc), (val_loss, val_acc) = evaluate(model, X, y), evaluate(model, X_val, y_val)
        history.append((train_loss, val_loss, train_acc, val_acc))
        if history[-1][1] < best[0]:
            best = (history[-1][1], {k: v.numpy().copy() for k, v in model.state_dict().items()}, epoch)
    return model, np.array(history), best


few = 40
runs = {}
runs[f"{few} examples"] = train_epochs(X_train[:few], y_train[:few], 60 if args.quick else 200)
shuffled = np.random.default_rng(1).permutation(y_train[:300])        # labels that mean nothing
runs["300 examples, random labels"] = train_epochs(X_train[:300], shuffled, 40 if args.quick else 100)
runs[f"all {len(X_train)} examples"] = train_epochs(X_train, y_train, 8 if args.quick else 30)
for label, (_, history, best) in runs.items():
    train_loss, val_loss, train_acc, val_acc = history[-1]
    print(f"  {label:28s} train: loss {train_loss:.3f}, accuracy {train_acc:.2f}   validation: loss "
          f"{val_loss:.3f}, accuracy {val_acc:.2f}   (lowest validation loss at epoch {best[2] + 1})")
memorised, noise, general = (history for _, history, _ in runs.values())
assert memorised[-1, 2] == 1.0 and memorised[-1, 3] < general[-1, 3] - 0.05
assert memorised[-1, 1] > memorised[:, 1].min() * 1.1             # validation loss rose after its minimum
assert noise[-1, 2] > 0.95 and noise[-1, 3] < 0.2                 # random labels: learned, and useless
assert general[-1, 3] > 0.95 and general[-1, 2] - general[-1, 3] < 0.05
print(f"{few} examples: training accuracy 100%, validation {memorised[-1, 3]:.0%}; its validation loss was lowest "
      f"({memorised[:, 1].min():.3f}) at epoch {int(memorised[:, 1].argmin()) + 1} and rose to "
      f"{memorised[-1, 1]:.3f}:")
print(f"past that point the network learns the {few} images, not digits.")
print(f"Random labels: {noise[-1, 2]:.0%} of 300 meaningless labels learned, {noise[-1, 3]:.0%} on new images "
      f"(chance is 10%). A training score alone proves nothing.")
print(f"All the data: training {general[-1, 2]:.0%}, validation {general[-1, 3]:.0%}: a small gap, it generalises.")
model, history, (best_loss, best_state, best_epoch) = runs[f"all {len(X_train)} examples"]
model.load_state_dict({k: mg.tensor(v) for k, v in best_state.items()})      # early stopping: the best epoch
test_accuracy = accuracy(model, X_test, y_test)
assert abs(loss_on(model, X_val, y_val) - best_loss) < 1e-6 and test_accuracy > 0.9
best_val_accuracy = accuracy(model, X_val, y_val)
print(f"Early stopping keeps epoch {best_epoch + 1} (validation loss {best_loss:.3f}, accuracy "
      f"{best_val_accuracy:.1%}); its test accuracy, measured once: {test_accuracy:.1%}.")
print("The test set chose nothing, so its score is the honest estimate for new digits; a score on data")
print("that helped choose (the validation set picked the epoch) tends to be optimistic.")
figure, axes = plt.subplots(1, 3, figsize=(16, 4))
for ax, (label, (_, history, best)) in zip(axes, runs.items()):
    epochs = np.arange(1, len(history) + 1)
    ax.plot(epochs, history[:, 0], label="train loss")
    ax.plot(epochs, history[:, 1], label="validation loss")
    ax.axvline(best[2] + 1, color="gray", ls=":", label="lowest validation loss")
    ax.set_yscale("log"); ax.set_xlabel("epoch"); ax.set_ylabel("cross-entropy"); ax.grid(alpha=0.3)
    ax.set_title(f"{label}\ntrain acc {history[-1, 2]:.0%}, validation acc {history[-1, 3]:.0%}")
    ax.legend(fontsize=8)
save(figure, "overfitting.png")
print(f"\nWrote first_loss.png, layer_statistics.png, init_sweep.png, update_ratio.png and overfitting.png "
      f"to {args.out}")
