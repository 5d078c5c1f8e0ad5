"""Gradient buckets: averaging gradients across ranks while backward is still running.

After backward, each rank holds the gradient of its own shard's loss. Data-parallel
training wants their mean on every rank,

    g = (g_0 + g_1 + ... + g_{N-1}) / N,

which is exactly the gradient of the mean loss over the whole (sharded) batch.

The simplest way is one all-reduce per parameter after backward: a hundred small
messages, each paying MPI's latency, and none of it starting before backward ends.
PyTorch DDP's reducer, which this copies, does better in two ways:

1. Buckets. Parameters are packed, in reverse order of model.parameters(), into
   flat buckets of about bucket_mb megabytes; a bucket is reduced as one message.
   Reverse order, because backward produces gradients roughly from the last layer
   to the first: the first bucket fills first. The first bucket holds at most
   1 MB (as in PyTorch), so that communication starts early in backward.
2. Overlap. Every parameter has a post-accumulate-grad hook (the engine calls it
   as soon as that leaf's gradient is complete). The hook copies the gradient,
   already divided by N, into its bucket's slot; when a bucket's last slot is filled
   its non-blocking all-reduce starts, and the numbers travel while backward goes
   on computing the gradients of earlier layers.

Buckets start in index order on every rank (a full bucket waits for the ones before
it): MPI matches collectives by the order they are called in, so all ranks must
start the same buckets in the same order.

How backward's end is known. DataParallel expects a gradient for every parameter
that requires one. The hook that delivers the last of them starts the last bucket;
that same hook then waits for every bucket and writes each parameter's .grad as a
view into its bucket's (now averaged) flat array. So when loss.backward() returns,
.grad holds the mean over ranks. A parameter that never gets a gradient (unused in
this forward) would leave its bucket unstarted: the next forward raises and names
it (find_unused_parameters=True marks such parameters ready at forward time,
contributing the .grad they hold, accumulated under no_sync, or zeros when they
have none, at the cost of a walk over the graph each step).
"""
import time

from .. import backend
from ..tensor import Tensor
from . import collectives, world

FIRST_BUCKET_MB = 1


class Bucket:
    """Parameters whose gradients travel together as one flat array."""

    def __init__(self, params):
        self.params = params
        self.offsets, total = [], 0
        for param in params:
            self.offsets.append(total)
            total += param.size
        self.numel = total
        self.flat = None            # this step's flat gradients (allocated at the first arrival)
        self.arrived = 0
        self.pending = None         # the all-reduce in flight

    def slot(self, index):
        """The view of the flat array that holds params[index]'s gradient."""
        start = self.offsets[index]
        param = self.params[index]
        return self.flat[start:start + param.size].reshape(param.shape)


class GradientBuckets:
    """The reducer: hooks on every parameter, buckets, and the step's bookkeeping."""

    def __init__(self, named_params, bucket_mb):
        if not bucket_mb > 0:
            raise ValueError(f"DataParallel: bucket_mb must be > 0, got {bucket_mb}")
        self.names = {id(p): name for name, p in named_params}
        params = [p for _, p in named_params][::-1]            # gradients arrive roughly last-first
        self.buckets, self.slot_of = [], {}
        current, current_bytes = [], 0
        limit = min(FIRST_BUCKET_MB, bucket_mb) * 2 ** 20
        for param in params:
            nbytes = param.size * param.data.dtype.itemsize
            if current and (current_bytes + nbytes > limit or not _same_kind(current[0], param)):
                self.buckets.append(Bucket(current))
                current, current_bytes, limit = [], 0, bucket_mb * 2 ** 20
            current.append(param)
            current_bytes += nbytes
        if current:
            self.buckets.append(Bucket(current))
        for bucket in self.buckets:
            for index, param in enumerate(bucket.params):
                self.slot_of[id(param)] = (bucket, index)
        for param in params:
            param.register_post_accumulate_grad_hook(self._gradient_ready)
        self.armed = False           # a synchronised forward ran; gradients are expected
        self.arrived = set()
        self.next_bucket = 0         # the first bucket not started yet
        self.last_wait_seconds = 0.0  # how long the end of the last backward waited for the network

    # ---- the step
    def prepare(self):
        """A synchronised forward begins: expect every parameter's gradient in the backward."""
        if self.armed and self.arrived:
            missing = [self.names[id(p)] for b in self.buckets for p in b.params if id(p) not in self.arrived]
            raise RuntimeError(
                "DataParallel: the previous backward did not give every parameter a gradient, so the "
                f"averaging of gradients across ranks never finished; no gradient for: {', '.join(missing)}. "
                "Pass find_unused_parameters=True when some parameters take no part in the loss")
        self.armed, self.arrived, self.next_bucket = True, set(), 0
        for bucket in self.buckets:
            bucket.flat, bucket.arrived, bucket.pending = None, 0, None

    def disarm(self):
        """No averaging for the next backward (DataParallel.no_sync)."""
        self.armed, self.arrived = False, set()

    def mark_unused(self, reached):
        """Parameters not among `reached` (ids of the nodes the forward's graph reaches,
        as autograd.count_uses gives them) will get no gradient: count them as arrived now, with their .grad so far (or zeros)."""
        for bucket in self.buckets:
            for param in bucket.params:
                if id(param) not in reached and id(param) not in self.arrived:
                    self._gradient_ready(param)

    def _gradient_ready(self, param):
        """The engine finished param's gradient: into its bucket; start full buckets."""
        if not self.armed:
            return                                   # no_sync, or a backward that did not go through forward
        if id(param) in self.arrived:
            raise RuntimeError(f"DataParallel: parameter {self.names[id(param)]!r} received a gradient twice "
                               f"after one forward; call the model again before each backward")
        self.arrived.add(id(param))
        bucket, index = self.slot_of[id(param)]
        if bucket.flat is None:
            xp = backend.get_array_module(param.data)
            bucket.flat = xp.empty(bucket.numel, dtype=param.data.dtype)
        slot = bucket.slot(index)
        if param.grad is None:
            slot[...] = 0
        else:
            slot[...] = param.grad.data
            slot *= 1.0 / world.world_size()      # divided by N before the sum, so the sum is the mean
        bucket.arrived += 1
        if bucket.arrived == len(bucket.params):
            self._start_full_buckets()
        elif self.next_bucket > 0:
            self.buckets[self.next_bucket - 1].pending.test()     # let MPI move the started ones along

    def _start_full_buckets(self):
        while self.next_bucket < len(self.buckets):
            bucket = self.buckets[self.next_bucket]
            if bucket.arrived < len(bucket.params):
                return
            bucket.pending = collectives.start_all_reduce(bucket.flat, "sum")
            self.next_bucket += 1
        self._finish()

    def _finish(self):
        """Every bucket started: wait for them, then hand each parameter its averaged gradient."""
        start = time.perf_counter()
        for bucket in self.buckets:
            bucket.pending.wait()
        self.last_wait_seconds = time.perf_counter() - start
        for bucket in self.buckets:
            for index, param in enumerate(bucket.params):
                param.grad = Tensor(bucket.slot(index))
            bucket.flat = bucket.pending = None       # the views keep the array alive, not the bucket
        self.armed, self.arrived = False, set()


def _same_kind(a, b):
    """Two parameters may share a flat array: same dtype, same device."""
    return a.data.dtype == b.data.dtype and backend.device_of(a.data) == backend.device_of(b.data)
