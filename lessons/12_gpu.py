"""Lesson 12: the same training on a GPU (cupy), and what it buys.

What you will learn
  * minigrad keeps a tensor's data in numpy on "cpu" and in cupy on "cuda"; the
    two libraries share one interface, so every op is written once and runs on
    the device of its inputs (minigrad/backend/ picks the module);
  * moving data and models: t.to("cuda"), model.to("cuda"), mg.set_default_device;
    mixing devices in one op is an error, on purpose (copies are explicit);
  * timing a GPU honestly: its work is asynchronous, so wait for the result
    (.item() does) before reading the clock, and leave out the first call,
    which compiles kernels;
  * where a GPU helps: a big matrix product has n^3 multiply-adds for n^2 data,
    so large layers gain the most; tiny ones are dominated by launch overhead.

Without cupy or without a GPU this lesson says so, tells how to install cupy,
and runs (and times) the CPU half.

Read alongside
  minigrad/backend/__init__.py  get_array_module, cuda_available, to_device
  minigrad/autograd.py          the device check in Function.__call__; Tensor.to in tensor.py
  minigrad/nn/module.py   Module.to

Run:  python lessons/12_gpu.py [--quick] [--out DIR]
Writes speed.png (time per training step and per matrix product, by device).
"""
import argparse
import os
import time

import matplotlib
matplotlib.use("Agg")                    # write PNG files, never open a window
import matplotlib.pyplot as plt
import numpy as np

import minigrad as mg
import minigrad.functional as F
from minigrad import optim
from minigrad.models import GPT
from minigrad.data import lm_batch
from minigrad.datasets import CharTokenizer, stdlib_corpus
from minigrad.tools import progress

parser = argparse.ArgumentParser(description="Lesson 12: training on a GPU with cupy")
parser.add_argument("--quick", action="store_true", help="a run of a few seconds (used by the tests)")
parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                  "output", "12_gpu"),
                    help="folder for the pictures this lesson writes")
args = parser.parse_args()
os.makedirs(args.out, exist_ok=True)


def section(title):
    print(f"\n=== {title} " + "=" * max(0, 70 - len(title)))


# ---------------------------------------------------------------------------
section("1. Is there a GPU?")
if mg.cuda_available():
    devices = ["cpu", "cuda"]
    print("cupy is installed and sees a GPU: both devices will be timed.")
else:
    devices = ["cpu"]
    print("No GPU here: cupy is not installed, or it found no NVIDIA GPU.")
    print('To train on a GPU, on a machine with an NVIDIA GPU run:  pip install -e ".[gpu]"')
    print("(or `pip install cupy-cuda12x` for CUDA 12). Going on with the CPU alone.")
    try:
        mg.tensor([1.0]).to("cuda")
    except RuntimeError as problem:
        print(f"Asking for 'cuda' anyway is a clear error:\n    {problem}")

# ---------------------------------------------------------------------------
section("2. Moving tensors and models")
x = mg.tensor([[1.0, 2.0], [3.0, 4.0]])
print(f"x on {x.device}, data is a {type(x.data).__module__}.{type(x.data).__name__}")
if "cuda" in devices:
    x_gpu = x.to("cuda")
    print(f"x.to('cuda') on {x_gpu.device}, data is a {type(x_gpu.data).__module__}.{type(x_gpu.data).__name__}")
    print("(x_gpu @ x_gpu).numpy() copies the result back to the host:\n", (x_gpu @ x_gpu).numpy())
    try:
        x + x_gpu
    except RuntimeError as problem:
        print(f"mixing devices is refused:\n    {str(problem)[:120]}...")
print("model.to('cuda') moves every parameter and buffer; mg.set_default_device('cuda') makes new tensors there.")

# ---------------------------------------------------------------------------
if args.quick:
    block_size, n_layer, n_head, d_model, batch_size, steps = 32, 2, 2, 32, 8, 4
    sizes = [64, 256]
else:
    block_size, n_layer, n_head, d_model, batch_size, steps = 128, 4, 8, 256, 32, 12
    sizes = [128, 512, 1024, 2048]
section(f"3. The same GPT training on each device: {steps} timed steps")
text = stdlib_corpus(max_chars=200_000)
tokenizer = CharTokenizer(text)
ids = tokenizer.encode(text)
print(f"GPT(n_layer={n_layer}, n_head={n_head}, d_model={d_model}, block_size={block_size}), "
      f"batches of {batch_size} windows")
step_times, curves = {}, {}
for device in devices:
    mg.manual_seed(0)                                  # the same initial weights on both devices
    model = GPT(tokenizer.vocab_size, block_size, n_layer, n_head, d_model).to(device)
    optimizer = optim.AdamW(model.parameters(), lr=1e-3)
    rng = np.random.default_rng(0)                     # the same batches on both devices
    losses, times = [], []
    bar = progress(range(steps + 1), desc=device, disable=args.quick)
    for step in bar:                                   # step 0 warms up (cupy compiles its kernels)
        xb, yb = lm_batch(ids, block_size, batch_size, rng)
        started = time.perf_counter()
        loss = F.cross_entropy(model(mg.tensor(xb, device=device)), mg.tensor(yb, device=device))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())                     # .item() waits for the device to finish
        times.append(time.perf_counter() - started)
        bar.set_postfix(loss=losses[-1])          # after the clock stopped: not timed
    step_times[device], curves[device] = float(np.median(times[1:])), losses
    tokens_per_second = batch_size * block_size / step_times[device]
    print(f"  {device:4s}: {1000 * step_times[device]:8.1f} ms per step ({tokens_per_second:,.0f} tokens/s); "
          f"first loss {losses[0]:.4f}   last loss {losses[-1]:.4f}")
    assert losses[-1] < losses[0], f"{device}: training should reduce the loss: {losses[0]:.4f} -> {losses[-1]:.4f}"
if "cuda" in devices:
    print(f"speed-up of the GPU over the CPU: {step_times['cpu'] / step_times['cuda']:.1f}x")
    difference = np.abs(np.array(curves["cpu"]) - np.array(curves["cuda"])).max()
    print(f"the two devices computed the same losses, up to float32 rounding: max difference {difference:.2e}")
    assert difference < 1e-3, "the same training on two devices should give the same losses"
else:
    print("speed-up: not measured (no GPU); the CPU time above is the baseline a GPU run would be compared with")

# ---------------------------------------------------------------------------
section("4. Matrix products of growing size")
# C = A B with A, B (n, n): 2 n^3 floating-point operations.
matmul_times = {device: [] for device in devices}
for n in sizes:
    row = []
    for device in devices:
        mg.manual_seed(n)
        a, b = mg.randn(n, n, device=device), mg.randn(n, n, device=device)
        (a @ b)[0, 0].item()                           # warm-up
        repeats = 3
        started = time.perf_counter()
        for _ in range(repeats):
            (a @ b)[0, 0].item()                       # wait for the product before stopping the clock
        seconds = (time.perf_counter() - started) / repeats
        matmul_times[device].append(seconds)
        row.append(f"{device} {1000 * seconds:8.2f} ms = {2 * n ** 3 / seconds / 1e9:7.1f} GFLOP/s")
    speedup = (f"   speed-up {matmul_times['cpu'][-1] / matmul_times['cuda'][-1]:6.1f}x"
               if "cuda" in devices else "")
    print(f"  n = {n:5d}:  " + "   ".join(row) + speedup)

figure, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8), constrained_layout=True)
left.bar(devices, [1000 * step_times[d] for d in devices], color=["C0", "C2"][:len(devices)])
left.set_ylabel("ms per training step"); left.set_title(f"GPT d_model={d_model}, {n_layer} layers")
for device in devices:
    right.loglog(sizes, [1000 * t for t in matmul_times[device]], "o-", label=device)
right.set_xlabel("n (matrices n x n)"); right.set_ylabel("ms per product"); right.legend()
right.set_title("matrix product time")
figure.savefig(os.path.join(args.out, "speed.png"), dpi=100)
plt.close(figure)
print(f"Wrote speed.png to {args.out}")
