"""A ResNet training step on the digits, minigrad against PyTorch side by side in one run.

    python benchmarks/bench_resnet.py             # at all cores and at one thread; writes results/bench_resnet*
    python benchmarks/bench_resnet.py --quick     # a few repeats, *_quick.*
    python benchmarks/bench_resnet.py --threads 1 # one thread count only

The step: models.ResNet(in_channels=1, widths (16, 32, 64), one block per stage), the
model benchmarks/train_digits.py trains, on a batch of 64 digits (1, 8, 8): forward in
training mode (batch statistics), cross-entropy, backward, AdamW (lr 3e-3, weight decay
5e-4). PyTorch runs the same network written with torch.nn (Conv2d without bias,
BatchNorm2d, a 1x1 projection shortcut where the shape changes, global average pooling,
Linear), loaded with minigrad's initial weights; the first losses are compared before
anything is timed. Timings interleave the two (order flipped every repeat); medians.
"""
import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import RESULTS, machine_info, pin_threads_from_argv, print_ratio, results_suffix  # noqa: E402
from common import run_at_each_thread_count, write_results  # noqa: E402

run_at_each_thread_count()            # no --threads: runs at all cores and at one thread, then exits
THREADS = pin_threads_from_argv()     # before numpy and torch: BLAS fixes its pool on import

import numpy as np  # noqa: E402

TARGET = 1.5
BATCH, WIDTHS = 64, (16, 32, 64)


def torch_resnet(torch, model):
    """The same ResNet in torch.nn, holding a copy of minigrad's weights."""
    nn = torch.nn

    def conv_bn(conv, bn):
        c = nn.Conv2d(conv.weight.shape[1], conv.weight.shape[0], conv.kernel_size, conv.stride, conv.padding,
                      bias=False)
        b = nn.BatchNorm2d(bn.weight.shape[0])
        with torch.no_grad():
            c.weight.copy_(torch.from_numpy(conv.weight.numpy().copy()))
        return c, b

    class Block(nn.Module):
        def __init__(self, block):
            super().__init__()
            self.conv1, self.bn1 = conv_bn(block.conv1, block.bn1)
            self.conv2, self.bn2 = conv_bn(block.conv2, block.bn2)
            self.down = (nn.Sequential(*conv_bn(block.downsample[0], block.downsample[1]))
                         if block.downsample is not None else None)

        def forward(self, x):
            out = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
            return torch.relu(out + (x if self.down is None else self.down(x)))

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1, self.bn1 = conv_bn(model.conv1, model.bn1)
            self.blocks = nn.Sequential(*[Block(b) for stage in model.stages for b in stage])
            self.fc = nn.Linear(model.fc.weight.shape[0], model.fc.weight.shape[1])
            with torch.no_grad():
                self.fc.weight.copy_(torch.from_numpy(model.fc.weight.numpy().T.copy()))
                self.fc.bias.copy_(torch.from_numpy(model.fc.bias.numpy().copy()))

        def forward(self, x):
            x = self.blocks(torch.relu(self.bn1(self.conv1(x))))
            return self.fc(x.mean(dim=(2, 3)))
    return Net()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--threads", default="1", help="threads for minigrad, BLAS and PyTorch (given by the "
                        "script itself when it runs at each thread count)")
    parser.add_argument("--out", default=None, help="results path without extension ('' writes nothing)")
    args = parser.parse_args()
    repeats = args.repeats or (5 if args.quick else 30)
    if args.out is None:
        args.out = os.path.join(RESULTS, ("bench_resnet_quick" if args.quick else "bench_resnet")
                                + results_suffix(THREADS))
    import minigrad as mg
    import minigrad.functional as F
    from minigrad.models import ResNet
    try:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        import torch
        torch.set_num_threads(int(THREADS))
    except ImportError:
        torch = None
    if hasattr(mg, "set_num_threads"):          # (older minigrads: BLAS threads only)
        mg.set_num_threads(int(THREADS))

    rng = np.random.default_rng(0)
    images = rng.random((BATCH, 1, 8, 8)).astype(np.float32)   # digits' shape and range (0..1)
    labels = rng.integers(0, 10, BATCH)
    mg.manual_seed(0)
    model = ResNet(in_channels=1, num_classes=10, widths=WIDTHS, blocks_per_stage=(1, 1, 1))
    optimizer = mg.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=5e-4)
    x, y = mg.tensor(images), mg.tensor(labels)

    def minigrad_step():
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.item()

    steps = {"minigrad": minigrad_step}
    check = None
    if torch is not None:
        net = torch_resnet(torch, model)
        torch_optimizer = torch.optim.AdamW(net.parameters(), lr=3e-3, weight_decay=5e-4)
        xt, yt = torch.from_numpy(images), torch.from_numpy(labels)

        def torch_step():
            loss = torch.nn.functional.cross_entropy(net(xt), yt)
            torch_optimizer.zero_grad()
            loss.backward()
            torch_optimizer.step()
            return loss.item()
        first = minigrad_step(), torch_step()
        assert abs(first[0] - first[1]) < 1e-4 * abs(first[1]), first
        check = {"first loss minigrad": first[0], "first loss torch": first[1]}
        steps["torch"] = torch_step
    for _ in range(3):
        for step in steps.values():
            step()
    times = {name: [] for name in steps}
    for repeat in range(repeats):
        for name in (list(steps) if repeat % 2 == 0 else list(steps)[::-1]):
            start = time.perf_counter()
            steps[name]()
            times[name].append(time.perf_counter() - start)
    median = {name: statistics.median(values) for name, values in times.items()}
    lines = [f"# ResNet training step on digits, minigrad vs PyTorch (`python benchmarks/bench_resnet.py"
             f"{' --quick' if args.quick else ''}`), {THREADS} thread(s)", "",
             f"models.ResNet(1 channel, widths {WIDTHS}, one block per stage), batch {BATCH} x (1, 8, 8), "
             f"forward (training mode), cross-entropy, backward, AdamW. Medians of {repeats} interleaved "
             f"repeats after 3 warm-ups.", "", "| framework | median step (ms) |", "|---|---|"]
    lines += [f"| {name} | {seconds * 1e3:.2f} |" for name, seconds in median.items()]
    result = {"median_s": median, "check": check, "threads": THREADS, "repeats": repeats,
              "machine": machine_info(threads=THREADS, torch=torch.__version__ if torch is not None else None)}
    if torch is not None:
        ratio = result["ratio"] = median["minigrad"] / median["torch"]
        lines += ["", f"**minigrad / PyTorch = {ratio:.2f}x** (target <= {TARGET}x). First losses: {check}."]
    lines += ["", f"Machine: {result['machine']}"]
    print("\n".join(lines))
    if torch is not None:
        print_ratio(f"ResNet step on digits (widths {WIDTHS}, batch {BATCH}), AdamW", "minigrad / torch",
                    result["ratio"], TARGET)
    if args.out:
        write_results(args.out, result, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
