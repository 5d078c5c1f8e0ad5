"""Convolution on arrays: im2col (unfold), col2im (fold) and the products around them.

A convolution slides a kh x kw window over the zero-padded image and, at each of the
L = H_out * W_out window positions, takes a dot product of the window with the kernel.
Copying every window into a column,

    cols[n, (c*kh + i)*kw + j, oh*W_out + ow] = xpad[n, c, oh*sh + i, ow*sw + j]

turns the whole convolution into ONE matrix product with the kernel flattened to
(C_out, C*kh*kw), which BLAS does at full speed. fold is unfold's adjoint: it adds
each column entry back to the pixel it was copied from. ops/image.py states the math
of the differentiable ops built on these; this file is where their speed tricks live
(strided views, cache-sized chunks, the stride-1 flat-shift unfold).
"""
import functools

from .. import get_array_module as xp_of
from .. import numpy
from . import linalg, parallel


def check_window(name, shape, kernel, stride, padding):
    """Validate a window against an (N, C, H, W) input; return (H_out, W_out)."""
    if len(shape) != 4:
        raise ValueError(f"{name}: expected an input of shape (N, C, H, W), got {tuple(shape)}")
    if min(kernel) < 1 or min(stride) < 1 or min(padding) < 0:
        raise ValueError(f"{name}: kernel {kernel} and stride {stride} must be >= 1 and padding "
                         f"{padding} >= 0")
    padded = (shape[2] + 2 * padding[0], shape[3] + 2 * padding[1])
    if kernel[0] > padded[0] or kernel[1] > padded[1]:
        raise ValueError(f"{name}: kernel {kernel} is larger than the padded input {padded} "
                         f"(input {tuple(shape)}, padding {padding})")
    return tuple(conv_output_size(s, k, st, p) for s, k, st, p in zip(shape[2:], kernel, stride, padding))


def conv_output_size(size, kernel, stride=1, padding=0):
    """Number of window positions along one axis: floor((size + 2 padding - kernel) / stride) + 1."""
    return (size + 2 * padding - kernel) // stride + 1


def _stride_tricks(xp):
    """numpy's (or cupy's) stride_tricks module, or None for array modules without one."""
    return getattr(getattr(xp, "lib", None), "stride_tricks", None)


# --------------------------------------------------------------------------- im2col / col2im on arrays
def pad(x, padding, value=0.0):
    """x (N, C, H, W) with padding[0] rows and padding[1] columns of `value` on each side."""
    ph, pw = padding
    if not (ph or pw):
        return x
    n, c, h, w = x.shape
    padded = xp_of(x).full((n, c, h + 2 * ph, w + 2 * pw), value, dtype=x.dtype)
    padded[:, :, ph:ph + h, pw:pw + w] = x
    return padded


def unfold(x, kernel, stride, padding, pad_value=0.0, out=None):
    """im2col on arrays: x (N, C, H, W) -> cols (N, C*kh*kw, H_out*W_out).

    cols[n, (c*kh + i)*kw + j, oh*W_out + ow] = xpad[n, c, oh*sh + i, ow*sw + j], where xpad
    is x with `padding` rows/columns of pad_value on every side. `out`, if given, is a
    C-contiguous array of that shape to write into.
    """
    xp = xp_of(x)
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    ho, wo = conv_output_size(h, kh, sh, ph), conv_output_size(w, kw, sw, pw)
    if out is None and (kh, kw, sh, sw, ph, pw) == (1, 1, 1, 1, 0, 0):
        return x.reshape(n, c, h * w)                 # a 1x1 window is the pixel itself
    padded = pad(x, padding, pad_value)
    cols = xp.empty((n, c, kh, kw, ho, wo), dtype=x.dtype) if out is None else out.reshape(n, c, kh, kw, ho, wo)
    tricks = _stride_tricks(xp)
    if tricks is not None:
        # A strided view of all windows without copying: moving one step along oh
        # moves sh rows in memory. One copy then lays the windows out as columns.
        s_n, s_c, s_h, s_w = padded.strides
        cols[...] = tricks.as_strided(padded, shape=(n, c, kh, kw, ho, wo),
                                      strides=(s_n, s_c, s_h, s_w, s_h * sh, s_w * sw))
    else:
        # The same copy, one kernel offset (i, j) at a time.
        for i in range(kh):
            for j in range(kw):
                cols[:, :, i, j] = padded[:, :, i:i + sh * (ho - 1) + 1:sh, j:j + sw * (wo - 1) + 1:sw]
    return cols.reshape(n, c * kh * kw, ho * wo)


def fold(cols, x_shape, kernel, stride, padding):
    """col2im on arrays, the adjoint of unfold: cols (N, C*kh*kw, L) -> (N, C, H, W).

    Every column entry is added back to the pixel it was copied from; entries that
    came from the padding are dropped.
    """
    xp = xp_of(cols)
    n, c, h, w = x_shape
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    ho, wo = conv_output_size(h, kh, sh, ph), conv_output_size(w, kw, sw, pw)
    if (kh, kw, sh, sw, ph, pw) == (1, 1, 1, 1, 0, 0):
        return cols.reshape(n, c, h, w)
    cols = cols.reshape(n, c, kh, kw, ho, wo)
    padded = xp.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=cols.dtype)
    # One strided add per kernel offset (kh*kw adds of whole arrays), never a loop
    # over pixels; overlapping windows add up, which is what the derivative needs.
    for i in range(kh):
        for j in range(kw):
            padded[:, :, i:i + sh * (ho - 1) + 1:sh, j:j + sw * (wo - 1) + 1:sw] += cols[:, :, i, j]
    if ph or pw:
        return xp.ascontiguousarray(padded[:, :, ph:ph + h, pw:pw + w])
    return padded


# On the CPU the images go through unfold and the matrix product a few at a time,
# so that each chunk of columns is still in the cache when the product reads it, and
# the chunks run on the kernel threads. The forward's arrays are allocated whole, once
# per call: many fresh mid-sized arrays would cost more in page faults than the cache
# saves. On the GPU: one chunk.
_CHUNK_BYTES = 4 << 20


def _for_image_chunks(xp, n, bytes_per_image, images):
    """images(start, stop) over chunks of about _CHUNK_BYTES of columns (at least one per
    thread), each a task on the kernel threads (it writes its own rows of the output);
    on the GPU one call."""
    if xp is not numpy:
        images(0, n)
        return
    chunks = parallel.blocks(n, bytes_per_image, parallel.get_num_threads(), block_bytes=_CHUNK_BYTES)
    parallel.run_tasks([functools.partial(images, start, stop) for start, stop in chunks])


def conv2d(x, weight, bias, stride, padding):
    """Convolution on arrays: y_n = W @ unfold(x)_n (+ b).
    Returns y (N, O, H_out, W_out) and the columns (N, C*kh*kw, L) for the weight gradient."""
    xp = xp_of(x)
    n = x.shape[0]
    o, c, kh, kw = weight.shape
    ho, wo = check_window("conv2d", x.shape, (kh, kw), stride, padding)
    k, length = c * kh * kw, ho * wo
    w2 = weight.reshape(o, k)
    if (kh, kw) == (1, 1) and stride == (1, 1) and padding == (0, 0):
        cols = x.reshape(n, c, length)                      # nothing to unfold
        y = xp.matmul(w2, cols)
    else:
        padded = pad(x, padding)
        y = xp.empty((n, o, length), dtype=xp.result_type(x.dtype, weight.dtype))
        cols = xp.empty((n, k, length), dtype=x.dtype)

        def images(start, stop):
            unfold(padded[start:stop], (kh, kw), stride, (0, 0), out=cols[start:stop])
            xp.matmul(w2, cols[start:stop], out=y[start:stop])
        _for_image_chunks(xp, n, k * length * x.dtype.itemsize, images)
    if bias is not None:
        y += bias.reshape(o, 1)
    return y.reshape(n, o, ho, wo), cols


def conv2d_stride1(x, weight, padding):
    """A stride-1 convolution on arrays, unfolded along the flattened padded image.

    With stride 1, window (oh, ow) at kernel offset (i, j) reads xpad[oh + i, ow + j].
    Flatten each padded image (rows of width Wp) and that pixel sits at
    (oh + i) * Wp + (ow + j) = t + (i * Wp + j) with t = oh * Wp + ow: every kernel
    offset is ONE contiguous shift of the flat image, so the columns are kh*kw plain
    slices (long runs that copy at memory speed) instead of a strided gather. The price:
    t also visits the kw - 1 positions past the last window of each row, so the product
    computes (H_out, Wp) outputs and the extra columns are dropped (Wp / W_out more work).
    x (N, C, H, W), weight (O, C, kh, kw) -> (N, O, H_out, W_out). Used for dL/dx.
    """
    xp = xp_of(x)
    n = x.shape[0]
    o, c, kh, kw = weight.shape
    ho, wo = check_window("conv2d", x.shape, (kh, kw), (1, 1), padding)
    (ph, pw), (h, w) = padding, x.shape[2:]
    hp, wp = h + 2 * ph, w + 2 * pw
    span = ho * wp                                           # the flat positions t
    flat = xp.zeros((n, c, hp * wp + kw - 1), dtype=x.dtype)   # + room for the last shifts
    flat[:, :, :hp * wp].reshape(n, c, hp, wp)[:, :, ph:ph + h, pw:pw + w] = x
    w2 = weight.reshape(o, c * kh * kw)
    y = xp.empty((n, o, span), dtype=xp.result_type(x.dtype, weight.dtype))

    def images(start, stop):
        block = xp.empty((stop - start, c, kh, kw, span), dtype=x.dtype)
        for i in range(kh):
            for j in range(kw):
                block[:, :, i, j] = flat[start:stop, :, i * wp + j:i * wp + j + span]
        xp.matmul(w2, block.reshape(stop - start, c * kh * kw, span), out=y[start:stop])
    _for_image_chunks(xp, n, c * kh * kw * span * x.dtype.itemsize, images)
    return xp.ascontiguousarray(y.reshape(n, o, ho, wp)[:, :, :, :wo])


def conv2d_backward(g, x, weight, cols, stride, padding, needs):
    """dL/dx, dL/dweight, dL/dbias of y = conv2d(x, weight, bias) (None where `needs` says
    no), with g (N, O, H_out, W_out) and the columns the forward made:
        dL/dbias = sum of g over n, oh, ow;   dL/dW = sum_n g_n @ cols_n^T;
        dL/dx = fold(W^T @ g), or with stride 1 (and p <= k - 1) the convolution of g
        with the kernel flipped in both spatial axes and in/out channels swapped, padding
        k - 1 - p: no fold, whose many small strided adds are slow."""
    xp = xp_of(x)
    n, o, ho, wo = g.shape
    _, c, kh, kw = weight.shape
    g3 = g.reshape(n, o, ho * wo)
    grad_x = grad_w = grad_b = None
    if needs[2]:
        grad_b = g.sum(axis=(0, 2, 3))
    if needs[1]:
        grad_w = linalg.matmul(g3, cols.transpose(0, 2, 1)).sum(axis=0).reshape(weight.shape)
    if needs[0]:
        if input_grad_is_convolution((kh, kw), stride, padding):
            flipped = xp.ascontiguousarray(weight[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))  # (C, O, kh, kw)
            grad_x = conv2d_stride1(g, flipped, (kh - 1 - padding[0], kw - 1 - padding[1]))
        else:
            cols_grad = xp.matmul(weight.reshape(o, c * kh * kw).T, g3)
            grad_x = fold(cols_grad, x.shape, (kh, kw), stride, padding)
    return grad_x, grad_w, grad_b


def input_grad_is_convolution(kernel, stride, padding):
    """True when dL/dx can be the stride-1 convolution of g with the flipped kernel."""
    return stride == (1, 1) and padding[0] <= kernel[0] - 1 and padding[1] <= kernel[1] - 1
