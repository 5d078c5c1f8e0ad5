"""Conv2d forward + backward: minigrad against PyTorch, side by side in one run.

    python benchmarks/bench_conv.py                # writes benchmarks/results/bench_conv.md
    python benchmarks/bench_conv.py --profile      # also where minigrad's time goes (cProfile)

The layer: N=64 images, 32 -> 64 channels, 16x16, 3x3 kernel, padding 1, with bias;
the input requires grad, so backward computes dL/dx, dL/dw and dL/db. Both
frameworks get the same weights, input and output gradient (float32), and their
results are compared before anything is timed. The timings are interleaved
(minigrad, PyTorch, minigrad, ...; the order flips every repeat) so that both see
the same machine load, and the medians are reported with their ratio. Then each
runs alone for as many repeats (no cache or thread-pool interference from the
other), and that ratio is reported too.

PyTorch is optional (`pip install torch==2.13.0`, a CPU build); without it only
minigrad's times are reported. Tests never import it.

Threads: both libraries use every core. PyTorch's OpenMP workers spin for a while
after each call by default, taking the cores from numpy's BLAS threads in the
minigrad call that follows, so this script sets OMP_WAIT_POLICY=PASSIVE (unless
already set) before importing torch; --torch-spin keeps the default instead.
OPENBLAS_CORETYPE, when set on this machine, pins an older and slower BLAS kernel:
run with `env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_conv.py`
to time numpy's best kernel (the kernel in use is printed and recorded).
"""
import argparse
import json
import os
import platform
import statistics
import time

from common import RESULTS, pin_threads_from_argv, print_ratio, profile, results_suffix  # imports no numpy
from common import run_at_each_thread_count

run_at_each_thread_count()            # no --threads: runs at all cores and at one thread, then exits
THREADS = pin_threads_from_argv()     # before numpy and torch: BLAS fixes its pool on import

import numpy as np  # noqa: E402
N, C_IN, C_OUT, SIDE, KERNEL, PADDING = 64, 32, 64, 16, 3, 1


def blas_info():
    """The BLAS numpy uses (library, kernel architecture, threads), via threadpoolctl if present."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "unknown (threadpoolctl not installed)"
    found = [f"{i.get('internal_api')} {i.get('version')} kernel {i.get('architecture')} "
             f"threads {i.get('num_threads')}" for i in threadpool_info() if i.get("user_api") == "blas"]
    return "; ".join(found) or "none found"


def load_torch(spin):
    if not spin:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(int(THREADS))
    return torch


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=40)
    parser.add_argument("--profile", action="store_true", help="cProfile minigrad's forward + backward")
    parser.add_argument("--torch-spin", action="store_true", help="leave OMP_WAIT_POLICY at its default")
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--threads", default="1", help="BLAS / OpenMP threads for both frameworks "
                        "(default 1: comparable on a small shared machine)")
    parser.add_argument("--quick", action="store_true",
                        help="a few repeats, results to bench_conv_quick.* (benchmarks/run.py --quick)")
    args = parser.parse_args()
    if args.quick:
        args.repeats = min(args.repeats, 3)

    torch = load_torch(args.torch_spin)
    import minigrad as mg
    from minigrad import nn

    rng = np.random.default_rng(0)
    x_host = rng.standard_normal((N, C_IN, SIDE, SIDE)).astype(np.float32)
    g_host = rng.standard_normal((N, C_OUT, SIDE, SIDE)).astype(np.float32)
    mg.manual_seed(0)
    layer = nn.Conv2d(C_IN, C_OUT, KERNEL, padding=PADDING)
    g = mg.tensor(g_host)

    def minigrad_step():
        x = mg.tensor(x_host, requires_grad=True)
        layer.zero_grad()
        layer(x).backward(g)
        return x

    def minigrad_forward():
        with mg.no_grad():
            return layer(mg.tensor(x_host))

    x_mg = minigrad_step()
    timings = {"minigrad forward+backward": [], "minigrad forward": []}
    steps = {"minigrad forward+backward": minigrad_step, "minigrad forward": minigrad_forward}

    if torch is not None:
        conv = torch.nn.Conv2d(C_IN, C_OUT, KERNEL, padding=PADDING)
        with torch.no_grad():
            conv.weight.copy_(torch.from_numpy(layer.weight.numpy()))
            conv.bias.copy_(torch.from_numpy(layer.bias.numpy()))
        g_torch = torch.from_numpy(g_host)

        def torch_step():
            x = torch.from_numpy(x_host).requires_grad_(True)
            conv.zero_grad()
            conv(x).backward(g_torch)
            return x

        def torch_forward():
            with torch.no_grad():
                return conv(torch.from_numpy(x_host))

        x_t = torch_step()
        # the same numbers, before any timing (float32 sums in different orders)
        np.testing.assert_allclose(minigrad_forward().numpy(), torch_forward().numpy(), rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(x_mg.grad.numpy(), x_t.grad.numpy(), rtol=1e-3, atol=1e-3)
        np.testing.assert_allclose(layer.weight.grad.numpy(), conv.weight.grad.numpy(), rtol=1e-3, atol=1e-2)
        np.testing.assert_allclose(layer.bias.grad.numpy(), conv.bias.grad.numpy(), rtol=1e-3, atol=1e-2)
        timings.update({"torch forward+backward": [], "torch forward": []})
        steps.update({"torch forward+backward": torch_step, "torch forward": torch_forward})

    names = list(steps)
    for _ in range(3):                                   # warm-up: allocator, BLAS threads
        for name in names:
            steps[name]()
    for repeat in range(args.repeats):
        order = names if repeat % 2 == 0 else names[::-1]
        for name in order:
            start = time.perf_counter()
            steps[name]()
            timings[name].append(time.perf_counter() - start)

    # The same steps again, each framework on its own for all repeats: no cache or
    # thread-pool interference from the other, which favours whoever runs warm.
    alone = {}
    for name in names:
        values = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            steps[name]()
            values.append(time.perf_counter() - start)
        alone[name] = statistics.median(values) * 1e3

    median = {name: statistics.median(values) * 1e3 for name, values in timings.items()}
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    lines = [f"| {name} | {median[name]:.2f} | {min(timings[name]) * 1e3:.2f} | {alone[name]:.2f} |"
             for name in names]
    ratios, ratios_alone = {}, {}
    if torch is not None:
        for kind in ("forward+backward", "forward"):
            ratios[kind] = median[f"minigrad {kind}"] / median[f"torch {kind}"]
            ratios_alone[kind] = alone[f"minigrad {kind}"] / alone[f"torch {kind}"]
    blas = blas_info()
    machine = (f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, Python "
               f"{platform.python_version()}, numpy {np.__version__}"
               + (f", torch {torch.__version__} ({torch.get_num_threads()} threads)" if torch is not None else ""))
    env = {k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OMP_WAIT_POLICY")}

    report = ["# Conv2d forward + backward, minigrad vs PyTorch (`python benchmarks/bench_conv.py`)", "",
              f"Input ({N}, {C_IN}, {SIDE}, {SIDE}) float32 requiring grad, Conv2d({C_IN}, {C_OUT}, "
              f"{KERNEL}, padding={PADDING}) with bias; backward computes dL/dx, dL/dw, dL/db from a fixed "
              f"output gradient. {args.repeats} interleaved repeats after 3 warm-ups; times in ms.", "",
              f"Machine: {machine}. BLAS: {blas}. Environment: {env}. Load average at the end: {load:.2f}.", "",
              "| what | median, interleaved (ms) | best, interleaved (ms) | median, run alone (ms) |",
              "|---|---|---|---|", *lines, ""]
    for kind, ratio in ratios.items():
        report.append(f"**{kind}: minigrad / PyTorch = {ratio:.2f}x** (interleaved medians; "
                      f"{ratios_alone[kind]:.2f}x when each runs alone)  ")
    if not ratios:
        report.append("PyTorch is not installed: no ratio.")
    else:
        report += ["", "Read the two ratios together: interleaved, each library's idle worker threads "
                   "(OpenBLAS's spin for a while after every product) compete with the other library's "
                   "next call, which on a small machine slows PyTorch more than minigrad; run alone, "
                   "each has the cores to itself. See bench_conv_notes.md."]
    print("\n".join(report))
    for kind, ratio in ratios.items():
        print_ratio(f"Conv2d({C_IN}, {C_OUT}, {KERNEL}) {kind}, input ({N}, {C_IN}, {SIDE}, {SIDE})",
                    "minigrad / torch", ratio)

    if args.profile:
        print(profile(minigrad_step, 20))

    if not args.no_write:
        os.makedirs(RESULTS, exist_ok=True)
        stem = ("bench_conv_quick" if args.quick else "bench_conv") + results_suffix(THREADS)
        with open(os.path.join(RESULTS, stem + ".md"), "w") as f:
            f.write("\n".join(report) + "\n")
        with open(os.path.join(RESULTS, stem + ".json"), "w") as f:
            json.dump({"median_ms": median, "best_ms": {k: min(v) * 1e3 for k, v in timings.items()},
                       "alone_median_ms": alone, "ratio": ratios, "ratio_alone": ratios_alone, "machine": machine, "blas": blas, "environment": env,
                       "load_average": load, "repeats": args.repeats}, f, indent=1)


if __name__ == "__main__":
    main()
