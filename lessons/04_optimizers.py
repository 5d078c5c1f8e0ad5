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
  * how they behave on a long narrow valley, where plain GD zig-zags;
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
import os

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


def section(title):
    print(f"\n=== {title} " + "=" * max(0, 70 - len(title)))


# ---------------------------------------------------------------------------
section("1. A narrow valley: f(a, b) = a^2 / 20 + b^2")
# Steep across (b), flat along (a): the gradient points mostly across the valley,
# so GD bounces from wall to wall; momentum averages the bounces away; Adam
# divides each coordinate's step by that coordinate's typical gradient size.
# GD's rate is capped by the steep direction: its curvature is 2, and any
# lr > 2 / 2 = 1 makes b blow up; at lr = 0.9 the flat direction (curvature
# 1/10) shrinks by only a factor (1 - 0.9 / 10) per step.
valley_steps = 30 if args.quick else 60
valley_runs = {
    "GD (lr 0.9)": lambda p: optim.GD(p, lr=0.9),
    "momentum (lr 0.1, mu 0.9)": lambda p: optim.SGD(p, lr=0.1, momentum=0.9),
    "Adam (lr 0.3)": lambda p: optim.Adam(p, lr=0.3),
}
paths = {}
for name, make_optimizer in valley_runs.items():
    point = mg.tensor([-7.0, 2.0], requires_grad=True)
    optimizer = make_optimizer([point])
    path = [point.numpy().copy()]
    for _ in range(valley_steps):
        a, b = point[0], point[1]
        value = a * a / 20 + b * b
        optimizer.zero_grad()
        value.backward()
        optimizer.step()
        path.append(point.numpy().copy())
    paths[name] = np.array(path)
    final = paths[name][-1]
    print(f"  {name:28s} after {valley_steps} steps: (a, b) = ({final[0]:+.3f}, {final[1]:+.3f}), "
          f"f = {final[0] ** 2 / 20 + final[1] ** 2:.5f}")

grid_a, grid_b = np.meshgrid(np.linspace(-8, 8, 100), np.linspace(-3, 3, 100))
figure, axes = plt.subplots(figsize=(8, 3.5))
axes.contour(grid_a, grid_b, grid_a ** 2 / 20 + grid_b ** 2, levels=15, cmap="Greys")
for name, path in paths.items():
    axes.plot(path[:, 0], path[:, 1], ".-", markersize=3, label=name)
axes.plot(0, 0, "k*", markersize=10)
axes.legend(fontsize=8); axes.set_xlabel("a"); axes.set_ylabel("b")
axes.set_title("f(a, b) = a^2/20 + b^2 from (-7, 2)")
figure.tight_layout()
figure.savefig(os.path.join(args.out, "valley.png"), dpi=100)
plt.close(figure)

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
curves = {}
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
    print(f"  {name:24s} first loss {curve[0]:.4f}   last loss {curve[-1]:.4f}   accuracy {accuracy:.3f}")
    assert curve[-1] < curve[0], f"{name}: training should reduce the loss: {curve[0]:.4f} -> {curve[-1]:.4f}"

figure, axes = plt.subplots(figsize=(6.5, 4))
for name, curve in curves.items():
    axes.plot(curve, label=name)
axes.set_yscale("log"); axes.set_xlabel("epoch"); axes.set_ylabel("cross-entropy (all data)")
axes.set_title("The same MLP trained by four optimizers"); axes.legend()
figure.tight_layout()
figure.savefig(os.path.join(args.out, "loss_curves.png"), dpi=100)
plt.close(figure)
print(f"Wrote valley.png and loss_curves.png to {args.out}")
