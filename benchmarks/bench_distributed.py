"""Data-parallel training speed: one GPT training step on this machine's 2 cores, spent as
1 process x 2 threads or as 2 processes x 1 thread, minigrad (MPI) next to PyTorch DDP (gloo).

    python benchmarks/bench_distributed.py            # writes results/bench_distributed.md/.json
    python benchmarks/bench_distributed.py --quick    # a small GPT, a few steps: *_quick.*
    python benchmarks/bench_distributed.py --no-torch # minigrad only

The step is bench_transformer's: models.GPT(vocab 96, block 128, 4 layers, 4 heads,
d_model 256), forward, cross-entropy, backward, AdamW, on a global batch of 16 x 128
tokens. Layouts:

    1 x 2   one process, BLAS (and torch) on 2 threads, the whole batch; no DataParallel
    2 x 1   `mpiexec -n 2`, one thread each, half the batch each: dist.DataParallel
            (default 25 MB buckets, the first capped at 1 MB) or torch's
            DistributedDataParallel on the gloo backend (its defaults: the same bucket sizes)

Throughput is global tokens per second: 16 x 128 / the step time of the slowest rank.
Every layout runs as fresh processes, the layouts in turn (order flipped every round),
and the median over rounds of each run's median step is reported.

Communication, for the 2 x 1 runs: each run also times steps under no_sync() (the same
work, no gradient exchange) and a lone all-reduce of all the gradients in the step's
bucket sizes while both ranks are idle.

    overhead        = synced step - no_sync step       (all that averaging adds to a step:
                                                        for minigrad, copying gradients into
                                                        buckets and the exposed communication)
    exposed (minigrad) = how long the end of backward waited for the reductions still in
                         flight (DataParallel.buckets.last_wait_seconds)
    hidden fraction = 1 - exposed / lone all-reduce     (the part overlapped with backward)

PyTorch does not report its wait, so its hidden fraction uses the overhead instead of
the exposed time (a lower bound). One more minigrad 2 x 1 run uses small buckets
(--small-bucket-mb, default 2): more, smaller messages, started earlier.

PyTorch is optional (tests never import it). DDP's processes find each other over TCP
on 127.0.0.1; mpiexec only starts them. OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE, when set
on this machine, pin an older BLAS kernel for numpy: the workers run with both unset
(see bench_conv.py).
"""
import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from common import RESULTS, machine_info, print_ratio, write_results  # noqa: E402

FULL = dict(vocab=96, block=128, layers=4, heads=4, d_model=256, batch=16, warmup=2, repeats=5, rounds=3,
            comm_repeats=10)
QUICK = dict(vocab=96, block=32, layers=2, heads=4, d_model=64, batch=4, warmup=1, repeats=2, rounds=1,
             comm_repeats=3)
BLAS_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "MINIGRAD_NUM_THREADS")


# --------------------------------------------------------------------------- the workers
def set_threads(threads, torch=None):
    """Cap every pool at `threads` (the environment was set by the parent before the
    imports; minigrad's own setting exists once the kernel layer has one)."""
    import minigrad as mg
    if hasattr(mg, "set_num_threads"):
        mg.set_num_threads(threads)
    if torch is not None:
        torch.set_num_threads(threads)


def timed_steps(step, sync_modes, cfg, barrier, slowest):
    """Median step time of each mode (True: synced, False: no_sync), modes interleaved;
    each step starts together on every rank and counts as long as the slowest rank's."""
    for _ in range(cfg["warmup"]):
        for sync in sync_modes:
            step(sync)
    times = {sync: [] for sync in sync_modes}
    for _ in range(cfg["repeats"]):
        for sync in sync_modes:
            barrier()
            start = time.perf_counter()
            step(sync)
            times[sync].append(slowest(time.perf_counter() - start))
    return {("synced" if sync else "no_sync"): statistics.median(values) for sync, values in times.items()}


def minigrad_worker(cfg, threads, bucket_mb):
    import numpy as np
    import minigrad as mg
    import minigrad.distributed as dist
    from minigrad import functional as F
    from minigrad.models import GPT
    rank, world = dist.init()
    set_threads(threads)
    mg.manual_seed(0)
    model = GPT(cfg["vocab"], cfg["block"], cfg["layers"], cfg["heads"], cfg["d_model"])
    if world > 1:
        model = dist.DataParallel(model, bucket_mb=bucket_mb)
    optimizer = mg.optim.AdamW(model.parameters(), lr=1e-4)
    rng = np.random.default_rng(rank)
    local = cfg["batch"] // world
    ids = rng.integers(0, cfg["vocab"], size=(local, cfg["block"]))
    targets = mg.tensor(rng.integers(0, cfg["vocab"], size=(local, cfg["block"])))
    waits = []

    def step(sync):
        import contextlib
        context = model.no_sync() if (world > 1 and not sync) else contextlib.nullcontext()
        with context:
            loss = F.cross_entropy(model(ids), targets)
            optimizer.zero_grad()
            loss.backward()
        if world > 1 and sync:
            waits.append(model.buckets.last_wait_seconds)
        optimizer.step()

    def slowest(seconds):
        return dist.all_reduce(mg.tensor([seconds], dtype="float64"), "max").item() if world > 1 else seconds

    result = timed_steps(step, (True, False) if world > 1 else (True,), cfg, dist.barrier, slowest)
    if world > 1:
        sizes = [bucket.numel for bucket in model.buckets.buckets]
        flats = [mg.zeros(n) for n in sizes]
        lone = []
        for _ in range(cfg["comm_repeats"]):
            dist.barrier()
            start = time.perf_counter()
            for flat in flats:
                dist.all_reduce(flat)
            lone.append(slowest(time.perf_counter() - start))
        result.update(lone_all_reduce=statistics.median(lone), end_of_backward_wait=statistics.median(waits),
                      bucket_sizes_mb=[n * 4 / 2 ** 20 for n in sizes])
    result["params"] = sum(p.size for p in model.parameters())
    return rank, result


def torch_worker(cfg, threads, port):
    import numpy as np
    import torch
    import minigrad as mg
    import minigrad.distributed as dist
    from minigrad.models import GPT
    from bench_transformer import torch_gpt
    rank, world = dist.init()                      # mpiexec started us; gloo connects us
    set_threads(threads, torch)
    mg.manual_seed(0)
    model = torch_gpt(torch, GPT(cfg["vocab"], cfg["block"], cfg["layers"], cfg["heads"], cfg["d_model"]), cfg)
    tdist = None
    if world > 1:
        import torch.distributed as tdist
        tdist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
        model = torch.nn.parallel.DistributedDataParallel(model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    rng = np.random.default_rng(rank)
    local = cfg["batch"] // world
    ids = torch.from_numpy(rng.integers(0, cfg["vocab"], size=(local, cfg["block"])))
    targets = torch.from_numpy(rng.integers(0, cfg["vocab"], size=(local, cfg["block"])))

    def step(sync):
        import contextlib
        context = model.no_sync() if (world > 1 and not sync) else contextlib.nullcontext()
        with context:
            logits = model(ids)
            loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
            optimizer.zero_grad()
            loss.backward()
        optimizer.step()

    def slowest(seconds):
        if world == 1:
            return seconds
        value = torch.tensor([seconds], dtype=torch.float64)
        tdist.all_reduce(value, op=tdist.ReduceOp.MAX)
        return value.item()

    barrier = tdist.barrier if world > 1 else (lambda: None)
    result = timed_steps(step, (True, False) if world > 1 else (True,), cfg, barrier, slowest)
    count = sum(p.numel() for p in model.parameters())
    if world > 1:
        flat = torch.zeros(count)
        lone = []
        for _ in range(cfg["comm_repeats"]):
            tdist.barrier()
            start = time.perf_counter()
            tdist.all_reduce(flat)
            lone.append(slowest(time.perf_counter() - start))
        result["lone_all_reduce"] = statistics.median(lone)
        tdist.destroy_process_group()
    result["params"] = count
    return rank, result


def worker_main(args):
    cfg = json.loads(args.cfg)
    if args.worker == "minigrad":
        rank, result = minigrad_worker(cfg, args.threads, args.bucket_mb)
    else:
        rank, result = torch_worker(cfg, args.threads, args.port)
    if rank == 0:
        with open(args.result, "w") as handle:
            json.dump(result, handle)


# --------------------------------------------------------------------------- the parent
def worker_environment(threads):
    env = dict(os.environ)
    for variable in BLAS_VARIABLES:
        env[variable] = str(threads)
    env.pop("OPENBLAS_CORETYPE", None)
    env.pop("OPENBLAS_L2_SIZE", None)
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")          # torch's OpenMP workers do not spin
    root = os.path.dirname(HERE)
    env["PYTHONPATH"] = os.pathsep.join([root, HERE, env.get("PYTHONPATH", "")])
    return env


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def layout_name(layout):
    framework, processes, threads, bucket_mb = layout
    buckets = f", {bucket_mb:g} MB buckets" if bucket_mb and framework == "minigrad" else ""
    return f"{framework} {processes} x {threads}{buckets}"


def run_layout(framework, processes, threads, bucket_mb, cfg):
    """One layout's result; a PyTorch run on 2 processes that aborts is tried once more:
    such runs here have now and then ended in "terminate called without an active
    exception" (SIGABRT from PyTorch's C++ side, a thread destroyed while still joinable),
    and the next run of the same layout went through."""
    attempts = 2 if framework == "torch" and processes > 1 else 1
    for attempt in range(1, attempts + 1):
        try:
            return _run_layout_once(framework, processes, threads, bucket_mb, cfg)
        except SystemExit as failure:
            if attempt == attempts:
                raise
            print(f"{str(failure).splitlines()[0]} (last line: {str(failure).strip().splitlines()[-1]}); "
                  f"trying once more", flush=True)


def _run_layout_once(framework, processes, threads, bucket_mb, cfg):
    import minigrad.distributed as dist
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "result.json")
        argv = [os.path.abspath(__file__), "--worker", framework, "--threads", str(threads), "--cfg",
                json.dumps(cfg), "--result", path, "--bucket-mb", str(bucket_mb or 25), "--port", str(free_port())]
        if processes == 1:
            done = subprocess.run([sys.executable, *argv], env=worker_environment(threads), capture_output=True,
                                  text=True, timeout=900)
        else:
            done = dist.launch(argv, nprocs=processes, timeout=900, env=worker_environment(threads),
                               capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"{framework} {processes} x {threads} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
        with open(path) as handle:
            return json.load(handle)


def torch_available():
    done = subprocess.run([sys.executable, "-c", "import torch"], capture_output=True)
    return done.returncode == 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-torch", action="store_true")
    parser.add_argument("--bucket-mb", type=float, default=25, help="DataParallel's bucket size (default 25)")
    parser.add_argument("--small-bucket-mb", type=float, default=None,
                        help="an extra minigrad 2 x 1 run with buckets this small, to see the overlap "
                             "(default 2, --quick 0.1; 0: none)")
    parser.add_argument("--out", default=None, help="results path without extension ('' writes nothing)")
    parser.add_argument("--worker", choices=["minigrad", "torch"], help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--cfg", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker_main(args)
    import minigrad.distributed as dist
    if dist.find_mpiexec() is None:
        raise SystemExit('bench_distributed: no mpiexec; install MPI with pip install -e ".[distributed]"')
    cfg = QUICK if args.quick else FULL
    out = args.out if args.out is not None else os.path.join(RESULTS, "bench_distributed_quick" if args.quick
                                                            else "bench_distributed")
    frameworks = ["minigrad"] + ([] if args.no_torch or not torch_available() else ["torch"])
    # (framework, processes, threads, bucket MB); torch's DDP keeps its default buckets (25 MB)
    layouts = [(framework, processes, 2 // processes, args.bucket_mb if processes > 1 else None)
               for framework in frameworks for processes in (1, 2)]
    small = args.small_bucket_mb if args.small_bucket_mb is not None else (0.1 if args.quick else 2)
    if small:
        layouts.append(("minigrad", 2, 1, small))
    runs = {layout: [] for layout in layouts}
    load_at_start = os.getloadavg()
    for round_ in range(cfg["rounds"]):
        for layout in (layouts if round_ % 2 == 0 else layouts[::-1]):
            result = run_layout(*layout, cfg)
            runs[layout].append(result)
            print(f"round {round_ + 1}: {layout_name(layout)}: {result['synced'] * 1e3:.0f} ms/step", flush=True)
    result = summarise(cfg, runs, args.bucket_mb)
    result["machine"] = machine_info(load_average_at_start=load_at_start)
    report = markdown(result, args.quick)
    print(report)
    if out:
        write_results(out, result, report)
    for row in result["layouts"]:
        if row["torch_step_ms"] is not None:
            print_ratio(f"GPT step, {row['layout']}", "minigrad / torch", row["minigrad_step_ms"] / row["torch_step_ms"])
    mg_rows = {row["layout"]: row for row in result["layouts"]}
    print_ratio("GPT step, 2 processes x 1 thread vs 1 x 2", "minigrad 2x1 / 1x2",
                mg_rows["2 processes x 1 thread"]["minigrad_step_ms"] / mg_rows["1 process x 2 threads"]["minigrad_step_ms"])


def summarise(cfg, runs, bucket_mb):
    tokens = cfg["batch"] * cfg["block"]
    median = statistics.median
    layouts, communication = [], []
    for processes, name in ((1, "1 process x 2 threads"), (2, "2 processes x 1 thread")):
        row = {"layout": name}
        for framework in ("minigrad", "torch"):
            results = runs.get((framework, processes, 2 // processes, bucket_mb if processes > 1 else None))
            step = median(r["synced"] for r in results) if results else None
            row[f"{framework}_step_ms"] = step * 1e3 if step else None
            row[f"{framework}_tokens_per_s"] = tokens / step if step else None
        layouts.append(row)
    for layout, results in runs.items():
        framework, processes, _, buckets = layout
        if processes == 1:
            continue
        step, no_sync = median(r["synced"] for r in results), median(r["no_sync"] for r in results)
        lone = median(r["lone_all_reduce"] for r in results)
        overhead = step - no_sync
        entry = {"framework": framework, "bucket_mb": buckets if framework == "minigrad" else 25,
                 "synced_ms": step * 1e3, "no_sync_ms": no_sync * 1e3, "overhead_ms": overhead * 1e3,
                 "lone_all_reduce_ms": lone * 1e3, "tokens_per_s": tokens / step}
        exposed = overhead
        if framework == "minigrad":
            exposed = median(r["end_of_backward_wait"] for r in results)
            entry["end_of_backward_wait_ms"] = exposed * 1e3
            entry["bucket_sizes_mb"] = results[0]["bucket_sizes_mb"]
        entry["hidden_fraction"] = min(1.0, max(0.0, 1 - exposed / lone))
        communication.append(entry)
    params = next(iter(runs.values()))[0]["params"]
    return {"config": cfg, "tokens_per_step": tokens, "params": params, "bucket_mb": bucket_mb,
            "layouts": layouts, "communication": communication,
            "runs": {layout_name(layout): r for layout, r in runs.items()}}


def markdown(result, quick):
    cfg = result["config"]
    fmt = lambda v, spec: "-" if v is None else format(v, spec)      # noqa: E731
    lines = [f"# Data-parallel GPT training step (`python benchmarks/bench_distributed.py{' --quick' if quick else ''}`)",
             "",
             f"models.GPT(vocab {cfg['vocab']}, block {cfg['block']}, {cfg['layers']} layers, {cfg['heads']} heads, "
             f"d_model {cfg['d_model']}), {result['params']:,} parameters; global batch {cfg['batch']} x "
             f"{cfg['block']} = {result['tokens_per_step']} tokens per step; AdamW. 2 CPU cores. "
             f"Medians over {cfg['rounds']} rounds of each run's median of {cfg['repeats']} steps "
             f"(after {cfg['warmup']} warm-up steps); a step counts as long as its slowest rank.", "",
             "| layout | minigrad tokens/s | PyTorch tokens/s | minigrad step (ms) | PyTorch step (ms) | minigrad / PyTorch |",
             "|---|---|---|---|---|---|"]
    for row in result["layouts"]:
        ratio = (row["minigrad_step_ms"] / row["torch_step_ms"]) if row["torch_step_ms"] else None
        lines.append(f"| {row['layout']} | {fmt(row['minigrad_tokens_per_s'], '.0f')} | "
                     f"{fmt(row['torch_tokens_per_s'], '.0f')} | {fmt(row['minigrad_step_ms'], '.0f')} | "
                     f"{fmt(row['torch_step_ms'], '.0f')} | {fmt(ratio, '.2f')} |")
    lines += ["", "2 processes x 1 thread: minigrad's dist.DataParallel (MPI, mpich) and PyTorch's "
              "DistributedDataParallel (gloo).", "",
              "## Communication (2 processes)", "",
              "overhead = synced step - no_sync step; exposed = the wait at the end of backward for the "
              "reductions still in flight; lone all-reduce = every gradient, in the step's buckets, with both "
              "ranks idle; hidden fraction = 1 - exposed / lone (PyTorch: 1 - overhead / lone, a lower bound).", "",
              "| framework | buckets (MB) | tokens/s | synced step (ms) | no_sync step (ms) | overhead (ms) | lone all-reduce (ms) | exposed (ms) | hidden fraction |",
              "|---|---|---|---|---|---|---|---|---|"]
    for entry in result["communication"]:
        lines.append(f"| {entry['framework']} | {entry['bucket_mb']:g} | {entry['tokens_per_s']:.0f} | "
                     f"{entry['synced_ms']:.0f} | {entry['no_sync_ms']:.0f} | "
                     f"{entry['overhead_ms']:.1f} | {entry['lone_all_reduce_ms']:.1f} | "
                     f"{fmt(entry.get('end_of_backward_wait_ms'), '.1f')} | {entry['hidden_fraction']:.2f} |")
    lines.append("")
    for entry in result["communication"]:
        if entry["framework"] == "minigrad":
            sizes = ", ".join(f"{b:.2f}" for b in entry["bucket_sizes_mb"])
            lines.append(f"minigrad with bucket_mb={entry['bucket_mb']:g}: buckets of {sizes} MB, in the order sent.  ")
    lines += ["", "Only a 2-core machine was available: no table for 4 or 8 processes.", "",
              f"Machine: {result['machine']}", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
