"""Differentiable operations on images: unfold (im2col), fold (col2im), convolution,
pooling and batch normalisation.

Images are (N, C, H, W): batch, channels, height, width, as in PyTorch.

The one idea here is **im2col**. A convolution slides a kh x kw window over the
zero-padded image and, at each of the L = H_out * W_out window positions, takes a
dot product of the window with the kernel. Copy every window into a column,

    unfold(x)[n, (c, i, j), (oh, ow)] = xpad[n, c, oh * sh + i, ow * sw + j]
    x (N, C, H, W) -> cols (N, C*kh*kw, L)

and the whole convolution is ONE matrix product with the kernel flattened to
(C_out, C*kh*kw). The output size along each axis is

    H_out = floor((H + 2 p - k) / s) + 1

unfold only copies numbers, so its derivative scatters the gradient back to
where each number was copied from, adding up where windows overlap: that is
**fold** (col2im). fold is linear and unfold is its adjoint, so fold's own
derivative is unfold again; since both backward passes are written with these
two ops, gradients of gradients work.

Pooling is unfold followed by a max or a mean over the window axis. Convolution
and batch normalisation are fused ops: one kernel call forward, a closed-form
kernel backward, and a Tensor backward for grad of grad. The array work (strided
views, cache-sized chunks) lives in backend/kernels/convolution.py.
"""
import math

from .. import backend
from ..autograd import Function
from ..backend import kernels
from ..backend.kernels.convolution import check_window, conv_output_size
from ..tensor import Tensor
from .composite import normalize
from .reduce import Max, matmul
from .shape import concatenate

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


# --------------------------------------------------------------------------- unfold / fold ops
class UnfoldOp(Function):
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
        check_window("unfold", x.shape, self.kernel, self.stride, self.padding)
        return kernels.convolution.unfold(x, self.kernel, self.stride, self.padding, self.pad_value)

    def backward(self, g):
        return FoldOp(self.input_shapes[0], self.kernel, self.stride, self.padding)(g)


class FoldOp(Function):
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
        ho, wo = check_window("fold", self.output_shape, self.kernel, self.stride, self.padding)
        n, c = self.output_shape[:2]
        expected = (n, c * self.kernel[0] * self.kernel[1], ho * wo)
        if tuple(cols.shape) != expected:
            raise ValueError(f"fold: columns of shape {tuple(cols.shape)} do not fit output "
                             f"{self.output_shape} with kernel {self.kernel}, stride {self.stride}, "
                             f"padding {self.padding}: expected {expected}")
        return kernels.convolution.fold(cols, self.output_shape, self.kernel, self.stride, self.padding)

    def backward(self, g):
        return UnfoldOp(self.kernel, self.stride, self.padding)(g)


def unfold(x, kernel_size, stride=1, padding=0):
    """im2col (torch.nn.functional.unfold): x (N, C, H, W) -> (N, C*kh*kw, H_out*W_out)."""
    return UnfoldOp(kernel_size, stride, padding)(x)


def fold(cols, output_size, kernel_size, stride=1, padding=0):
    """col2im (torch.nn.functional.fold): cols (N, C*kh*kw, L) -> (N, C, *output_size),
    summing overlapping windows."""
    n, ckk, _ = cols.shape
    kh, kw = pair(kernel_size)
    if ckk % (kh * kw):
        raise ValueError(f"fold: {ckk} rows of columns is not a multiple of the kernel size {kh}x{kw}")
    return FoldOp((n, ckk // (kh * kw)) + pair(output_size), (kh, kw), stride, padding)(cols)

# --------------------------------------------------------------------------- convolution
class Conv2dOp(Function):
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
    in/out channels swapped, padding k - 1 - p), which needs no fold.
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
        y, cols = kernels.convolution.conv2d(x, weight, bias, self.stride, self.padding)
        self.save_for_backward(x, weight, cols)
        return y

    def backward(self, g):
        x, weight, _ = self.saved_tensors
        n, o, ho, wo = g.shape
        _, c, kh, kw = weight.shape
        g3 = g.reshape(n, o, ho * wo)
        # the columns again from x (not the saved array), so that dL/dw stays a function of x
        grad_w = (g3 @ unfold(x, (kh, kw), self.stride, self.padding).swapaxes(1, 2)).sum(axis=0)
        if kernels.convolution.input_grad_is_convolution((kh, kw), self.stride, self.padding):
            flipped = weight[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)
            grad_x = Conv2dOp(1, (kh - 1 - self.padding[0], kw - 1 - self.padding[1]))(g, flipped)
        else:
            grad_x = FoldOp(x.shape, (kh, kw), self.stride, self.padding)(weight.reshape(o, c * kh * kw).T @ g3)
        return grad_x, grad_w.reshape(weight.shape), g.sum(axis=(0, 2, 3))

    def backward_arrays(self, g):
        x, weight, cols = self.saved_arrays
        needs = self.needs_input_grad + [False] * (3 - len(self.next_nodes))     # no bias: no dL/db
        return kernels.convolution.conv2d_backward(g, x, weight, cols, self.stride, self.padding, needs)


def conv2d(x, weight, bias=None, stride=1, padding=0):
    """2-D convolution: x (N, C, H, W), weight (O, C, kh, kw), bias (O,) or None
    -> (N, O, H_out, W_out), H_out = floor((H + 2 padding - kh) / stride) + 1."""
    op = Conv2dOp(stride, padding)
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
    out = check_window(name, shape, kernel, stride, padding)
    return kernel, stride, padding, out


def max_pool2d(x, kernel_size, stride=None, padding=0):
    """Max over each window: y[n, c, oh, ow] = max_{i,j} xpad[n, c, oh*sh + i, ow*sw + j],
    padding with -inf (so the border never wins). stride defaults to kernel_size.
    x (N, C, H, W) -> (N, C, H_out, W_out).
    dL/dx: g goes to the window's maximum; ties share it equally (PyTorch gives it
    all to one of them), and overlapping windows add up (through fold)."""
    kernel, stride, padding, (ho, wo) = check_pool("max_pool2d", x.shape, kernel_size, stride, padding)
    n, c = x.shape[:2]
    cols = UnfoldOp(kernel, stride, padding, pad_value=-math.inf)(x)        # (N, C*kh*kw, L)
    windows = cols.reshape(n, c, kernel[0] * kernel[1], ho * wo)
    return Max(axis=2)(windows).reshape(n, c, ho, wo)


def avg_pool2d(x, kernel_size, stride=None, padding=0):
    """Mean over each window: y[n, c, oh, ow] = mean_{i,j} xpad[n, c, oh*sh + i, ow*sw + j].
    Padding counts as zeros in the mean (PyTorch's default count_include_pad=True).
    stride defaults to kernel_size. x (N, C, H, W) -> (N, C, H_out, W_out).
    dL/dx: each window shares g equally, g / (kh*kw) to each of its pixels."""
    kernel, stride, padding, (ho, wo) = check_pool("avg_pool2d", x.shape, kernel_size, stride, padding)
    n, c = x.shape[:2]
    cols = UnfoldOp(kernel, stride, padding)(x)
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
    rows = concatenate([x[:, :, a:b].mean(axis=2, keepdims=True) for a, b in _adaptive_bins(h, ho)], axis=2)
    return concatenate([rows[:, :, :, a:b].mean(axis=3, keepdims=True) for a, b in _adaptive_bins(w, wo)], axis=3)

# --------------------------------------------------------------------------- batch normalisation
class BatchNormOp(Function):
    """Batch normalisation with the batch's own statistics, per channel (axis 1):

        mu_c = mean of x[:, c, ...],  var_c = mean of (x[:, c, ...] - mu_c)^2  (biased)
        xhat = (x - mu) * rstd,  rstd = 1 / sqrt(var + eps),  y = xhat * weight + bias
        x (N, C, ...) -> y (same shape); weight, bias (C,)

    Backward, with gh = g * weight and means over every axis but 1 (m values each):
        dL/dx = rstd * (gh - mean(gh) - xhat * mean(gh * xhat))
        dL/dweight = sum of g * xhat,  dL/dbias = sum of g
    After forward, .batch_mean and .batch_var (arrays, (C,)) hold the batch's
    statistics, which batch_norm() folds into the running averages.
    """

    def __init__(self, eps=1e-5):
        self.eps = eps

    def forward(self, x, weight, bias):
        y, xhat, rstd, self.batch_mean, self.batch_var = kernels.normalization.batch_norm_forward(
            x, weight, bias, self.eps)
        self.save_for_backward(x, weight, xhat, rstd)
        return y

    def backward(self, g):
        x, weight, _, _ = self.saved_tensors
        axes = (0,) + tuple(range(2, x.ndim))
        xhat, rstd = normalize(x, self.eps, axes)     # recomputed from x: differentiable
        gh = g * weight.reshape(rstd.shape)
        grad_x = rstd * (gh - gh.mean(axis=axes, keepdims=True)
                         - xhat * (gh * xhat).mean(axis=axes, keepdims=True))
        return grad_x, (g * xhat).sum(axis=axes), g.sum(axis=axes)

    def backward_arrays(self, g):
        _, weight, xhat, rstd = self.saved_arrays
        return kernels.normalization.batch_norm_backward(g, xhat, rstd, weight)


def batch_norm_composed(x, weight, bias, eps=1e-5):
    """Batch norm (batch statistics) from primitive ops: the reference BatchNormOp is tested against."""
    shape = (1, -1) + (1,) * (x.ndim - 2)
    return normalize(x, eps, (0,) + tuple(range(2, x.ndim)))[0] * weight.reshape(shape) + bias.reshape(shape)


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
        weight = Tensor._from_array(xp.ones(c, dtype=x.dtype))
    if bias is None:
        bias = Tensor._from_array(xp.zeros(c, dtype=x.dtype))
    if training:
        count = x.size // c
        if count <= 1:
            raise ValueError(f"batch_norm: expected more than 1 value per channel when training, "
                             f"got input of shape {x.shape}")
        op = BatchNormOp(eps)
        y = op(x, weight, bias)
        if running_mean is not None:
            if num_batches_tracked is not None:
                num_batches_tracked.data[...] += 1
            m = momentum if momentum is not None else 1.0 / float(num_batches_tracked.data)
            unbiased = op.batch_var * (count / (count - 1))
            running_mean.data[...] = (1 - m) * running_mean.data + m * op.batch_mean.astype(running_mean.dtype)
            running_var.data[...] = (1 - m) * running_var.data + m * unbiased.astype(running_var.dtype)
        return y
    if running_mean is None or running_var is None:
        raise ValueError("batch_norm: evaluation needs running_mean and running_var")
    shape = (1, -1) + (1,) * (x.ndim - 2)
    rstd = Tensor._from_array(1.0 / xp.sqrt(running_var.data + eps))           # constants: no gradient
    scale = (weight * rstd).reshape(shape)
    return (x - running_mean.detach().reshape(shape)) * scale + bias.reshape(shape)
