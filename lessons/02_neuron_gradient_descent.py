"""Lesson 2: one neuron and gradient descent.

What you will learn
  * a neuron computes y_hat = act(x . w + b); with no activation it is a line;
  * the mean squared error L = 1/n sum_i (y_hat_i - y_i)^2 measures how far the
    line is from the data, and its gradient says which way to move w and b;
  * gradient descent repeats  w <- w - lr * dL/dw,  b <- b - lr * dL/db;
  * the update written by hand and the one done by optim.GD are the same thing.

Read alongside
  minigrad/nn/layers.py     Neuron, Dense
  minigrad/functional.py    mse_loss
  minigrad/optim.py         GD (and the other optimizers of lesson 4)
  minigrad/datasets/synthetic.py   make_linear_regression

Run:  python lessons/02_neuron_gradient_descent.py [--quick] [--out DIR]
Writes fit.png (the data and the fitted line) and descent.png (the loss surface
with the path gradient descent took, and the loss curve).
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
from minigrad.datasets import make_linear_regression

parser = argparse.ArgumentParser(description="Lesson 2: one neuron and gradient descent")
parser.add_argument("--quick", action="store_true", help="a run of a few seconds (used by the tests)")
parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                  "output", "02_neuron_gradient_descent"),
                    help="folder for the pictures this lesson writes")
args = parser.parse_args()
os.makedirs(args.out, exist_ok=True)


def section(title):
    print(f"\n=== {title} " + "=" * max(0, 70 - len(title)))


steps = 40 if args.quick else 150
learning_rate = 0.1

# ---------------------------------------------------------------------------
section("1. Data: points near a line")
# y = w_true * x + b_true + noise, with one input feature
X, y, w_true, b_true = make_linear_regression(n=100, n_features=1, noise=0.3, seed=1)
y = y.reshape(-1)                        # (100,): a Neuron gives one number per row
print(f"X {X.shape}, y {y.shape}; the true line is y = {w_true.item():.3f} x + {b_true.item():.3f}")

# ---------------------------------------------------------------------------
section("2. One neuron with no activation: y_hat = x . w + b")
mg.manual_seed(0)
neuron = nn.Neuron(1, activation="linear")
print(neuron, "   weight", neuron.weight.shape, "bias", neuron.bias.shape)
inputs, targets = mg.tensor(X), mg.tensor(y)
prediction = neuron(inputs)
loss = F.mse_loss(prediction, targets)
print(f"before training: w = {neuron.weight.item():.3f}, b = {neuron.bias.item():.3f}, "
      f"MSE = {loss.item():.4f}")

# The gradient of L = 1/n sum (y_hat - y)^2 with y_hat = w x + b:
#     dL/dw = 2/n sum (y_hat - y) x          dL/db = 2/n sum (y_hat - y)
loss.backward()
residual = prediction.numpy() - y
print(f"dL/dw: autograd {neuron.weight.grad.item():.6f}  formula {2 * np.mean(residual * X[:, 0]):.6f}")
print(f"dL/db: autograd {neuron.bias.grad.item():.6f}  formula {2 * np.mean(residual):.6f}")
assert np.isclose(neuron.weight.grad.item(), 2 * np.mean(residual * X[:, 0]), rtol=1e-4, atol=1e-6)
assert np.isclose(neuron.bias.grad.item(), 2 * np.mean(residual), rtol=1e-4, atol=1e-6)

# ---------------------------------------------------------------------------
section(f"3. Gradient descent written by hand ({steps} steps, lr = {learning_rate})")
mg.manual_seed(0)
neuron = nn.Neuron(1, activation="linear")
hand_losses, path = [], []
for step in range(steps):
    loss = F.mse_loss(neuron(inputs), targets)          # forward
    neuron.zero_grad()                                  # forget the last step's gradients
    loss.backward()                                     # dL/dw, dL/db into .grad
    path.append((neuron.weight.item(), neuron.bias.item()))
    with mg.no_grad():                                  # the update is not part of the model
        for parameter in neuron.parameters():
            parameter.data -= learning_rate * parameter.grad.data   # w <- w - lr * dL/dw
    hand_losses.append(loss.item())
    if step % (steps // 5) == 0 or step == steps - 1:
        print(f"  step {step:3d}  loss {loss.item():.5f}  w {neuron.weight.item():+.4f}  "
              f"b {neuron.bias.item():+.4f}")
hand_w, hand_b = neuron.weight.item(), neuron.bias.item()

# ---------------------------------------------------------------------------
section("4. The same with optim.GD")
# The optimizer keeps the list of parameters and does exactly the update above;
# zero_grad() and step() are the two calls every training loop in this course makes.
mg.manual_seed(0)
neuron = nn.Neuron(1, activation="linear")
optimizer = optim.GD(neuron.parameters(), lr=learning_rate)
losses = []
for step in range(steps):
    loss = F.mse_loss(neuron(inputs), targets)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    losses.append(loss.item())
print(f"by hand:  w = {hand_w:+.6f}  b = {hand_b:+.6f}")
print(f"optim.GD: w = {neuron.weight.item():+.6f}  b = {neuron.bias.item():+.6f}")
print(f"truth:    w = {w_true.item():+.6f}  b = {b_true.item():+.6f}")
assert np.allclose([hand_w, hand_b], [neuron.weight.item(), neuron.bias.item()], atol=1e-6), \
    "optim.GD should take exactly the steps written by hand"
print(f"first loss {losses[0]:.5f}   last loss {losses[-1]:.5f}")
assert losses[-1] < 0.5 * losses[0], f"training should reduce the loss: {losses[0]:.4f} -> {losses[-1]:.4f}"

# The best possible line (least squares, solved exactly) for comparison:
design = np.column_stack([X[:, 0], np.ones(len(X))])
best_w, best_b = np.linalg.lstsq(design, y, rcond=None)[0]
best_loss = np.mean((design @ [best_w, best_b] - y) ** 2)
print(f"least squares: w = {best_w:+.6f}  b = {best_b:+.6f}  loss {best_loss:.5f} "
      f"(gradient descent reached {losses[-1]:.5f})")

# ---------------------------------------------------------------------------
section("5. Pictures")
figure, axes = plt.subplots(figsize=(5, 4))
axes.scatter(X[:, 0], y, s=10, alpha=0.6, label="data")
line = np.linspace(X.min(), X.max(), 2)
axes.plot(line, neuron.weight.item() * line + neuron.bias.item(), "r", label="neuron after GD")
axes.plot(line, w_true.item() * line + b_true.item(), "k:", label="true line")
axes.legend(); axes.set_xlabel("x"); axes.set_ylabel("y")
figure.tight_layout()
figure.savefig(os.path.join(args.out, "fit.png"), dpi=100)
plt.close(figure)

# The loss as a function of (w, b) is a bowl (a quadratic); GD walks downhill,
# perpendicular to the contour lines.
ws = np.linspace(best_w - 2.5, best_w + 2.5, 60)
bs = np.linspace(best_b - 2.5, best_b + 2.5, 60)
grid_w, grid_b = np.meshgrid(ws, bs)
surface = ((grid_w[..., None] * X[:, 0] + grid_b[..., None] - y) ** 2).mean(axis=-1)
path = np.array(path)
figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
contours = left.contour(grid_w, grid_b, surface, levels=20, cmap="viridis")
figure.colorbar(contours, ax=left, label="MSE")
left.plot(path[:, 0], path[:, 1], "r.-", markersize=3, label="gradient descent")
left.plot(best_w, best_b, "k*", markersize=10, label="minimum")
left.set_xlabel("w"); left.set_ylabel("b"); left.legend(); left.set_title("MSE(w, b)")
right.semilogy(losses); right.set_xlabel("step"); right.set_ylabel("MSE"); right.set_title("loss")
figure.tight_layout()
figure.savefig(os.path.join(args.out, "descent.png"), dpi=100)
plt.close(figure)
print(f"Wrote fit.png and descent.png to {args.out}")
