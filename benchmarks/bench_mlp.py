"""One training step of an MLP 784-512-512-10 (ReLU) at batch 256 with SGD momentum:
minigrad (nn.MLP, optim.SGD, F.cross_entropy) against the same step written by hand
in plain numpy and against PyTorch (CPU, eager) when it is installed.

    python benchmarks/bench_mlp.py              # full run, about a minute
    python benchmarks/bench_mlp.py --quick      # a few seconds
    python benchmarks/bench_mlp.py --profile    # also: where minigrad's step spends its time (cProfile)

The step: logits = relu(relu(x W1 + b1) W2 + b2) W3 + b3, loss = cross_entropy(logits, y)
(mean over the batch), backward, then for every parameter w with gradient g
(torch.optim.SGD's rule, dampening 0):  b <- momentum b + g  (b = g at the first step),
w <- w - lr b.  The hand-written numpy backward:  dlogits = (softmax - onehot) / N,
dW = h^T dz, db = sum_rows dz, dh = dz W^T masked by (h > 0).

All three start from the same weights and data and are checked to give the same loss
after a few steps before anything is timed. The frameworks take turns every round,
so a machine that gets busier slows all alike; the table gives medians and ratios
(lower is better for minigrad). Target: minigrad within 1.1x of hand-written numpy.
Writes benchmarks/results/bench_mlp.{md,json} (bench_mlp_quick.* with --quick).
"""
import argparse
import os
import sys
import time

from common import run_at_each_thread_count

run_at_each_thread_count()     # no --threads: runs at all cores and at one thread, then exits
from bench_engine import THREADS, interleaved_times, table  # noqa: E402  (sets BLAS threads before numpy)
import numpy as np

import minigrad as mg
import minigrad.functional as F
from common import RESULTS, machine_info, print_ratio, profile, results_suffix, write_results

try:
    import torch
except ImportError:          # PyTorch is optional: its column is left out
    torch = None

TARGET = 1.1                 # minigrad / hand-written numpy
SIZES, BATCH, LR, MOMENTUM = [784, 512, 512, 10], 256, 0.01, 0.9


def make_problem(sizes, batch, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, sizes[0])).astype(np.float32)
    y = rng.integers(0, sizes[-1], batch)
    init = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        bound = 1 / np.sqrt(n_in)
        init.append(rng.uniform(-bound, bound, (n_in, n_out)).astype(np.float32))
        init.append(rng.uniform(-bound, bound, n_out).astype(np.float32))
    return x, y, init


def numpy_trainer(x, y, init):
    params = [p.copy() for p in init]
    buffers = [None] * len(params)
    rows = np.arange(len(y))

    def step():
        inputs, h = [], x
        for i in range(0, len(params), 2):
            inputs.append(h)
            h = h @ params[i] + params[i + 1]
            if i + 2 < len(params):
                np.maximum(h, 0, out=h)
        shifted = h - h.max(axis=1, keepdims=True)
        exp = np.exp(shifted)
        total = exp.sum(axis=1, keepdims=True)
        loss = float(np.log(total).mean() - shifted[rows, y].mean())
        dz = exp / total
        dz[rows, y] -= 1
        dz /= len(y)
        for i in range(len(params) - 2, -1, -2):
            grads = (inputs[i // 2].T @ dz, dz.sum(axis=0))
            if i > 0:
                dz = dz @ params[i].T
                dz *= inputs[i // 2] > 0
            for j, g in zip((i, i + 1), grads):
                if buffers[j] is None:
                    buffers[j] = g.copy()
                else:
                    buffers[j] *= MOMENTUM
                    buffers[j] += g
                params[j] -= LR * buffers[j]
        return loss
    return step


def minigrad_trainer(x, y, init, sizes):
    model = mg.nn.MLP(sizes)
    for param, value in zip(model.parameters(), init):
        param.data[...] = value
    optimizer = mg.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    X, Y = mg.tensor(x), mg.tensor(y)

    def step():
        optimizer.zero_grad()
        loss = F.cross_entropy(model(X), Y)
        loss.backward()
        optimizer.step()
        return loss.item()
    return step


def torch_trainer(x, y, init, sizes):
    layers = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        linear = torch.nn.Linear(n_in, n_out)
        with torch.no_grad():               # torch stores weight as (out, in)
            linear.weight.copy_(torch.from_numpy(init[2 * i].T.copy()))
            linear.bias.copy_(torch.from_numpy(init[2 * i + 1]))
        layers.append(linear)
        if i < len(sizes) - 2:
            layers.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*layers)
    optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)

    def step():
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(tx), ty)
        loss.backward()
        optimizer.step()
        return loss.item()
    return step


def check_agree(sizes, batch, n_steps=3):
    """Same weights and data: the three trainers' losses must agree step by step."""
    x, y, init = make_problem(sizes, batch, seed=1)
    trainers = {"numpy": numpy_trainer(x, y, init), "minigrad": minigrad_trainer(x, y, init, sizes)}
    if torch is not None:
        trainers["torch"] = torch_trainer(x, y, init, sizes)
    losses = {name: [step() for _ in range(n_steps)] for name, step in trainers.items()}
    for name, values in losses.items():
        if not np.allclose(values, losses["numpy"], rtol=1e-4, atol=1e-5):
            raise SystemExit(f"bench_mlp: {name}'s losses {values} differ from numpy's {losses['numpy']}")
    return losses


def profile_minigrad(sizes, batch, n_calls):
    x, y, init = make_problem(sizes, batch)
    step = minigrad_trainer(x, y, init, sizes)
    step()
    return profile(step, n_calls, top=15)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smaller MLP, few rounds (a few seconds)")
    parser.add_argument("--rounds", type=int, default=None, help="rounds of interleaved timing")
    parser.add_argument("--profile", action="store_true",
                        help="add a cProfile of minigrad's step (also done whenever the target is missed)")
    parser.add_argument("--threads", default="1", help="BLAS / OpenMP threads for every framework (default 1)")
    parser.add_argument("--out", default=None, help="results path without extension ('' writes nothing); default "
                        "results/bench_mlp, or results/bench_mlp_quick with --quick")
    args = parser.parse_args(argv)
    if args.out is None:
        args.out = os.path.join(RESULTS, ("bench_mlp_quick" if args.quick else "bench_mlp") + results_suffix(THREADS))
    if torch is not None:
        torch.set_num_threads(int(THREADS))
    sizes, batch = ([784, 128, 128, 10], 64) if args.quick else (SIZES, BATCH)
    rounds = args.rounds or (3 if args.quick else 15)
    budget = 0.01 if args.quick else 0.2

    losses = check_agree(sizes, batch)
    x, y, init = make_problem(sizes, batch)
    steps = {"numpy": numpy_trainer(x, y, init), "minigrad": minigrad_trainer(x, y, init, sizes)}
    if torch is not None:
        steps["torch"] = torch_trainer(x, y, init, sizes)
    times = interleaved_times(steps, rounds, budget)
    frameworks = [f for f in ("numpy", "torch", "minigrad") if f in times]
    label = f"MLP {'-'.join(map(str, sizes))}, batch {batch}, SGD momentum step"
    row = [label] + [f"{times[f] * 1e3:.2f}" for f in frameworks]
    row.append(f"{times['minigrad'] / times['numpy']:.2f}")
    if torch is not None:
        row.append(f"{times['minigrad'] / times['torch']:.2f}")
    print("  ".join(row), flush=True)
    ratio = times["minigrad"] / times["numpy"]
    print_ratio(label, "minigrad / numpy", ratio, TARGET)
    if torch is not None:
        print_ratio(label, "minigrad / torch", times["minigrad"] / times["torch"])
        print_ratio(label, "torch / numpy", times["torch"] / times["numpy"])

    header = ["one training step"] + [f"{f} ms" for f in frameworks] + ["minigrad / numpy"]
    if torch is not None:
        header.append("minigrad / torch")
    command = f"python benchmarks/bench_mlp.py{' --quick' if args.quick else ''}"
    lines = ["# MLP training step: minigrad vs numpy by hand" + (" vs PyTorch" if torch is not None else ""), "",
             f"`{command}`, median of {rounds} interleaved rounds; float32; SGD lr {LR}, momentum {MOMENTUM}; "
             "a ratio < 1 means minigrad is faster.", "",
             f"- machine: {os.uname().machine}, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}; "
             f"{THREADS} BLAS/OpenMP thread(s) for every framework (--threads)",
             f"- numpy {np.__version__}" + (f", torch {torch.__version__}" if torch is not None
                                            else ", torch not installed"),
             f"- minigrad {mg.__version__}; {time.strftime('%Y-%m-%d %H:%M %Z')}",
             f"- losses of the first 3 steps agree (numpy {['%.5f' % v for v in losses['numpy']]})", "",
             f"Target: minigrad within {TARGET:g}x of hand-written numpy: "
             f"**{'met' if ratio <= TARGET else 'missed'}** ({ratio:.2f}).", ""]
    lines += table(header, [row])
    hot_spots = None
    if args.profile or (ratio > TARGET and not args.quick):
        hot_spots = profile_minigrad(sizes, batch, 5 if args.quick else 50)
        print(hot_spots)
        lines += ["", f"## Where minigrad's step spends its time (cProfile, {5 if args.quick else 50} steps)", "",
                  "```", hot_spots.strip(), "```"]
    result = {"s_per_step": times, "sizes": sizes, "batch": batch, "rounds": rounds, "target": TARGET,
              "ratio_minigrad_numpy": ratio, "losses_first_steps": losses,
              "torch": torch.__version__ if torch is not None else None, "minigrad": mg.__version__,
              "machine": machine_info(blas_threads=THREADS)}
    if args.out:
        write_results(args.out, result, "\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
