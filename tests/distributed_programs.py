"""Programs that tests/test_distributed.py runs under `mpiexec -n 2`, and the pieces
(model, data, training loop) that the test also runs in one process to compare.

    mpiexec -n 2 python tests/distributed_programs.py OUT_DIR PROGRAM [PROGRAM ...]

Each program writes what it computed to OUT_DIR/<program>_rank<r>.npz; the test
reads the files and checks them against one process's (or numpy's) answer. The
healthy programs share one launch to keep the suite fast; the failing ones
("crash", "mismatch") get a launch each.
"""
import os
import sys

import numpy as np

import minigrad as mg
import minigrad.distributed as dist
from minigrad import functional as F
from minigrad import nn, optim
from minigrad.data import DataLoader

BATCH, FEATURES, CLASSES, STEPS = 16, 5, 3, 4


def make_data(seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((BATCH, FEATURES)).astype(np.float32)
    y = rng.integers(0, CLASSES, size=BATCH)
    return X, y


def make_model(seed, hidden=8):
    """A small MLP with a LayerNorm: several parameters of different shapes, so the
    gradients span several buckets when bucket_mb is tiny."""
    mg.manual_seed(seed)
    return nn.Sequential(nn.Dense(FEATURES, hidden), nn.LayerNorm(hidden), nn.Tanh(), nn.Dense(hidden, CLASSES))


def train(model, batches, steps=STEPS):
    """SGD with momentum on cross-entropy; batches(step) -> (x, y). Returns the losses."""
    optimizer = optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    losses = []
    for step in range(steps):
        x, y = batches(step)
        loss = F.cross_entropy(model(mg.tensor(x)), mg.tensor(y))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def parameters_of(model):
    return {name: p.numpy() for name, p in model.named_parameters()}


def shard_batches(X, y):
    """This rank's rows of the (fixed) batch, through the sampler and the DataLoader."""
    sampler = dist.DistributedSampler(len(X), shuffle=False)
    xb, yb = next(iter(DataLoader((X, y), batch_size=len(X), sampler=sampler)))
    return lambda step: (xb, yb)


# --------------------------------------------------------------------------- programs
def program_train(rank):
    """2 ranks on half the batch each, starting from different seeds (DataParallel must
    copy rank 0's weights), with tiny buckets (one parameter each) and the default size."""
    X, y = make_data()
    result = {}
    for label, bucket_mb in (("tiny", 1e-6), ("default", 25)):
        model = dist.DataParallel(make_model(seed=rank), bucket_mb=bucket_mb)
        result[f"{label}_buckets"] = np.array(len(model.buckets.buckets))
        losses = train(model, shard_batches(X, y))
        result[f"{label}_losses"] = np.array(losses)
        for name, value in parameters_of(model).items():
            result[f"{label}/{name}"] = value
    return result


def use_the_cupy_double():
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import fake_cupy
    from minigrad import backend
    backend.register_cuda_module(fake_cupy)          # "cuda" without a GPU: no NCCL, so staged through the host


def program_train_cuda(rank):
    """The same training with the model on "cuda" (the cupy double): buckets on the
    device, all-reduced through host memory."""
    use_the_cupy_double()
    X, y = make_data()
    mg.set_default_device("cuda")
    try:
        model = dist.DataParallel(make_model(seed=rank), bucket_mb=1e-6)
        train(model, shard_batches(X, y))
        assert all(p.device == "cuda" and p.grad.device == "cuda" for p in model.parameters())
        return parameters_of(model)
    finally:
        mg.set_default_device("cpu")


def program_accumulate(rank):
    """Each rank: two micro-batches, the first under no_sync; their losses are halved so
    that the sum of the two gradients is the gradient of the mean over both."""
    X, y = make_data()
    model = dist.DataParallel(make_model(seed=0), bucket_mb=1e-6)
    mine = np.arange(rank, BATCH, 2)                  # this rank's 8 rows
    first, second = mine[:4], mine[4:]
    with model.no_sync():
        loss = F.cross_entropy(model(mg.tensor(X[first])), mg.tensor(y[first])) * 0.5
        loss.backward()
    local = {f"local/{name}": p.grad.numpy().copy() for name, p in model.named_parameters()}
    loss = F.cross_entropy(model(mg.tensor(X[second])), mg.tensor(y[second])) * 0.5
    loss.backward()
    grads = {f"grad/{name}": p.grad.numpy() for name, p in model.named_parameters()}
    return {**local, **grads}


def rank_values(rank, shape, dtype):
    """The deterministic input each rank contributes to the collectives."""
    size = int(np.prod(shape))
    return ((np.arange(size) * (rank + 2) - 3 * rank) % 7 - 2).reshape(shape).astype(dtype)


COLLECTIVE_CASES = [((), "float32"), ((3,), "float64"), ((2, 3), "int64"), ((4, 3), "float32")]


def program_collectives(rank):
    use_the_cupy_double()
    result = {}
    for device in ("cpu", "cuda"):
        for shape, dtype in COLLECTIVE_CASES:
            key = f"{device}/{'x'.join(map(str, shape)) or 'scalar'}/{dtype}"
            ops = ("sum", "max", "mean") if dtype.startswith("float") else ("sum", "max")
            for op in ops:
                t = mg.tensor(rank_values(rank, shape, dtype), device=device)
                if shape == (4, 3):                    # a non-contiguous view: through a copy
                    t = mg.Tensor(t.data.T, device=device)
                result[f"{key}/all_reduce_{op}"] = dist.all_reduce(t, op).numpy()
                assert t.device == device
            t = mg.tensor(rank_values(rank, shape, dtype), device=device)
            result[f"{key}/broadcast"] = dist.broadcast(t, src=1).numpy()
            gathered = dist.all_gather(mg.tensor(rank_values(rank, shape, dtype), device=device))
            assert gathered.device == device
            result[f"{key}/all_gather"] = gathered.numpy()
    dist.barrier()
    try:
        dist.all_reduce(mg.zeros(2 + rank))            # shapes differ: refused on every rank
    except ValueError as exc:
        result["mismatch_error"] = np.array(str(exc))
    return result


def program_buffers(rank):
    """BatchNorm running statistics: each rank sees other data, yet at the start of every
    training forward the buffers equal rank 0's (broadcast), read by a pre-hook."""
    mg.manual_seed(0)
    body = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Dense(2 * 4 * 4, 2))
    seen = []
    body.register_forward_pre_hook(lambda module, args: seen.append(body[1].running_mean.numpy().copy()))
    model = dist.DataParallel(body)
    rng = np.random.default_rng(10 + rank)            # different data on each rank
    for _ in range(3):
        x = mg.tensor(rng.standard_normal((4, 1, 6, 6)).astype(np.float32) * (rank + 1))
        model(x).sum().backward()
    return {"seen": np.stack(seen), "after": body[1].running_mean.numpy()}


def program_checkpoint(rank):
    """Rank 0 saves, every rank loads into a model initialised differently."""
    out = sys.argv[1]
    trained = dist.DataParallel(make_model(seed=0))
    train(trained, shard_batches(*make_data()), steps=2)
    path = os.path.join(out, "checkpoint.safetensors")
    if dist.rank() == 0:
        mg.save(trained.state_dict(), path)
    dist.barrier()
    fresh = make_model(seed=100 + rank)
    fresh.load_state_dict(mg.load(path))
    return {**{f"loaded/{k}": v for k, v in parameters_of(fresh).items()},
            **{f"trained/{k}": v for k, v in parameters_of(trained).items()}}


def program_sampler(rank):
    result = {}
    for n in (10, 11, 3):
        for drop_last in (False, True):
            sampler = dist.DistributedSampler(n, shuffle=True, seed=3, drop_last=drop_last)
            for epoch in (0, 1):
                sampler.set_epoch(epoch)
                result[f"{n}/{drop_last}/{epoch}"] = np.array(list(sampler), dtype=np.int64)
    return result


def program_unused(rank):
    """A parameter outside the loss: an error at the next forward without
    find_unused_parameters, averaged zeros with it."""
    X, y = make_data()

    class WithSpare(nn.Module):
        def __init__(self):
            super().__init__()
            self.net, self.spare = make_model(seed=0), nn.Dense(2, 2)

        def forward(self, x):
            return self.net(x)
    result = {}
    model = dist.DataParallel(WithSpare(), bucket_mb=1e-6)
    F.cross_entropy(model(mg.tensor(X)), mg.tensor(y)).backward()
    try:
        model(mg.tensor(X))
    except RuntimeError as exc:
        result["error"] = np.array(str(exc))
    model = dist.DataParallel(WithSpare(), bucket_mb=1e-6, find_unused_parameters=True)
    F.cross_entropy(model(mg.tensor(X[rank::2])), mg.tensor(y[rank::2])).backward()
    result["spare_grad"] = model.module.spare.weight.grad.numpy()
    result["net_grad"] = model.module.net[0].weight.grad.numpy()
    return result


def program_crash(rank):
    """Rank 1 fails mid-training while rank 0 waits in an all-reduce."""
    model = dist.DataParallel(make_model(seed=0))
    if rank == 1:
        raise ValueError("rank 1 fails on purpose")
    train(model, shard_batches(*make_data()), steps=1)
    print("rank 0 finished training, which it must not", flush=True)


def program_mismatch(rank):
    dist.DataParallel(make_model(seed=0, hidden=8 + rank))


if __name__ == "__main__":
    out_dir, names = sys.argv[1], sys.argv[2:]
    my_rank, _ = dist.init()
    for name in names:
        values = globals()[f"program_{name}"](my_rank)
        if values is not None:
            np.savez(os.path.join(out_dir, f"{name}_rank{my_rank}.npz"), **values)
