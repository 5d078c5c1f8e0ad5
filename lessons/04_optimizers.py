"""Lesson 4: optimizers: GD, SGD, momentum and Adam on the same problem.

What you will learn
  * the update rule of each optimizer, written next to the code that runs it
    (g is the gradient dL/dw, lr the learning rate):
      GD        w <- w - lr * g                   g over the WHOLE training set
      SGD       w <- w - lr * g                   g over a random mini-batch
      momentum  v <- mu * v + g;  w <- w - lr * v (a velocity that remembers
                                                   past gradients, PyTorch's form)
      Adam      m <- b1 m + (1 - b1) g;   s <- b2 s + (1 - b2) g^2
                m_hat = m / (1 - b1^t);   s_hat = s / (1 - b2^t)
                w <- w - lr * m_hat / (sqrt(s_hat) + eps)   (a step size per weight)
  * how they behave on a long narrow valley, where plain GD zig-zags and momentum,
    given a fair (tuned) setting, gets there far sooner;
  * what the primer's "dynamic gradient descent" most likely means;
  * how fast each one trains the same MLP on the same data.

Read alongside
  minigrad/optim.py        GD, SGD (momentum, nesterov), Adam, AdamW
  minigrad/datasets/synthetic.py   make_spirals
  minigrad/data.py         DataLoader

Run:  python lessons/04_optimizers.py [--quick] [--out DIR]
Writes valley.png (the paths on a 2-D valley) and loss_curves.png (the four
optimizers training one network, loss curves in one plot).
"""
import argparse
import json
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
from minigrad.datasets import make_spirals

parser = argparse.ArgumentParser(description="Lesson 4: GD, SGD, momentum and Adam")
parser.add_argument("--quick", action="store_true", help="a run of a few seconds (used by the tests)")
parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                  "output", "04_optimizers"),
                    help="folder for the pictures this lesson writes")
args = parser.parse_args()
os.makedirs(args.out, exist_ok=True)
# What the full run reached, recorded from `python lessons/04_optimizers.py` (no --quick):
# a --quick run trains too few epochs for the slower optimizers, so it prints these beside its own.
FULL_RUN_RECORD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "04_optimizers.json")


def section(title):
    print(f"\n=== {title} " + "=" * max(0, 70 - len(title)))


# ---------------------------------------------------------------------------
section("1. A narrow valley: f(a, b) = a^2 / 100 + b^2")
# Steep across (b, curvature 2), flat along (a, curvature 1/50): a condition number
# of 100. The gradient points mostly across the valley. GD's rate is capped by the
# steep direction (any lr > 2 / 2 = 1 makes b blow up); near that cap b flips sign
# every step (GD zig-zags from wall to wall) while a shrinks by only (1 - lr / 50)
# per step. Momentum adds up the steps: across the valley they alternate in sign and
# cancel in the velocity, along it they agree and build up speed. Adam divides each
# coordinate's step by that coordinate's typical gradient size.
# A comparison is fair only if each method gets its best setting, so each one tries a
# few learning rates (and momentum values) and keeps its best, over the same 60 steps.
valley_steps = 60


def valley(a, b):
    return a * a / 100 + b * b


def descend(make_optimizer, make_scheduler=None):
    """Run an optimizer from (-7, 2) for valley_steps steps; the path it took, (steps + 1, 2)."""
    point = mg.tensor([-7.0, 2.0], requires_grad=True)
    optimizer = make_optimizer([point])
    scheduler = make_scheduler(optimizer) if make_scheduler else None
    path = [point.numpy().copy()]
    for _ in range(valley_steps):
        value = valley(point[0], point[1])
        optimizer.zero_grad()
        value.backward()
        optimizer.step()
        if scheduler:
            scheduler.step()
        path.append(point.numpy().copy())
    return np.array(path)


def final_value(path):
    return float(valley(*path[-1]))


searches = {
    "GD": {f"lr {lr}": (lambda p, lr=lr: optim.GD(p, lr=lr)) for lr in (0.1, 0.3, 0.5, 0.9)},
    "momentum": {f"lr {lr}, mu {mu}": (lambda p, lr=lr, mu=mu: optim.SGD(p, lr=lr, momentum=mu))
                 for lr in (0.1, 0.3, 0.5) for mu in (0.5, 0.7, 0.8, 0.9)},
    "Adam": {f"lr {lr}": (lambda p, lr=lr: optim.Adam(p, lr=lr)) for lr in (0.03, 0.1, 0.3, 1.0)},
}
paths, best = {}, {}
for method, settings in searches.items():
    results = {setting: descend(make) for setting, make in settings.items()}
    setting = min(results, key=lambda k: final_value(results[k]))
    best[method] = final_value(results[setting])
    paths[f"{method} ({setting})"] = results[setting]
    print(f"  {method:9s} best of {len(settings):2d} settings: {setting:16s} f after {valley_steps} steps = "
          f"{best[method]:.2e}   (worst setting: {max(final_value(p) for p in results.values()):.2e})")
    if method == "momentum":
        default = results["lr 0.1, mu 0.9"]
        flips = int(np.sum(np.sign(default[1:, 1]) != np.sign(default[:-1, 1])))
        print(f"            with lr 0.1, mu 0.9 (a common default): f = {final_value(default):.2e}: momentum "
              f"this high damps the steep direction\n            too little: b crossed the valley floor "
              f"{flips} times and is still {default[-1, 1]:+.3f}")
        assert flips >= 3 and abs(default[-1, 1]) > 0.01
print(f"momentum's best ends {best['GD'] / best['momentum']:.0f}x lower than GD's best.")
assert best["momentum"] < best["GD"] / 10, "momentum should beat GD clearly in this valley"
gd_path = paths[next(name for name in paths if name.startswith("GD"))]
b_signs = np.sign(gd_path[1:11, 1])
print(f"GD's b over its first 10 steps: signs {b_signs.astype(int).tolist()}: it zig-zags across the valley")
assert np.all(b_signs[1:] != b_signs[:-1]), "GD should flip the sign of b every step at its best lr"

# Adam's step is about lr in every coordinate, whatever the gradient's size: it runs
# along the flat direction as fast as across the steep one, but near the minimum its
# steps do not shrink with the gradient, so it overshoots and wobbles.
adam_path = paths[next(name for name in paths if name.startswith("Adam"))]
values = valley(adam_path[:, 0], adam_path[:, 1])
rises = int(np.sum(np.diff(values) > 0))
print(f"Adam's f rose on {rises} of its {valley_steps} steps: it overshoots and wobbles rather than settling.")
assert rises > 0

grid_a, grid_b = np.meshgrid(np.linspace(-8, 8, 100), np.linspace(-3, 3, 100))
figure, axes = plt.subplots(figsize=(8, 3.5))
contours = axes.contour(grid_a, grid_b, valley(grid_a, grid_b), levels=15, cmap="Greys")
figure.colorbar(contours, ax=axes, label="f(a, b)")
for name, path in paths.items():
    axes.plot(path[:, 0], path[:, 1], ".-", markersize=3, label=name)
axes.plot(0, 0, "k*", markersize=10)
axes.legend(fontsize=8); axes.set_xlabel("a"); axes.set_ylabel("b")
axes.set_title(f"f(a, b) = a^2/100 + b^2 from (-7, 2), {valley_steps} steps, each method's best setting")
figure.tight_layout()
figure.savefig(os.path.join(args.out, "valley.png"), dpi=100)
plt.close(figure)

# ---------------------------------------------------------------------------
section("The primer's words: \"dynamic gradient descent\" (动态梯度下降)")
# The primer lists "gradient descent, stochastic gradient descent, dynamic gradient
# descent" as the common optimizers. "Dynamic gradient descent" is not a standard
# term; it most likely stands for one of three standard ideas, all in minigrad/optim.py:
print("'dynamic gradient descent' is no standard name. It most likely means one of:")
print("  * momentum (动量, which shares its first character with the primer's 动态): SGD(momentum=mu), above;")
print("  * adaptive methods, whose step changes per weight as training goes: Adam (above), AdamW;")
print("  * a learning-rate schedule, a step size that changes over time: WarmupCosine (lesson 8),")
print("    NoamScheduler (lesson 7).")
print(f"In the valley, both beat plain GD's {best['GD']:.1e}: momentum {best['momentum']:.1e}, "
      f"Adam {best['Adam']:.1e}.")
assert max(best["momentum"], best["Adam"]) < best["GD"]

# ---------------------------------------------------------------------------
section("2. One network, four optimizers")
X, y = make_spirals(n=300, classes=3, noise=0.2, seed=0)
epochs = 12 if args.quick else 150
batch_size = 32
print(f"3-class spirals: X {X.shape}, an MLP 2 -> 32 -> 32 -> 3, {epochs} epochs, batches of {batch_size}")
print("GD takes ONE step per epoch (the gradient of all 300 points); the others take")
print(f"{-(-len(X) // batch_size)} steps per epoch, one per mini-batch. The x axis counts epochs (passes over the data).")

setups = {
    "GD      lr=0.5": (lambda p: optim.GD(p, lr=0.5), len(X)),
    "SGD     lr=0.1": (lambda p: optim.SGD(p, lr=0.1), batch_size),
    "momentum lr=0.1 mu=0.9": (lambda p: optim.SGD(p, lr=0.1, momentum=0.9), batch_size),
    "Adam    lr=0.01": (lambda p: optim.Adam(p, lr=0.01), batch_size),
}
curves, finals = {}, {}
start = time.time()
for name, (make_optimizer, batch) in setups.items():
    mg.manual_seed(0)                                    # the same starting weights for everyone
    model = nn.MLP([2, 32, 32, 3], activation="relu")
    optimizer = make_optimizer(model.parameters())
    loader = DataLoader((X, y), batch_size=batch, shuffle=True, seed=0)
    inputs_all, targets_all = mg.tensor(X), mg.tensor(y)
    with mg.no_grad():
        curve = [F.cross_entropy(model(inputs_all), targets_all).item()]   # loss before training
    for epoch in range(epochs):
        for xb, yb in loader:
            loss = F.cross_entropy(model(mg.tensor(xb)), mg.tensor(yb))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        with mg.no_grad():                               # the loss on all the data, after the epoch
            logits = model(inputs_all)
            curve.append(F.cross_entropy(logits, targets_all).item())
    curves[name] = curve
    accuracy = float((logits.numpy().argmax(1) == y).mean())
    finals[name] = {"first_loss": curve[0], "last_loss": curve[-1], "accuracy": accuracy}
    print(f"  {name:24s} first loss {curve[0]:.4f}   last loss {curve[-1]:.4f}   accuracy {accuracy:.3f}")
    assert curve[-1] < curve[0], f"{name}: training should reduce the loss: {curve[0]:.4f} -> {curve[-1]:.4f}"
if args.quick:
    if os.path.exists(FULL_RUN_RECORD):
        with open(FULL_RUN_RECORD, encoding="utf-8") as handle:
            full = json.load(handle)
        assert list(full["optimizers"]) == list(setups), "the record should be of these four optimizers"
        slow = [name.split()[0] for name in setups
                if finals[name]["accuracy"] < full["optimizers"][name]["accuracy"] - 0.1]
        print(f"(--quick: {epochs} epochs are too few for " + " and ".join(slow) + ": their accuracy above is more "
              f"than 0.1 below the full run's.)" if slow else f"(--quick: only {epochs} epochs.)")
        print(f"The full run ({full['epochs']} epochs; recorded in lessons/results/) reached:")
        for name, final in full["optimizers"].items():
            print(f"  {name:24s} last loss {final['last_loss']:.4f}   accuracy {final['accuracy']:.3f}")
else:
    with open(os.path.join(args.out, "full_run.json"), "w", encoding="utf-8") as handle:
        json.dump({"epochs": epochs, "seconds": round(time.time() - start), "optimizers": finals}, handle, indent=1)

figure, axes = plt.subplots(figsize=(6.5, 4))
for name, curve in curves.items():
    axes.plot(curve, label=name)
axes.set_yscale("log"); axes.set_xlabel("epoch"); axes.set_ylabel("cross-entropy (all data)")
axes.set_title("The same MLP trained by four optimizers"); axes.legend()
figure.tight_layout()
figure.savefig(os.path.join(args.out, "loss_curves.png"), dpi=100)
plt.close(figure)
print(f"Wrote valley.png and loss_curves.png to {args.out}")
