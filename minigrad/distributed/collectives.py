"""Collectives: every rank calls the same function, and all of them get the result.

    all_reduce(t, op)   t <- op(t on rank 0, ..., t on rank N-1), in place; op "sum", "mean", "max"
    broadcast(t, src)   t <- t on rank src, in place
    all_gather(t)       -> (N, *t.shape): every rank's t stacked in rank order
    barrier()           returns once every rank has reached it

A collective is a meeting: each rank must call the same collectives in the same
order with tensors of the same shape, dtype and device, or the job hangs or computes
garbage. These public functions therefore first compare shape, dtype and device
across ranks (one small message) and raise a clear error on a mismatch.
DataParallel, whose buffers are identical by construction, skips that check.

How the numbers travel depends on where the array lives (a *channel* each):

    numpy ("cpu")   MPI reads and writes the array's own memory (the buffer protocol),
                    and MPI.IN_PLACE makes the result overwrite the input: no copy.
                    A non-contiguous array goes through one contiguous copy.
    cupy ("cuda")   NCCL (cupy.cuda.nccl), GPU to GPU, when cupy has it; otherwise
                    staged: copied to the host, reduced over MPI, copied back.
                    With NCCL each rank must use its own GPU (e.g.
                    cupy.cuda.Device(rank % gpus).use() before making the model).
    world of one    nothing travels: a sum over one rank is its own value.

start_all_reduce (used by DataParallel) is the non-blocking form: it starts the
reduction and returns a Pending whose wait() finishes it, so that other work (the
rest of backward) runs while the numbers travel. all_reduce is that, waited for
at once: each channel has one reduction path.
"""
import importlib

from .. import backend
from ..tensor import Tensor
from . import world

OPS = ("sum", "mean", "max")


# --------------------------------------------------------------------------- public
def all_reduce(tensor, op="sum"):
    """Combine `tensor` across ranks, in place: "sum", "mean" (sum / world_size, floats only)
    or "max", elementwise. Every rank ends with the same values. Returns `tensor`."""
    if op not in OPS:
        raise ValueError(f"all_reduce: op must be one of {', '.join(map(repr, OPS))}, got {op!r}")
    array = _checked("all_reduce", tensor)
    if array.dtype.kind == "b":
        raise TypeError("all_reduce: cannot add or compare bool tensors across ranks; cast to int32 first")
    if op == "mean" and array.dtype.kind != "f":
        raise TypeError(f"all_reduce: op 'mean' needs a floating-point tensor, got {array.dtype}")
    _channel(array).start_all_reduce(array, op).wait()
    tensor._version += 1           # changed in place: a graph that saved it will notice
    return tensor


def broadcast(tensor, src=0):
    """Overwrite `tensor` on every rank with rank `src`'s values, in place. Returns `tensor`."""
    if not 0 <= src < world.world_size():
        raise ValueError(f"broadcast: src must be a rank in 0..{world.world_size() - 1}, got {src}")
    array = _checked("broadcast", tensor)
    _channel(array).broadcast(array, src)
    tensor._version += 1
    return tensor


def all_gather(tensor):
    """Every rank's `tensor`, stacked along a new axis 0 in rank order: (world_size, *shape)."""
    array = _checked("all_gather", tensor)
    return Tensor(_channel(array).all_gather(array))


def barrier():
    """Wait until every rank has called barrier()."""
    if world.world_size() > 1:
        world.comm().Barrier()


def broadcast_array(array, src=0):
    """broadcast on an array, in place, without the agreement check (DataParallel's
    parameters and buffers, whose shapes were compared once at construction)."""
    _channel(array).broadcast(array, src)


def start_all_reduce(array, op="sum"):
    """Start reducing a contiguous array in place without waiting; returns a Pending.
    No checks: the caller guarantees that every rank passes the same shape and dtype."""
    return _channel(array).start_all_reduce(array, op)


# --------------------------------------------------------------------------- checks
def _checked(name, tensor):
    """The tensor's array, after checking that it is a Tensor and that all ranks agree on it."""
    if not isinstance(tensor, Tensor):
        raise TypeError(f"{name}: expected a minigrad Tensor, got {type(tensor).__name__}")
    array = tensor.data
    if world.world_size() > 1:
        here = (tuple(array.shape), str(array.dtype), tensor.device)
        everyone = world.comm().allgather(here)
        if any(other != everyone[0] for other in everyone):
            seen = "; ".join(f"rank {r}: shape {s}, {d} on {dev}" for r, (s, d, dev) in enumerate(everyone))
            raise ValueError(f"{name}: every rank must pass a tensor of the same shape, dtype and "
                             f"device, got {seen}")
    return array


# --------------------------------------------------------------------------- channels
class Pending:
    """A reduction in flight. test() -> True once done (and moves MPI along: MPI makes
    progress only inside its calls); wait() blocks until done, then runs `finish`."""

    def __init__(self, request=None, finish=None):
        self.request, self.finish = request, finish

    def test(self):
        return self.request is None or self.request.Test()

    def wait(self):
        if self.request is not None:
            self.request.Wait()
        if self.finish is not None:
            self.finish()
        self.request = self.finish = None


class _Solo:
    """A world of one: every collective is the identity."""

    @staticmethod
    def start_all_reduce(array, op):
        return Pending()

    @staticmethod
    def broadcast(array, src):
        pass

    @staticmethod
    def all_gather(array):
        return array[None].copy()


class _Host:
    """numpy arrays over MPI, in place through the buffer protocol."""

    @staticmethod
    def start_all_reduce(array, op):
        MPI = world.mpi()
        buffer = _contiguous(array)
        request = world.comm().Iallreduce(MPI.IN_PLACE, buffer, op=MPI.MAX if op == "max" else MPI.SUM)
        return Pending(request, lambda: _finish(array, buffer, op))

    @staticmethod
    def broadcast(array, src):
        buffer = _contiguous(array)
        world.comm().Bcast(buffer, root=src)
        if buffer is not array:
            array[...] = buffer

    @staticmethod
    def all_gather(array):
        result = backend.numpy.empty((world.world_size(),) + array.shape, dtype=array.dtype)
        world.comm().Allgather(_contiguous(array), result)
        return result


def _contiguous(array):
    """The array itself when MPI (or NCCL) can use its memory, else a C-contiguous copy."""
    return array if array.flags.c_contiguous else backend.get_array_module(array).ascontiguousarray(array)


def _finish(array, buffer, op):
    """After a sum: divide for the mean; copy back when the reduction ran on a copy."""
    if op == "mean":
        buffer *= 1.0 / world.world_size()
    if buffer is not array:
        array[...] = buffer


class _Staged:
    """cupy arrays without NCCL: to the host, over MPI, back to the device."""

    @staticmethod
    def start_all_reduce(array, op):
        host = backend.to_numpy(array)
        pending = _Host.start_all_reduce(host, op)
        finish_on_host = pending.finish

        def finish():
            finish_on_host()
            array[...] = backend.to_device(host, "cuda")
        pending.finish = finish
        return pending

    @staticmethod
    def broadcast(array, src):
        host = backend.to_numpy(array)
        _Host.broadcast(host, src)
        array[...] = backend.to_device(host, "cuda")

    @staticmethod
    def all_gather(array):
        return backend.to_device(_Host.all_gather(backend.to_numpy(array)), "cuda")


class _Nccl:
    """cupy arrays GPU to GPU through NCCL, on the current CUDA stream. NCCL calls only
    queue work on the stream; a Pending waits on an event recorded after it."""
    communicator = None

    @classmethod
    def _communicator(cls):
        if cls.communicator is None:
            nccl = _nccl_module()
            unique_id = nccl.get_unique_id() if world.rank() == 0 else None
            unique_id = world.comm().bcast(unique_id, root=0)      # rank 0's id, over MPI
            cls.communicator = nccl.NcclCommunicator(world.world_size(), unique_id, world.rank())
        return cls.communicator

    @staticmethod
    def _type(array):
        nccl = _nccl_module()
        name = {"float16": "FLOAT16", "float32": "FLOAT32", "float64": "FLOAT64", "int32": "INT32",
                "int64": "INT64", "uint8": "UINT8", "int8": "INT8"}.get(str(array.dtype))
        if name is None:
            raise TypeError(f"NCCL: cannot send dtype {array.dtype}")
        return getattr(nccl, "NCCL_" + name)

    @classmethod
    def start_all_reduce(cls, array, op):
        cupy, nccl = backend.xp_for("cuda"), _nccl_module()
        buffer = _contiguous(array)
        stream = cupy.cuda.get_current_stream()
        cls._communicator().allReduce(buffer.data.ptr, buffer.data.ptr, buffer.size, cls._type(buffer),
                                      nccl.NCCL_MAX if op == "max" else nccl.NCCL_SUM, stream.ptr)
        _finish(array, buffer, op)            # queued on the same stream, after the sum
        done = stream.record()
        return Pending(_EventRequest(done))

    @classmethod
    def broadcast(cls, array, src):
        cupy = backend.xp_for("cuda")
        buffer = _contiguous(array)
        stream = cupy.cuda.get_current_stream()
        cls._communicator().bcast(buffer.data.ptr, buffer.size, cls._type(buffer), src, stream.ptr)
        if buffer is not array:
            array[...] = buffer
        stream.synchronize()

    @classmethod
    def all_gather(cls, array):
        cupy = backend.xp_for("cuda")
        buffer = _contiguous(array)
        result = cupy.empty((world.world_size(),) + array.shape, dtype=array.dtype)
        stream = cupy.cuda.get_current_stream()
        cls._communicator().allGather(buffer.data.ptr, result.data.ptr, buffer.size, cls._type(buffer),
                                      stream.ptr)
        stream.synchronize()
        return result


class _EventRequest:
    """A CUDA event in MPI request clothing, so a Pending can wait on either."""

    def __init__(self, event):
        self.event = event

    def Test(self):
        return self.event.done

    def Wait(self):
        self.event.synchronize()


_nccl_found = {}        # array module name -> cupy.cuda.nccl or None, looked up once


def _nccl_module():
    """cupy.cuda.nccl when cupy was built with NCCL and the library loads, else None."""
    name = backend.xp_for("cuda").__name__
    if name not in _nccl_found:
        try:
            nccl = importlib.import_module(name + ".cuda.nccl")
        except (ImportError, RuntimeError):
            nccl = None
        _nccl_found[name] = nccl if getattr(nccl, "available", True) else None
    return _nccl_found[name]


def _channel(array):
    if world.world_size() == 1:
        return _Solo
    if backend.device_of(array) == "cpu":
        return _Host
    return _Nccl if _nccl_module() is not None else _Staged
