"""Data-parallel training over MPI: the same script on N processes, one model replica each.

    mpiexec -n 2 python train.py          # two processes; `python train.py` is a world of 1

    import minigrad.distributed as dist
    rank, world_size = dist.init()
    model = dist.DataParallel(GPT(...))                    # rank 0's weights everywhere
    sampler = dist.DistributedSampler(len(X), seed=0)      # this rank's rows
    loader = DataLoader((X, y), batch_size=16, sampler=sampler)
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        for xb, yb in loader:
            loss = F.cross_entropy(model(xb), mg.tensor(yb))
            optimizer.zero_grad()
            loss.backward()            # gradients averaged across ranks, overlapped with backward
            optimizer.step()

The pieces, one file each:

    world.py          init(), rank(), world_size(), abort(); MPI from mpi4py, loaded at init()
                      (importing minigrad never imports it); an exception on any rank aborts the job
    collectives.py    all_reduce(t, op), broadcast(t, src), all_gather(t), barrier(): numpy
                      arrays in place over MPI; cupy arrays over NCCL or staged through the host
    buckets.py        the gradient reducer: flat buckets, all-reduces started from gradient hooks
    data_parallel.py  DataParallel(module, bucket_mb=25): broadcast at construction, averaged
                      gradients, no_sync() for accumulation, BatchNorm buffers from rank 0;
                      the checkpoint pattern (rank 0 saves, every rank loads)
    sampler.py        DistributedSampler(n, shuffle, seed, drop_last): disjoint shards, set_epoch
    launch.py         launch(argv, nprocs): run mpiexec from Python (tests, lessons, benchmarks)

Install: pip install -e ".[distributed]" (mpi4py and the mpich wheel, which brings mpiexec).
"""
from .world import init, is_initialized, rank, world_size, abort
from .collectives import all_reduce, broadcast, all_gather, barrier
from .data_parallel import DataParallel
from .sampler import DistributedSampler
from .launch import find_mpiexec, launch

__all__ = ["init", "is_initialized", "rank", "world_size", "abort", "all_reduce", "broadcast", "all_gather",
           "barrier", "DataParallel", "DistributedSampler", "find_mpiexec", "launch"]
