"""DistributedSampler: which rows of the data set this rank trains on.

Each epoch, all ranks draw the same permutation of range(n) (same seed, same
epoch), pad it to a multiple of the world size N, and rank r takes every N-th
index starting at r:

    permutation  7 2 9 0 4 1 8 3 6 5 | 7 2      n = 10, N = 4: padded to 12 with its head
    rank 0       7       4       6
    rank 1         2       1       5
    rank 2           9       8       7
    rank 3             0       3       2

The shards are disjoint apart from the padding, and together they cover every row.
Padding makes every rank run the same number of steps, which the collectives need
(a rank with one batch fewer would leave the others waiting in an all-reduce).
"""
import math

import numpy as np

from . import world


class DistributedSampler:
    """DistributedSampler(n, shuffle=True, seed=0, drop_last=False, *, num_replicas=None, rank=None)

    Iterating gives this rank's share of range(n) as ints: len(sampler) of them,
    the same count on every rank.
      shuffle: a fresh permutation each epoch, drawn from seed + epoch (call
               set_epoch(e) at the start of every epoch, or every epoch repeats the
               first one's order); else the rows in order.
      drop_last=False: the permutation is padded with its own head to a multiple of
               num_replicas (a few rows seen twice per epoch);
      drop_last=True: its tail is cut to a multiple instead (a few rows unseen).
      num_replicas, rank: default to dist.world_size() and dist.rank().
    PyTorch's semantics (padding, drop_last, seed + epoch); the permutations are
    numpy's (default_rng(seed + epoch)), so the order differs from torch.randperm.
    DataLoader(arrays, batch_size, sampler=sampler) batches this rank's rows.
    """

    def __init__(self, n, shuffle=True, seed=0, drop_last=False, *, num_replicas=None, rank=None):
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise ValueError(f"DistributedSampler: n must be a number of rows >= 0, got {n!r}")
        num_replicas = world.world_size() if num_replicas is None else num_replicas
        rank = world.rank() if rank is None else rank
        if num_replicas < 1 or not 0 <= rank < num_replicas:
            raise ValueError(f"DistributedSampler: rank must be in 0..{num_replicas - 1}, got rank {rank} "
                             f"of {num_replicas}")
        self.n, self.shuffle, self.seed, self.drop_last = int(n), shuffle, seed, drop_last
        self.num_replicas, self.rank, self.epoch = num_replicas, rank, 0
        if drop_last and self.n % num_replicas:
            self.num_samples = max(0, math.ceil((self.n - num_replicas) / num_replicas))
        else:
            self.num_samples = math.ceil(self.n / num_replicas)
        self.total_size = self.num_samples * num_replicas

    def set_epoch(self, epoch):
        """Use the permutation of this epoch (seed + epoch) from now on."""
        self.epoch = epoch

    def __len__(self):
        return self.num_samples

    def __iter__(self):
        if self.shuffle:
            order = np.random.default_rng(self.seed + self.epoch).permutation(self.n)
        else:
            order = np.arange(self.n)
        order = np.resize(order, self.total_size)   # cut to total_size, or padded with its own head
        return iter(order[self.rank:self.total_size:self.num_replicas].tolist())

    def __repr__(self):
        return (f"DistributedSampler(n={self.n}, rank {self.rank} of {self.num_replicas}, "
                f"shuffle={self.shuffle}, seed={self.seed}, epoch={self.epoch}, drop_last={self.drop_last})")
