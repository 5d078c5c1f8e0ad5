"""Speed of minigrad's core ops, forward + backward, against the same math written
by hand in plain numpy, and against PyTorch (CPU) when it is installed.

    python benchmarks/bench_core.py             # full sizes, a minute or two
    python benchmarks/bench_core.py --quick     # small sizes, a few seconds
    python benchmarks/bench_core.py --profile   # also: where the per-op time goes (cProfile)

Every case is one forward and one backward pass (the MLP case also updates the
weights). The frameworks take turns within each round, round after round, so a
machine that gets busier halfway slows all of them alike; the table gives the
median time per call and minigrad's ratio to the others (lower is better for
minigrad; 1.0 = as fast). Writes benchmarks/results/bench_core.md.

numpy is the floor: the same array work with no graph, no Tensor objects and no
bookkeeping, so minigrad / numpy is the price of autograd itself.
"""
import argparse
import cProfile
import io
import os
import platform
import pstats
import statistics
import sys
import time


def _threads_from_argv(argv):
    """--threads N, read before numpy is imported: BLAS fixes its thread count on import."""
    for i, arg in enumerate(argv):
        if arg == "--threads" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--threads="):
            return arg.split("=", 1)[1]
    return "1"


THREADS = _threads_from_argv(sys.argv[1:])
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, THREADS)

import numpy as np  # noqa: E402

import minigrad as mg
import minigrad.functional as F

try:
    import torch
    torch.set_num_threads(int(THREADS))
except ImportError:          # PyTorch is optional: its column is left out
    torch = None

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


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


def case_mlp(batch, sizes, lr=0.01):
    """One SGD training step of an MLP (ReLU between layers) with cross-entropy loss."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((batch, sizes[0])).astype(np.float32)
    y = rng.integers(0, sizes[-1], batch)
    init = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        init.append((rng.standard_normal((n_in, n_out)) / np.sqrt(n_in)).astype(np.float32))
        init.append(np.zeros(n_out, np.float32))

    np_params = [p.copy() for p in init]

    def numpy_step():
        activations, h = [x], x
        for i in range(0, len(np_params), 2):
            h = h @ np_params[i] + np_params[i + 1]
            if i + 2 < len(np_params):
                h = np.maximum(h, 0)
            activations.append(h)
        shifted = h - h.max(axis=1, keepdims=True)
        log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        loss = -log_probs[np.arange(batch), y].mean()
        grad = np.exp(log_probs)
        grad[np.arange(batch), y] -= 1
        grad /= batch
        for i in range(len(np_params) - 2, -1, -2):
            inputs = activations[i // 2]
            grad_w, grad_b = inputs.T @ grad, grad.sum(axis=0)
            if i > 0:
                grad = (grad @ np_params[i].T) * (inputs > 0)
            np_params[i] -= lr * grad_w
            np_params[i + 1] -= lr * grad_b
        return loss

    mg_params = [mg.tensor(p.copy(), requires_grad=True) for p in init]
    X = mg.tensor(x)

    def minigrad_step():
        h = X
        for i in range(0, len(mg_params), 2):
            h = h @ mg_params[i] + mg_params[i + 1]
            if i + 2 < len(mg_params):
                h = h.relu()
        loss = F.cross_entropy(h, y)
        loss.backward()
        with mg.no_grad():
            for p in mg_params:
                p.data -= lr * p.grad.data
                p.grad = None

    steps = {"numpy": numpy_step, "minigrad": minigrad_step}
    if torch is not None:
        t_params = [torch.from_numpy(p.copy()).requires_grad_() for p in init]
        tx, ty = torch.from_numpy(x), torch.from_numpy(y)

        def torch_step():
            h = tx
            for i in range(0, len(t_params), 2):
                h = h @ t_params[i] + t_params[i + 1]
                if i + 2 < len(t_params):
                    h = h.relu()
            torch.nn.functional.cross_entropy(h, ty).backward()
            with torch.no_grad():
                for p in t_params:
                    p -= lr * p.grad
                    p.grad = None
        steps["torch"] = torch_step
    return steps


def case_small_ops(n_ops, size):
    """A chain of n_ops tiny elementwise ops (add, mul, tanh in turn) on (size, size):
    the array work is negligible, so this measures the per-op overhead."""
    x = np.random.default_rng(5).standard_normal((size, size)).astype(np.float32)
    half, one = np.float32(0.5), np.float32(1.0)

    def numpy_step():
        values, t = [], x
        for i in range(n_ops):
            values.append(t)
            t = t + half if i % 3 == 0 else t * half if i % 3 == 1 else np.tanh(t)
        grad = np.ones_like(t)
        for i in reversed(range(n_ops)):
            if i % 3 == 1:
                grad = grad * half
            elif i % 3 == 2:
                th = np.tanh(values[i])
                grad = grad * (one - th * th)
        return grad

    X = mg.tensor(x, requires_grad=True)

    def minigrad_step():
        X.grad = None
        t = X
        for i in range(n_ops):
            t = t + 0.5 if i % 3 == 0 else t * 0.5 if i % 3 == 1 else t.tanh()
        t.sum().backward()

    steps = {"numpy": numpy_step, "minigrad": minigrad_step}
    if torch is not None:
        tx = torch.from_numpy(x.copy()).requires_grad_()

        def torch_step():
            tx.grad = None
            t = tx
            for i in range(n_ops):
                t = t + 0.5 if i % 3 == 0 else t * 0.5 if i % 3 == 1 else t.tanh()
            t.sum().backward()
        steps["torch"] = torch_step
    return steps


def cases(quick):
    if quick:
        return [("matmul 128x128", case_matmul(128)),
                ("elementwise chain, 100k", case_elementwise(100_000)),
                ("softmax (64, 256)", case_softmax(64, 256)),
                ("layer_norm (256, 128)", case_layer_norm(256, 128)),
                ("MLP step 64x[64-64-10]", case_mlp(64, [64, 64, 10])),
                ("30 tiny ops (8x8)", case_small_ops(30, 8))]
    return [("matmul 512x512", case_matmul(512)),
            ("matmul 1024x1024", case_matmul(1024)),
            ("elementwise chain, 1M", case_elementwise(1_000_000)),
            ("softmax (256, 1024)", case_softmax(256, 1024)),
            ("layer_norm (4096, 512)", case_layer_norm(4096, 512)),
            ("MLP step 128x[784-512-256-10]", case_mlp(128, [784, 512, 256, 10])),
            ("MLP step 32x[64-64-10] (small)", case_mlp(32, [64, 64, 10])),
            ("60 tiny ops (8x8)", case_small_ops(60, 8))]


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


def profile_small_ops(n_calls=300):
    """cProfile of the tiny-op chain: where minigrad's per-op time goes."""
    step = case_small_ops(60, 8)["minigrad"]
    step()
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(n_calls):
        step()
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(12)
    return out.getvalue()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, few rounds")
    parser.add_argument("--rounds", type=int, default=None, help="rounds of interleaved timing")
    parser.add_argument("--profile", action="store_true", help="print a cProfile of the per-op overhead")
    parser.add_argument("--threads", default="1", help="BLAS / OpenMP threads for every framework (default 1: "
                        "steadier on a shared machine, and the same for all)")
    parser.add_argument("--out", default=None,
                        help="default results/bench_core.md, or results/bench_core_quick.md with --quick")
    args = parser.parse_args(argv)
    if args.out is None:                 # a quick check never overwrites the full run's table
        args.out = os.path.join(RESULTS, "bench_core_quick.md" if args.quick else "bench_core.md")
    rounds = args.rounds or (3 if args.quick else 11)

    frameworks = ["numpy", "torch", "minigrad"] if torch is not None else ["numpy", "minigrad"]
    rows = []
    for label, steps in cases(args.quick):
        times = interleaved_times(steps, rounds)
        row = [label] + [f"{times[f] * 1e3:.3f}" for f in frameworks]
        row.append(f"{times['minigrad'] / times['numpy']:.2f}")
        if torch is not None:
            row.append(f"{times['minigrad'] / times['torch']:.2f}")
        rows.append(row)
        print("  ".join(row), flush=True)

    header = ["case (forward + backward)"] + [f"{f} ms" for f in frameworks] + ["minigrad / numpy"]
    if torch is not None:
        header.append("minigrad / torch")
    lines = ["# Core ops: minigrad vs numpy" + (" vs PyTorch" if torch is not None else ""), "",
             f"`python benchmarks/bench_core.py{' --quick' if args.quick else ''}`, median of {rounds} "
             "interleaved rounds; float32; ratio < 1 means minigrad is faster.", "",
             f"- machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}; "
             f"{os.environ['OPENBLAS_NUM_THREADS']} BLAS/OpenMP thread(s) for every framework (--threads)",
             f"- numpy {np.__version__}" + (f", torch {torch.__version__}" if torch is not None
                                            else ", torch not installed"),
             f"- minigrad {mg.__version__}", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    lines += ["", "numpy is the same math written by hand with no graph: minigrad / numpy is the cost of",
              "autograd. The tiny-op rows measure per-op overhead (Python work per op, forward and backward)."]
    if args.profile:
        report = profile_small_ops()
        print(report)
        lines += ["", "## Where the per-op time goes (cProfile, 60 tiny ops x 300)", "", "```", report.strip(), "```"]
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    sys.exit(main())
