"""Lesson 3: a multi-layer network (MLP) that classifies points.

What you will learn
  * layers: an input layer (the 2 coordinates of a point), hidden layers that
    learn features, an output layer with one score ("logit") per class;
  * why the hidden layers need a non-linearity (ReLU): without it the whole
    network is one linear map and can only draw a straight boundary (run here:
    the same network without ReLU, its boundary drawn beside the real one);
  * softmax turns logits into probabilities (the primer's name for it, soft-threshold,
    belongs to another function, shown beside it), and the cross-entropy loss
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

# The primer calls softmax a "软阈值函数" (soft-threshold function). That name belongs
# to another function: soft-thresholding S_lambda(z) = sign(z) max(|z| - lambda, 0)
# shrinks each number toward 0 on its own (it is the proximal step of the L1 penalty,
# used in LASSO and compressed sensing). Softmax maps a whole vector to probabilities.
z_example = np.array([2.0, 1.0, 0.1, -2.5])
soft_threshold = np.sign(z_example) * np.maximum(np.abs(z_example) - 0.5, 0.0)
softmax_example = F.softmax(mg.tensor(z_example), axis=-1).numpy()
print(f"\nThe primer's word for softmax, 软阈值函数, means soft-threshold, a different function. For z = {z_example}:")
print(f"  softmax(z)                           = {np.round(softmax_example, 3)}  (> 0, sums to "
      f"{softmax_example.sum():.0f}: a distribution)")
print(f"  soft-threshold S_0.5(z) = sign(z) max(|z| - 0.5, 0) = {soft_threshold}  (each entry shrunk toward 0;"
      f" small ones become 0)")
assert np.isclose(softmax_example.sum(), 1.0) and np.all(softmax_example > 0)
assert soft_threshold[2] == 0.0 and soft_threshold.min() < 0      # not a distribution

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
section("Ablation: the same network without its non-linearity")
# Remove the ReLUs and the three layers collapse into one affine map:
#     z = ((x W1 + b1) W2 + b2) W3 + b3 = x (W1 W2 W3) + ((b1 W2 + b2) W3 + b3)
# so the boundary between the classes, where the two logits are equal, is a straight line.
mg.manual_seed(0)
linear_model = nn.Sequential(nn.Dense(2, 16), nn.Dense(16, 16), nn.Dense(16, 2))
linear_optimizer = optim.SGD(linear_model.parameters(), lr=0.1)
for epoch in range(epochs):
    for xb, yb in loader:
        loss = F.cross_entropy(linear_model(mg.tensor(xb)), mg.tensor(yb))
        linear_optimizer.zero_grad()
        loss.backward()
        linear_optimizer.step()
W1, W2, W3 = (layer.weight.numpy() for layer in linear_model)
b1, b2, b3 = (layer.bias.numpy() for layer in linear_model)
W_collapsed, b_collapsed = W1 @ W2 @ W3, (b1 @ W2 + b2) @ W3 + b3
with mg.no_grad():
    linear_logits = linear_model(mg.tensor(X_test)).numpy()
print(f"the three layers equal ONE affine map x W + b, W = W1 W2 W3 {W_collapsed.shape}: "
      f"{np.allclose(linear_logits, X_test @ W_collapsed + b_collapsed, atol=1e-4)}")
assert np.allclose(linear_logits, X_test @ W_collapsed + b_collapsed, atol=1e-4)
linear_test = float((linear_logits.argmax(1) == y_test).mean())
relu_test = accuracy(X_test, y_test)
print(f"test accuracy: without ReLU {linear_test:.3f}, with ReLU {relu_test:.3f} "
      f"(the boundary without ReLU is the line {W_collapsed[0, 1] - W_collapsed[0, 0]:+.2f} x1 "
      f"{W_collapsed[1, 1] - W_collapsed[1, 0]:+.2f} x2 {b_collapsed[1] - b_collapsed[0]:+.2f} = 0)")
assert linear_test < relu_test, "a straight line should separate the moons worse than the ReLU network"

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
with mg.no_grad():
    linear_probability_1 = F.softmax(linear_model(mg.tensor(fine_grid)), axis=-1).numpy()[:, 1].reshape(300, 300)
figure, panels = plt.subplots(1, 2, figsize=(11, 4.3), constrained_layout=True)
for axes, probability, title in ((panels[0], probability_1, f"MLP with ReLU (test {relu_test:.2f})"),
                                 (panels[1], linear_probability_1, f"without ReLU: a line (test {linear_test:.2f})")):
    shade = axes.contourf(xs, ys, probability, levels=np.linspace(0, 1, 21), cmap="RdBu_r", alpha=0.6)
    axes.contour(xs, ys, probability, levels=[0.5], colors="k")
    axes.scatter(*X_train.T, c=y_train, cmap="RdBu_r", edgecolors="k", s=15)
    axes.set_title(title + ", black: P = 0.5")
figure.colorbar(shade, ax=panels, label="P(class 1)")
figure.savefig(os.path.join(args.out, "decision_boundary.png"), dpi=100)
plt.close(figure)

figure, axes = plt.subplots(figsize=(5, 3.5))
axes.plot(epoch_losses); axes.set_xlabel("epoch"); axes.set_ylabel("cross-entropy")
figure.tight_layout()
figure.savefig(os.path.join(args.out, "loss.png"), dpi=100)
plt.close(figure)
print(f"Wrote decision_boundary.png and loss.png to {args.out}")
