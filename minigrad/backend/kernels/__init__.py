"""Kernels: the array code behind minigrad's fused ops, and the only place for speed tricks.

An op in minigrad/ops/ states its math and calls a kernel for the heavy lifting; the
kernel does the same math on backend arrays (numpy or cupy) as fast as it can:
in-place updates, einsum row products, strided views, cache-sized blocks run on all
cores. Each kernel's docstring gives the formula it computes, and tests/test_kernels.py
checks every kernel against the op's math written with plain Tensor operations, on
"cpu" and on the cupy test double. gpu.py's CUDA sources are checked only on a real GPU
(MINIGRAD_TEST_REAL_CUDA=1): gpu.kernel returns None for numpy and for the double.

    parallel       the kernel threads (mg.set_num_threads) and cache-sized row blocks
    linalg         matrix products shared out over the kernel threads
    special        erf
    activations    GELU and ReLU, forward and backward
    normalization  softmax, log_softmax, layer norm, batch norm (forward and backward)
    losses         cross-entropy with class ids, forward and backward in one pass each
    attention      scaled dot-product attention, a block of queries at a time
    convolution    im2col / col2im, convolution forward and backward
    indexing       scatter-add of rows (a lookup's backward)
    dropout        dropout masks, drawn on the tensor's device
    noise          Gaussian noise (DP-SGD), its blocks drawn side by side
    optimizers     SGD and Adam(W) updates in place, over flat parameter arrays
    gpu            the elementwise kernels as single CUDA kernels (cupy.ElementwiseKernel)
"""
from . import parallel  # noqa: F401  (first: the others run on its threads)
from . import (activations, attention, convolution, dropout, gpu, indexing, linalg, losses,  # noqa: F401
               noise, normalization, optimizers, special)
