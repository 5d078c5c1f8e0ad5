"""Differentiable operations on images: unfold (im2col), fold (col2im), convolution,
pooling and batch normalisation.

Images are (N, C, H, W): batch, channels, height, width, as in PyTorch.

The one idea here is **im2col**. A convolution slides a kh x kw window over the
zero-padded image and, at each of the L = H_out * W_out window positions, takes a
dot product of the window with the kernel. Copy every window into a column,

    unfold(x)[n, (c, i, j), (oh, ow)] = xpad[n, c, oh * sh + i, ow * sw + j]
    x (N, C, H, W) -> cols (N, C*kh*kw, L)

and the whole convolution is ONE matrix product with the kernel flattened to
(C_out, C*kh*kw), which BLAS (or cuBLAS) does at full speed. The output size
along each axis is

    H_out = floor((H + 2 p - k) / s) + 1

unfold only copies numbers, so its derivative scatters the gradient back to
where each number was copied from, adding up where windows overlap: that is
**fold** (col2im). fold is linear and unfold is its adjoint, so fold's own
derivative is unfold again; since both backward passes are written with these
two ops, gradients of gradients work.

Pooling is unfold followed by a max or a mean over the window axis. Batch
normalisation is fused into one op (like layer norm in fused.py): its backward
is one closed-form expression. The functions at the end (conv2d, max_pool2d,
batch_norm, ...) are the functional forms that nn.Conv2d and friends call.
"""
import math

from . import backend
from .ops import Max, matmul
from .tensor import Function, grad as autograd_grad, is_grad_enabled, wrap

xp_of = backend.get_array_module


# --------------------------------------------------------------------------- geometry
def pair(value, name="value"):
    """An int or a pair of ints as a tuple (for H, W): 3 -> (3, 3)."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")
        pair_ = tuple(int(v) for v in value)
    else:
        pair_ = (int(value), int(value))
    return pair_


def conv_output_size(size, kernel, stride=1, padding=0):
    """Number of window positions along one axis: floor((size + 2 padding - kernel) / stride) + 1."""
    return (size + 2 * padding - kernel) // stride + 1


def _check_window(name, shape, kernel, stride, padding):
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


def _stride_tricks(xp):
    """numpy's (or cupy's) stride_tricks module, or None for array modules without one."""
    return getattr(getattr(xp, "lib", None), "stride_tricks", None)


# --------------------------------------------------------------------------- im2col / col2im on arrays
def pad_array(x, padding, value=0.0):
    """x (N, C, H, W) with padding[0] rows and padding[1] columns of `value` on each side."""
    ph, pw = padding
    if not (ph or pw):
        return x
    n, c, h, w = x.shape
    padded = xp_of(x).full((n, c, h + 2 * ph, w + 2 * pw), value, dtype=x.dtype)
    padded[:, :, ph:ph + h, pw:pw + w] = x
    return padded


def unfold_array(x, kernel, stride, padding, pad_value=0.0, out=None):
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
    padded = pad_array(x, padding, pad_value)
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


def fold_array(cols, x_shape, kernel, stride, padding):
    """col2im on arrays, the adjoint of unfold_array: cols (N, C*kh*kw, L) -> (N, C, H, W).

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


# --------------------------------------------------------------------------- unfold / fold ops
class Unfold(Function):
    """im2col: every kh x kw window of the padded input as one column.

        y[n, (c, i, j), (oh, ow)] = xpad[n, c, oh*sh + i, ow*sw + j]
        x (N, C, H, W) -> y (N, C*kh*kw, H_out*W_out),  H_out = floor((H + 2p - kh)/sh) + 1

    Each output entry is a copy of one input entry (or of the padding), so

        dL/dx[n, c, h, w] = sum of g over every entry copied from x[n, c, h, w]
                          = fold(g)

    pad_value fills the border (0 for convolution, -inf for max pooling); the
    gradient never flows into the border, whatever its value.
    """

    def __init__(self, kernel, stride, padding, pad_value=0.0):
        self.kernel, self.stride, self.padding = pair(kernel), pair(stride), pair(padding)
        self.pad_value = pad_value

    def forward(self, x):
        _check_window("unfold", x.shape, self.kernel, self.stride, self.padding)
        self.x_shape = tuple(x.shape)
        return unfold_array(x, self.kernel, self.stride, self.padding, self.pad_value)

    def backward(self, g):
        return Fold(self.x_shape, self.kernel, self.stride, self.padding)(g)


class Fold(Function):
    """col2im, the adjoint of unfold: each column entry is added back to its pixel.

        y[n, c, h, w] = sum over (i, j, oh, ow) with oh*sh + i - ph = h and ow*sw + j - pw = w
                        of x[n, (c, i, j), (oh, ow)]
        x (N, C*kh*kw, L) -> y (N, C, H, W)   (output_shape = (N, C, H, W))

    y is linear in x and y = U^T x where U is unfold, so dL/dx = U g = unfold(g).
    """

    def __init__(self, output_shape, kernel, stride, padding):
        self.output_shape = tuple(output_shape)
        self.kernel, self.stride, self.padding = pair(kernel), pair(stride), pair(padding)

    def forward(self, cols):
        ho, wo = _check_window("fold", self.output_shape, self.kernel, self.stride, self.padding)
        n, c = self.output_shape[:2]
        expected = (n, c * self.kernel[0] * self.kernel[1], ho * wo)
        if tuple(cols.shape) != expected:
            raise ValueError(f"fold: columns of shape {tuple(cols.shape)} do not fit output "
                             f"{self.output_shape} with kernel {self.kernel}, stride {self.stride}, "
                             f"padding {self.padding}: expected {expected}")
        return fold_array(cols, self.output_shape, self.kernel, self.stride, self.padding)

    def backward(self, g):
        return Unfold(self.kernel, self.stride, self.padding)(g)


def unfold(x, kernel_size, stride=1, padding=0):
    """im2col (torch.nn.functional.unfold): x (N, C, H, W) -> (N, C*kh*kw, H_out*W_out)."""
    return Unfold(kernel_size, stride, padding)(x)


def fold(cols, output_size, kernel_size, stride=1, padding=0):
    """col2im (torch.nn.functional.fold): cols (N, C*kh*kw, L) -> (N, C, *output_size),
    summing overlapping windows."""
    n, ckk, _ = cols.shape
    kh, kw = pair(kernel_size)
    if ckk % (kh * kw):
        raise ValueError(f"fold: {ckk} rows of columns is not a multiple of the kernel size {kh}x{kw}")
    return Fold((n, ckk // (kh * kw)) + pair(output_size), (kh, kw), stride, padding)(cols)


# --------------------------------------------------------------------------- convolution
# On the CPU the images go through unfold and the matrix product a few at a time,
# so that each chunk of columns is still in the cache when the product reads it.
# The arrays themselves are allocated whole, once per call: many fresh mid-sized
# arrays would cost more in page faults than the cache saves. On the GPU: one chunk.
_CHUNK_BYTES = 4 << 20


def _chunks(xp, n, bytes_per_image):
    if xp is not backend.numpy:
        return [(0, n)]
    size = max(1, _CHUNK_BYTES // max(1, bytes_per_image))
    return [(start, min(n, start + size)) for start in range(0, n, size)]


def conv2d_array(x, weight, bias, stride, padding):
    """Convolution on arrays: y_n = W @ unfold(x)_n (+ b).
    Returns y (N, O, H_out, W_out) and the columns (N, C*kh*kw, L) for the weight gradient."""
    xp = xp_of(x)
    n = x.shape[0]
    o, c, kh, kw = weight.shape
    ho, wo = _check_window("conv2d", x.shape, (kh, kw), stride, padding)
    k, length = c * kh * kw, ho * wo
    w2 = weight.reshape(o, k)
    if (kh, kw) == (1, 1) and stride == (1, 1) and padding == (0, 0):
        cols = x.reshape(n, c, length)                      # nothing to unfold
        y = xp.matmul(w2, cols)
    else:
        padded = pad_array(x, padding)
        y = xp.empty((n, o, length), dtype=xp.result_type(x.dtype, weight.dtype))
        cols = xp.empty((n, k, length), dtype=x.dtype)
        for start, stop in _chunks(xp, n, k * length * x.dtype.itemsize):
            unfold_array(padded[start:stop], (kh, kw), stride, (0, 0), out=cols[start:stop])
            xp.matmul(w2, cols[start:stop], out=y[start:stop])
    if bias is not None:
        y += bias.reshape(o, 1)
    return y.reshape(n, o, ho, wo), cols


def conv2d_stride1_array(x, weight, padding):
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
    ho, wo = _check_window("conv2d", x.shape, (kh, kw), (1, 1), padding)
    (ph, pw), (h, w) = padding, x.shape[2:]
    hp, wp = h + 2 * ph, w + 2 * pw
    span = ho * wp                                           # the flat positions t
    flat = xp.zeros((n, c, hp * wp + kw - 1), dtype=x.dtype)   # + room for the last shifts
    flat[:, :, :hp * wp].reshape(n, c, hp, wp)[:, :, ph:ph + h, pw:pw + w] = x
    w2 = weight.reshape(o, c * kh * kw)
    y = xp.empty((n, o, span), dtype=xp.result_type(x.dtype, weight.dtype))
    chunks = _chunks(xp, n, c * kh * kw * span * x.dtype.itemsize)
    cols = xp.empty((max(stop - start for start, stop in chunks), c, kh, kw, span), dtype=x.dtype)
    for start, stop in chunks:
        block = cols[:stop - start]
        for i in range(kh):
            for j in range(kw):
                block[:, :, i, j] = flat[start:stop, :, i * wp + j:i * wp + j + span]
        xp.matmul(w2, block.reshape(stop - start, c * kh * kw, span), out=y[start:stop])
    return xp.ascontiguousarray(y.reshape(n, o, ho, wp)[:, :, :, :wo])


class Conv2d(Function):
    """2-D convolution (cross-correlation, as in every deep learning framework):

        y[n, o, oh, ow] = b[o] + sum_{c, i, j} w[o, c, i, j] * xpad[n, c, oh*sh + i, ow*sw + j]
        x (N, C, H, W), w (O, C, kh, kw), b (O,) -> y (N, O, H_out, W_out)

    As matrices, with cols = unfold(x) (N, C*kh*kw, L) and W = w.reshape(O, C*kh*kw):

        y_n = W @ cols_n + b                                   (one matrix product)

    Backward, with g = dL/dy reshaped to (N, O, L):
        dL/db = sum of g over n, oh, ow
        dL/dW = sum_n g_n @ cols_n^T
        dL/dx = fold(W^T @ g)
    With stride 1 the last one is itself a convolution: each x pixel meets each
    kernel tap once, so dL/dx = conv2d(g, w flipped in both spatial axes and with
    in/out channels swapped, padding k - 1 - p). That needs no fold (whose many
    small strided adds are slow) and is the path taken when it applies (p <= k - 1),
    computed by conv2d_stride1_array.

    Without create_graph the backward works on arrays and reuses the saved
    columns; with create_graph it is written with the differentiable ops unfold,
    matmul, fold and Conv2d itself, so that the gradient can be differentiated again.
    """

    def __init__(self, stride=1, padding=0):
        self.stride, self.padding = pair(stride, "stride"), pair(padding, "padding")

    def forward(self, x, weight, bias=None):
        if weight.ndim != 4:
            raise ValueError(f"conv2d: weight must be (C_out, C_in, kh, kw), got {tuple(weight.shape)}")
        if x.ndim != 4:
            raise ValueError(f"conv2d: expected an input of shape (N, C, H, W), got {tuple(x.shape)}")
        if x.shape[1] != weight.shape[1]:
            raise ValueError(f"conv2d: input has {x.shape[1]} channels (shape {tuple(x.shape)}) but "
                             f"weight {tuple(weight.shape)} expects {weight.shape[1]}")
        if bias is not None and tuple(bias.shape) != (weight.shape[0],):
            raise ValueError(f"conv2d: bias must have shape ({weight.shape[0]},), got {tuple(bias.shape)}")
        y, self.cols = conv2d_array(x, weight, bias, self.stride, self.padding)
        return y

    def _input_grad_by_convolution(self, kernel):
        """True when dL/dx can be the stride-1 convolution of g with the flipped kernel."""
        (kh, kw), (ph, pw) = kernel, self.padding
        return self.stride == (1, 1) and ph <= kh - 1 and pw <= kw - 1

    def backward(self, g):
        if is_grad_enabled():
            return self._backward_graph(g)
        x, weight = self.inputs[0].data, self.inputs[1].data
        bias = self.inputs[2] if len(self.inputs) > 2 else None
        xp = xp_of(x)
        g = g.data
        n, o, ho, wo = g.shape
        _, c, kh, kw = weight.shape
        g3 = g.reshape(n, o, ho * wo)
        grad_x = grad_w = grad_b = None
        if bias is not None and bias.requires_grad:
            grad_b = wrap(g.sum(axis=(0, 2, 3)))
        if self.inputs[1].requires_grad:
            # sum_n g_n @ cols_n^T: one product per image, then the sum over images
            grad_w = xp.matmul(g3, self.cols.transpose(0, 2, 1)).sum(axis=0)
            grad_w = wrap(grad_w.reshape(weight.shape))
        if self.inputs[0].requires_grad:
            if self._input_grad_by_convolution((kh, kw)):
                flipped = xp.ascontiguousarray(weight[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))  # (C, O, kh, kw)
                pad = (kh - 1 - self.padding[0], kw - 1 - self.padding[1])
                grad_x = conv2d_stride1_array(g, flipped, pad)
            else:
                cols_grad = xp.matmul(weight.reshape(o, c * kh * kw).T, g3)
                grad_x = fold_array(cols_grad, x.shape, (kh, kw), self.stride, self.padding)
            grad_x = wrap(grad_x)
        return grad_x, grad_w, grad_b

    def _backward_graph(self, g):
        """The same gradients from differentiable ops (create_graph=True)."""
        x, weight = self.inputs[0], self.inputs[1]
        bias = self.inputs[2] if len(self.inputs) > 2 else None
        n, o, ho, wo = g.shape
        _, c, kh, kw = weight.shape
        g3 = g.reshape(n, o, ho * wo)
        grad_x = grad_w = grad_b = None
        if bias is not None and bias.requires_grad:
            grad_b = g.sum(axis=(0, 2, 3))
        if weight.requires_grad:
            # the columns are recomputed from x, so that dL/dw stays a function of x
            cols = unfold(x, (kh, kw), self.stride, self.padding)
            grad_w = (g3 @ cols.swapaxes(1, 2)).sum(axis=0).reshape(weight.shape)
        if x.requires_grad:
            if self._input_grad_by_convolution((kh, kw)):
                flipped = weight[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)
                grad_x = Conv2d(1, (kh - 1 - self.padding[0], kw - 1 - self.padding[1]))(g, flipped)
            else:
                w2 = weight.reshape(o, c * kh * kw)
                grad_x = Fold(x.shape, (kh, kw), self.stride, self.padding)(w2.T @ g3)
        return grad_x, grad_w, grad_b

    def release(self):
        super().release()
        self.cols = None


def conv2d(x, weight, bias=None, stride=1, padding=0):
    """2-D convolution: x (N, C, H, W), weight (O, C, kh, kw), bias (O,) or None
    -> (N, O, H_out, W_out), H_out = floor((H + 2 padding - kh) / stride) + 1."""
    op = Conv2d(stride, padding)
    return op(x, weight) if bias is None else op(x, weight, bias)


def conv2d_composed(x, weight, bias=None, stride=1, padding=0):
    """The same convolution from unfold and matmul (the reference the fused op is tested against)."""
    o, c, kh, kw = weight.shape
    n, _, h, w = x.shape
    ho, wo = (conv_output_size(s, k, st, p) for s, k, st, p in
              zip((h, w), (kh, kw), pair(stride), pair(padding)))
    y = matmul(weight.reshape(o, c * kh * kw), unfold(x, (kh, kw), stride, padding))
    y = y.reshape(n, o, ho, wo)
    return y if bias is None else y + bias.reshape(1, o, 1, 1)


# --------------------------------------------------------------------------- pooling
def check_pool(name, shape, kernel_size, stride=None, padding=0):
    """Validate a pooling window against an (N, C, H, W) shape; return
    (kernel, stride, padding, (H_out, W_out)) as pairs. Errors start with `name`."""
    kernel = pair(kernel_size, "kernel_size")
    stride = kernel if stride is None else pair(stride, "stride")
    padding = pair(padding, "padding")
    if padding[0] * 2 > kernel[0] or padding[1] * 2 > kernel[1]:
        raise ValueError(f"{name}: padding {padding} must be at most half the kernel {kernel}")
    out = _check_window(name, shape, kernel, stride, padding)
    return kernel, stride, padding, out


def max_pool2d(x, kernel_size, stride=None, padding=0):
    """Max over each window: y[n, c, oh, ow] = max_{i,j} xpad[n, c, oh*sh + i, ow*sw + j],
    padding with -inf (so the border never wins). stride defaults to kernel_size.
    x (N, C, H, W) -> (N, C, H_out, W_out).
    dL/dx: g goes to the window's maximum; ties share it equally (PyTorch gives it
    all to one of them), and overlapping windows add up (through fold)."""
    kernel, stride, padding, (ho, wo) = check_pool("max_pool2d", x.shape, kernel_size, stride, padding)
    n, c = x.shape[:2]
    cols = Unfold(kernel, stride, padding, pad_value=-math.inf)(x)        # (N, C*kh*kw, L)
    windows = cols.reshape(n, c, kernel[0] * kernel[1], ho * wo)
    return Max(axis=2)(windows).reshape(n, c, ho, wo)


def avg_pool2d(x, kernel_size, stride=None, padding=0):
    """Mean over each window: y[n, c, oh, ow] = mean_{i,j} xpad[n, c, oh*sh + i, ow*sw + j].
    Padding counts as zeros in the mean (PyTorch's default count_include_pad=True).
    stride defaults to kernel_size. x (N, C, H, W) -> (N, C, H_out, W_out).
    dL/dx: each window shares g equally, g / (kh*kw) to each of its pixels."""
    kernel, stride, padding, (ho, wo) = check_pool("avg_pool2d", x.shape, kernel_size, stride, padding)
    n, c = x.shape[:2]
    cols = Unfold(kernel, stride, padding)(x)
    return cols.reshape(n, c, kernel[0] * kernel[1], ho * wo).mean(axis=2).reshape(n, c, ho, wo)


def _adaptive_bins(size, out):
    """PyTorch's bins for adaptive pooling: bin i covers [floor(i size/out), ceil((i+1) size/out))."""
    return [(i * size // out, -(-(i + 1) * size // out)) for i in range(out)]


def adaptive_avg_pool2d(x, output_size):
    """Average over an (H_out, W_out) grid of bins that tile the image:
    bin (i, j) spans rows [floor(i H / H_out), ceil((i+1) H / H_out)) and likewise columns.
    output_size 1 is global average pooling. x (N, C, H, W) -> (N, C, H_out, W_out)."""
    if x.ndim != 4:
        raise ValueError(f"adaptive_avg_pool2d: expected an input of shape (N, C, H, W), got {x.shape}")
    ho, wo = pair(output_size, "output_size")
    h, w = x.shape[2:]
    if ho < 1 or wo < 1:
        raise ValueError(f"adaptive_avg_pool2d: output_size must be >= 1, got {(ho, wo)}")
    if (ho, wo) == (1, 1):
        return x.mean(axis=(2, 3), keepdims=True)
    if h % ho == 0 and w % wo == 0:
        return avg_pool2d(x, (h // ho, w // wo))
    # Bins may overlap and differ in size; a rectangle's mean is the mean of its
    # row means, so average the row bins first, then the column bins.
    from .ops import concatenate
    rows = concatenate([x[:, :, a:b].mean(axis=2, keepdims=True) for a, b in _adaptive_bins(h, ho)], axis=2)
    return concatenate([rows[:, :, :, a:b].mean(axis=3, keepdims=True) for a, b in _adaptive_bins(w, wo)], axis=3)


# --------------------------------------------------------------------------- batch normalisation
class BatchNorm(Function):
    """Batch normalisation with the batch's own statistics, per channel (axis 1):

        mu_c = mean of x[:, c, ...],  var_c = mean of (x[:, c, ...] - mu_c)^2  (biased)
        xhat = (x - mu) * rstd,  rstd = 1 / sqrt(var + eps),  y = xhat * weight + bias
        x (N, C, ...) -> y (same shape); weight, bias (C,)

    Backward, with gh = g * weight and means over every axis but 1 (m values each):
        dL/dx = rstd * (gh - mean(gh) - xhat * mean(gh * xhat))
        dL/dweight = sum of g * xhat,  dL/dbias = sum of g
    The batch mean and biased variance are kept as .mean and .var (arrays) for the
    running statistics. With create_graph the gradient is taken through the
    composed formula, so that it can be differentiated again.
    """

    def __init__(self, eps=1e-5):
        self.eps = eps

    def forward(self, x, weight, bias):
        xp = xp_of(x)
        axes = (0,) + tuple(range(2, x.ndim))
        shape = (1, -1) + (1,) * (x.ndim - 2)
        self.mean = x.mean(axis=axes)
        centred = x - self.mean.reshape(shape)
        self.var = (centred * centred).mean(axis=axes)
        self.rstd = (1.0 / xp.sqrt(self.var + self.eps)).reshape(shape)
        self.xhat = centred * self.rstd
        return self.xhat * weight.reshape(shape) + bias.reshape(shape)

    def backward(self, g):
        x, weight, bias = self.inputs
        if is_grad_enabled():   # create_graph: differentiate the composed formula
            return tuple(autograd_grad(batch_norm_composed(x, weight, bias, self.eps),
                                       [x, weight, bias], g, create_graph=True))
        g, xhat, rstd = g.data, self.xhat, self.rstd
        axes = (0,) + tuple(range(2, g.ndim))
        shape = rstd.shape
        gh = g * weight.data.reshape(shape)
        grad_x = rstd * (gh - gh.mean(axis=axes, keepdims=True)
                         - xhat * (gh * xhat).mean(axis=axes, keepdims=True))
        return wrap(grad_x), wrap((g * xhat).sum(axis=axes)), wrap(g.sum(axis=axes))

    def release(self):
        super().release()
        self.xhat = self.rstd = None


def batch_norm_composed(x, weight, bias, eps=1e-5):
    """Batch norm (batch statistics) from primitive ops: the reference and create_graph path."""
    axes = (0,) + tuple(range(2, x.ndim))
    shape = (1, -1) + (1,) * (x.ndim - 2)
    mu = x.mean(axis=axes, keepdims=True)
    centred = x - mu
    var = (centred * centred).mean(axis=axes, keepdims=True)
    return centred / (var + eps).sqrt() * weight.reshape(shape) + bias.reshape(shape)


def batch_norm(x, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5, num_batches_tracked=None):
    """Batch normalisation over every axis but the channel axis 1 (torch.nn.functional.batch_norm).

    training=True: normalise with the batch mean and biased variance, and, when
    running_mean / running_var are given, update them in place:
        running = (1 - momentum) * running + momentum * batch_statistic
    using the UNBIASED batch variance (times m / (m - 1)) for running_var, as PyTorch does.
    momentum=None uses the cumulative average 1 / num_batches_tracked instead.
    training=False: y = (x - running_mean) / sqrt(running_var + eps) * weight + bias.
    x (N, C, ...); running_mean, running_var, weight, bias (C,) or None.
    """
    if x.ndim < 2:
        raise ValueError(f"batch_norm: expected an input (N, C, ...) with a channel axis, got shape {x.shape}")
    if momentum is None and running_mean is not None and training and num_batches_tracked is None:
        raise ValueError("batch_norm: momentum=None (a cumulative average) needs num_batches_tracked")
    c = x.shape[1]
    xp = xp_of(x.data)
    if weight is None:
        weight = wrap(xp.ones(c, dtype=x.dtype))
    if bias is None:
        bias = wrap(xp.zeros(c, dtype=x.dtype))
    if training:
        count = x.size // c
        if count <= 1:
            raise ValueError(f"batch_norm: expected more than 1 value per channel when training, "
                             f"got input of shape {x.shape}")
        op = BatchNorm(eps)
        y = op(x, weight, bias)
        if running_mean is not None:
            if num_batches_tracked is not None:
                num_batches_tracked.data[...] += 1
            m = momentum if momentum is not None else 1.0 / float(num_batches_tracked.data)
            unbiased = op.var * (count / (count - 1))
            running_mean.data[...] = (1 - m) * running_mean.data + m * op.mean.astype(running_mean.dtype)
            running_var.data[...] = (1 - m) * running_var.data + m * unbiased.astype(running_var.dtype)
        return y
    if running_mean is None or running_var is None:
        raise ValueError("batch_norm: evaluation needs running_mean and running_var")
    shape = (1, -1) + (1,) * (x.ndim - 2)
    rstd = wrap(1.0 / xp.sqrt(running_var.data + eps))           # constants: no gradient
    scale = (weight * rstd).reshape(shape)
    return (x - running_mean.detach().reshape(shape)) * scale + bias.reshape(shape)
