"""Dropout masks on arrays, drawn where the tensor lives.

    keep_i = (u_i >= p),  u_i ~ Uniform[0, 1)   so keep_i ~ Bernoulli(1 - p)
    scale_i = keep_i / (1 - p)                   (inverted dropout: E[x * scale] = x)

The uniforms come from backend.generator(device): on "cpu" the host generator, on
"cuda" a cupy generator on the GPU (no host draw and copy per step), both seeded by
mg.manual_seed. float32 uniforms: half the work of float64 draws, and p is only ever
compared with them.
"""
import numpy

from .. import get_array_module
from . import parallel


def dropout_scale(generator, shape, p, dtype):
    """scale (shape, dtype) = keep / (1 - p), keep_i = u_i >= p (formulas above)."""
    uniforms = generator.random(shape, dtype=numpy.float32)
    factor = numpy.dtype(dtype).type(1.0 / (1.0 - p))
    threshold = numpy.float32(p)

    def scale(u):
        return (u >= threshold).astype(dtype) * factor
    if get_array_module(uniforms) is not numpy:
        return scale(uniforms)
    return parallel.map_elementwise(scale, uniforms, dtypes=(numpy.dtype(dtype),))
