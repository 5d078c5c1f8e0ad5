"""Lesson 11: images: a small ResNet reads handwritten digits.

What you will learn
  * images as tensors (N, C, H, W): N images, C channels, H x W pixels;
  * a convolution slides a small learned filter over the image:
        y[n, o, i, j] = bias[o] + sum_{c, a, b} weight[o, c, a, b] * x_pad[n, c, i*s + a, j*s + b]
    the same few weights at every position (a dense layer would need one per pixel pair);
  * batch normalisation: each channel is standardised over the batch and the pixels,
        y = (x - mean_c) / sqrt(var_c + eps) * gamma_c + beta_c
    with running averages of mean_c and var_c used at test time (model.eval());
  * the residual block of ResNet:  out = relu(F(x) + x),  F = bn2(conv2(relu(bn1(conv1(x)))))
    the block learns a correction to the identity, and gradients flow back
    through the "+ x" unchanged, which is what makes very deep networks trainable;
  * training and testing an image classifier, and reading its confusion matrix.

Read alongside
  minigrad/nn/conv.py        Conv2d, BatchNorm2d, GlobalAvgPool2d
  minigrad/ops/image.py      im2col (unfold), the convolution as one matrix product
  minigrad/models/resnet.py  BasicBlock, ResNet
  minigrad/datasets/digits.py  load_digits (scikit-learn's digits, split by class)
  minigrad/data.py           DataLoader

Run:  python lessons/11_resnet_digits.py [--quick] [--out DIR]
Writes digits.png (examples with the model's guesses), filters.png (the first
layer's learned 3x3 filters) and confusion.png into the output folder.
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
from minigrad.datasets import load_digits
from minigrad.models import ResNet
from minigrad.tools import progress

parser = argparse.ArgumentParser(description="Lesson 11: a ResNet on handwritten digits")
parser.add_argument("--quick", action="store_true", help="a run of a few seconds (used by the tests)")
parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                  "output", "11_resnet_digits"),
                    help="folder for the pictures this lesson writes")
args = parser.parse_args()
os.makedirs(args.out, exist_ok=True)
# What the full run reached, recorded from `python lessons/11_resnet_digits.py` (no --quick).
FULL_RUN_RECORD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "11_resnet_digits.json")
np.set_printoptions(precision=3, suppress=True, linewidth=110)


def section(title):
    print(f"\n=== {title} " + "=" * max(0, 70 - len(title)))


# ---------------------------------------------------------------------------
section("1. The data: 1797 handwritten digits of 8 x 8 pixels")
# scikit-learn's bundled copy of the UCI digits (no download), split by class so that
# train and test have the same balance; pixels scaled from 0..16 to 0..1.
train_images, train_labels, test_images, test_labels = load_digits(test_fraction=0.2, seed=0)
print(f"train images {train_images.shape} (N, C, H, W): one grey channel of 8 x 8 pixels; "
      f"labels {train_labels.shape}; test images {test_images.shape}")
images, labels = train_images, train_labels
print(f"digit {labels[0]} as the network sees it (darker = larger):")
shades = " .:-=+*#%@"
for row in images[0, 0]:
    print("   " + "".join(shades[min(9, int(value * 9.99))] * 2 for value in row))

# ---------------------------------------------------------------------------
section("2. A convolution, by hand and by nn.Conv2d")
mg.manual_seed(0)
conv = nn.Conv2d(in_channels=1, out_channels=4, kernel_size=3, padding=1)
print(conv, " weight", conv.weight.shape, "(out, in, kh, kw), bias", conv.bias.shape)
x = mg.tensor(images[:2])                                        # (2, 1, 8, 8)
y = conv(x)                                                      # (2, 4, 8, 8): padding=1 keeps 8 x 8
padded = np.pad(images[:2], ((0, 0), (0, 0), (1, 1), (1, 1)))   # zeros around the edges
n, o, i, j = 1, 2, 3, 5
patch = padded[n, :, i:i + 3, j:j + 3]                           # the 3 x 3 window under output (i, j)
by_hand = (conv.weight.numpy()[o] * patch).sum() + conv.bias.numpy()[o]
print(f"y[{n}, {o}, {i}, {j}]: nn.Conv2d {y.numpy()[n, o, i, j]:.6f}, by hand {by_hand:.6f}")
assert abs(y.numpy()[n, o, i, j] - by_hand) < 1e-5
print(f"{conv.num_parameters()} weights, shared by all {8 * 8} positions; a Dense layer from 64 pixels "
      f"to 4 x 64 outputs would need {64 * 256 + 256:,}")

# ---------------------------------------------------------------------------
section("3. Batch normalisation")
norm = nn.BatchNorm2d(4)
normalised = norm(y)                                             # training mode: the batch's own statistics
per_channel = y.numpy().transpose(1, 0, 2, 3).reshape(4, -1)     # (C, N * H * W)
by_hand = (y.numpy() - per_channel.mean(1)[:, None, None]) / np.sqrt(per_channel.var(1)[:, None, None] + norm.eps)
print("channel means before:", per_channel.mean(1), " after:", normalised.numpy().mean(axis=(0, 2, 3)))
print("matches (x - mean_c) / sqrt(var_c + eps) (gamma = 1, beta = 0 at the start):",
      np.allclose(normalised.numpy(), by_hand, atol=1e-4))
assert np.allclose(normalised.numpy(), by_hand, atol=1e-4)
print("running mean, updated by this batch (momentum 0.1):", norm.running_mean.numpy())

# ---------------------------------------------------------------------------
section("4. The residual block and the whole ResNet")
mg.manual_seed(0)
model = ResNet(in_channels=1, num_classes=10, widths=(16, 32, 64), blocks_per_stage=(1, 1, 1))
for name, child in model.named_children():
    print(f"  {name:8s} {child.num_parameters():7,d} parameters  {type(child).__name__}")
print(f"{model.num_parameters():,} parameters in all. One stage, the second:")
print(model.layer2)
block = model.layer1[0]
with mg.no_grad():
    h = model.bn1(model.conv1(x)).relu()                          # the stem: (2, 16, 8, 8)
    print("layer1 block: relu(F(x) + x) by hand equals the block:",
          np.allclose((block.residual(h) + h).relu().numpy(), block(h).numpy(), atol=1e-5))
    assert np.allclose((block.residual(h) + h).relu().numpy(), block(h).numpy(), atol=1e-5)
    shape = h.shape
    for stage in (model.layer1, model.layer2, model.layer3):
        h = stage(h)
        print(f"  {str(shape):15s} -> {stage[0].__class__.__name__} -> {h.shape}")
        shape = h.shape
print("then global average pooling -> (N, 64) and a Dense layer -> 10 logits")

# ---------------------------------------------------------------------------
epochs = 1 if args.quick else 10
section(f"5. Training: {epochs} epoch(s), mini-batches of 64, Adam")
if args.quick:
    train_images, train_labels = train_images[:384], train_labels[:384]
loader = DataLoader((train_images, train_labels), batch_size=64, shuffle=True, seed=0)
optimizer = optim.Adam(model.parameters(), lr=3e-3)
batch_losses = []
start = time.time()
bar = progress(range(epochs), desc="training (epochs)", disable=args.quick)
for epoch in bar:
    model.train()                                                # batch statistics in BatchNorm
    for xb, yb in loader:
        loss = F.cross_entropy(model(mg.tensor(xb)), yb)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        batch_losses.append(loss.item())
        bar.set_postfix(loss=batch_losses[-1])
    print(f"  epoch {epoch + 1:2d}  mean batch loss {np.mean(batch_losses[-len(loader):]):.4f}  "
          f"({time.time() - start:.0f} s)")
print(f"first loss {batch_losses[0]:.4f}   last loss {batch_losses[-1]:.4f}")
window = max(1, len(batch_losses) // 5)
assert np.mean(batch_losses[-window:]) < np.mean(batch_losses[:window]), \
    f"training should reduce the loss: {np.mean(batch_losses[:window]):.4f} -> {np.mean(batch_losses[-window:]):.4f}"

model.eval()                                                     # running statistics in BatchNorm
with mg.no_grad():
    test_logits = model(mg.tensor(test_images))
predicted = test_logits.numpy().argmax(axis=1)
test_accuracy = float((predicted == test_labels).mean())
print(f"test accuracy on {len(test_labels)} unseen digits: {test_accuracy:.3f}")
if args.quick:
    print("(--quick: after a few steps BatchNorm's running averages, used in eval mode, have not settled,")
    print(" so this accuracy is low.)")
    if os.path.exists(FULL_RUN_RECORD):
        with open(FULL_RUN_RECORD, encoding="utf-8") as handle:
            full = json.load(handle)
        print(f"The full run ({full['epochs']} epochs; recorded in lessons/results/) reached "
              f"test accuracy {full['test_accuracy']:.3f} on the same {len(test_labels)} digits.")
else:
    with open(os.path.join(args.out, "full_run.json"), "w", encoding="utf-8") as handle:
        json.dump({"epochs": epochs, "seconds": round(time.time() - start), "test_accuracy": test_accuracy,
                   "first_loss": batch_losses[0], "last_loss": batch_losses[-1]}, handle, indent=1)
    assert test_accuracy > 0.95, f"the full run should read nearly every digit, got {test_accuracy:.3f}"
confusion = np.zeros((10, 10), dtype=int)
np.add.at(confusion, (test_labels, predicted), 1)
print("confusion matrix (row = true digit, column = predicted):")
print("      " + " ".join(f"{d:3d}" for d in range(10)))
for digit in range(10):
    print(f"  {digit:2d}  " + " ".join(f"{count:3d}" for count in confusion[digit]))

# ---------------------------------------------------------------------------
figure, axes = plt.subplots(3, 8, figsize=(9, 3.8), constrained_layout=True)
for axis, index in zip(axes.ravel(), range(24)):
    guess, truth = int(predicted[index]), int(test_labels[index])
    axis.imshow(test_images[index, 0], cmap="gray_r")
    axis.set_title(f"{guess}" + ("" if guess == truth else f" (true {truth})"),
                   color="black" if guess == truth else "red", fontsize=9)
    axis.axis("off")
figure.suptitle("test digits and the ResNet's guesses")
figure.savefig(os.path.join(args.out, "digits.png"), dpi=100)
plt.close(figure)

filters = model.conv1.weight.numpy()[:, 0]                      # (16, 3, 3)
figure, axes = plt.subplots(2, 8, figsize=(8, 2.4), constrained_layout=True)
for axis, kernel in zip(axes.ravel(), filters):
    image = axis.imshow(kernel, cmap="RdBu", vmin=-np.abs(filters).max(), vmax=np.abs(filters).max())
    axis.axis("off")
figure.colorbar(image, ax=axes, shrink=0.9, label="weight")
figure.suptitle("the first layer's 16 learned 3x3 filters (red < 0 < blue)")
figure.savefig(os.path.join(args.out, "filters.png"), dpi=100)
plt.close(figure)

figure, axis = plt.subplots(figsize=(6.2, 5.4), constrained_layout=True)
image = axis.imshow(confusion, cmap="Blues", vmin=0)
figure.colorbar(image, ax=axis, label="test digits")
for (row, column), count in np.ndenumerate(confusion):
    if count:                                   # white on dark cells, black on light ones
        axis.text(column, row, str(count), ha="center", va="center", fontsize=10,
                  color="white" if count > confusion.max() / 2 else "black")
axis.set_xlabel("predicted"); axis.set_ylabel("true"); axis.set_xticks(range(10)); axis.set_yticks(range(10))
axis.set_title(f"confusion matrix, test accuracy {test_accuracy:.3f}")
figure.savefig(os.path.join(args.out, "confusion.png"), dpi=100)
plt.close(figure)
print(f"Wrote digits.png, filters.png and confusion.png to {args.out}")
