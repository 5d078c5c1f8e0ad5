"""Batching: the one place where arrays are cut into the mini-batches a training loop eats.

    DataLoader      rows of arrays, batch by batch, epoch after epoch (optionally shuffled)
    pad_sequences   sequences of different lengths -> one rectangular (N, longest) array
    lm_batch        random windows of one long token stream, for next-token prediction
    train_val_split a token stream cut in two: the head for training, the tail for validation

Everything here is host-side numpy (the batches are plain arrays); the training
loop wraps each batch in a tensor and moves it to the GPU if it wants to:

    X, y = make_spirals(n=300, classes=3)          # from minigrad.datasets
    loader = DataLoader((X, y), batch_size=32, shuffle=True, seed=0)
    for epoch in range(10):
        for xb, yb in loader:                      # xb (32, 2) float32, yb (32,) int64
            loss = F.cross_entropy(model(mg.tensor(xb)), mg.tensor(yb))

The data sets themselves (generated points, digits, dates, corpora) live in
minigrad.datasets: they are course material, not part of the library.
"""
import math

import numpy as np

__all__ = ["DataLoader", "pad_sequences", "lm_batch", "train_val_split"]


class DataLoader:
    """DataLoader(arrays, batch_size, shuffle=False, drop_last=False, seed=None, sampler=None)

    arrays: one numpy array, or a tuple/list of arrays with the same length on axis 0
    (e.g. (X, y)). Iterating yields, batch by batch, a tuple with one slice of each
    array along axis 0 (or just the slice when a single array was given). The last
    batch is smaller when batch_size does not divide the length, unless
    drop_last=True drops it. len(loader) is the number of batches per epoch.

    shuffle=True: every call to iter() (every epoch) draws a fresh permutation from
    one numpy Generator created from `seed` when the loader is made, so two loaders
    with the same seed give the same batches epoch after epoch, while successive
    epochs differ.

    sampler: instead of shuffle, any iterable of row indices, iterated afresh each
    epoch; its indices, in its order, are the rows batched (a list, a range, or
    minigrad.distributed.DistributedSampler for this rank's shard). len(loader)
    then counts the sampler's indices.

    Differences from PyTorch: it takes arrays, not a Dataset object, and yields
    numpy arrays, not tensors; unshuffled batches are views of the arrays,
    shuffled (and sampled) batches are copies.
    """

    def __init__(self, arrays, batch_size, shuffle=False, drop_last=False, seed=None, sampler=None):
        if isinstance(arrays, dict):
            raise TypeError(f"DataLoader: expected an array or a tuple/list of arrays, got a dict with keys "
                            f"{list(arrays)}; pass the arrays themselves, e.g. (data['x'], data['y'])")
        self.single = not isinstance(arrays, (tuple, list))
        self.arrays = [np.asarray(arrays)] if self.single else [np.asarray(a) for a in arrays]
        if not self.arrays:
            raise ValueError("DataLoader: expected at least one array, got an empty sequence")
        if any(array.ndim == 0 for array in self.arrays):
            raise ValueError("DataLoader: arrays must have at least one axis to batch along, got a 0-d array")
        lengths = [len(array) for array in self.arrays]
        if len(set(lengths)) > 1:
            raise ValueError(f"DataLoader: all arrays must have the same length on axis 0, got lengths {lengths}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be a positive integer, got {batch_size!r}")
        self.n = lengths[0]
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.rng = np.random.default_rng(seed)
        if sampler is not None and shuffle:
            raise ValueError("DataLoader: pass shuffle=True or a sampler, not both (a sampler sets the order)")
        self.sampler = sampler

    def __len__(self):
        return self._batches(len(self.sampler) if self.sampler is not None else self.n)

    def _batches(self, rows):
        if self.drop_last:
            return rows // self.batch_size
        return math.ceil(rows / self.batch_size)

    def _epoch_order(self):
        """The rows of one epoch in the order they are batched: the sampler's indices, a
        fresh permutation when shuffling, else None (rows 0..n-1 in order, so each batch
        is a slice: a view)."""
        if self.sampler is not None:
            order = np.fromiter(self.sampler, dtype=np.int64)
            if order.size and (order.min() < 0 or order.max() >= self.n):
                bad = order[(order < 0) | (order >= self.n)][0]
                raise IndexError(f"DataLoader: the sampler gave row {bad}, outside rows 0..{self.n - 1}")
            return order
        return self.rng.permutation(self.n) if self.shuffle else None

    def __iter__(self):
        order = self._epoch_order()
        rows = self.n if order is None else len(order)
        for batch in range(self._batches(rows)):
            start = batch * self.batch_size
            stop = min(start + self.batch_size, rows)
            if order is None:
                parts = tuple(array[start:stop] for array in self.arrays)
            else:
                indices = order[start:stop]
                parts = tuple(array[indices] for array in self.arrays)
            yield parts[0] if self.single else parts

    def __repr__(self):
        order = f"sampler={self.sampler!r}" if self.sampler is not None else f"shuffle={self.shuffle}"
        return (f"DataLoader(n={self.n}, batch_size={self.batch_size}, {order}, "
                f"drop_last={self.drop_last}, batches={len(self)})")


# ----------------------------------------------------------------------------- sequences

def pad_sequences(sequences, pad_id=0):
    """A list of id lists -> (N, longest) int64 array, padded on the right with pad_id.

    [[5], [6, 7]] -> [[5, 0], [6, 7]]. The model is told which positions are padding
    by a mask (or ignore_index in the loss), so the value of pad_id is only a convention.
    """
    longest = max((len(s) for s in sequences), default=0)
    out = np.full((len(sequences), longest), pad_id, dtype=np.int64)
    for row, seq in enumerate(sequences):
        out[row, :len(seq)] = seq
    return out


def lm_batch(ids, block_size, batch_size, rng):
    """Random windows of a token stream for next-token prediction (as nanoGPT's get_batch):
    x (batch_size, block_size) and y = x shifted by one, y[:, t] = ids[start + t + 1].

    Each window starts at an independent uniform position of the stream (drawn from
    rng, a numpy Generator), so this is sampling with replacement, not a DataLoader
    epoch: a stream of N tokens holds N - block_size overlapping windows, and an epoch
    over all of them would show every token block_size times. Training loops instead
    draw a fresh batch each step; the same rng gives the same batches.
    """
    if len(ids) <= block_size:
        raise ValueError(f"lm_batch: a stream of {len(ids)} tokens has no window of {block_size} + 1")
    starts = rng.integers(0, len(ids) - block_size, size=batch_size)
    offsets = np.arange(block_size)
    x = ids[starts[:, None] + offsets]
    y = ids[starts[:, None] + offsets + 1]
    return x, y


def train_val_split(ids, val_fraction=0.1):
    """The first (1 - val_fraction) of a token stream for training, the rest for validation
    (a contiguous split: validation text is text the model never trained on)."""
    cut = int(len(ids) * (1 - val_fraction))
    return ids[:cut], ids[cut:]
