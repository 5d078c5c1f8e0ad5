"""DataParallel: one model replicated on every rank, each rank on its own shard of the batch.

    model = dist.DataParallel(GPT(...))           # every rank now holds rank 0's weights
    optimizer = optim.AdamW(model.parameters())
    for xb, yb in DataLoader((X, y), batch_size, sampler=dist.DistributedSampler(len(X))):
        loss = F.cross_entropy(model(xb), yb)     # this rank's shard
        optimizer.zero_grad()
        loss.backward()                           # .grad = mean of every rank's gradient
        optimizer.step()                          # the same step on every rank

Why the replicas stay identical: they start equal (rank 0's parameters and buffers
are broadcast at construction) and every step applies the same averaged gradient
with the same optimizer, so they remain equal without ever sending weights again.
Why the result is right: with equal shards of size b, the mean of the ranks' mean
losses is the mean loss over the N*b examples, and the gradient of a mean is the
mean of the gradients. So N ranks with batch b train exactly like one process
with batch N*b (up to float rounding, and as long as nothing mixes examples within
a shard, such as BatchNorm's batch statistics).

The gradient averaging lives in buckets.py (bucketed, overlapped with backward).

Checkpoints: every rank holds the same weights, so rank 0 alone writes them, and
every rank reads them back:

    if dist.rank() == 0:
        mg.save(model.state_dict(), "ckpt.safetensors")   # atomic: whole file or none
    dist.barrier()                                        # the file exists for everyone
    model.load_state_dict(mg.load("ckpt.safetensors"))   # every rank
"""
import contextlib

from ..autograd import count_uses, graph_roots
from ..grad_mode import is_grad_enabled
from . import collectives, world
from .buckets import GradientBuckets


class DataParallel:
    """DataParallel(module, bucket_mb=25, broadcast_buffers=True, find_unused_parameters=False)

    Wraps `module` (kept as .module). On construction, checks that every rank's
    module has the same parameters and buffers (names, shapes, dtypes; a mismatch
    is an error naming the first difference) and copies rank 0's values to all
    ranks. After loss.backward() on the output of a forward through this wrapper,
    every parameter's .grad is the mean over ranks of the ranks' gradients.

    bucket_mb: the size of one all-reduce message (gradients are packed into flat
        buckets of about this many megabytes, by dtype and device: move or cast the
        module before wrapping it).
    broadcast_buffers: buffers (BatchNorm's running statistics) are copied from
        rank 0 at every forward in training mode, as PyTorch does: rank 0's
        statistics win. A forward in eval mode or under no_grad sends nothing, so
        rank 0 alone may evaluate.
    find_unused_parameters: see buckets.py; needed when some parameters get no
        gradient in a step.

    Every other attribute is the module's: parameters(), named_parameters(),
    state_dict(), load_state_dict(), zero_grad(), model.generate, ... (train() and
    eval() return the wrapper). Differences from torch's
    DistributedDataParallel: it is not an nn.Module itself, and its state_dict has
    the module's own names (no "module." prefix), so a checkpoint loads into the
    bare model. Collectives are called inside forward and backward: every rank
    must run the same number of training forwards and backwards, one backward per
    forward (a second backward through a forward whose averaging finished adds
    into .grad locally, unaveraged, as with PyTorch's DDP).
    """

    def __init__(self, module, bucket_mb=25, broadcast_buffers=True, find_unused_parameters=False):
        world.init()
        self.module = module
        self.broadcast_buffers = broadcast_buffers
        self.find_unused_parameters = find_unused_parameters
        self.require_sync = True
        _check_same_model_on_every_rank(module)
        for tensor in list(module.parameters()) + module.buffers():
            collectives.broadcast_array(tensor.data, 0)
        trained = [(name, p) for name, p in module.named_parameters() if p.requires_grad]
        self.buckets = GradientBuckets(trained, bucket_mb)

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def forward(self, *args, **kwargs):
        if self.broadcast_buffers and self.module.training and is_grad_enabled() and world.world_size() > 1:
            for buffer in self.module.buffers():
                collectives.broadcast_array(buffer.data, 0)
        sync = self.require_sync and is_grad_enabled()
        if sync:
            self.buckets.prepare()
        else:
            self.buckets.disarm()
        output = self.module(*args, **kwargs)
        if sync and self.find_unused_parameters:
            self.buckets.mark_unused(count_uses(graph_roots(output)))
        return output

    @contextlib.contextmanager
    def no_sync(self):
        """Gradient accumulation: backwards of forwards made inside this block only add
        into each rank's own .grad; the first synchronised backward after it averages
        the accumulated sums.

            with model.no_sync():
                model(x1).sum().backward()      # local
            model(x2).sum().backward()          # .grad = mean over ranks of (g1 + g2)
        """
        previous, self.require_sync = self.require_sync, False
        try:
            yield
        finally:
            self.require_sync = previous

    # ---- everything else is the module's (parameters(), state_dict(), ...)
    def train(self, mode=True):
        self.module.train(mode)
        return self                  # the wrapper, so that model = model.train() keeps it

    def eval(self):
        return self.train(False)

    def __getattr__(self, name):
        # called only for names the wrapper lacks: model.parameters() is model.module.parameters()
        if name == "module" or name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.module, name)

    def __repr__(self):
        return f"DataParallel(rank {world.rank()} of {world.world_size()}, {len(self.buckets.buckets)} buckets,\n  {self.module!r})"


def _check_same_model_on_every_rank(module):
    """Raise on every rank if any rank's parameters or buffers differ from rank 0's."""
    if world.world_size() == 1:
        return
    here = [(kind, name, tuple(t.shape), str(t.data.dtype))
            for kind, named in (("parameter", module.named_parameters()), ("buffer", module.named_buffers()))
            for name, t in named]
    everyone = world.comm().allgather(here)
    reference = everyone[0]
    for rank, theirs in enumerate(everyone[1:], start=1):
        if theirs == reference:
            continue
        for ours_entry, their_entry in zip(reference, theirs):
            if ours_entry != their_entry:
                kind, name, shape, dtype = their_entry
                raise ValueError(
                    f"DataParallel: rank {rank}'s model differs from rank 0's: {kind} {name!r} is "
                    f"{shape} {dtype} on rank {rank} but {ours_entry[0]} {ours_entry[1]!r} is "
                    f"{ours_entry[2]} {ours_entry[3]} on rank 0; every rank must build the same model")
        raise ValueError(f"DataParallel: rank {rank}'s model has {len(theirs)} parameters and buffers, "
                         f"rank 0's has {len(reference)}; every rank must build the same model")
