"""Matrix products on arrays, shared out over the kernel threads.

    y = a @ b,  a (..., m, k), b (..., k, n) -> (..., m, n)   (numpy's matmul rules)

On the CPU a large product is cut into one part per kernel thread, along the batch
axis when there are enough batch entries, else along the rows of y, or its columns
when y has fewer rows than threads or is much wider than tall (m < n / 4), and each
part is one BLAS call made on one thread: y[lo:hi] = a[lo:hi] @ b.

Why not let BLAS use the cores itself: OpenBLAS's worker threads spin for a while after
every product, waiting for the next one. The kernels' own threads (layer norm, GELU,
attention between the products) then found both cores taken by spinning BLAS workers:
on the 2-core machine a GPT step at 2 threads ran slower than at one. With BLAS held to
one thread (parallel.set_num_threads does that) and the products shared out here,
there is one pool of threads for everything, as in PyTorch. (Without threadpoolctl,
which holds BLAS to one thread, BLAS keeps its threads and the products go to it whole.)

Handing work to the threads costs about 50 us on the 2-core development machine, so a
product is shared out only from 32 MFLOP up: MiniLM's per-head attention products
(25 MFLOP a batch) ran 12% slower in total when each was cut in two.
"""
import numpy

from .. import get_array_module
from . import parallel

MIN_PARALLEL_FLOPS = 1 << 25      # below ~32 MFLOP a product stays on one thread (see above)


def matmul(a, b):
    """a @ b (numpy's rules), large products split over the kernel threads (see above)."""
    xp = get_array_module(a)
    if a.ndim < 2 or b.ndim < 2 or 2 * max(a.size * b.shape[-1], b.size * a.shape[-2]) < MIN_PARALLEL_FLOPS:
        return xp.matmul(a, b)        # too small to share out (checked first: it is the cheapest test)
    threads = parallel.get_num_threads()
    if xp is not numpy or threads == 1 or parallel.in_worker() or not parallel.shares_out_products():
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


def linear(x, weight, bias=None):
    """y = x @ W + b for x (..., n_in), W (n_in, n_out), b (n_out,) or None -> (..., n_out).
    On the CPU the rows of x are shared out over the kernel threads, and each block of y
    gets its bias while it is still in the cache (no second pass over y)."""
    xp = get_array_module(x)
    n_in, n_out = weight.shape
    out = xp.empty(x.shape[:-1] + (n_out,), dtype=xp.result_type(x.dtype, weight.dtype))
    rows, out_rows = x.reshape(-1, n_in), out.reshape(-1, n_out)     # views: out owns its memory

    def part(lo, hi):
        xp.matmul(rows[lo:hi], weight, out=out_rows[lo:hi])
        if bias is not None:
            out_rows[lo:hi] += bias
    threads = parallel.get_num_threads()
    if (xp is numpy and threads > 1 and rows.shape[0] >= threads and not parallel.in_worker()
            and 2 * rows.shape[0] * n_in * n_out >= MIN_PARALLEL_FLOPS and parallel.shares_out_products()):
        parallel.run_parts(rows.shape[0], threads, part)
    else:                                   # one call (on cupy: on the GPU's own threads)
        part(0, rows.shape[0])
    return out


def linear_backward(g, x, weight, needs):
    """For y = x @ W + b with g = dL/dy (..., n_out), over all leading rows:
        dL/dx = g @ W^T,   dL/dW = x^T @ g,   dL/db = sum of g over the rows
    (None where `needs` says no). When both products are wanted they run side by side,
    one whole product per thread, which scales better than cutting each one in half."""
    n_in, n_out = weight.shape
    g_rows, x_rows = g.reshape(-1, n_out), x.reshape(-1, n_in)
    grads = [None, None, None]

    def grad_x():
        product = matmul(g_rows, weight.T)
        grads[0] = product if product.shape == x.shape else product.reshape(x.shape)

    def grad_w():
        grads[1] = matmul(x_rows.T, g_rows)
    wanted = [task for task, need in zip((grad_x, grad_w), needs[:2]) if need]
    if len(wanted) == 2 and get_array_module(g) is numpy and \
            2 * g_rows.shape[0] * n_in * n_out >= MIN_PARALLEL_FLOPS:
        parallel.run_tasks(wanted)          # in the threads, each product is one BLAS call
    else:
        for task in wanted:
            task()
    if len(needs) > 2 and needs[2]:
        grads[2] = g_rows.sum(axis=0)
    return tuple(grads)
