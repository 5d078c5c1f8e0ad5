"""Layers for images (N, C, H, W): convolution, pooling, batch normalisation, flatten.

The output size of a sliding window along height (and likewise width) is

    H_out = floor((H + 2 * padding - kernel_size) / stride) + 1

Initialisation follows PyTorch, through nn.init (minigrad's seeded generator, mg.manual_seed):
    Conv2d:      weight and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = C_in * kh * kw
                 (layers.init_linear_: PyTorch's kaiming_uniform with a = sqrt(5))
    BatchNorm2d: weight = 1, bias = 0, running_mean = 0, running_var = 1
"""
from ..creation import ones, zeros
from ..ops import image as C
from . import init
from .layers import check_sizes, empty_parameter, init_linear_
from .module import Module


def _window_repr(kernel, stride, padding):
    return f"kernel_size={kernel}, stride={stride}, padding={padding}"


class Conv2d(Module):
    """2-D convolution:

        y[n, o, oh, ow] = bias[o] + sum_{c, i, j} weight[o, c, i, j] * xpad[n, c, oh*s + i, ow*s + j]

    xpad is x with `padding` zeros on every side. x (N, in_channels, H, W) ->
    y (N, out_channels, H_out, W_out) with H_out = floor((H + 2 padding - kh) / stride) + 1
    (W_out likewise); weight (out_channels, in_channels, kh, kw), bias
    (out_channels,). Computed as one matrix product over im2col columns (minigrad.conv).
    kernel_size, stride and padding are ints or (height, width) pairs. No dilation or groups.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True):
        super().__init__()
        check_sizes("Conv2d", in_channels=in_channels, out_channels=out_channels)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = C.pair(kernel_size, "Conv2d kernel_size")
        self.stride = C.pair(stride, "Conv2d stride")
        self.padding = C.pair(padding, "Conv2d padding")
        if min(self.kernel_size) < 1 or min(self.stride) < 1 or min(self.padding) < 0:
            raise ValueError(f"Conv2d: kernel_size {self.kernel_size} and stride {self.stride} must be "
                             f">= 1 and padding {self.padding} >= 0")
        self.weight = empty_parameter(out_channels, in_channels, *self.kernel_size)
        self.bias = empty_parameter(out_channels) if bias else None
        init_linear_(self.weight, self.bias)

    def forward(self, x):
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"Conv2d: expected input (N, {self.in_channels}, H, W), got shape {x.shape}")
        C.check_window("Conv2d", x.shape, self.kernel_size, self.stride, self.padding)   # names the module
        return C.conv2d(x, self.weight, self.bias, self.stride, self.padding)

    def extra_repr(self):
        return (f"{self.in_channels}, {self.out_channels}, "
                + _window_repr(self.kernel_size, self.stride, self.padding)
                + ("" if self.bias is not None else ", bias=False"))


class _Pool2d(Module):
    """A sliding-window pooling: kernel_size, stride (default kernel_size) and padding,
    ints or (height, width) pairs; subclasses name the pooling function."""

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride or kernel_size, padding

    def forward(self, x):
        C.check_pool(type(self).__name__, x.shape, self.kernel_size, self.stride, self.padding)
        return self.pool(x, self.kernel_size, self.stride, self.padding)

    def extra_repr(self):
        return _window_repr(self.kernel_size, self.stride, self.padding)


class MaxPool2d(_Pool2d):
    """Max pooling: y[n, c, oh, ow] = max over the window of xpad[n, c, oh*s + i, ow*s + j].

    Padding is -inf (never the max) and at most half the kernel. stride defaults to
    kernel_size. x (N, C, H, W) -> (N, C, H_out, W_out), H_out = floor((H + 2p - k) / s) + 1.
    The gradient goes to the
    window's maximum; exact ties share it equally (PyTorch picks one).
    """

    pool = staticmethod(C.max_pool2d)


class AvgPool2d(_Pool2d):
    """Average pooling: y[n, c, oh, ow] = mean over the kh x kw window of xpad[n, c, oh*s + i, ow*s + j].

    Padding zeros count in the mean (PyTorch's count_include_pad=True). stride defaults
    to kernel_size. x (N, C, H, W) -> (N, C, H_out, W_out), H_out = floor((H + 2p - k) / s) + 1.
    """

    pool = staticmethod(C.avg_pool2d)


class AdaptiveAvgPool2d(Module):
    """Average pooling to a fixed output size, whatever the input size:
    bin (i, j) averages rows [floor(i H / H_out), ceil((i+1) H / H_out)) and the matching
    columns. output_size=1 is global average pooling: y[n, c] = mean over h, w of x[n, c].
    x (N, C, H, W) -> (N, C, H_out, W_out)."""

    def __init__(self, output_size):
        super().__init__()
        self.output_size = output_size

    def forward(self, x):
        return C.adaptive_avg_pool2d(x, self.output_size)

    def extra_repr(self):
        return f"output_size={self.output_size}"


class GlobalAvgPool2d(Module):
    """Global average pooling straight to features: y[n, c] = mean over h, w of x[n, c, h, w].
    x (N, C, H, W) -> (N, C). The same as AdaptiveAvgPool2d(1) followed by Flatten()."""

    def forward(self, x):
        if x.ndim != 4:
            raise ValueError(f"GlobalAvgPool2d: expected an input of shape (N, C, H, W), got {x.shape}")
        return x.mean(axis=(2, 3))


class BatchNorm2d(Module):
    """Batch normalisation per channel over (N, H, W):

        y = (x - mean) / sqrt(var + eps) * weight + bias,      x (N, C, H, W) -> same shape

    In training, mean and var are the batch's (var biased, dividing by m = N*H*W), and
    the buffers follow them:  running = (1 - momentum) * running + momentum * batch,
    with the unbiased batch variance (times m / (m - 1)) for running_var;
    num_batches_tracked counts the updates (momentum=None: cumulative average,
    momentum = 1 / num_batches_tracked). In eval mode running_mean and running_var are
    used instead. weight (C,) starts at 1, bias (C,) at 0.
    """

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True):
        super().__init__()
        check_sizes("BatchNorm2d", num_features=num_features)
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        self.weight = init.ones_(empty_parameter(num_features)) if affine else None
        self.bias = init.zeros_(empty_parameter(num_features)) if affine else None
        if track_running_stats:
            self.register_buffer("running_mean", zeros(num_features))
            self.register_buffer("running_var", ones(num_features))
            self.register_buffer("num_batches_tracked", zeros((), dtype="int64"))
        else:
            self.running_mean = self.running_var = self.num_batches_tracked = None

    def forward(self, x):
        if x.ndim != 4 or x.shape[1] != self.num_features:
            raise ValueError(f"BatchNorm2d: expected input (N, {self.num_features}, H, W), got shape {x.shape}")
        # without running statistics the batch's own are used in eval mode too (as in
        # PyTorch); the running buffers are None then, so nothing is updated
        return C.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                            training=self.training or not self.track_running_stats,
                            momentum=self.momentum, eps=self.eps,
                            num_batches_tracked=self.num_batches_tracked)

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"track_running_stats={self.track_running_stats}")


class Flatten(Module):
    """Flatten axes start_dim..end_dim into one: (N, C, H, W) -> (N, C*H*W) by default."""

    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x):
        start, end = self.start_dim % x.ndim, self.end_dim % x.ndim
        if start > end:
            raise ValueError(f"Flatten: start_dim {self.start_dim} comes after end_dim {self.end_dim} "
                             f"for input of shape {x.shape}")
        return x.reshape(x.shape[:start] + (-1,) + x.shape[end + 1:])

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"
