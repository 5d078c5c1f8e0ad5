"""Lesson 14: data parallelism: one model trained by several processes at once, over MPI.

What you will learn
  * why it works: with equal shards, the mean of the shards' gradients IS the
    gradient of the whole batch (the loss is a mean, and so is its gradient);
    shown numerically, and why unequal shards would need weights;
  * the ring all-reduce: how N processes add up their gradients so that every one
    gets the sum while each sends only 2 (N-1)/N times the gradient's size, however
    large N is; simulated here in one process, message by message;
  * the real thing: this lesson starts itself twice with `mpiexec -n 2`;
    dist.DataParallel copies rank 0's weights to rank 1, each rank trains on its
    half of every batch (dist.DistributedSampler), gradients are averaged in
    buckets while backward still runs, and both processes end with the weights one
    process reaches on the whole batch; rank 0 writes the checkpoint, both read it;
  * gradient accumulation: the one-process version of the same idea (several
    small backward passes add up to one big batch's gradient), and no_sync(),
    which is how DataParallel accumulates without talking;
  * when a model no longer fits one device: tensor (model) and pipeline
    parallelism, with GPT-2-sized numbers (lesson 13 counts the parameters).

Read alongside
  minigrad/distributed/__init__.py      the overview; world.py: ranks, MPI, abort on error
  minigrad/distributed/collectives.py   all_reduce, broadcast, all_gather on MPI buffers
  minigrad/distributed/buckets.py       gradient buckets, started from post-accumulate-grad hooks
  minigrad/distributed/data_parallel.py DataParallel, no_sync, the checkpoint pattern
  minigrad/distributed/sampler.py       DistributedSampler; minigrad/data.py DataLoader(sampler=)
  minigrad/autograd.py                  backward() calls each leaf's hooks when its gradient is complete

Run:  python lessons/14_data_parallel.py [--quick] [--out DIR]
(needs MPI: pip install -e ".[distributed]"; the lesson launches mpiexec itself.)
Writes ring_allreduce.png and data_parallel.png into the output folder.
"""
import argparse
import os
import sys
import time

import matplotlib
matplotlib.use("Agg")                    # write PNG files, never open a window
import matplotlib.pyplot as plt
import numpy as np

import minigrad as mg
import minigrad.distributed as dist
import minigrad.functional as F
import minigrad.nn as nn
from minigrad import optim
from minigrad.data import DataLoader
from minigrad.datasets import make_spirals

parser = argparse.ArgumentParser(description="Lesson 14: data-parallel training over MPI")
parser.add_argument("--quick", action="store_true", help="a run of a few seconds (used by the tests)")
parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                  "output", "14_data_parallel"),
                    help="folder for the pictures and files this lesson writes")
parser.add_argument("--worker", action="store_true", help="(internal) run as one rank under mpiexec")
args = parser.parse_args()
os.makedirs(args.out, exist_ok=True)
np.set_printoptions(precision=4, suppress=True, linewidth=110)

WORLD = 2                                   # processes in the real run
GLOBAL_BATCH = 64                           # examples per step, over all processes
EPOCHS = 3 if args.quick else 40
X, y = make_spirals(n=256, classes=3, noise=0.15, seed=0)


def make_model(seed):
    mg.manual_seed(seed)
    return nn.MLP([2, 32, 32, 3], activation="tanh")


def make_optimizer(model):
    return optim.SGD(model.parameters(), lr=0.3, momentum=0.9)


def rank_loader(rank, world):
    """Rank `rank`'s batches: its shard of the data (a fresh permutation each epoch), in
    batches of GLOBAL_BATCH / world; returns (sampler, loader)."""
    sampler = dist.DistributedSampler(len(X), shuffle=True, seed=0, num_replicas=world, rank=rank)
    return sampler, DataLoader((X, y), batch_size=GLOBAL_BATCH // world, sampler=sampler)


def step(model, optimizer, xb, yb):
    loss = F.cross_entropy(model(mg.tensor(xb)), mg.tensor(yb))
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


def gradients(model, xb, yb, scale=1.0):
    """d(scale * mean loss over xb)/d(parameters), as numpy arrays."""
    model.zero_grad()
    (F.cross_entropy(model(mg.tensor(xb)), mg.tensor(yb)) * scale).backward()
    return [p.grad.numpy().copy() for p in model.parameters()]


def largest_difference(a, b):
    return max(float(np.abs(u - v).max()) for u, v in zip(a, b))


# =========================================================================== one rank
if args.worker:
    # Everything below runs in each of the mpiexec processes; rank 0 reports through files.
    rank, world = dist.init()
    # rank 1 starts from other weights: DataParallel copies rank 0's. Buckets of 4 KB (the default
    # is 25 MB) so that even this small model's gradients travel in several, the first started
    # while backward is still computing the others.
    model = dist.DataParallel(make_model(seed=rank), bucket_mb=0.004)
    optimizer = make_optimizer(model)
    sampler, loader = rank_loader(rank, world)
    # no_sync: two half-size backwards on each rank, the first without communication
    xb, yb = next(iter(loader))
    model.zero_grad()
    with model.no_sync():
        (F.cross_entropy(model(mg.tensor(xb[:16])), mg.tensor(yb[:16])) * 0.5).backward()
    (F.cross_entropy(model(mg.tensor(xb[16:])), mg.tensor(yb[16:])) * 0.5).backward()
    accumulated = [p.grad.numpy().copy() for p in model.parameters()]
    losses, started = [], time.perf_counter()
    for epoch in range(EPOCHS):
        sampler.set_epoch(epoch)                            # a new permutation, the same on every rank
        for xb, yb in loader:
            losses.append(step(model, optimizer, xb, yb))
    seconds = time.perf_counter() - started
    # the checkpoint pattern: one writer, everyone reads
    path = os.path.join(args.out, "checkpoint.safetensors")
    if rank == 0:
        mg.save(model.state_dict(), path)
    dist.barrier()
    restored = make_model(seed=100 + rank)
    restored.load_state_dict(mg.load(path))
    assert all(np.array_equal(a.numpy(), b.numpy()) for a, b in zip(restored.parameters(), model.parameters()))
    np.savez(os.path.join(args.out, f"rank{rank}.npz"), losses=np.array(losses), seconds=seconds,
             shard=np.array(list(sampler)), buckets=len(model.buckets.buckets),
             **{f"param{i}": p.numpy() for i, p in enumerate(model.parameters())},
             **{f"accumulated{i}": g for i, g in enumerate(accumulated)})
    sys.exit(0)


def section(title):
    print(f"\n=== {title} " + "=" * max(0, 70 - len(title)))


# ---------------------------------------------------------------------------
section("1. Why it works: the mean of the shards' gradients is the batch's gradient")
model = make_model(seed=0)
batch_x, batch_y = X[:GLOBAL_BATCH], y[:GLOBAL_BATCH]
full = gradients(model, batch_x, batch_y)
for shards in (2, 4, 8):
    parts = [gradients(model, sx, sy) for sx, sy in zip(np.split(batch_x, shards), np.split(batch_y, shards))]
    mean = [np.mean(list(same_param), axis=0) for same_param in zip(*parts)]
    difference = largest_difference(mean, full)
    print(f"{shards} shards of {GLOBAL_BATCH // shards}: largest |mean of shard gradients - batch gradient| "
          f"= {difference:.1e}")
    assert difference < 1e-6
print("L = (1/B) sum_i l_i = (1/N) sum_shards [(N/B) sum_{i in shard} l_i]: a mean of shard means,\n"
      "and the gradient of a mean is the mean of the gradients.")
# Unequal shards: 40 and 24 examples. The plain mean over-weights the small shard.
big, small = gradients(model, batch_x[:40], batch_y[:40]), gradients(model, batch_x[40:], batch_y[40:])
plain = [(a + b) / 2 for a, b in zip(big, small)]
weighted = [(40 * a + 24 * b) / 64 for a, b in zip(big, small)]
plain_error, weighted_error = largest_difference(plain, full), largest_difference(weighted, full)
print(f"unequal shards 40 + 24: plain mean off by {plain_error:.1e}, size-weighted mean off by {weighted_error:.1e}")
assert plain_error > 1e-4 and weighted_error < 1e-6
print("so DistributedSampler gives every rank the same number of rows (it pads with a few repeats).")

# ---------------------------------------------------------------------------
section("2. The ring all-reduce, simulated in one process")


def ring_all_reduce(vectors):
    """Sum N vectors so that all N holders end with the sum, passing chunks around a ring.

    Each vector is cut into N chunks. Reduce-scatter, N-1 rounds: in round s, rank r
    sends chunk (r - s) mod N to rank r+1, which adds it to its own copy; afterwards
    rank r holds the complete sum of chunk (r + 1) mod N. All-gather, N-1 rounds: the
    complete chunks travel around the ring once more, overwriting. Returns the
    results and the number of values each rank sent."""
    n = len(vectors)
    chunks = [np.array_split(v.astype(np.float64), n) for v in vectors]
    sent = [0] * n
    for phase in ("reduce-scatter", "all-gather"):
        for s in range(n - 1):
            messages = []                                  # all ranks send at once, then receive
            for r in range(n):
                index = (r - s + (1 if phase == "all-gather" else 0)) % n
                messages.append(((r + 1) % n, index, chunks[r][index].copy()))
                sent[r] += chunks[r][index].size
            for to, index, values in messages:
                if phase == "reduce-scatter":
                    chunks[to][index] += values
                else:
                    chunks[to][index] = values
    return [np.concatenate(c) for c in chunks], sent


rng = np.random.default_rng(0)
size = 1200
rows = []
for n in (2, 4, 8, 16):
    vectors = [rng.standard_normal(size) for _ in range(n)]
    results, sent = ring_all_reduce(vectors)
    total = np.sum(vectors, axis=0)
    assert all(np.allclose(r, total) for r in results)
    assert all(count == 2 * (n - 1) * size // n for count in sent)
    rows.append((n, sent[0] / size))
    print(f"N = {n:2d}: every rank holds the sum; each sent {sent[0]:5d} values = {sent[0] / size:.3f} x the "
          f"vector (2(N-1)/N = {2 * (n - 1) / n:.3f}); through one root it would be {n - 1} x")
print("The ring's traffic per rank stays below 2x the gradient's size for any N, so adding processes\n"
      "does not make each one's communication grow: why all-reduce scales (NCCL uses this ring; MPI\n"
      "libraries use it or another reduce-scatter + all-gather for large messages). Its latency grows\n"
      "with the 2(N-1) rounds, which is why small gradients are packed into buckets.")
figure, axis = plt.subplots(figsize=(6, 3.6), constrained_layout=True)
ns = np.arange(2, 65)
axis.plot(ns, 2 * (ns - 1) / ns, label="ring: 2(N-1)/N")
axis.plot(ns, ns - 1, label="via one root: N-1 (at the root)")
axis.scatter([n for n, _ in rows], [r for _, r in rows], color="k", zorder=3, label="simulated above")
axis.set_yscale("log"); axis.set_xlabel("processes N"); axis.set_ylabel("values sent / gradient size")
axis.set_title("all-reduce traffic per process"); axis.legend()
figure.savefig(os.path.join(args.out, "ring_allreduce.png"), dpi=100)
plt.close(figure)

# ---------------------------------------------------------------------------
section(f"3. The real run: mpiexec -n {WORLD}, DataParallel, half of each batch per process")
one_model = make_model(seed=0)
one_optimizer = make_optimizer(one_model)
loaders = [rank_loader(r, WORLD) for r in range(WORLD)]
one_losses, started = [], time.perf_counter()
for epoch in range(EPOCHS):
    for sampler, _ in loaders:
        sampler.set_epoch(epoch)
    for batches in zip(*(loader for _, loader in loaders)):
        # one process sees the union of what the ranks see at this step
        one_losses.append(step(one_model, one_optimizer, np.concatenate([b[0] for b in batches]),
                               np.concatenate([b[1] for b in batches])))
one_seconds = time.perf_counter() - started
one_params = [p.numpy() for p in one_model.parameters()]
print(f"one process, global batch {GLOBAL_BATCH}: {len(one_losses)} steps in {one_seconds:.2f} s, "
      f"first loss {one_losses[0]:.4f}   last loss {one_losses[-1]:.4f}")
assert np.mean(one_losses[-4:]) < np.mean(one_losses[:4]), "training should reduce the loss"

if dist.find_mpiexec() is None:
    print('mpiexec was not found, so the two-process run is skipped; install MPI with\n'
          '    pip install -e ".[distributed]"      (mpi4py and the mpich wheel, which brings mpiexec)')
    ranks = None
else:
    argv = [os.path.abspath(__file__), "--worker", "--out", args.out] + (["--quick"] if args.quick else [])
    environment = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    started = time.perf_counter()
    done = dist.launch(argv, nprocs=WORLD, timeout=300, capture_output=True, text=True, env=environment)
    job_seconds = time.perf_counter() - started
    assert done.returncode == 0, f"the mpiexec job failed:\n{done.stdout}\n{done.stderr}"
    ranks = []
    for r in range(WORLD):
        with np.load(os.path.join(args.out, f"rank{r}.npz")) as data:
            ranks.append({key: data[key] for key in data.files})
    print(f"$ mpiexec -n {WORLD} python lessons/14_data_parallel.py --worker   ({job_seconds:.1f} s with start-up)")
    shards = [set(rank["shard"].tolist()) for rank in ranks]
    assert not shards[0] & shards[1] and shards[0] | shards[1] == set(range(len(X)))
    print(f"last epoch's shards: rank 0 has {len(shards[0])} rows, rank 1 has {len(shards[1])}, "
          f"disjoint, together all {len(X)}")
    print(f"each rank trained {len(ranks[0]['losses'])} steps on {GLOBAL_BATCH // WORLD} examples per step "
          f"in {float(ranks[0]['seconds']):.2f} s; gradients went in {int(ranks[0]['buckets'])} bucket(s)")
    rank_params = [[rank[f"param{i}"] for i in range(len(one_params))] for rank in ranks]
    assert all(np.array_equal(a, b) for a, b in zip(*rank_params))
    print("rank 0's and rank 1's weights are identical, bit for bit (the same averaged gradient, the same step)")
    difference = largest_difference(rank_params[0], one_params)
    print(f"largest |2-process weight - 1-process weight| after {len(one_losses)} steps: {difference:.1e} "
          f"(float32 rounding: the sums are added in another order)")
    assert difference < 1e-4
    mean_losses = (ranks[0]["losses"] + ranks[1]["losses"]) / 2
    assert np.allclose(mean_losses, one_losses, rtol=1e-4, atol=1e-5)
    print(f"the mean of the two ranks' losses follows the one-process loss: first {mean_losses[0]:.4f}, "
          f"last {mean_losses[-1]:.4f}")
    print("rank 0 saved the checkpoint (mg.save), a barrier, then both ranks loaded it: same weights on both")
    print(f"time: {float(ranks[0]['seconds']):.2f} s for 2 processes x {GLOBAL_BATCH // WORLD} examples, "
          f"{one_seconds:.2f} s for one process x {GLOBAL_BATCH}. Which is faster depends on how much arithmetic\n"
          f"a step has per byte sent: this model is tiny; benchmarks/bench_distributed.py times a GPT step.")
    figure, axis = plt.subplots(figsize=(6, 3.6), constrained_layout=True)
    axis.plot(one_losses, label=f"1 process, batch {GLOBAL_BATCH}", linewidth=3, alpha=0.5)
    axis.plot(mean_losses, "--", label=f"{WORLD} processes x {GLOBAL_BATCH // WORLD} (mean of ranks)")
    axis.set_xlabel("step"); axis.set_ylabel("cross-entropy"); axis.legend()
    axis.set_title("data parallel = one big batch")
    figure.savefig(os.path.join(args.out, "data_parallel.png"), dpi=100)
    plt.close(figure)
if ranks is None:
    figure, axis = plt.subplots(figsize=(6, 3.6), constrained_layout=True)
    axis.plot(one_losses, label=f"1 process, batch {GLOBAL_BATCH}")
    axis.set_xlabel("step"); axis.set_ylabel("cross-entropy"); axis.legend()
    figure.savefig(os.path.join(args.out, "data_parallel.png"), dpi=100)
    plt.close(figure)

# ---------------------------------------------------------------------------
section("4. Gradient accumulation: data parallelism in time instead of space")
model = make_model(seed=0)
model.zero_grad()
for chunk_x, chunk_y in zip(np.split(batch_x, 4), np.split(batch_y, 4)):
    # each backward ADDS into .grad; scaling each micro-batch's mean loss by 1/4 makes the sum a mean
    (F.cross_entropy(model(mg.tensor(chunk_x)), mg.tensor(chunk_y)) * 0.25).backward()
accumulated = [p.grad.numpy() for p in model.parameters()]
difference = largest_difference(accumulated, full)
print(f"4 micro-batches of 16, backward each, then one step: |accumulated - batch-64 gradient| = {difference:.1e}")
assert difference < 1e-6
print("Memory holds one micro-batch's activations at a time: a batch too big for the device fits, at the\n"
      "price of 4 passes in sequence. DataParallel does the same across ranks with model.no_sync():")
if ranks is not None:
    first_step = loaders[0][1], loaders[1][1]
    for sampler, _ in loaders:
        sampler.set_epoch(0)
    first = [next(iter(loader)) for loader in first_step]
    expected = gradients(make_model(seed=0), np.concatenate([b[0] for b in first]), np.concatenate([b[1] for b in first]))
    got = [ranks[0][f"accumulated{i}"] for i in range(len(expected))]
    difference = largest_difference(got, expected)
    print(f"  each rank: half its batch under no_sync (no communication), the other half synchronised;\n"
          f"  |result - gradient of the whole 64| = {difference:.1e}")
    assert difference < 1e-6

# ---------------------------------------------------------------------------
section("5. When one device cannot hold the model: tensor and pipeline parallelism")
print("Data parallelism copies the whole model to every device. Training with Adam keeps 16 bytes per\n"
      "parameter (weights, gradients, two moments; lesson 13's table), before activations:")


def gpt2_parameters(n_layer, d, vocab=50257, context=1024):
    """Lesson 13's count: per layer 12 d^2 + 13 d (attention, feed-forward, two LayerNorms),
    token and position embeddings, a final LayerNorm; the output layer is tied."""
    return n_layer * (12 * d * d + 13 * d) + (vocab + context) * d + 2 * d


sizes = {"GPT-2 small": gpt2_parameters(12, 768), "GPT-2 XL": gpt2_parameters(48, 1600),
         "GPT-3": gpt2_parameters(96, 12288, context=2048)}
assert sizes["GPT-2 small"] == 124_439_808                     # the 124M of lesson 13 (and of OpenAI's release)
for name, count in sizes.items():
    print(f"  {name:12s} {count / 1e6:9,.0f} M parameters: {count * 4 / 2**30:8,.1f} GiB of float32 weights, "
          f"{count * 16 / 2**30:8,.1f} GiB to train with Adam")
adam_gib = {name: count * 16 / 2**30 for name, count in sizes.items()}
assert adam_gib["GPT-2 small"] < 16 < adam_gib["GPT-2 XL"]
print(f"GPT-2 small's {adam_gib['GPT-2 small']:.1f} GiB fit one 16 GiB GPU: data parallelism is enough. GPT-2 XL "
      f"needs {adam_gib['GPT-2 XL']:.0f} GiB\nbefore activations, GPT-3 {adam_gib['GPT-3'] / 1024:.1f} TiB: "
      f"the model itself must be split.")

# Tensor parallelism: split one layer's weight across devices.
rng = np.random.default_rng(1)
x, W = rng.standard_normal((4, 6)), rng.standard_normal((6, 8))
columns = np.concatenate([x @ W[:, :4], x @ W[:, 4:]], axis=1)           # each device: half the outputs
rows_sum = x[:, :3] @ W[:3] + x[:, 3:] @ W[3:]                            # each device: half the inputs
assert np.allclose(columns, x @ W) and np.allclose(rows_sum, x @ W)
print("tensor parallelism (Megatron-LM): split W by columns (each device computes some outputs, then an\n"
      "all-gather) or by rows (each device a partial sum, then an all-reduce); checked: both equal x @ W.\n"
      "It talks inside every layer, so it stays within one machine's fast links.")


def pipeline_idle_fraction(stages, micro_batches):
    """Simulate a GPipe forward pass: stage s works on micro-batch m at time s + m. Returns
    the share of stage-time slots left idle (the 'bubble')."""
    busy = {(s, s + m) for s in range(stages) for m in range(micro_batches)}
    length = max(t for _, t in busy) + 1
    return 1 - len(busy) / (stages * length)


print("pipeline parallelism (GPipe): layers split into p stages on p devices; a batch is cut into m\n"
      "micro-batches that flow through the stages, and each device idles while the pipe fills and drains:")
for micro_batches in (1, 4, 16, 64):
    idle = pipeline_idle_fraction(4, micro_batches)
    assert abs(idle - 3 / (micro_batches + 3)) < 1e-12
    print(f"  p = 4 stages, m = {micro_batches:2d} micro-batches: idle {idle:5.1%} = (p-1)/(m+p-1)")
print("Large models combine all three: tensor parallel within a machine, pipeline stages across\n"
      "machines, and data parallel replicas of the whole pipeline (3-D parallelism).")
