"""Image ops and layers: unfold/fold, Conv2d, MaxPool2d, AvgPool2d, AdaptiveAvgPool2d,
BatchNorm2d, Flatten.

Every forward is checked against a direct loop over output positions written here in
numpy (no im2col), over hypothesis-drawn shapes, strides and paddings; every gradient
with mg.gradcheck in float64; each test runs on "cpu" and "cuda" (conftest's `device`).
"""
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import minigrad as mg
from minigrad.ops import image as C
from minigrad.backend.kernels import convolution as conv_kernels
from minigrad import nn


# --------------------------------------------------------------------------- loop references
def pad(x, p, value=0.0):
    ph, pw = p
    return np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=value)


def out_size(size, k, s, p):
    return (size + 2 * p - k) // s + 1


def conv2d_reference(x, w, b, stride, padding):
    """y[n, o, i, j] = b[o] + sum over the window, one output position at a time."""
    n, _, h, wd = x.shape
    o, _, kh, kw = w.shape
    (sh, sw), (ph, pw) = stride, padding
    xp = pad(x, padding)
    ho, wo = out_size(h, kh, sh, ph), out_size(wd, kw, sw, pw)
    y = np.zeros((n, o, ho, wo))
    for a in range(n):
        for c in range(o):
            for i in range(ho):
                for j in range(wo):
                    window = xp[a, :, i * sh:i * sh + kh, j * sw:j * sw + kw]
                    y[a, c, i, j] = (window * w[c]).sum() + (b[c] if b is not None else 0.0)
    return y


def pool_reference(x, kernel, stride, padding, reduce, pad_value):
    n, c, h, wd = x.shape
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    xp = pad(x, padding, pad_value)
    ho, wo = out_size(h, kh, sh, ph), out_size(wd, kw, sw, pw)
    y = np.zeros((n, c, ho, wo))
    for i in range(ho):
        for j in range(wo):
            y[:, :, i, j] = reduce(xp[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw], axis=(2, 3))
    return y


def unfold_reference(x, kernel, stride, padding):
    n, c, h, wd = x.shape
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    xp = pad(x, padding)
    ho, wo = out_size(h, kh, sh, ph), out_size(wd, kw, sw, pw)
    cols = np.zeros((n, c * kh * kw, ho * wo))
    for ch in range(c):
        for di in range(kh):
            for dj in range(kw):
                for i in range(ho):
                    for j in range(wo):
                        cols[:, (ch * kh + di) * kw + dj, i * wo + j] = xp[:, ch, i * sh + di, j * sw + dj]
    return cols


def adaptive_reference(x, out):
    n, c, h, w = x.shape
    y = np.zeros((n, c) + out)
    for i in range(out[0]):
        for j in range(out[1]):
            r0, r1 = math.floor(i * h / out[0]), math.ceil((i + 1) * h / out[0])
            c0, c1 = math.floor(j * w / out[1]), math.ceil((j + 1) * w / out[1])
            y[:, :, i, j] = x[:, :, r0:r1, c0:c1].mean(axis=(2, 3))
    return y


# --------------------------------------------------------------------------- strategies
@st.composite
def windows(draw, max_side=6, max_kernel=4):
    """A (kernel, stride, padding, H, W) that fits: kernel <= padded input."""
    kernel = (draw(st.integers(1, max_kernel)), draw(st.integers(1, max_kernel)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    h = draw(st.integers(max(1, kernel[0] - 2 * padding[0]), max_side))
    w = draw(st.integers(max(1, kernel[1] - 2 * padding[1]), max_side))
    return kernel, stride, padding, h, w


@st.composite
def pool_windows(draw, max_side=6):
    """Pooling windows: padding at most half the kernel, as PyTorch requires."""
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = (draw(st.integers(0, kernel[0] // 2)), draw(st.integers(0, kernel[1] // 2)))
    h = draw(st.integers(max(1, kernel[0] - 2 * padding[0]), max_side))
    w = draw(st.integers(max(1, kernel[1] - 2 * padding[1]), max_side))
    return kernel, stride, padding, h, w


def random(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape)


# --------------------------------------------------------------------------- unfold / fold
@given(windows(), st.integers(1, 2), st.integers(1, 3), st.integers(0, 10**6))
def test_unfold_matches_loop_reference(device, window, n, c, seed):
    kernel, stride, padding, h, w = window
    x = random((n, c, h, w), seed)
    cols = C.unfold(mg.tensor(x), kernel, stride, padding)
    assert cols.device == device
    np.testing.assert_array_equal(cols.numpy(), unfold_reference(x, kernel, stride, padding))


@given(windows(), st.integers(1, 2), st.integers(1, 3), st.integers(0, 10**6))
def test_fold_is_the_adjoint_of_unfold(device, window, n, c, seed):
    """<unfold(x), cols> = <x, fold(cols)> for every x and cols: fold is unfold transposed."""
    kernel, stride, padding, h, w = window
    x = random((n, c, h, w), seed)
    cols_shape = unfold_reference(x, kernel, stride, padding).shape
    cols = random(cols_shape, seed + 1)
    left = (C.unfold(mg.tensor(x), kernel, stride, padding).numpy() * cols).sum()
    right = (x * C.fold(mg.tensor(cols), (h, w), kernel, stride, padding).numpy()).sum()
    np.testing.assert_allclose(left, right, rtol=1e-10, atol=1e-10)


@settings(max_examples=10)
@given(windows(max_side=4, max_kernel=3), st.integers(0, 10**6))
def test_unfold_and_fold_gradients_and_their_second_derivatives(device, window, seed):
    kernel, stride, padding, h, w = window
    x = mg.tensor(random((1, 2, h, w), seed), requires_grad=True)
    assert mg.gradcheck(lambda t: C.unfold(t, kernel, stride, padding) ** 2, [x])
    cols = mg.tensor(random(unfold_reference(x.numpy(), kernel, stride, padding).shape, seed), requires_grad=True)
    assert mg.gradcheck(lambda t: C.fold(t, (h, w), kernel, stride, padding) ** 2, [cols])
    # grad of grad: d/dx of (d/dx sum(unfold(x)^3)) goes fold -> unfold -> fold
    def grad_of_cube(t):
        (g,) = mg.grad((C.unfold(t, kernel, stride, padding) ** 3).sum(), [t], create_graph=True)
        return g
    assert mg.gradcheck(grad_of_cube, [x])


def test_fold_rejects_columns_of_the_wrong_shape(device):
    with pytest.raises(ValueError, match=r"fold: columns of shape \(1, 9, 5\)"):
        C.fold(mg.zeros(1, 9, 5), (4, 4), 3)


# --------------------------------------------------------------------------- convolution
@given(windows(), st.integers(1, 2), st.integers(1, 3), st.integers(1, 3), st.booleans(),
       st.integers(0, 10**6))
def test_conv2d_matches_loop_reference(device, window, n, c_in, c_out, bias, seed):
    kernel, stride, padding, h, w = window
    x = random((n, c_in, h, w), seed)
    weight = random((c_out, c_in) + kernel, seed + 1)
    b = random((c_out,), seed + 2) if bias else None
    y = C.conv2d(mg.tensor(x), mg.tensor(weight), None if b is None else mg.tensor(b), stride, padding)
    assert y.device == device
    assert y.shape == (n, c_out, (h + 2 * padding[0] - kernel[0]) // stride[0] + 1,
                       (w + 2 * padding[1] - kernel[1]) // stride[1] + 1)
    np.testing.assert_allclose(y.numpy(), conv2d_reference(x, weight, b, stride, padding), rtol=1e-10, atol=1e-10)


@given(windows(), st.integers(1, 3), st.integers(1, 3), st.integers(0, 10**6))
def test_stride_one_convolution_on_the_flattened_image_matches_loop_reference(device, window, c_in, c_out, seed):
    """conv2d_stride1_array (the input-gradient path) shifts the flat padded image per kernel offset."""
    kernel, _, padding, h, w = window
    x = random((2, c_in, h, w), seed)
    weight = random((c_out, c_in) + kernel, seed + 1)
    y = conv_kernels.conv2d_stride1(mg.tensor(x).data, mg.tensor(weight).data, padding)
    np.testing.assert_allclose(mg.tensor(y).numpy(), conv2d_reference(x, weight, None, (1, 1), padding),
                               rtol=1e-10, atol=1e-10)


@given(windows(max_side=5, max_kernel=3), st.integers(1, 2), st.integers(1, 2), st.integers(0, 10**6))
def test_conv2d_gradients_match_central_differences(device, window, c_in, c_out, seed):
    kernel, stride, padding, h, w = window
    x = mg.tensor(random((2, c_in, h, w), seed), requires_grad=True)
    weight = mg.tensor(random((c_out, c_in) + kernel, seed + 1), requires_grad=True)
    b = mg.tensor(random((c_out,), seed + 2), requires_grad=True)
    assert mg.gradcheck(lambda x, w, b: C.conv2d(x, w, b, stride, padding), [x, weight, b])


@settings(max_examples=10)
@given(windows(max_side=4, max_kernel=3), st.integers(0, 10**6))
def test_conv2d_second_derivatives_match_central_differences(device, window, seed):
    """Differentiate the gradient again (create_graph): d/dx and d/dw of dL/dx and dL/dw."""
    kernel, stride, padding, h, w = window
    x = mg.tensor(random((1, 2, h, w), seed), requires_grad=True)
    weight = mg.tensor(random((2, 2) + kernel, seed + 1), requires_grad=True)

    def grads(x, weight):
        loss = (C.conv2d(x, weight, None, stride, padding) ** 2).sum()
        gx, gw = mg.grad(loss, [x, weight], create_graph=True)
        return (gx * gx).sum() + (gw * gw).sum()
    assert mg.gradcheck(grads, [x, weight])


@settings(max_examples=10)
@given(windows(max_side=5, max_kernel=3), st.integers(0, 10**6))
def test_conv2d_gradients_with_create_graph_equal_the_fast_path(device, window, seed):
    # create_graph=True takes Conv2dOp.backward (Tensor ops), an ordinary backward the array
    # kernel; the second-derivative test above only checks the former against itself
    kernel, stride, padding, h, w = window
    x, weight, b = random((2, 2, h, w), seed), random((3, 2) + kernel, seed + 1), random((3,), seed + 2)
    g = None
    results = []
    for create_graph in (False, True):
        inputs = [mg.tensor(a, requires_grad=True) for a in (x, weight, b)]
        y = C.conv2d(*inputs, stride, padding)
        g = g if g is not None else mg.tensor(random(y.shape, seed + 3))
        results.append([t.numpy() for t in mg.grad((y * g).sum(), inputs, create_graph=create_graph)])
    for fast, graph, name in zip(*results, ("x", "weight", "bias")):
        np.testing.assert_allclose(graph, fast, rtol=1e-10, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("padding", [0, 1, 2])
def test_conv2d_stride_one_input_gradient_equals_the_fold_path(device, padding):
    """With stride 1 the input gradient is computed as a full convolution with the flipped
    kernel; it must agree with fold(W^T g), the composed (unfold + matmul) conv's path."""
    x = random((2, 3, 6, 5), 0)
    weight = random((4, 3, 3, 3), 1)
    g = random((2, 4, 6 + 2 * padding - 2, 5 + 2 * padding - 2), 2)
    grads = []
    for fn in (C.conv2d, C.conv2d_composed):
        xt, wt = mg.tensor(x, requires_grad=True), mg.tensor(weight, requires_grad=True)
        fn(xt, wt, None, 1, padding).backward(mg.tensor(g))
        grads.append((xt.grad.numpy(), wt.grad.numpy()))
    np.testing.assert_allclose(grads[0][0], grads[1][0], rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(grads[0][1], grads[1][1], rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("stride, padding", [(1, 1), (2, 1), (1, 0)])
def test_conv2d_in_chunks_of_images_equals_the_loop_reference(monkeypatch, stride, padding):
    """On the CPU big batches go through unfold + matmul a few images at a time;
    force one image per chunk and check values and gradients."""
    monkeypatch.setattr(conv_kernels, "_CHUNK_BYTES", 1)
    x = mg.tensor(random((5, 3, 6, 7), 0), requires_grad=True)
    weight = mg.tensor(random((4, 3, 3, 3), 1), requires_grad=True)
    b = mg.tensor(random((4,), 2), requires_grad=True)
    y = C.conv2d(x, weight, b, stride, padding)
    np.testing.assert_allclose(y.numpy(), conv2d_reference(x.numpy(), weight.numpy(), b.numpy(),
                                                           (stride, stride), (padding, padding)), atol=1e-10)
    g = random(y.shape, 3)
    y.backward(mg.tensor(g))
    xs, ws = mg.tensor(x.numpy(), requires_grad=True), mg.tensor(weight.numpy(), requires_grad=True)
    C.conv2d_composed(xs, ws, None, stride, padding).backward(mg.tensor(g))
    np.testing.assert_allclose(x.grad.numpy(), xs.grad.numpy(), atol=1e-10)
    np.testing.assert_allclose(weight.grad.numpy(), ws.grad.numpy(), atol=1e-10)


def test_conv2d_layer_uses_its_own_weights_and_pytorch_layout(device):
    mg.manual_seed(0)
    layer = nn.Conv2d(3, 5, (3, 2), stride=(2, 1), padding=(1, 0))
    assert layer.weight.shape == (5, 3, 3, 2) and layer.bias.shape == (5,)
    assert layer.weight.device == device
    x = random((2, 3, 7, 6), 3).astype(np.float32)
    y = layer(mg.tensor(x))
    expected = conv2d_reference(x.astype(np.float64), layer.weight.numpy().astype(np.float64),
                                layer.bias.numpy().astype(np.float64), (2, 1), (1, 0))
    assert y.shape == expected.shape == (2, 5, 4, 5)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-4, atol=1e-5)
    assert nn.Conv2d(3, 5, 3, bias=False).bias is None


def test_conv2d_init_is_uniform_within_one_over_sqrt_fan_in():
    mg.manual_seed(1)
    layer = nn.Conv2d(16, 32, 3)
    bound = 1 / math.sqrt(16 * 9)
    for values in (layer.weight.numpy(), layer.bias.numpy()):
        assert np.abs(values).max() <= bound
    w = layer.weight.numpy()
    assert np.abs(w).max() > 0.98 * bound                      # fills the interval ...
    assert abs(w.std() - bound / math.sqrt(3)) < 0.05 * bound  # ... uniformly: std = bound / sqrt(3)
    mg.manual_seed(1)
    np.testing.assert_array_equal(nn.Conv2d(16, 32, 3).weight.numpy(), w)   # seeded


def test_conv2d_errors_name_the_layer_and_the_shapes(device):
    layer = nn.Conv2d(3, 4, 5, padding=1)
    with pytest.raises(ValueError, match=r"Conv2d: expected input \(N, 3, H, W\), got shape \(2, 4, 8, 8\)"):
        layer(mg.zeros(2, 4, 8, 8))
    with pytest.raises(ValueError, match=r"Conv2d: kernel \(5, 5\) is larger than the padded input \(4, 4\)"):
        layer(mg.zeros(1, 3, 2, 2))
    with pytest.raises(ValueError, match=r"Conv2d: expected input .* got shape \(3, 8, 8\)"):
        layer(mg.zeros(3, 8, 8))
    with pytest.raises(ValueError, match=r"conv2d: input has 2 channels"):
        C.conv2d(mg.zeros(1, 2, 5, 5), mg.zeros(4, 3, 3, 3))


def test_conv2d_trains_a_filter_towards_a_target_filter(device):
    """Gradient descent on ||conv(x, w) - conv(x, w_true)||^2 recovers w_true."""
    rng = np.random.default_rng(0)
    x = mg.tensor(rng.standard_normal((4, 2, 6, 6)))
    w_true = rng.standard_normal((3, 2, 3, 3))
    target = C.conv2d(x, mg.tensor(w_true), padding=1)
    w = mg.tensor(np.zeros((3, 2, 3, 3)), requires_grad=True)
    for _ in range(200):
        loss = ((C.conv2d(x, w, padding=1) - target) ** 2).mean()
        w.grad = None
        loss.backward()
        w.data -= 0.5 * w.grad.data
    np.testing.assert_allclose(w.numpy(), w_true, atol=1e-3)


# --------------------------------------------------------------------------- pooling
@given(pool_windows(), st.integers(1, 2), st.integers(1, 3), st.integers(0, 10**6))
def test_max_and_avg_pool_match_loop_reference(device, window, n, c, seed):
    kernel, stride, padding, h, w = window
    x = random((n, c, h, w), seed)
    y_max = nn.MaxPool2d(kernel, stride, padding)(mg.tensor(x))
    y_avg = nn.AvgPool2d(kernel, stride, padding)(mg.tensor(x))
    assert y_max.device == y_avg.device == device
    np.testing.assert_array_equal(y_max.numpy(), pool_reference(x, kernel, stride, padding, np.max, -np.inf))
    np.testing.assert_allclose(y_avg.numpy(), pool_reference(x, kernel, stride, padding, np.mean, 0.0),
                               rtol=1e-12, atol=1e-12)


@given(pool_windows(max_side=5), st.integers(0, 10**6))
def test_pool_gradients_match_central_differences(device, window, seed):
    kernel, stride, padding, h, w = window
    x = mg.tensor(random((2, 2, h, w), seed), requires_grad=True)   # continuous values: no ties
    assert mg.gradcheck(lambda t: C.max_pool2d(t, kernel, stride, padding), [x])
    assert mg.gradcheck(lambda t: C.avg_pool2d(t, kernel, stride, padding), [x])


def test_max_pool_sends_the_gradient_to_the_maximum_only(device):
    x = mg.tensor(np.array([[[[1.0, 5.0, 2.0, 0.0],
                              [3.0, 4.0, 9.0, 8.0]]]]), requires_grad=True)
    y = nn.MaxPool2d(2)(x)
    np.testing.assert_array_equal(y.numpy(), [[[[5.0, 9.0]]]])
    y.backward(mg.tensor(np.array([[[[10.0, 20.0]]]])))
    np.testing.assert_array_equal(x.grad.numpy(), [[[[0, 10, 0, 0], [0, 0, 20, 0]]]])


def test_pool_padding_larger_than_half_the_kernel_is_an_error(device):
    with pytest.raises(ValueError, match=r"MaxPool2d: padding \(2, 2\) must be at most half the kernel \(3, 3\)"):
        nn.MaxPool2d(3, 1, 2)(mg.zeros(1, 1, 5, 5))
    with pytest.raises(ValueError, match=r"AvgPool2d: kernel \(3, 3\) is larger than the padded input \(2, 2\)"):
        nn.AvgPool2d(3)(mg.zeros(1, 1, 2, 2))


@given(st.integers(1, 7), st.integers(1, 7), st.integers(1, 4), st.integers(1, 4), st.integers(0, 10**6))
def test_adaptive_avg_pool_matches_pytorch_bins(device, h, w, ho, wo, seed):
    x = random((2, 3, h, w), seed)
    y = nn.AdaptiveAvgPool2d((ho, wo))(mg.tensor(x))
    assert y.shape == (2, 3, ho, wo)
    np.testing.assert_allclose(y.numpy(), adaptive_reference(x, (ho, wo)), rtol=1e-12, atol=1e-12)


@settings(max_examples=10)
@given(st.integers(1, 5), st.integers(1, 5), st.integers(1, 3), st.integers(0, 10**6))
def test_adaptive_avg_pool_gradient(device, h, w, out, seed):
    x = mg.tensor(random((1, 2, h, w), seed), requires_grad=True)
    assert mg.gradcheck(lambda t: C.adaptive_avg_pool2d(t, out), [x])


def test_global_average_pooling(device):
    x = random((2, 3, 4, 5), 0)
    np.testing.assert_allclose(nn.AdaptiveAvgPool2d(1)(mg.tensor(x)).numpy(), x.mean(axis=(2, 3), keepdims=True))
    np.testing.assert_allclose(nn.GlobalAvgPool2d()(mg.tensor(x)).numpy(), x.mean(axis=(2, 3)))


def test_flatten(device):
    x = mg.tensor(random((2, 3, 4, 5), 0))
    assert nn.Flatten()(x).shape == (2, 60)
    assert nn.Flatten(0)(x).shape == (120,)
    assert nn.Flatten(1, 2)(x).shape == (2, 12, 5)
    np.testing.assert_array_equal(nn.Flatten()(x).numpy(), x.numpy().reshape(2, 60))


# --------------------------------------------------------------------------- batch normalisation
def batch_norm_reference(x, weight, bias, eps=1e-5):
    mean = x.mean(axis=(0, 2, 3), keepdims=True)
    var = ((x - mean) ** 2).mean(axis=(0, 2, 3), keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight[None, :, None, None] + bias[None, :, None, None]


def test_batch_norm_training_and_running_statistics_step_by_step(device):
    rng = np.random.default_rng(0)
    bn = nn.BatchNorm2d(3, momentum=0.1)
    bn.weight.data[...] = mg.tensor(rng.uniform(0.5, 2.0, 3).astype(np.float32)).data
    bn.bias.data[...] = mg.tensor(rng.standard_normal(3).astype(np.float32)).data
    weight, bias = bn.weight.numpy().astype(np.float64), bn.bias.numpy().astype(np.float64)
    running_mean, running_var = np.zeros(3), np.ones(3)
    np.testing.assert_array_equal(bn.running_mean.numpy(), running_mean)
    np.testing.assert_array_equal(bn.running_var.numpy(), running_var)
    for step in range(1, 4):
        x = (rng.standard_normal((4, 3, 5, 2)) * [1.0, 3.0, 0.5][step - 1] + step).astype(np.float32)
        y = bn(mg.tensor(x))
        x64 = x.astype(np.float64)
        np.testing.assert_allclose(y.numpy(), batch_norm_reference(x64, weight, bias), rtol=1e-4, atol=1e-4)
        m = 4 * 5 * 2
        batch_mean = x64.mean(axis=(0, 2, 3))
        unbiased_var = x64.var(axis=(0, 2, 3)) * m / (m - 1)
        running_mean = 0.9 * running_mean + 0.1 * batch_mean
        running_var = 0.9 * running_var + 0.1 * unbiased_var
        np.testing.assert_allclose(bn.running_mean.numpy(), running_mean, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(bn.running_var.numpy(), running_var, rtol=1e-5, atol=1e-6)
        assert int(bn.num_batches_tracked.item()) == step
    bn.eval()
    x = rng.standard_normal((2, 3, 4, 4)).astype(np.float32)
    expected = ((x - running_mean[None, :, None, None]) / np.sqrt(running_var[None, :, None, None] + 1e-5)
                * weight[None, :, None, None] + bias[None, :, None, None])
    np.testing.assert_allclose(bn(mg.tensor(x)).numpy(), expected, rtol=1e-4, atol=1e-5)
    before = bn.running_mean.numpy().copy()
    bn(mg.tensor(x))
    np.testing.assert_array_equal(bn.running_mean.numpy(), before)       # eval never updates
    assert int(bn.num_batches_tracked.item()) == 3


def test_batch_norm_eval_with_a_tiny_running_variance_keeps_eps_inside_the_square_root(device):
    # with variance ~1, (x - mean) / sqrt(var + eps) and (x - mean) / (sqrt(var) + eps) agree to
    # 1e-5; at variance 0 and 1e-8 they differ by a factor of hundreds
    bn = nn.BatchNorm2d(3, eps=1e-5).to(dtype="float64")
    bn.running_var.data[...] = mg.tensor(np.array([0.0, 1e-8, 1.0])).data
    bn.running_mean.data[...] = mg.tensor(np.array([0.5, -0.25, 0.0])).data
    bn.eval()
    x = np.random.default_rng(3).standard_normal((2, 3, 2, 2))
    expected = ((x - np.array([0.5, -0.25, 0.0])[None, :, None, None])
                / np.sqrt(np.array([0.0, 1e-8, 1.0]) + 1e-5)[None, :, None, None])
    np.testing.assert_allclose(bn(mg.tensor(x)).numpy(), expected, rtol=1e-10)


def test_batch_norm_training_on_a_nearly_constant_channel_keeps_eps_inside_the_square_root(device):
    x = np.zeros((4, 2, 1, 1))
    x[:, 0, 0, 0] = [1e-4, -1e-4, 1e-4, -1e-4]           # batch variance 1e-8, far below eps
    x[:, 1, 0, 0] = [1.0, 2.0, 3.0, 4.0]
    y = nn.BatchNorm2d(2, eps=1e-5).to(dtype="float64")(mg.tensor(x)).numpy()
    mean, var = x.mean(axis=(0, 2, 3), keepdims=True), x.var(axis=(0, 2, 3), keepdims=True)
    np.testing.assert_allclose(y, (x - mean) / np.sqrt(var + 1e-5), rtol=1e-9)
    assert abs(y[0, 0, 0, 0]) < 0.04                    # eps outside the root would give 0.91


def test_batch_norm_eval_output_of_one_image_does_not_depend_on_the_batch(device):
    bn = nn.BatchNorm2d(2)
    bn(mg.tensor(random((8, 2, 3, 3), 0).astype(np.float32)))
    bn.eval()
    batch = random((4, 2, 3, 3), 1).astype(np.float32)
    alone = bn(mg.tensor(batch[:1])).numpy()
    np.testing.assert_allclose(bn(mg.tensor(batch)).numpy()[:1], alone, rtol=1e-6)


def test_batch_norm_momentum_none_is_the_cumulative_average(device):
    bn = nn.BatchNorm2d(1, momentum=None)
    batches = [random((3, 1, 2, 2), s).astype(np.float32) for s in range(3)]
    for x in batches:
        bn(mg.tensor(x))
    np.testing.assert_allclose(bn.running_mean.numpy(), [np.mean([b.mean() for b in batches])], rtol=1e-5)


def test_batch_norm_buffers_are_in_the_state_dict_not_the_parameters(device):
    bn = nn.BatchNorm2d(4)
    assert sorted(bn.state_dict()) == ["bias", "num_batches_tracked", "running_mean", "running_var", "weight"]
    assert len(bn.parameters()) == 2
    assert bn.num_batches_tracked.dtype == np.int64


@given(st.integers(1, 3), st.integers(1, 3), st.integers(1, 3), st.integers(1, 3), st.integers(0, 10**6))
def test_batch_norm_gradients_match_central_differences(device, n, c, h, w, seed):
    if n * h * w < 2:
        n = 2
    x = mg.tensor(random((n, c, h, w), seed), requires_grad=True)
    weight = mg.tensor(random((c,), seed + 1), requires_grad=True)
    bias = mg.tensor(random((c,), seed + 2), requires_grad=True)
    fn = lambda x, w, b: C.batch_norm(x, None, None, w, b, training=True)
    assert mg.gradcheck(fn, [x, weight, bias], atol=1e-5, rtol=1e-4)
    y = fn(x, weight, bias)
    np.testing.assert_allclose(y.numpy(), batch_norm_reference(x.numpy(), weight.numpy(), bias.numpy()),
                               rtol=1e-9, atol=1e-9)


def test_batch_norm_eval_gradients_and_second_derivatives(device):
    x = mg.tensor(random((3, 2, 2, 2), 0), requires_grad=True)
    weight = mg.tensor(random((2,), 1), requires_grad=True)
    bias = mg.tensor(random((2,), 2), requires_grad=True)
    running_mean, running_var = mg.tensor(random((2,), 3)), mg.tensor(np.array([0.5, 2.0]))
    assert mg.gradcheck(lambda x, w, b: C.batch_norm(x, running_mean, running_var, w, b, training=False),
                        [x, weight, bias])

    def grad_norm(x, w):
        loss = (C.batch_norm(x, None, None, w, bias, training=True) ** 3).sum()
        gx, gw = mg.grad(loss, [x, w], create_graph=True)
        return (gx * gx).sum() + (gw * gw).sum()
    assert mg.gradcheck(grad_norm, [x, weight])


def test_batch_norm_errors(device):
    with pytest.raises(ValueError, match=r"BatchNorm2d: expected input \(N, 3, H, W\), got shape \(2, 4, 5, 5\)"):
        nn.BatchNorm2d(3)(mg.zeros(2, 4, 5, 5))
    with pytest.raises(ValueError, match=r"more than 1 value per channel"):
        nn.BatchNorm2d(3)(mg.zeros(1, 3, 1, 1))


# --------------------------------------------------------------------------- a small network end to end
def test_conv_net_moves_to_device_and_backpropagates_to_every_parameter(device):
    mg.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Conv2d(4, 8, 3, stride=2, padding=1), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                        nn.Dense(8, 3))
    x = mg.tensor(random((5, 1, 8, 8), 0).astype(np.float32))
    out = net(x)
    assert out.shape == (5, 3) and out.device == device
    out.sum().backward()
    for name, param in net.named_parameters():
        assert param.grad is not None and param.grad.device == device, name
        assert np.abs(param.grad.numpy()).sum() > 0, name
