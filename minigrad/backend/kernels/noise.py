"""Gaussian noise on the host, drawn on the kernel threads (DP-SGD's noise).

    noise_i = std * z_i,   z_i ~ N(0, 1) independent

An array of more than CHUNK numbers is cut into blocks of CHUNK; block j gets its own
generator, numpy's SeedSequence spawned from one draw of the caller's generator, so
the streams are independent, the numbers depend only on the caller's generator (that
is, on mg.manual_seed) and never on the thread count, and the blocks are filled side by
side (numpy's generators release the GIL while they fill an array). A smaller array is
drawn from the caller's generator directly: a new generator per block costs ~10 us.
"""
import numpy

from . import parallel

CHUNK = 1 << 16


def gaussian(generator, shape, dtype, std):
    """std * N(0, 1) of `shape` and `dtype` (float32 or float64), as a new numpy array."""
    dtype = numpy.dtype(dtype)
    out = numpy.empty(shape, dtype=dtype)
    flat = out.reshape(-1)
    blocks = -(-flat.size // CHUNK)
    if blocks <= 1:
        generator.standard_normal(out=flat, dtype=dtype)
        flat *= dtype.type(std)
        return out
    entropy = generator.integers(0, 2 ** 63, size=2).tolist()
    seeds = numpy.random.SeedSequence(entropy).spawn(blocks)

    def fill(lo, hi):
        for j in range(lo, hi):
            block = flat[j * CHUNK:(j + 1) * CHUNK]
            numpy.random.Generator(numpy.random.PCG64(seeds[j])).standard_normal(out=block, dtype=dtype)
            block *= dtype.type(std)
    threads = parallel.get_num_threads()
    if threads == 1 or parallel.in_worker():
        fill(0, blocks)
    else:
        parallel.run_parts(blocks, threads, fill)
    return out
