"""Transformer speed: a GPT training step and multi-head attention, minigrad against
PyTorch side by side in one run, plus KV-cached generation against none.

    python benchmarks/bench_transformer.py            # writes results/bench_transformer.md/.json
    python benchmarks/bench_transformer.py --quick    # a few seconds, small shapes, *_quick.*
    python benchmarks/bench_transformer.py --profile  # also cProfile minigrad's step

(a) One training step of models.GPT(vocab 96, block 128, 4 layers, 4 heads, d_model
    256) on a batch of 16 x 128 tokens: forward, cross-entropy, backward, AdamW step.
    PyTorch runs the same architecture written here with torch.nn modules (pre-LN
    blocks, separate q/k/v/out Linear layers, F.scaled_dot_product_attention with
    is_causal, tanh GELU, tied output layer), loaded with minigrad's initial weights;
    the two first losses are compared before anything is timed.
(b) nn.MultiHeadAttention forward + backward at B=8, T=256, d=256, 8 heads, causal
    mask, against torch.nn.MultiheadAttention (batch_first, a boolean causal
    attn_mask, need_weights=False) with the same weights.
(c) models.GPT.generate of 256 new tokens from a one-token prompt, greedy, with the
    KV cache and without (the same tokens both ways; checked).

Timings are interleaved (minigrad, PyTorch, minigrad, ...; the order flips every
repeat) so that both see the same machine load; medians are reported. The floor is
the step's FLOPs divided by this machine's float32 matmul throughput (a large numpy
matmul, timed here): no framework can beat it on these cores, and the distance of
each framework from it says how much is overhead rather than arithmetic.

FLOPs of the GPT step: 6 * P_dense * B * T for the matrix products with weights
(2 per multiply-add forward, twice that backward: dL/dx and dL/dW), P_dense the
weights used in products (every Dense weight and the tied output matrix; embedding
lookups and norms are not counted), plus attention's QK^T and AV, 2 * 2 * B * T^2 * d
per layer forward, x3 for forward + backward (causal masking saves nothing in
either implementation here).

PyTorch is optional (a CPU build; tests never import it). Threads: --threads (default 1)
caps numpy's BLAS and torch's intra-op threads alike; OMP_WAIT_POLICY=PASSIVE is set before importing torch so that its
spinning OpenMP workers do not take the cores from numpy's BLAS in the next call.
"""
import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import RESULTS, limit_blas_threads, machine_info, print_ratio, results_suffix  # noqa: E402
from common import run_at_each_thread_count, write_results  # noqa: E402
from common import profile as profile_run  # noqa: E402

# no --threads: runs at all cores, at 2 (if fewer than the cores) and at one thread, then exits
run_at_each_thread_count(extra=(2,))
import numpy as np  # noqa: E402

FULL = dict(vocab=96, block=128, layers=4, heads=4, d_model=256, batch=16, step_repeats=10,
            mha_B=8, mha_T=256, mha_d=256, mha_heads=8, mha_repeats=15, new_tokens=256)
QUICK = dict(vocab=96, block=32, layers=2, heads=4, d_model=64, batch=4, step_repeats=3,
             mha_B=2, mha_T=64, mha_d=64, mha_heads=4, mha_repeats=3, new_tokens=48)
TARGET_STEP_RATIO, TARGET_MHA_RATIO, TARGET_CACHE_SPEEDUP = 1.3, 1.4, 5.0


def load_torch():
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        import torch
    except ImportError:
        return None
    return torch


def matmul_gflops(n, repeats=5):
    """Float32 matmul throughput of numpy on this machine: best of `repeats` n x n products."""
    a = np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)
    b = np.random.default_rng(1).standard_normal((n, n)).astype(np.float32)
    a @ b
    best = min(_time(lambda: a @ b) for _ in range(repeats))
    return 2 * n ** 3 / best / 1e9


def _time(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def interleaved(steps, repeats, warmup=2):
    """Median seconds of each named step, run in turn (order flipped every repeat)."""
    names = list(steps)
    for _ in range(warmup):
        for name in names:
            steps[name]()
    times = {name: [] for name in names}
    for repeat in range(repeats):
        for name in (names if repeat % 2 == 0 else names[::-1]):
            times[name].append(_time(steps[name]))
    return {name: statistics.median(values) for name, values in times.items()}


# ---------------------------------------------------------------- the GPT in PyTorch
def torch_gpt(torch, mg_model, cfg):
    """The same GPT in torch.nn modules, holding a copy of mg_model's weights."""
    nn, F = torch.nn, torch.nn.functional

    class Block(nn.Module):
        def __init__(self, d, heads):
            super().__init__()
            self.heads = heads
            self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
            self.q, self.k, self.v, self.o = (nn.Linear(d, d) for _ in range(4))
            self.fc1, self.fc2 = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)

        def forward(self, x):
            B, T, d = x.shape
            h = self.ln1(x)
            q, k, v = (p(h).view(B, T, self.heads, d // self.heads).transpose(1, 2)
                       for p in (self.q, self.k, self.v))
            a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            x = x + self.o(a.transpose(1, 2).reshape(B, T, d))
            return x + self.fc2(F.gelu(self.fc1(self.ln2(x)), approximate="tanh"))

    class GPT(nn.Module):
        def __init__(self):
            super().__init__()
            self.tok = nn.Embedding(cfg["vocab"], cfg["d_model"])
            self.pos = nn.Embedding(cfg["block"], cfg["d_model"])
            self.blocks = nn.ModuleList(Block(cfg["d_model"], cfg["heads"]) for _ in range(cfg["layers"]))
            self.ln_f = nn.LayerNorm(cfg["d_model"])

        def forward(self, idx):
            x = self.tok(idx) + self.pos.weight[:idx.shape[1]]
            for block in self.blocks:
                x = block(x)
            return self.ln_f(x) @ self.tok.weight.T

    model = GPT()
    t = lambda p: torch.from_numpy(p.numpy().copy())               # noqa: E731
    with torch.no_grad():
        model.tok.weight.copy_(t(mg_model.tok_emb.weight))
        model.pos.weight.copy_(t(mg_model.pos_emb.weight))
        for ours, theirs in zip(mg_model.blocks, model.blocks):
            attn, ffn = ours.self_attn, ours.feed_forward
            pairs = [(attn.q_proj, theirs.q), (attn.k_proj, theirs.k), (attn.v_proj, theirs.v),
                     (attn.out_proj, theirs.o), (ffn.linear1, theirs.fc1), (ffn.linear2, theirs.fc2)]
            for dense, linear in pairs:
                linear.weight.copy_(t(dense.weight).T)
                linear.bias.copy_(t(dense.bias))
            for norm, torch_norm in ((ours.norm1, theirs.ln1), (ours.norm2, theirs.ln2)):
                torch_norm.weight.copy_(t(norm.weight))
                torch_norm.bias.copy_(t(norm.bias))
        model.ln_f.weight.copy_(t(mg_model.ln_f.weight))
        model.ln_f.bias.copy_(t(mg_model.ln_f.bias))
    return model


def dense_parameters(model):
    """Weights that enter matrix products: every Dense weight, plus the tied output matrix."""
    from minigrad.nn import Dense
    count = sum(m.weight.data.size for m in model.modules() if isinstance(m, Dense))
    return count + model.tok_emb.weight.data.size


def bench_gpt_step(mg, torch, cfg, profile):
    from minigrad import functional as F
    from minigrad.models import GPT
    mg.manual_seed(0)
    model = GPT(cfg["vocab"], cfg["block"], cfg["layers"], cfg["heads"], cfg["d_model"])
    rng = np.random.default_rng(0)
    B, T = cfg["batch"], cfg["block"]
    ids = rng.integers(0, cfg["vocab"], size=(B, T))
    targets = rng.integers(0, cfg["vocab"], size=(B, T))
    torch_model = torch_gpt(torch, model, cfg) if torch is not None else None
    optimizer = mg.optim.AdamW(model.parameters(), lr=1e-4)
    target_tensor = mg.tensor(targets)

    def minigrad_step():
        logits = model(ids)
        loss = F.cross_entropy(logits, target_tensor)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.item()

    steps = {"minigrad": minigrad_step}
    check = None
    if torch is not None:
        torch_optimizer = torch.optim.AdamW(torch_model.parameters(), lr=1e-4)
        ids_t, targets_t = torch.from_numpy(ids), torch.from_numpy(targets)

        def torch_step():
            logits = torch_model(ids_t)
            loss = torch.nn.functional.cross_entropy(logits.reshape(B * T, -1), targets_t.reshape(-1))
            torch_optimizer.zero_grad()
            loss.backward()
            torch_optimizer.step()
            return loss.item()

        first_mg, first_torch = minigrad_step(), torch_step()
        assert abs(first_mg - first_torch) < 1e-4 * abs(first_torch), (first_mg, first_torch)
        check = {"first loss minigrad": first_mg, "first loss torch": first_torch}
        steps["torch"] = torch_step
    medians = interleaved(steps, cfg["step_repeats"])
    p_dense = dense_parameters(model)
    flops = 6 * p_dense * B * T + 3 * cfg["layers"] * 2 * 2 * B * T * T * cfg["d_model"]
    hot = None
    if profile:
        hot = profile_run(minigrad_step, 3, top=15)
    return {"median_s": medians, "flops": flops, "dense_params": p_dense,
            "params": model.num_parameters(), "check": check, "profile": hot}


def bench_mha(mg, torch, cfg):
    from minigrad import nn
    B, T, d, heads = cfg["mha_B"], cfg["mha_T"], cfg["mha_d"], cfg["mha_heads"]
    mg.manual_seed(1)
    layer = nn.MultiHeadAttention(d, heads)
    rng = np.random.default_rng(1)
    x_host = rng.standard_normal((B, T, d)).astype(np.float32)
    g_host = rng.standard_normal((B, T, d)).astype(np.float32)
    mask = nn.causal_mask(T)
    g = mg.tensor(g_host)

    def minigrad_step():
        x = mg.tensor(x_host, requires_grad=True)
        layer.zero_grad()
        out = layer(x, mask=mask)
        out.backward(g)
        return out, x

    steps = {"minigrad": minigrad_step}
    if torch is not None:
        mha = torch.nn.MultiheadAttention(d, heads, batch_first=True)
        with torch.no_grad():
            w = lambda dense: torch.from_numpy(dense.weight.numpy().T.copy())   # noqa: E731
            mha.in_proj_weight.copy_(torch.cat([w(layer.q_proj), w(layer.k_proj), w(layer.v_proj)]))
            mha.in_proj_bias.copy_(torch.from_numpy(np.concatenate(
                [layer.q_proj.bias.numpy(), layer.k_proj.bias.numpy(), layer.v_proj.bias.numpy()])))
            mha.out_proj.weight.copy_(w(layer.out_proj))
            mha.out_proj.bias.copy_(torch.from_numpy(layer.out_proj.bias.numpy()))
        blocked = torch.from_numpy(~np.tril(np.ones((T, T), dtype=bool)))   # torch: True = may NOT attend
        g_t = torch.from_numpy(g_host)

        def torch_step():
            x = torch.from_numpy(x_host).requires_grad_(True)
            mha.zero_grad()
            out, _ = mha(x, x, x, attn_mask=blocked, need_weights=False)
            out.backward(g_t)
            return out, x

        (out_mg, x_mg), (out_t, x_t) = minigrad_step(), torch_step()
        np.testing.assert_allclose(out_mg.numpy(), out_t.detach().numpy(), rtol=1e-3, atol=1e-4)
        np.testing.assert_allclose(x_mg.grad.numpy(), x_t.grad.numpy(), rtol=1e-3, atol=1e-3)
        steps["torch"] = torch_step
    return {"median_s": interleaved(steps, cfg["mha_repeats"])}


def peak_rss_mib(fn):
    """Peak resident memory (MiB) that fn() adds above what the process holds when it starts:
    the kernel's high-water mark (VmHWM), reset first through /proc/self/clear_refs. Seen the
    same way for every framework (tracemalloc would miss PyTorch's allocations). None where
    /proc does not offer it."""
    def status(field):
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith(field):
                    return int(line.split()[1]) / 1024
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
    except OSError:
        return None
    before = status("VmRSS:")
    fn()
    return status("VmHWM:") - before


def bench_attention_memory(lengths, torch_available, heads=8, d_head=64):
    """Peak memory of causal attention forward + backward, q, k, v (1, heads, T, d_head) float32:
    minigrad's fused op, minigrad with the weights kept (return_weights=True: what every call
    did before the fused op) and PyTorch's F.scaled_dot_product_attention(is_causal=True).
    Each number comes from a fresh interpreter (attention_memory_child), so that no memory
    freed by an earlier case (kept by malloc or PyTorch's allocator) hides a peak."""
    import subprocess
    kinds = ["minigrad fused", "minigrad, weights kept"] + (["torch"] if torch_available else [])
    rows = []
    for T in lengths:
        row = {"T": T}
        for kind in kinds:
            done = subprocess.run([sys.executable, os.path.abspath(__file__), "--threads", "1",
                                   "--memory-child", kind, str(T), str(heads), str(d_head)],
                                  capture_output=True, text=True)
            value = done.stdout.strip().splitlines()[-1] if done.returncode == 0 and done.stdout.strip() else "None"
            row[kind] = None if value == "None" else float(value)
        row["one (T, T) float32 score matrix per head, all heads"] = heads * T * T * 4 / 2 ** 20
        rows.append(row)
    return rows


def attention_memory_child(kind, T, heads, d_head):
    """Print the peak MiB one causal attention forward + backward adds (see bench_attention_memory)."""
    def case(size):
        rng = np.random.default_rng(size)
        return [rng.standard_normal((1, heads, size, d_head)).astype(np.float32) for _ in range(4)]
    _attention_call(kind, case(8))()      # a small call first: code loaded on first use is not counted
    print(peak_rss_mib(_attention_call(kind, case(T))))


def _attention_call(kind, host):
    """A function running one causal attention forward + backward on `host` (q, k, v, dL/dO)."""
    if kind == "torch":
        torch = load_torch()
        inputs = [torch.from_numpy(a).requires_grad_(True) for a in host[:3]]
        grad = torch.from_numpy(host[3])

        def run():
            torch.nn.functional.scaled_dot_product_attention(*inputs, is_causal=True).backward(grad)
    else:
        import minigrad as mg
        from minigrad import functional as F
        inputs = [mg.tensor(a, requires_grad=True) for a in host[:3]]
        grad = mg.tensor(host[3])
        keep = kind != "minigrad fused"

        def run():
            out = F.scaled_dot_product_attention(*inputs, is_causal=True, return_weights=keep)
            (out[0] if keep else out).backward(grad)
    return run


def bench_generation(mg, cfg):
    from minigrad.models import GPT
    mg.manual_seed(0)
    model = GPT(cfg["vocab"], cfg["block"], cfg["layers"], cfg["heads"], cfg["d_model"])
    prompt = np.array([[1]])
    n = cfg["new_tokens"]
    model.generate(prompt, 4, temperature=0)                         # warm-up
    start = time.perf_counter()
    cached = model.generate(prompt, n, temperature=0, use_cache=True)
    with_cache = time.perf_counter() - start
    start = time.perf_counter()
    uncached = model.generate(prompt, n, temperature=0, use_cache=False)
    without = time.perf_counter() - start
    return {"with_cache_s": with_cache, "without_cache_s": without, "speedup": without / with_cache,
            "same_tokens": bool(np.array_equal(cached.numpy(), uncached.numpy())), "new_tokens": n}


def report(result):
    cfg, step, mha, gen = result["config"], result["gpt_step"], result["mha"], result["generation"]
    ms = lambda s: f"{s * 1e3:.1f}"                                   # noqa: E731
    floor = step["flops"] / (result["matmul_gflops"] * 1e9)
    lines = [f"# Transformer speed, minigrad vs PyTorch (`python benchmarks/bench_transformer.py"
             f"{' --quick' if result['quick'] else ''}`)", "",
             f"Numpy float32 matmul throughput on this machine ({result['matmul_n']}^2 product, best of 5): "
             f"**{result['matmul_gflops']:.1f} GFLOP/s**.", "",
             "## (a) GPT training step", "",
             f"models.GPT(vocab {cfg['vocab']}, block {cfg['block']}, {cfg['layers']} layers, {cfg['heads']} "
             f"heads, d_model {cfg['d_model']}), {step['params']:,} parameters ({step['dense_params']:,} in "
             f"matrix products); batch {cfg['batch']} x {cfg['block']} tokens; forward, cross-entropy, "
             f"backward, AdamW step. Medians of {cfg['step_repeats']} interleaved repeats after 2 warm-ups.", "",
             f"FLOPs per step: {step['flops'] / 1e9:.2f} GFLOP -> floor at the measured matmul rate: "
             f"**{ms(floor)} ms**.", "",
             "| framework | median step (ms) | x floor |", "|---|---|---|"]
    for name, seconds in step["median_s"].items():
        lines.append(f"| {name} | {ms(seconds)} | {seconds / floor:.2f} |")
    lines.append("")
    if "torch" in step["median_s"]:
        ratio = result["gpt_step_ratio"]
        lines.append(f"**minigrad / PyTorch = {ratio:.2f}x** (target <= {TARGET_STEP_RATIO}x: "
                     f"{'met' if ratio <= TARGET_STEP_RATIO else 'missed'}). First losses agree: {step['check']}.")
    else:
        lines.append("PyTorch is not installed: no ratio.")
    lines += ["", "## (b) MultiHeadAttention forward + backward", "",
              f"B={cfg['mha_B']}, T={cfg['mha_T']}, d_model={cfg['mha_d']}, {cfg['mha_heads']} heads, causal "
              f"mask, input requiring grad; PyTorch: nn.MultiheadAttention(batch_first=True, "
              f"need_weights=False), same weights, outputs and dL/dx compared first. "
              f"Medians of {cfg['mha_repeats']} interleaved repeats.", "",
              "| framework | median (ms) |", "|---|---|"]
    for name, seconds in mha["median_s"].items():
        lines.append(f"| {name} | {ms(seconds)} |")
    if "torch" in mha["median_s"]:
        lines += ["", f"**minigrad / PyTorch = {result['mha_ratio']:.2f}x**"]
    lines += ["", "## (c) Generation with the KV cache", "",
              f"The step's model (untrained), {gen['new_tokens']} new tokens from a one-token prompt, greedy; "
              f"the context is cropped to block_size // 2 when full (see GPT.generate).", "",
              f"with cache {gen['with_cache_s']:.2f} s, without {gen['without_cache_s']:.2f} s: "
              f"**{gen['speedup']:.1f}x faster** (target >= {TARGET_CACHE_SPEEDUP}x: "
              f"{'met' if gen['speedup'] >= TARGET_CACHE_SPEEDUP else 'missed'}); same tokens: {gen['same_tokens']}.",
              ""]
    if result.get("attention_memory"):
        memory = result["attention_memory"]
        columns = [key for key in memory[0] if key != "T"]
        lines += ["## (d) Peak memory of causal attention forward + backward", "",
                  "q, k, v (1, 8 heads, T, 64) float32; the peak resident memory one call adds (MiB: "
                  "the kernel's high-water mark, reset once the inputs exist, in a fresh process per "
                  "number); the last column is the size of one set of (T, T) weights for all heads.", "",
                  "| T | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
        for row in memory:
            lines.append(f"| {row['T']} | " + " | ".join("-" if row[c] is None else f"{row[c]:.0f}"
                                                        for c in columns) + " |")
        lines.append("")
    lines += [f"Machine: {result['machine']}"]
    if step.get("profile"):
        lines += ["", "## Where minigrad's step spends its time (cProfile, 3 steps, by own time)", "",
                  "```", step["profile"].strip(), "```"]
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small shapes, a few seconds")
    parser.add_argument("--profile", action="store_true", help="cProfile minigrad's GPT step "
                        "(always done in a full run that misses the step target)")
    parser.add_argument("--threads", type=int, default=1, help="threads for minigrad's kernels and BLAS and "
                        "torch's intra-op threads (0: all cores); without it the script runs itself at all "
                        "cores, 2 and 1 thread")
    parser.add_argument("--no-torch", action="store_true", help="time minigrad only")
    parser.add_argument("--memory-child", nargs=4, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--out", default=None, help="results path without extension ('' writes nothing)")
    args = parser.parse_args()
    if args.memory_child:
        kind, *sizes = args.memory_child
        return attention_memory_child(kind, *map(int, sizes))
    cfg = QUICK if args.quick else FULL
    if args.out is None:
        args.out = os.path.join(RESULTS, ("bench_transformer_quick" if args.quick else "bench_transformer")
                                + results_suffix(args.threads))

    torch = None if args.no_torch else load_torch()
    threads = limit_blas_threads(args.threads)
    if torch is not None and args.threads > 0:
        torch.set_num_threads(args.threads)
    import minigrad as mg
    if args.threads > 0:
        mg.set_num_threads(args.threads)

    matmul_n = 512 if args.quick else 2048
    result = {"quick": args.quick, "config": cfg, "matmul_n": matmul_n, "matmul_gflops": matmul_gflops(matmul_n)}
    result["gpt_step"] = bench_gpt_step(mg, torch, cfg, profile=args.profile)
    if torch is not None:
        result["gpt_step_ratio"] = result["gpt_step"]["median_s"]["minigrad"] / result["gpt_step"]["median_s"]["torch"]
        if not args.quick and not args.profile and result["gpt_step_ratio"] > TARGET_STEP_RATIO:
            result["gpt_step"] = {**result["gpt_step"], "profile": bench_gpt_step(mg, None, dict(cfg, step_repeats=1),
                                                                                  profile=True)["profile"]}
    result["mha"] = bench_mha(mg, torch, cfg)
    if torch is not None:
        result["mha_ratio"] = result["mha"]["median_s"]["minigrad"] / result["mha"]["median_s"]["torch"]
    result["generation"] = bench_generation(mg, cfg)
    if results_suffix(args.threads) == "":            # once, in the run at the default threads
        result["attention_memory"] = bench_attention_memory((64, 128) if args.quick else (256, 512, 1024, 2048),
                                                            torch is not None)
    result["machine"] = machine_info(blas_threads=threads, torch=torch.__version__ if torch is not None else None,
                                     torch_threads=torch.get_num_threads() if torch is not None else None)
    markdown = report(result)
    print(markdown)
    if torch is not None:
        print_ratio(f"GPT step (4 layers, d {cfg['d_model']}, T {cfg['block']}, batch {cfg['batch']}), AdamW",
                    "minigrad / torch", result["gpt_step_ratio"], TARGET_STEP_RATIO)
        print_ratio(f"causal attention fwd+bwd (B {cfg['mha_B']}, T {cfg['mha_T']}, d {cfg['mha_d']}, "
                    f"{cfg['mha_heads']} heads)", "minigrad / torch", result["mha_ratio"], TARGET_MHA_RATIO)
    if args.out:
        write_results(args.out, result, markdown)
    return result


if __name__ == "__main__":
    main()
