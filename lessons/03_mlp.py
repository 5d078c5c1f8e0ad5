"""Lesson 3: a multi-layer network (MLP) that classifies points.

What you will learn
  * layers: an input layer (the 2 coordinates of a point), hidden layers that
    learn features, an output layer with one score ("logit") per class;
  * why the hidden layers need a non-linearity (ReLU): without it the whole
    network is one linear map and can only draw a straight boundary;
  * softmax turns logits into probabilities, and the cross-entropy loss
    L = -1/n sum_i log softmax(z_i)[y_i] punishes a low probability on the right class;
  * mini-batch SGD: each step uses the gradient of a small random batch;
  * the learned decision boundary, drawn as a picture and as text.

Read alongside
  minigrad/nn/layers.py    Dense, ReLU, MLP
  minigrad/nn/module.py    Module, Sequential, parameters()
  minigrad/functional.py   cross_entropy, log_softmax
  minigrad/datasets/synthetic.py   make_moons
  minigrad/data.py         DataLoader
  minigrad/optim.py        SGD

Run:  python lessons/03_mlp.py [--quick] [--out DIR]
Writes decision_boundary.png and loss.png into the output folder.
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
from minigrad.datasets import make_moons

parser = argparse.ArgumentParser(description="Lesson 3: a multi-layer network")
parser.add_argument("--quick", action="store_true", help="a run of a few seconds (used by the tests)")
parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                  "output", "03_mlp"),
                    help="folder for the pictures this lesson writes")
args = parser.parse_args()
os.makedirs(args.out, exist_ok=True)


def section(title):
    print(f"\n=== {title} " + "=" * max(0, 70 - len(title)))


epochs = 15 if args.quick else 150
batch_size = 32

# ---------------------------------------------------------------------------
section("1. Data: two interleaving half moons, two classes")
X_train, y_train = make_moons(n=400, noise=0.15, seed=0)
X_test, y_test = make_moons(n=200, noise=0.15, seed=1)      # unseen points for the final check
print(f"train X {X_train.shape} {X_train.dtype}, y {y_train.shape} {y_train.dtype}; "
      f"classes {np.bincount(y_train)}")
print("No straight line separates the moons, so a single neuron cannot do this.")

# ---------------------------------------------------------------------------
section("2. The network: input 2 -> hidden 16 -> hidden 16 -> output 2")
mg.manual_seed(0)
model = nn.Sequential(
    nn.Dense(2, 16),     # input layer -> first hidden layer:  h1 = relu(x W1 + b1)
    nn.ReLU(),
    nn.Dense(16, 16),    # second hidden layer:                h2 = relu(h1 W2 + b2)
    nn.ReLU(),
    nn.Dense(16, 2),     # output layer, one logit per class:  z = h2 W3 + b3
)
print(model)
for name, parameter in model.named_parameters():
    print(f"  {name:10s} {str(parameter.shape):10s}")
print(f"parameters: {model.num_parameters()}  (nn.MLP([2, 16, 16, 2]) builds the same stack)")
mg.manual_seed(0)                        # the same draws in the same order: the same weights, the same outputs
probe = mg.tensor(np.random.default_rng(1).standard_normal((4, 2)))
assert np.array_equal(nn.MLP([2, 16, 16, 2])(probe).numpy(), model(probe).numpy())

# ---------------------------------------------------------------------------
section("3. Softmax and cross-entropy, by hand and by F.cross_entropy")
logits = model(mg.tensor(X_train[:4]))                       # (4, 2)
z = logits.numpy()
probabilities = np.exp(z - z.max(1, keepdims=True))
probabilities /= probabilities.sum(1, keepdims=True)         # softmax(z)_c = e^z_c / sum_k e^z_k
by_hand = -np.mean(np.log(probabilities[np.arange(4), y_train[:4]]))
print("logits of 4 points:\n", np.round(z, 3))
print("softmax probabilities:\n", np.round(probabilities, 3))
print(f"cross-entropy by hand {by_hand:.6f}   F.cross_entropy "
      f"{F.cross_entropy(logits, mg.tensor(y_train[:4])).item():.6f}")

# ---------------------------------------------------------------------------
section(f"4. Mini-batch SGD: {epochs} epochs of {len(X_train) // batch_size + 1} batches")
optimizer = optim.SGD(model.parameters(), lr=0.1)
loader = DataLoader((X_train, y_train), batch_size=batch_size, shuffle=True, seed=0)


def accuracy(X, y):
    with mg.no_grad():
        predicted = model(mg.tensor(X)).numpy().argmax(axis=1)
    return float((predicted == y).mean())


epoch_losses = []
for epoch in range(epochs):
    total, count = 0.0, 0
    for xb, yb in loader:                                    # xb (32, 2), yb (32,)
        loss = F.cross_entropy(model(mg.tensor(xb)), mg.tensor(yb))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()                                     # w <- w - lr * dL_batch/dw
        total, count = total + loss.item() * len(yb), count + len(yb)
    epoch_losses.append(total / count)
    if epoch % max(1, epochs // 6) == 0 or epoch == epochs - 1:
        print(f"  epoch {epoch:3d}  loss {epoch_losses[-1]:.4f}  train accuracy {accuracy(X_train, y_train):.3f}")

print(f"first loss {epoch_losses[0]:.4f}   last loss {epoch_losses[-1]:.4f}")
print(f"test accuracy on 200 unseen points: {accuracy(X_test, y_test):.3f}")
assert epoch_losses[-1] < epoch_losses[0], \
    f"training should reduce the loss: {epoch_losses[0]:.4f} -> {epoch_losses[-1]:.4f}"

# ---------------------------------------------------------------------------
section("5. The decision boundary")
# Ask the network about every point of a grid: the class it picks paints the plane.
low, high = X_train.min(0) - 0.4, X_train.max(0) + 0.4
columns, rows = 64, 24                                        # the text picture's size
xs, ys = np.linspace(low[0], high[0], columns), np.linspace(high[1], low[1], rows)
grid = np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2).astype(np.float32)
with mg.no_grad():
    regions = model(mg.tensor(grid)).numpy().argmax(1).reshape(rows, columns)
canvas = np.where(regions == 0, ".", " ").astype(object)
for (px, py), label in zip(X_test, y_test):                  # overlay the unseen points
    column = int(round((px - low[0]) / (high[0] - low[0]) * (columns - 1)))
    row = int(round((high[1] - py) / (high[1] - low[1]) * (rows - 1)))
    canvas[row, column] = "o" if label == 0 else "x"
print("'.' = region of class 0, blank = class 1;  o / x = unseen points of class 0 / 1")
print("+" + "-" * columns + "+")
for line in canvas:
    print("|" + "".join(line) + "|")
print("+" + "-" * columns + "+")

xs, ys = np.linspace(low[0], high[0], 300), np.linspace(low[1], high[1], 300)
fine_grid = np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2).astype(np.float32)
with mg.no_grad():
    probability_1 = F.softmax(model(mg.tensor(fine_grid)), axis=-1).numpy()[:, 1].reshape(300, 300)
figure, axes = plt.subplots(figsize=(6, 4.5))
shade = axes.contourf(xs, ys, probability_1, levels=20, cmap="RdBu_r", alpha=0.6)
axes.contour(xs, ys, probability_1, levels=[0.5], colors="k")
axes.scatter(*X_train.T, c=y_train, cmap="RdBu_r", edgecolors="k", s=15)
figure.colorbar(shade, label="P(class 1)")
axes.set_title("MLP decision boundary (black: P = 0.5)")
figure.tight_layout()
figure.savefig(os.path.join(args.out, "decision_boundary.png"), dpi=100)
plt.close(figure)

figure, axes = plt.subplots(figsize=(5, 3.5))
axes.plot(epoch_losses); axes.set_xlabel("epoch"); axes.set_ylabel("cross-entropy")
figure.tight_layout()
figure.savefig(os.path.join(args.out, "loss.png"), dpi=100)
plt.close(figure)
print(f"Wrote decision_boundary.png and loss.png to {args.out}")
