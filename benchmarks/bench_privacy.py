"""What differential privacy costs per step: a DP-SGD step against a normal step, for
an MLP and a small GPT, with per-example gradients materialised ("hooks") and with
ghost clipping ("ghost"), their peak memory, and Opacus on the same models when it is
installed.

    python benchmarks/bench_privacy.py            # writes results/bench_privacy.md/.json
    python benchmarks/bench_privacy.py --quick    # a few seconds, small shapes, *_quick.*

The steps, each on the same data from the same initial weights:
    normal      zero_grad, forward, cross-entropy (mean), backward, optimizer step
    dp hooks    the same through privacy.make_private(...): per-example gradients
                p.grad_sample (B, *p.shape) from hooks, clipped to C = 1, summed,
                N(0, sigma^2 C^2) added (sigma = 1), divided by the batch size, step
    dp ghost    grad_sample_mode="ghost": the per-example norms of Dense (and
                Embedding) weights from the layer's inputs and output gradients,
                ||sum_t a_t g_t^T||^2 = <A A^T, G G^T>, and the clipped sum as one matrix
                product; nothing of size B x in x out is stored (privacy/per_example.py)
The batches are fixed (not Poisson-sampled), so every variant does the same work.

Models: MLP 784-512-512-10 (ReLU) at batch 256 with SGD (as bench_mlp.py); GPT
(vocab 65, block 64, 2 layers, 4 heads, d_model 128) at batch 16 with AdamW.

Peak memory: tracemalloc's peak of numpy's allocations during one step, above what
was allocated before it (weights, optimizer state and data excluded): the transient
memory a step needs. Opacus (PyTorch's allocator) is not traced, only timed: its
GradSampleModule + DPOptimizer ("hooks") and its fast gradient clipping
(GradSampleModuleFastGradientClipping with use_ghost_clipping, two backward passes;
MLP only, since it refuses the GPT's tied output layer).

Timings: the variants take turns every round (the order flips), medians of the
rounds; run at all cores and at one thread (--threads N: only at N), the same for
BLAS, minigrad's kernels and PyTorch. Target: DP step with ghost
clipping <= 2.5x the normal step for the MLP.
"""
import argparse
import os
import statistics
import sys
import time
import tracemalloc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import RESULTS, machine_info, pin_threads_from_argv, print_ratio, results_suffix  # noqa: E402
from common import run_at_each_thread_count, write_results  # noqa: E402

run_at_each_thread_count()     # no --threads: runs at all cores and at one thread, then exits
THREADS = pin_threads_from_argv()

import numpy as np  # noqa: E402

import minigrad as mg  # noqa: E402
import minigrad.functional as F  # noqa: E402
from minigrad import nn, optim, privacy  # noqa: E402
from minigrad.models import GPT  # noqa: E402
from bench_transformer import load_torch  # noqa: E402

TARGET_MLP_GHOST = 2.5
FULL = dict(mlp=[784, 512, 512, 10], mlp_batch=256, vocab=65, block=64, layers=2, heads=4, d_model=128,
            gpt_batch=16, rounds=7)
QUICK = dict(mlp=[64, 32, 10], mlp_batch=32, vocab=20, block=16, layers=1, heads=2, d_model=16,
             gpt_batch=4, rounds=2)
SIGMA, CLIP = 1.0, 1.0


def load_torch_and_opacus():
    """torch when both it and opacus are installed (bench_transformer's loader), else None."""
    torch = load_torch()
    try:
        import opacus  # noqa: F401
    except ImportError:
        return None
    if torch is not None:
        torch.set_num_threads(int(THREADS))
    return torch


# ---------------------------------------------------------------- the steps
def mlp_problem(cfg):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((cfg["mlp_batch"], cfg["mlp"][0])).astype(np.float32)
    y = rng.integers(0, cfg["mlp"][-1], cfg["mlp_batch"])

    def make():
        mg.manual_seed(0)
        model = nn.MLP(cfg["mlp"])
        return model, optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    return make, x, y


def gpt_problem(cfg):
    rng = np.random.default_rng(0)
    ids = rng.integers(0, cfg["vocab"], (cfg["gpt_batch"], cfg["block"] + 1))
    x, y = ids[:, :-1], ids[:, 1:]

    def make():
        mg.manual_seed(0)
        model = GPT(cfg["vocab"], cfg["block"], cfg["layers"], cfg["heads"], cfg["d_model"])
        return model, optim.AdamW(model.parameters(), lr=1e-3)
    return make, x, y


def minigrad_steps(make, x, y):
    """{variant: step()} for the normal step and both DP modes, each on its own model."""
    xt, yt = mg.tensor(x), mg.tensor(y)
    steps = {}
    for variant in ("normal", "dp hooks", "dp ghost"):
        model, optimizer = make()
        if variant != "normal":
            model, optimizer, _ = privacy.make_private(model, optimizer, (x, y), batch_size=len(x),
                                                       noise_multiplier=SIGMA, max_grad_norm=CLIP,
                                                       grad_sample_mode=variant.split()[1])

        def step(model=model, optimizer=optimizer):
            optimizer.zero_grad()
            F.cross_entropy(model(xt), yt).backward()
            optimizer.step()
        steps[variant] = step
    return steps


def peak_megabytes(step):
    """Peak numpy memory a step allocates on top of what already exists, in MB."""
    step()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        step()
        return (tracemalloc.get_traced_memory()[1] - before) / 2 ** 20
    finally:
        tracemalloc.stop()


def interleaved(steps, rounds):
    """Median seconds per step of each variant; they take turns, the order flipping every round."""
    for step in steps.values():
        step()
    names, times = list(steps), {name: [] for name in steps}
    for round_ in range(rounds):
        for name in (names if round_ % 2 == 0 else names[::-1]):
            start = time.perf_counter()
            steps[name]()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


# ---------------------------------------------------------------- Opacus
def opacus_mlp_steps(torch, cfg, x, y):
    def make_model():
        layers = []
        for n_in, n_out in zip(cfg["mlp"][:-1], cfg["mlp"][1:]):
            layers += [torch.nn.Linear(n_in, n_out), torch.nn.ReLU()]
        return torch.nn.Sequential(*layers[:-1])
    return opacus_steps(torch, make_model, torch.from_numpy(x),
                        torch.from_numpy(y), lambda model: torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9))


def opacus_gpt_steps(torch, cfg, x, y):
    """The GPT written with torch.nn modules that Opacus supports: positions through the
    Embedding module (ids (B, T)), the output layer a Linear sharing tok.weight."""
    nn, F_ = torch.nn, torch.nn.functional
    d, heads = cfg["d_model"], cfg["heads"]

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
            self.q, self.k, self.v, self.o = (nn.Linear(d, d) for _ in range(4))
            self.fc1, self.fc2 = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)

        def forward(self, h):
            B, T, _ = h.shape
            a = self.ln1(h)
            q, k, v = (p(a).view(B, T, heads, d // heads).transpose(1, 2) for p in (self.q, self.k, self.v))
            h = h + self.o(F_.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(B, T, d))
            return h + self.fc2(F_.gelu(self.fc1(self.ln2(h)), approximate="tanh"))

    class TorchGPT(nn.Module):
        def __init__(self):
            super().__init__()
            self.tok, self.pos = nn.Embedding(cfg["vocab"], d), nn.Embedding(cfg["block"], d)
            self.blocks = nn.ModuleList(Block() for _ in range(cfg["layers"]))
            self.ln_f = nn.LayerNorm(d)
            self.head = nn.Linear(d, cfg["vocab"], bias=False)
            self.head.weight = self.tok.weight                      # tied, as minigrad's GPT

        def forward(self, idx):
            positions = torch.arange(idx.shape[1]).expand_as(idx)
            h = self.tok(idx) + self.pos(positions)
            for block in self.blocks:
                h = block(h)
            return self.head(self.ln_f(h)).flatten(0, 1)

    # Opacus' ghost clipping refuses tied parameters ("Parameter tying is not supported with
    # Ghost Clipping"), so the GPT is timed with its hooks mode only
    return opacus_steps(torch, TorchGPT, torch.from_numpy(x), torch.from_numpy(y).flatten(),
                        lambda model: torch.optim.AdamW(model.parameters(), lr=1e-3), ghost=False)


def opacus_steps(torch, make_model, x, y, make_optimizer, ghost=True):
    from opacus import GradSampleModule
    from opacus.grad_sample import GradSampleModuleFastGradientClipping
    from opacus.optimizers import DPOptimizer, DPOptimizerFastGradientClipping
    from opacus.utils.fast_gradient_clipping_utils import DPLossFastGradientClipping
    batch = x.shape[0]
    steps = {}
    torch.manual_seed(0)
    model = make_model()
    optimizer = make_optimizer(model)

    def normal():
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
    steps["opacus normal"] = normal

    hooks_model = GradSampleModule(make_model())
    hooks_optimizer = DPOptimizer(make_optimizer(hooks_model), noise_multiplier=SIGMA, max_grad_norm=CLIP,
                                  expected_batch_size=batch)

    def hooks():
        hooks_optimizer.zero_grad()
        torch.nn.functional.cross_entropy(hooks_model(x), y).backward()
        hooks_optimizer.step()
    steps["opacus dp hooks"] = hooks
    if not ghost:
        return steps

    ghost_model = GradSampleModuleFastGradientClipping(make_model(), max_grad_norm=CLIP, use_ghost_clipping=True)
    ghost_optimizer = DPOptimizerFastGradientClipping(make_optimizer(ghost_model), noise_multiplier=SIGMA,
                                                      max_grad_norm=CLIP, expected_batch_size=batch)
    criterion = DPLossFastGradientClipping(ghost_model, ghost_optimizer, torch.nn.CrossEntropyLoss())

    def ghost():
        ghost_optimizer.zero_grad()
        criterion(ghost_model(x), y).backward()
        ghost_optimizer.step()
    steps["opacus dp ghost"] = ghost
    return steps


# ---------------------------------------------------------------- the run
def bench(name, problem, opacus_problem, cfg, torch):
    make, x, y = problem(cfg)
    steps = minigrad_steps(make, x, y)
    memory = {variant: peak_megabytes(step) for variant, step in steps.items()}
    if torch is not None:
        import warnings
        warnings.filterwarnings("ignore")            # Opacus warns about secure RNG and hooks
        steps.update(opacus_problem(torch, cfg, x, y))
    seconds = interleaved(steps, cfg["rounds"])
    print(f"{name}: " + ", ".join(f"{variant} {1e3 * s:.1f} ms" for variant, s in seconds.items()))
    print(f"{name} peak memory: " + ", ".join(f"{variant} {mb:.1f} MB" for variant, mb in memory.items()))
    return {"seconds": seconds, "peak_mb": memory}


def report(result):
    lines = ["# DP-SGD step cost (bench_privacy.py)", "",
             f"sigma {SIGMA}, C {CLIP}; BLAS threads {result['threads']}; medians of {result['config']['rounds']} "
             f"interleaved rounds. Peak memory: numpy allocations during one step above the resting state "
             f"(tracemalloc; minigrad only).", ""]
    for name in ("mlp", "gpt"):
        block = result[name]
        normal = block["seconds"]["normal"]
        lines += [f"## {result['labels'][name]}", "", "| step | ms | / normal step | peak MB |", "|---|---|---|---|"]
        for variant, seconds in block["seconds"].items():
            base = block["seconds"]["opacus normal"] if variant.startswith("opacus") else normal
            peak = block["peak_mb"].get(variant)
            lines.append(f"| {variant} | {1e3 * seconds:.1f} | {seconds / base:.2f} | "
                         + (f"{peak:.1f}" if peak is not None else "-") + " |")
        lines.append("")
    lines += ["## Headline ratios", ""] + [f"    {line}" for line in result["ratio_lines"]]
    lines += ["", f"Machine: {result['machine']}", ""]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small models, two rounds (a few seconds)")
    parser.add_argument("--threads", default="1", help="BLAS / OpenMP / minigrad threads for every framework "
                        "(without it: the script runs at all cores and at one thread)")
    parser.add_argument("--out", default=None, help="results path without extension ('' writes nothing); "
                        "default results/bench_privacy, or results/bench_privacy_quick with --quick, "
                        "+ _1thread at one thread")
    args = parser.parse_args(argv)
    if args.out is None:
        args.out = os.path.join(RESULTS, ("bench_privacy_quick" if args.quick else "bench_privacy")
                                + results_suffix(THREADS))
    mg.set_num_threads(int(args.threads))
    cfg = QUICK if args.quick else FULL
    torch = load_torch_and_opacus()
    labels = {"mlp": f"MLP {'-'.join(map(str, cfg['mlp']))}, batch {cfg['mlp_batch']}, SGD momentum",
              "gpt": f"GPT vocab {cfg['vocab']}, block {cfg['block']}, {cfg['layers']} layers, {cfg['heads']} heads, "
                     f"d_model {cfg['d_model']}, batch {cfg['gpt_batch']}, AdamW"}
    result = {"config": cfg, "threads": args.threads, "labels": labels, "opacus": torch is not None,
              "mlp": bench("MLP", mlp_problem, opacus_mlp_steps, cfg, torch),
              "gpt": bench("GPT", gpt_problem, opacus_gpt_steps, cfg, torch)}
    ratio_lines = []
    for name in ("mlp", "gpt"):
        seconds, memory = result[name]["seconds"], result[name]["peak_mb"]
        label = "MLP" if name == "mlp" else "GPT"
        target = TARGET_MLP_GHOST if name == "mlp" else None
        ratio_lines.append(print_ratio(f"{label} DP-SGD step, ghost clipping", "DP step / normal step",
                                       seconds["dp ghost"] / seconds["normal"], target))
        ratio_lines.append(print_ratio(f"{label} DP-SGD step, materialised (hooks)", "DP step / normal step",
                                       seconds["dp hooks"] / seconds["normal"]))
        ratio_lines.append(print_ratio(f"{label} DP step peak memory, ghost", "ghost MB / hooks MB",
                                       memory["dp ghost"] / memory["dp hooks"]))
        if torch is not None:
            for mode in ("ghost", "hooks"):
                if f"opacus dp {mode}" in seconds:
                        ratio_lines.append(print_ratio(f"{label} DP-SGD step, {mode}", "minigrad / opacus",
                                                   seconds[f"dp {mode}"] / seconds[f"opacus dp {mode}"]))
    if torch is None:
        print("opacus (or torch) not installed: the Opacus rows are left out")
    result["ratio_lines"] = ratio_lines
    result["machine"] = machine_info(blas_threads=args.threads,
                                     opacus=__import__("opacus").__version__ if torch is not None else None)
    if args.out:
        write_results(args.out, result, report(result))
    return result


if __name__ == "__main__":
    main()
