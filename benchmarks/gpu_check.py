"""GPU check: run the whole test suite on the real GPU, then time the core ops on
"cpu" and "cuda" side by side.

    pip install -e ".[gpu]"                      # cupy for your CUDA version
    python benchmarks/gpu_check.py               # tests + timings
    python benchmarks/gpu_check.py --no-tests    # timings only
    python benchmarks/gpu_check.py --quick       # smaller sizes

1. Tests: `pytest` with MINIGRAD_TEST_REAL_CUDA=1, which makes tests/conftest.py
   serve "cuda" with the real cupy instead of its CPU stand-in, so every test
   that takes the `device` fixture runs on the GPU.
2. Timings: forward + backward of matmul (1024^2, 4096^2), an elementwise chain,
   softmax, layer_norm, an MLP training step and a small GPT training step, on
   each device; the loss of each case must agree between the devices.

Writes benchmarks/results/gpu_check.json and gpu_check.md. Without cupy or
without a GPU it says so and exits with status 2.
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

import numpy as np

import minigrad as mg
import minigrad.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "benchmarks", "results")


def require_gpu(with_double):
    """The cuda module's name and the GPU's name, or exit with the reason."""
    if with_double:   # checking this script on a machine without a GPU: timings mean nothing
        sys.path.insert(0, os.path.join(ROOT, "tests"))
        import fake_cupy
        mg.backend.register_cuda_module(fake_cupy)
        return "fake_cupy (tests/fake_cupy.py)", "no GPU: the CPU stand-in for cupy"
    try:
        import cupy
    except ImportError:
        _give_up('gpu_check: cupy is not installed. On a machine with an NVIDIA GPU run\n'
                 '    pip install -e ".[gpu]"\n(or pip install cupy-cuda12x) and try again.')
    if not mg.cuda_available():
        _give_up("gpu_check: cupy is installed but no GPU is usable here; " + _cuda_reason())
    name = cupy.cuda.runtime.getDeviceProperties(0)["name"]
    return f"cupy {cupy.__version__}", name.decode() if isinstance(name, bytes) else str(name)


def _give_up(message):
    print(message, file=sys.stderr)
    sys.exit(2)


def _cuda_reason():
    try:
        mg.zeros(1, device="cuda")
    except RuntimeError as exc:
        return str(exc)
    return "unknown reason"


# --------------------------------------------------------------------------- tests on the GPU
def run_tests(extra_args, real_cuda=True):
    env = dict(os.environ, MINIGRAD_TEST_REAL_CUDA="1" if real_cuda else "0")
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"] + extra_args
    print("running:", " ".join(command), f"(MINIGRAD_TEST_REAL_CUDA={env['MINIGRAD_TEST_REAL_CUDA']})",
          flush=True)
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    output = (done.stdout + done.stderr).strip().splitlines()
    summary = next((line for line in reversed(output) if " passed" in line or " failed" in line
                    or " error" in line), output[-1] if output else "")
    failures = [line for line in output if line.startswith(("FAILED", "ERROR"))]
    print(summary, flush=True)
    return {"command": " ".join(command), "returncode": done.returncode, "summary": summary.strip("= "),
            "failures": failures[:50], "seconds": round(seconds, 1)}


# --------------------------------------------------------------------------- timed cases
# Each case builds its tensors on `device` and returns a step: one forward + backward
# (+ update) that returns the loss as a Python float (which also waits for the GPU).

def case_matmul(n, device):
    rng = np.random.default_rng(0)
    a = mg.tensor(rng.standard_normal((n, n)).astype(np.float32), device=device, requires_grad=True)
    b = mg.tensor(rng.standard_normal((n, n)).astype(np.float32), device=device, requires_grad=True)

    def step():
        a.grad = b.grad = None
        loss = (a @ b).mean()
        loss.backward()
        return loss.item()
    return step


def case_elementwise(n, device):
    x = mg.tensor(np.random.default_rng(1).standard_normal(n).astype(np.float32), device=device,
                  requires_grad=True)

    def step():
        x.grad = None
        loss = ((x * 1.5 + 0.5).tanh() * x).mean()
        loss.backward()
        return loss.item()
    return step


def case_softmax(rows, cols, device):
    rng = np.random.default_rng(2)
    x = mg.tensor(rng.standard_normal((rows, cols)).astype(np.float32), device=device, requires_grad=True)
    w = mg.tensor(rng.standard_normal((rows, cols)).astype(np.float32), device=device)

    def step():
        x.grad = None
        loss = (F.softmax(x, axis=-1) * w).sum()
        loss.backward()
        return loss.item()
    return step


def case_layer_norm(rows, d, device):
    rng = np.random.default_rng(3)
    x = mg.tensor(rng.standard_normal((rows, d)).astype(np.float32), device=device, requires_grad=True)
    w = mg.tensor(rng.standard_normal((rows, d)).astype(np.float32), device=device)
    gamma = mg.ones(d, device=device, requires_grad=True)
    beta = mg.zeros(d, device=device, requires_grad=True)

    def step():
        x.grad = gamma.grad = beta.grad = None
        loss = (F.layer_norm(x, gamma, beta) * w).sum()
        loss.backward()
        return loss.item()
    return step


def case_mlp(batch, sizes, device):
    rng = np.random.default_rng(4)
    x = mg.tensor(rng.standard_normal((batch, sizes[0])).astype(np.float32), device=device)
    y = mg.tensor(rng.integers(0, sizes[-1], batch), device=device)
    params = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        params.append(mg.tensor((rng.standard_normal((n_in, n_out)) / np.sqrt(n_in)).astype(np.float32),
                                device=device, requires_grad=True))
        params.append(mg.zeros(n_out, device=device, requires_grad=True))

    def step():
        h = x
        for i in range(0, len(params), 2):
            h = h @ params[i] + params[i + 1]
            if i + 2 < len(params):
                h = h.relu()
        loss = F.cross_entropy(h, y)
        loss.backward()
        with mg.no_grad():
            for p in params:
                p.data -= 0.01 * p.grad.data
                p.grad = None
        return loss.item()
    return step


def case_gpt(batch, block, n_layer, d_model, device):
    from minigrad.models import GPT
    mg.manual_seed(0)
    vocab = 512
    model = GPT(vocab, block, n_layer, n_head=max(1, d_model // 64), d_model=d_model).to(device)
    optimizer = mg.optim.Adam(model.parameters(), lr=1e-4)
    rng = np.random.default_rng(5)
    tokens = mg.tensor(rng.integers(0, vocab, (batch, block + 1)), device=device)
    inputs, targets = tokens[:, :-1], tokens[:, 1:]

    def step():
        logits = model(inputs)
        loss = F.cross_entropy(logits, targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.item()
    return step


def cases(quick):
    if quick:
        return [("matmul 512^2", lambda d: case_matmul(512, d)),
                ("elementwise chain, 1M", lambda d: case_elementwise(1_000_000, d)),
                ("softmax (512, 512)", lambda d: case_softmax(512, 512, d)),
                ("layer_norm (2048, 256)", lambda d: case_layer_norm(2048, 256, d)),
                ("MLP step 128x[784-256-10]", lambda d: case_mlp(128, [784, 256, 10], d)),
                ("GPT step 8x64, 2 layers, d=128", lambda d: case_gpt(8, 64, 2, 128, d))]
    return [("matmul 1024^2", lambda d: case_matmul(1024, d)),
            ("matmul 4096^2", lambda d: case_matmul(4096, d)),
            ("elementwise chain, 10M", lambda d: case_elementwise(10_000_000, d)),
            ("softmax (4096, 4096)", lambda d: case_softmax(4096, 4096, d)),
            ("layer_norm (8192, 1024)", lambda d: case_layer_norm(8192, 1024, d)),
            ("MLP step 512x[784-1024-1024-10]", lambda d: case_mlp(512, [784, 1024, 1024, 10], d)),
            ("GPT step 16x256, 4 layers, d=256", lambda d: case_gpt(16, 256, 4, 256, d))]


def time_step(step, device, repeats, budget_s):
    """Median seconds per call; the first calls (cupy compiles its kernels) are not timed."""
    losses = [step(), step()]
    times, spent = [], 0.0
    while len(times) < repeats and (spent < budget_s or len(times) < 3):
        start = time.perf_counter()
        losses.append(step())
        if device == "cuda":
            mg.backend.synchronize(device)
        times.append(time.perf_counter() - start)
        spent += times[-1]
    return statistics.median(times), losses[0]


def run_timings(quick, repeats, budget_s):
    rows = []
    for label, make in cases(quick):
        row = {"case": label}
        for device in ("cpu", "cuda"):
            try:
                seconds, loss = time_step(make(device), device, repeats, budget_s)
                row[f"{device}_ms"], row[f"{device}_loss"] = round(seconds * 1e3, 3), loss
            except Exception as exc:          # report and go on: one broken case must not hide the rest
                row[f"{device}_error"] = f"{type(exc).__name__}: {exc}"
        if "cpu_ms" in row and "cuda_ms" in row:
            row["speedup"] = round(row["cpu_ms"] / row["cuda_ms"], 2)
            scale = max(abs(row["cpu_loss"]), 1e-6)
            row["losses_agree"] = abs(row["cpu_loss"] - row["cuda_loss"]) <= 1e-3 * scale + 1e-5
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


def write_report(report, out_dir):
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "gpu_check.json"), "w") as f:
        json.dump(report, f, indent=2)
    lines = ["# GPU check", "",
             f"- GPU: {report['gpu']}; {report['cuda_module']}; numpy {np.__version__}; "
             f"Python {platform.python_version()}; {os.cpu_count()} CPUs", ""]
    tests = report.get("tests")
    if tests:
        lines += ["## Test suite on the GPU (MINIGRAD_TEST_REAL_CUDA=1)", "",
                  f"`{tests['command']}`: **{tests['summary']}** in {tests['seconds']} s "
                  f"(exit status {tests['returncode']})", ""]
        lines += [f"- {line}" for line in tests["failures"]] + ([""] if tests["failures"] else [])
    lines += ["## Forward + backward, median per step", "",
              "| case | cpu ms | cuda ms | cuda speed-up | losses agree |", "|---|---|---|---|---|"]
    for row in report["timings"]:
        cells = [row["case"], str(row.get("cpu_ms", row.get("cpu_error", "-"))),
                 str(row.get("cuda_ms", row.get("cuda_error", "-"))), str(row.get("speedup", "-")),
                 str(row.get("losses_agree", "-"))]
        lines.append("| " + " | ".join(cells) + " |")
    with open(os.path.join(out_dir, "gpu_check.md"), "w") as f:
        f.write("\n".join(lines) + "\n")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--no-tests", action="store_true", help="skip the test suite, only time")
    parser.add_argument("--quick", action="store_true", help="smaller sizes")
    parser.add_argument("--repeats", type=int, default=10, help="timed calls per case and device (at most)")
    parser.add_argument("--budget", type=float, default=3.0, help="seconds per case and device (about)")
    parser.add_argument("--pytest-args", default="", help='extra pytest arguments, e.g. "-x -k ops"')
    parser.add_argument("--out-dir", default=RESULTS)
    parser.add_argument("--with-double", action="store_true",
                        help="check this script without a GPU: serve cuda by tests/fake_cupy.py (timings "
                             "then say nothing about a GPU)")
    args = parser.parse_args(argv)

    cuda_module, gpu = require_gpu(args.with_double)
    print(f"gpu_check: {gpu} via {cuda_module}", flush=True)
    report = {"gpu": gpu, "cuda_module": cuda_module, "quick": args.quick}
    if not args.no_tests:
        if args.with_double:
            print("(--with-double: the tests use the double as usual, not the GPU)")
        report["tests"] = run_tests(args.pytest_args.split(), real_cuda=not args.with_double)
    report["timings"] = run_timings(args.quick, args.repeats, args.budget)
    write_report(report, args.out_dir)
    print(f"wrote {os.path.join(args.out_dir, 'gpu_check.json')} and gpu_check.md")
    failed = (report.get("tests", {}).get("returncode", 0) != 0
              or any(not row.get("losses_agree", False) for row in report["timings"]))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
