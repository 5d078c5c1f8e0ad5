"""minigrad's engine: the Python overhead per op on tiny tensors, and forward +
backward of large-tensor work, against the same math written by hand in plain numpy
and against PyTorch (CPU, eager) when it is installed, all side by side in one run.

    python benchmarks/bench_engine.py             # full sizes, a few minutes
    python benchmarks/bench_engine.py --quick     # small sizes, a few seconds
    python benchmarks/bench_engine.py --profile   # also: where the per-op time goes (cProfile)

1. Per-op overhead: each op chained many times on an (8, 8) tensor that requires
   grad, so the array work is negligible; microseconds per op, forward alone and
   forward + backward, for minigrad and PyTorch, and their ratio.
   Target: within 2x of PyTorch's eager overhead.
2. Large tensors: a chain of big matmuls and elementwise ops (residual tanh
   blocks), plain matmul, an elementwise chain, softmax and layer_norm, one
   forward + backward each, against numpy by hand and PyTorch.
   Target: within 1.2x of hand-written numpy.

The frameworks take turns within each round, round after round, so a machine that
gets busier halfway slows all of them alike; the tables give medians. numpy is the
floor: the same array work with no graph, no Tensor objects and no bookkeeping, so
minigrad / numpy is the price of autograd itself. Writes
benchmarks/results/bench_engine.{md,json} (bench_engine_quick.* with --quick) and
prints its headline ratios as `ratio | ...` lines for benchmarks/run.py.
"""
import argparse
import os
import platform
import statistics
import sys
import time

from common import pin_threads_from_argv, run_at_each_thread_count  # noqa: E402  (imports no numpy)

run_at_each_thread_count()         # no --threads: runs at all cores and at one thread, then exits
THREADS = pin_threads_from_argv()

import numpy as np  # noqa: E402

import minigrad as mg  # noqa: E402
import minigrad.functional as F  # noqa: E402
from common import RESULTS, machine_info, print_ratio, profile, results_suffix, write_results  # noqa: E402

try:
    import torch
    torch.set_num_threads(int(THREADS))
except ImportError:          # PyTorch is optional: its column is left out
    torch = None

LARGE_TARGET = 1.2      # large-tensor work: minigrad / hand-written numpy
OVERHEAD_TARGET = 2.0   # per-op overhead: minigrad / PyTorch eager


# --------------------------------------------------------------------------- the cases
# Each case function takes the sizes and returns {framework: callable}, every callable
# doing one forward + backward on the same float32 data.

def case_matmul(n):
    """C = A @ B, loss = sum(C * G).  dA = G B^T, dB = A^T G."""
    rng = np.random.default_rng(0)
    a, b, g = (rng.standard_normal((n, n)).astype(np.float32) for _ in range(3))

    def numpy_step():
        c = a @ b
        loss = (c * g).sum()
        return loss, g @ b.T, a.T @ g

    A, B, G = mg.tensor(a, requires_grad=True), mg.tensor(b, requires_grad=True), mg.tensor(g)

    def minigrad_step():
        A.grad = B.grad = None
        ((A @ B) * G).sum().backward()

    steps = {"numpy": numpy_step, "minigrad": minigrad_step}
    if torch is not None:
        ta, tb, tg = (torch.from_numpy(v.copy()) for v in (a, b, g))
        ta.requires_grad_(), tb.requires_grad_()

        def torch_step():
            ta.grad = tb.grad = None
            ((ta @ tb) * tg).sum().backward()
        steps["torch"] = torch_step
    return steps


def case_elementwise(n):
    """y = tanh(1.5 x + 0.5) * x, loss = sum(y).  dy/dx = 1.5 (1 - t^2) x + t."""
    x = np.random.default_rng(1).standard_normal(n).astype(np.float32)

    def numpy_step():
        t = np.tanh(x * np.float32(1.5) + np.float32(0.5))
        loss = (t * x).sum()
        return loss, np.float32(1.5) * (1 - t * t) * x + t

    X = mg.tensor(x, requires_grad=True)

    def minigrad_step():
        X.grad = None
        ((X * 1.5 + 0.5).tanh() * X).sum().backward()

    steps = {"numpy": numpy_step, "minigrad": minigrad_step}
    if torch is not None:
        tx = torch.from_numpy(x.copy()).requires_grad_()

        def torch_step():
            tx.grad = None
            ((tx * 1.5 + 0.5).tanh() * tx).sum().backward()
        steps["torch"] = torch_step
    return steps


def case_softmax(rows, cols):
    """p = softmax(x) over the last axis, loss = sum(p * w).  dx = p (w - sum(p w))."""
    rng = np.random.default_rng(2)
    x, w = (rng.standard_normal((rows, cols)).astype(np.float32) for _ in range(2))

    def numpy_step():
        e = np.exp(x - x.max(axis=-1, keepdims=True))
        p = e / e.sum(axis=-1, keepdims=True)
        loss = (p * w).sum()
        return loss, p * (w - (p * w).sum(axis=-1, keepdims=True))

    X, W = mg.tensor(x, requires_grad=True), mg.tensor(w)

    def minigrad_step():
        X.grad = None
        (F.softmax(X, axis=-1) * W).sum().backward()

    steps = {"numpy": numpy_step, "minigrad": minigrad_step}
    if torch is not None:
        tx, tw = torch.from_numpy(x.copy()).requires_grad_(), torch.from_numpy(w)

        def torch_step():
            tx.grad = None
            (torch.softmax(tx, dim=-1) * tw).sum().backward()
        steps["torch"] = torch_step
    return steps


def case_layer_norm(rows, d):
    """y = (x - mu) / sqrt(var + eps) * gamma + beta over the last axis, loss = sum(y * w)."""
    rng = np.random.default_rng(3)
    x, w = (rng.standard_normal((rows, d)).astype(np.float32) for _ in range(2))
    gamma, beta = rng.standard_normal(d).astype(np.float32), rng.standard_normal(d).astype(np.float32)
    eps = 1e-5

    def numpy_step():
        mu = x.mean(axis=-1, keepdims=True)
        centred = x - mu
        rstd = 1.0 / np.sqrt((centred * centred).mean(axis=-1, keepdims=True) + eps)
        xhat = centred * rstd
        loss = ((xhat * gamma + beta) * w).sum()
        gh = w * gamma
        dx = rstd * (gh - gh.mean(axis=-1, keepdims=True) - xhat * (gh * xhat).mean(axis=-1, keepdims=True))
        return loss, dx, (w * xhat).sum(axis=0), w.sum(axis=0)

    X, W = mg.tensor(x, requires_grad=True), mg.tensor(w)
    G, B = mg.tensor(gamma, requires_grad=True), mg.tensor(beta, requires_grad=True)

    def minigrad_step():
        X.grad = G.grad = B.grad = None
        (F.layer_norm(X, G, B, eps=eps) * W).sum().backward()

    steps = {"numpy": numpy_step, "minigrad": minigrad_step}
    if torch is not None:
        tx, tw = torch.from_numpy(x.copy()).requires_grad_(), torch.from_numpy(w)
        tg, tb = torch.from_numpy(gamma.copy()).requires_grad_(), torch.from_numpy(beta.copy()).requires_grad_()

        def torch_step():
            tx.grad = tg.grad = tb.grad = None
            (torch.nn.functional.layer_norm(tx, (d,), tg, tb, eps) * tw).sum().backward()
        steps["torch"] = torch_step
    return steps


def case_chain(batch, d, depth):
    """A chain of large matmuls and elementwise ops, residual blocks

        z_i = h_{i-1} W_i + b_i,   a_i = tanh(z_i),   h_i = h_{i-1} + 0.5 a_i,   loss = sum(h_depth * G)

    Backward by hand:  dz_i = 0.5 dh_i (1 - a_i^2),  dW_i = h_{i-1}^T dz_i,  db_i = sum_rows dz_i,
    dh_{i-1} = dh_i + dz_i W_i^T  (x needs no gradient, so the first block stops at dW, db)."""
    rng = np.random.default_rng(6)
    x, g = (rng.standard_normal((batch, d)).astype(np.float32) for _ in range(2))
    ws = [(rng.standard_normal((d, d)) / np.sqrt(d)).astype(np.float32) for _ in range(depth)]
    bs = [(0.1 * rng.standard_normal(d)).astype(np.float32) for _ in range(depth)]
    half, one = np.float32(0.5), np.float32(1.0)

    def numpy_step():
        hs, acts, h = [x], [], x
        for w, b in zip(ws, bs):
            a = np.tanh(h @ w + b)
            h = h + half * a
            hs.append(h)
            acts.append(a)
        loss = (h * g).sum()
        grads, dh = [], g
        for i in reversed(range(depth)):
            dz = (half * dh) * (one - acts[i] * acts[i])
            grads.append((hs[i].T @ dz, dz.sum(axis=0)))
            if i > 0:
                dh = dh + dz @ ws[i].T
        return loss, grads

    X, G = mg.tensor(x), mg.tensor(g)
    Ws = [mg.tensor(w.copy(), requires_grad=True) for w in ws]
    Bs = [mg.tensor(b.copy(), requires_grad=True) for b in bs]

    def minigrad_step():
        h = X
        for w, b in zip(Ws, Bs):
            w.grad = b.grad = None
            h = h + (h @ w + b).tanh() * 0.5
        (h * G).sum().backward()

    steps = {"numpy": numpy_step, "minigrad": minigrad_step}
    if torch is not None:
        tx, tg = torch.from_numpy(x), torch.from_numpy(g)
        tws = [torch.from_numpy(w.copy()).requires_grad_() for w in ws]
        tbs = [torch.from_numpy(b.copy()).requires_grad_() for b in bs]

        def torch_step():
            h = tx
            for w, b in zip(tws, tbs):
                w.grad = b.grad = None
                h = h + (h @ w + b).tanh() * 0.5
            (h * tg).sum().backward()
        steps["torch"] = torch_step
    return steps


# --------------------------------------------------------------------------- per-op overhead
# Each op applied n times in a chain on a tiny (8, 8) tensor that requires grad: the
# array work is a few hundred nanoseconds, so the time per op is the framework's own
# Python/C++ bookkeeping (building the graph forward, walking it backward).
OVERHEAD_OPS = {
    "add (t + 0.5)": lambda t, w, i: t + 0.5,
    "mul (t * 1.01)": lambda t, w, i: t * 1.01,
    "tanh": lambda t, w, i: t.tanh(),
    "matmul (8x8 @ 8x8)": lambda t, w, i: t @ w,
    "mixed (add, mul, tanh, matmul in turn)":
        lambda t, w, i: t + 0.5 if i % 4 == 0 else t * 1.01 if i % 4 == 1 else t.tanh() if i % 4 == 2 else t @ w,
}
NUMPY_OPS = {
    "add (t + 0.5)": lambda t, w, i: t + np.float32(0.5),
    "mul (t * 1.01)": lambda t, w, i: t * np.float32(1.01),
    "tanh": lambda t, w, i: np.tanh(t),
    "matmul (8x8 @ 8x8)": lambda t, w, i: t @ w,
    "mixed (add, mul, tanh, matmul in turn)":
        lambda t, w, i: (t + np.float32(0.5) if i % 4 == 0 else t * np.float32(1.01) if i % 4 == 1
                         else np.tanh(t) if i % 4 == 2 else t @ w),
}


def overhead_steps(kind, n_ops, size=8):
    """{label: callable} doing n_ops of `kind` forward only, or forward + backward."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((size, size)).astype(np.float32)
    w = (rng.standard_normal((size, size)) / np.sqrt(size)).astype(np.float32)
    op, np_op = OVERHEAD_OPS[kind], NUMPY_OPS[kind]

    def numpy_forward():
        t = x
        for i in range(n_ops):
            t = np_op(t, w, i)
        return t

    def make(tensor_x, tensor_w, backward):
        def step():
            tensor_x.grad = None
            t = tensor_x
            for i in range(n_ops):
                t = op(t, tensor_w, i)
            if backward:
                t.sum().backward()
        return step

    X, W = mg.tensor(x, requires_grad=True), mg.tensor(w)
    steps = {"numpy fwd": numpy_forward, "minigrad fwd": make(X, W, False),
             "minigrad fwd+bwd": make(X, W, True)}
    if torch is not None:
        tx, tw = torch.from_numpy(x.copy()).requires_grad_(), torch.from_numpy(w)
        steps["torch fwd"] = make(tx, tw, False)
        steps["torch fwd+bwd"] = make(tx, tw, True)
    return steps


# --------------------------------------------------------------------------- timing
def interleaved_times(steps, rounds, budget_s=0.05):
    """Median seconds per call of each step; the frameworks take turns every round."""
    inner = {}
    for name, step in steps.items():
        step()                                             # warm up (allocations, caches)
        start = time.perf_counter()
        step()
        inner[name] = max(1, int(budget_s / max(time.perf_counter() - start, 1e-7)))
    samples = {name: [] for name in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            start = time.perf_counter()
            for _ in range(inner[name]):
                step()
            samples[name].append((time.perf_counter() - start) / inner[name])
    return {name: statistics.median(values) for name, values in samples.items()}


def profile_overhead(n_calls=300):
    """cProfile of the mixed tiny-op chain, forward + backward: where minigrad's per-op time goes."""
    step = overhead_steps("mixed (add, mul, tanh, matmul in turn)", 60)["minigrad fwd+bwd"]
    step()
    return profile(step, n_calls)


def cases(quick):
    """The large-tensor cases: (label, steps), where the array work dominates."""
    if quick:
        return [("chain: 3 x [matmul 64x128 @ 128x128, +b, tanh, *0.5, +residual]", case_chain(64, 128, 3)),
                ("matmul 128x128", case_matmul(128)),
                ("elementwise chain, 100k", case_elementwise(100_000)),
                ("softmax (64, 256)", case_softmax(64, 256)),
                ("layer_norm (256, 128)", case_layer_norm(256, 128))]
    return [("chain: 4 x [matmul 512x1024 @ 1024x1024, +b, tanh, *0.5, +residual]", case_chain(512, 1024, 4)),
            ("matmul 512x512", case_matmul(512)),
            ("matmul 1024x1024", case_matmul(1024)),
            ("elementwise chain, 1M", case_elementwise(1_000_000)),
            ("softmax (256, 1024)", case_softmax(256, 1024)),
            ("layer_norm (4096, 512)", case_layer_norm(4096, 512))]


def table(header, rows):
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + \
        ["| " + " | ".join(row) + " |" for row in rows]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, few rounds (a few seconds)")
    parser.add_argument("--rounds", type=int, default=None, help="rounds of interleaved timing")
    parser.add_argument("--profile", action="store_true", help="print a cProfile of the per-op overhead")
    parser.add_argument("--threads", default="1", help="BLAS / OpenMP threads for every framework (default 1: "
                        "steadier on a shared machine, and the same for all)")
    parser.add_argument("--out", default=None, help="results path without extension ('' writes nothing); default "
                        "results/bench_engine, or results/bench_engine_quick with --quick")
    args = parser.parse_args(argv)
    if args.out is None:                 # a quick check never overwrites the full run's table
        args.out = os.path.join(RESULTS, ("bench_engine_quick" if args.quick else "bench_engine")
                                + results_suffix(THREADS))
    rounds = args.rounds or (3 if args.quick else 11)
    budget = 0.005 if args.quick else 0.05
    has_torch = torch is not None

    # ---- 1. per-op overhead on tiny tensors
    n_ops = 20 if args.quick else 100
    overhead_rows, overhead = [], {}
    print(f"per-op overhead, microseconds per op ({n_ops} ops on (8, 8) float32):", flush=True)
    for kind in OVERHEAD_OPS:
        times = {k: v / n_ops * 1e6 for k, v in interleaved_times(overhead_steps(kind, n_ops), rounds, budget).items()}
        overhead[kind] = times
        row = [kind, f"{times['numpy fwd']:.2f}", f"{times['minigrad fwd']:.2f}", f"{times['minigrad fwd+bwd']:.2f}"]
        if has_torch:
            row += [f"{times['torch fwd']:.2f}", f"{times['torch fwd+bwd']:.2f}",
                    f"{times['minigrad fwd'] / times['torch fwd']:.2f}",
                    f"{times['minigrad fwd+bwd'] / times['torch fwd+bwd']:.2f}"]
        overhead_rows.append(row)
        print("  ".join(row), flush=True)
    if has_torch:
        for kind, times in overhead.items():
            print_ratio(f"per-op overhead fwd+bwd, {kind}", "minigrad / torch",
                        times["minigrad fwd+bwd"] / times["torch fwd+bwd"], OVERHEAD_TARGET)
        mixed = overhead["mixed (add, mul, tanh, matmul in turn)"]
        print_ratio("per-op overhead fwd, mixed", "minigrad / torch",
                    mixed["minigrad fwd"] / mixed["torch fwd"], OVERHEAD_TARGET)

    # ---- 2. large tensors: forward + backward against numpy by hand and PyTorch
    frameworks = ["numpy", "torch", "minigrad"] if has_torch else ["numpy", "minigrad"]
    rows, large = [], {}
    print("large tensors, ms per forward + backward:", flush=True)
    for label, steps in cases(args.quick):
        times = interleaved_times(steps, rounds, budget)
        large[label] = times
        row = [label] + [f"{times[f] * 1e3:.3f}" for f in frameworks]
        row.append(f"{times['minigrad'] / times['numpy']:.2f}")
        if has_torch:
            row.append(f"{times['minigrad'] / times['torch']:.2f}")
        rows.append(row)
        print("  ".join(row), flush=True)
    for label, times in large.items():
        print_ratio(label, "minigrad / numpy", times["minigrad"] / times["numpy"], LARGE_TARGET)
        if has_torch:
            print_ratio(label, "minigrad / torch", times["minigrad"] / times["torch"])

    command = f"python benchmarks/bench_engine.py{' --quick' if args.quick else ''}"
    lines = ["# Engine: per-op overhead and large-tensor forward + backward, minigrad vs numpy"
             + (" vs PyTorch" if has_torch else ""), "",
             f"`{command}`, median of {rounds} interleaved rounds (the frameworks take turns every round); "
             "float32; a ratio < 1 means minigrad is faster.", "",
             f"- machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}; "
             f"{os.environ['OPENBLAS_NUM_THREADS']} BLAS/OpenMP thread(s) for every framework (--threads)",
             f"- numpy {np.__version__}" + (f", torch {torch.__version__}" if has_torch else ", torch not installed"),
             f"- minigrad {mg.__version__}; {time.strftime('%Y-%m-%d %H:%M %Z')}", "",
             f"## Per-op overhead: microseconds per op ({n_ops} ops chained on an (8, 8) tensor)", "",
             f"Target: minigrad within {OVERHEAD_TARGET:g}x of PyTorch eager. fwd builds the graph (the input "
             "requires grad); fwd+bwd adds `.sum().backward()`. numpy fwd is the bare array call, the floor.", ""]
    header = ["op", "numpy fwd us", "minigrad fwd us", "minigrad fwd+bwd us"]
    if has_torch:
        header += ["torch fwd us", "torch fwd+bwd us", "minigrad / torch fwd", "minigrad / torch fwd+bwd"]
    lines += table(header, overhead_rows)
    lines += ["", "## Large tensors: ms per forward + backward", "",
              f"Target: minigrad within {LARGE_TARGET:g}x of the same math written by hand in numpy (no graph, "
              "no Tensor objects: minigrad / numpy is the price of autograd itself).", ""]
    header = ["case (forward + backward)"] + [f"{f} ms" for f in frameworks] + ["minigrad / numpy"]
    if has_torch:
        header.append("minigrad / torch")
    lines += table(header, rows)
    if args.profile:
        report = profile_overhead()
        print(report)
        lines += ["", "## Where the per-op time goes (cProfile, 60 mixed tiny ops, fwd+bwd, x 300)", "",
                  "```", report.strip(), "```"]
    result = {"overhead_us_per_op": overhead, "large_s_per_call": large, "rounds": rounds, "n_ops": n_ops,
              "torch": torch.__version__ if has_torch else None, "minigrad": mg.__version__,
              "targets": {"large_vs_numpy": LARGE_TARGET, "overhead_vs_torch": OVERHEAD_TARGET},
              "machine": machine_info(blas_threads=os.environ["OPENBLAS_NUM_THREADS"])}
    if args.out:
        write_results(args.out, result, "\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
