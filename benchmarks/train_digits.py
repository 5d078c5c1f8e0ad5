"""Train a small ResNet and an MLP baseline on handwritten digits, on the CPU.

Data: scikit-learn's bundled digits (1,797 images of 8x8 pixels, 10 classes),
split 80/20 by class with a fixed seed (minigrad.datasets.load_digits). Both models
train with Adam and a warm-up + cosine learning-rate schedule, and are scored on
the held-out test images after every epoch; the script prints a table and writes
it to benchmarks/results/train_digits.md (and .json).

    python benchmarks/train_digits.py                  # the full run (a few minutes)
    python benchmarks/train_digits.py --quick          # a short run, about 10 s

Uses the public API only (minigrad, minigrad.nn, minigrad.models, minigrad.optim).
"""
import argparse
import json
import os
import platform
import time

import numpy as np

import minigrad as mg
import minigrad.functional as F
from minigrad import models, nn, optim
from minigrad.data import DataLoader
from minigrad.datasets import load_digits
from minigrad.tools import progress

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def accuracy(model, X, y, batch_size=512):
    """Fraction of images whose arg-max logit is the true class (eval mode, no graph)."""
    model.eval()
    correct = 0
    with mg.no_grad():
        for start in range(0, len(X), batch_size):
            logits = model(mg.tensor(X[start:start + batch_size]))
            correct += int((logits.numpy().argmax(axis=1) == y[start:start + batch_size]).sum())
    model.train()
    return correct / len(X)


def train(model, data, epochs, lr, batch_size=64, weight_decay=0.0, seed=0, flatten=False, log=print,
          name="model", quick=False):
    """Train `model` with Adam(W) and warm-up + cosine decay; return per-epoch history and times."""
    X_train, y_train, X_test, y_test = data
    if flatten:
        X_train, X_test = X_train.reshape(len(X_train), -1), X_test.reshape(len(X_test), -1)
    loader = DataLoader((X_train, y_train), batch_size=batch_size, shuffle=True, seed=seed)
    opt = optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    steps = epochs * len(loader)
    schedule = optim.WarmupCosine(opt, warmup=max(1, steps // 20), total_steps=steps)
    history, train_seconds = [], 0.0
    for epoch in progress(range(1, epochs + 1), desc=f"{name} (epochs)", disable=quick):
        start = time.perf_counter()
        total_loss, seen = 0.0, 0
        for xb, yb in loader:
            loss = F.cross_entropy(model(mg.tensor(xb)), mg.tensor(yb))
            opt.zero_grad()
            loss.backward()
            opt.step()
            schedule.step()
            total_loss += loss.item() * len(yb)
            seen += len(yb)
        train_seconds += time.perf_counter() - start
        test_acc = accuracy(model, X_test, y_test)
        history.append({"epoch": epoch, "loss": total_loss / seen, "test_accuracy": test_acc,
                        "train_seconds": train_seconds})
        log(f"{name:6s} epoch {epoch:3d}  loss {total_loss / seen:.4f}  test acc {test_acc:.4f}  "
            f"({train_seconds:.1f} s)")
    final_train = accuracy(model, X_train, y_train)
    return {"history": history, "train_accuracy": final_train, "test_accuracy": history[-1]["test_accuracy"],
            "best_test_accuracy": max(h["test_accuracy"] for h in history), "train_seconds": train_seconds,
            "parameters": model.num_parameters(), "epochs": epochs}


def make_resnet(widths=(16, 32, 64), blocks=(1, 1, 1)):
    return models.ResNet(in_channels=1, num_classes=10, widths=widths, blocks_per_stage=blocks)


def make_mlp(hidden=(256, 128)):
    return nn.MLP([64, *hidden, 10])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a short run (smaller model, 3 epochs)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs for both models")
    parser.add_argument("--seed", type=int, default=0, help="split, initialisation and shuffling seed")
    parser.add_argument("--no-write", action="store_true", help="do not write benchmarks/results")
    args = parser.parse_args(argv)

    mg.manual_seed(args.seed)
    data = load_digits(test_fraction=0.2, seed=args.seed)
    print(f"digits: {len(data[0])} train and {len(data[2])} test images of shape {data[0].shape[1:]}")
    epochs = args.epochs or (3 if args.quick else 30)
    widths = (8, 16, 32) if args.quick else (16, 32, 64)

    mg.manual_seed(args.seed)
    resnet = make_resnet(widths)
    print(f"ResNet widths {widths}, blocks (1, 1, 1): {resnet.num_parameters():,} parameters")
    resnet_result = train(resnet, data, epochs, lr=3e-3, weight_decay=5e-4, seed=args.seed, name="resnet", quick=args.quick)

    mg.manual_seed(args.seed)
    mlp = make_mlp()
    print(f"MLP 64-256-128-10: {mlp.num_parameters():,} parameters")
    mlp_result = train(mlp, data, epochs, lr=3e-3, weight_decay=5e-4, seed=args.seed, flatten=True, name="mlp", quick=args.quick)

    rows = [("ResNet" + str(widths), resnet_result), ("MLP 64-256-128-10", mlp_result)]
    table = ["| model | parameters | epochs | test accuracy | best test accuracy | train accuracy | "
             "training time (s) |", "|---|---|---|---|---|---|---|"]
    for name, r in rows:
        table.append(f"| {name} | {r['parameters']:,} | {r['epochs']} | {r['test_accuracy']:.4f} | "
                     f"{r['best_test_accuracy']:.4f} | {r['train_accuracy']:.4f} | {r['train_seconds']:.1f} |")
    print("\n".join(table))
    results = {"resnet": resnet_result, "mlp": mlp_result}
    if args.no_write:
        return results
    os.makedirs(RESULTS, exist_ok=True)
    stem = "train_digits_quick" if args.quick else "train_digits"
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, numpy {np.__version__}"
    with open(os.path.join(RESULTS, stem + ".md"), "w") as f:
        f.write(f"# Handwritten digits: ResNet vs MLP (`python benchmarks/train_digits.py"
                f"{' --quick' if args.quick else ''}`)\n\n")
        f.write(f"scikit-learn digits, 8x8 greyscale, stratified split {len(data[0])} train / "
                f"{len(data[2])} test (seed {args.seed}). AdamW (lr 3e-3, weight decay 5e-4), "
                f"batch 64, linear warm-up over 5% of the steps then cosine decay; "
                f"test accuracy after the last epoch. Training time excludes evaluation.\n"
                f"Machine: {machine}.\n\n")
        f.write("\n".join(table) + "\n\n## Test accuracy per epoch\n\n| epoch | ResNet | MLP |\n|---|---|---|\n")
        for a, b in zip(resnet_result["history"], mlp_result["history"]):
            f.write(f"| {a['epoch']} | {a['test_accuracy']:.4f} | {b['test_accuracy']:.4f} |\n")
    with open(os.path.join(RESULTS, stem + ".json"), "w") as f:
        json.dump({"resnet": resnet_result, "mlp": mlp_result, "widths": widths, "seed": args.seed,
                   "machine": machine}, f, indent=1)
    print(f"wrote {os.path.join(RESULTS, stem + '.md')}")
    return results


if __name__ == "__main__":
    main()
