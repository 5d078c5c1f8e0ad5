"""Matrix products on arrays, shared out over the kernel threads.

    y = a @ b,  a (..., m, k), b (..., k, n) -> (..., m, n)   (numpy's matmul rules)

On the CPU a large product is cut into one part per kernel thread, along the batch
axis when there are enough batch entries, else along the rows of y (or its columns
when there are fewer rows than threads), and each part is one BLAS call made on one
thread: y[lo:hi] = a[lo:hi] @ b.

Why not let BLAS use the cores itself: OpenBLAS's worker threads spin for a while after
every product, waiting for the next one. The kernels' own threads (layer norm, GELU,
attention between the products) then found both cores taken by spinning BLAS workers:
on the 2-core machine a GPT step at 2 threads ran slower than at one. With BLAS held to
one thread (parallel.set_num_threads does that) and the products shared out here,
there is one pool of threads for everything, as in PyTorch. (Without threadpoolctl,
which holds BLAS to one thread, BLAS keeps its threads and the products go to it whole.)
"""
import numpy

from .. import get_array_module
from . import parallel

MIN_PARALLEL_FLOPS = 1 << 22      # below ~4 MFLOP a product is over before threads would help


def matmul(a, b):
    """a @ b (numpy's rules), large products split over the kernel threads (see above)."""
    xp = get_array_module(a)
    threads = parallel.get_num_threads()
    if (xp is not numpy or threads == 1 or a.ndim < 2 or b.ndim < 2
            or parallel.in_worker() or not parallel.shares_out_products()):
        return xp.matmul(a, b)
    m, k, n = a.shape[-2], a.shape[-1], b.shape[-1]
    batch = numpy.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    count = int(numpy.prod(batch, dtype=numpy.int64)) if batch else 1
    if 2 * count * m * n * k < MIN_PARALLEL_FLOPS:
        return xp.matmul(a, b)
    out = numpy.empty(batch + (m, n), dtype=numpy.result_type(a.dtype, b.dtype))
    if batch and batch[0] >= threads:
        def part(lo, hi):
            numpy.matmul(a[lo:hi] if a.ndim == len(batch) + 2 and a.shape[0] > 1 else a,
                         b[lo:hi] if b.ndim == len(batch) + 2 and b.shape[0] > 1 else b, out=out[lo:hi])
        size = batch[0]
    elif m >= threads and m >= n // 4:
        def part(lo, hi):
            numpy.matmul(a[..., lo:hi, :], b, out=out[..., lo:hi, :])
        size = m
    else:
        def part(lo, hi):
            numpy.matmul(a, b[..., lo:hi], out=out[..., lo:hi])
        size = n
    parallel.run_parts(size, threads, part)
    return out
