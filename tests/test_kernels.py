"""The kernel layer (minigrad/backend/kernels): every kernel equals the op's math written
with plain Tensor operations, on "cpu" and on the cupy double; every fused op's
backward_arrays (the fast path) equals its Tensor backward (what grad-of-grad uses);
the thread setting changes no result; erf is accurate in float32 and float64."""
import math
import os
import subprocess
import sys

import numpy as np
import pytest

import minigrad as mg
import minigrad.functional as F
from minigrad.backend import kernels
from minigrad.backend.kernels import parallel, special
from minigrad.ops import composite, image, reduce as reduce_ops


@pytest.fixture
def threads():
    """Restore the thread count a test changes."""
    before = mg.get_num_threads()
    yield
    mg.set_num_threads(before)


def math_erf(values):
    return np.array([math.erf(float(v)) for v in values.reshape(-1)]).reshape(values.shape)


# --------------------------------------------------------------------------- threads
def test_set_num_threads_rejects_what_is_not_a_positive_integer(threads):
    for bad in (0, -1, 1.5, "2", True):
        with pytest.raises(ValueError, match="set_num_threads"):
            mg.set_num_threads(bad)
    mg.set_num_threads(3)
    assert mg.get_num_threads() == 3


def test_num_threads_comes_from_the_environment_or_the_cores():
    code = "import minigrad as mg; print(mg.get_num_threads())"
    env = dict(os.environ, MINIGRAD_NUM_THREADS="3")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "3"
    env.pop("MINIGRAD_NUM_THREADS")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == str(len(os.sched_getaffinity(0)))
    env["MINIGRAD_NUM_THREADS"] = "many"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode != 0 and "MINIGRAD_NUM_THREADS" in out.stderr


def test_blocks_cover_every_row_once_and_give_each_thread_work():
    for rows, row_bytes, parts in ((1, 10, 4), (7, 1 << 20, 2), (1000, 64, 2), (1000, 64, 3), (5, 4, 8)):
        spans = parallel.blocks(rows, row_bytes, parts)
        covered = [i for lo, hi in spans for i in range(lo, hi)]
        assert covered == list(range(rows))
        assert len(spans) >= min(rows, parts)


def test_blocks_are_about_block_bytes_each():
    for row_bytes, block_bytes in ((64, parallel.BLOCK_BYTES), (64, 4 << 20), (3 << 20, 1 << 20)):
        spans = parallel.blocks(100_000, row_bytes, 1, block_bytes=block_bytes)
        assert max(hi - lo for lo, hi in spans) == max(1, block_bytes // row_bytes)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_flat_blocks_hold_about_block_bytes_of_all_arrays_whatever_their_dtype(threads, dtype):
    """The optimizers' blocks once assumed 4-byte elements: float64 blocks were twice the size."""
    mg.set_num_threads(1)
    arrays = [np.zeros(1 << 20, dtype=dtype) for _ in range(4)]
    sizes = []

    def add_one(*blocks):
        sizes.append(blocks[0].size)
        for block in blocks:
            block += 1
    parallel.for_flat_blocks(add_one, arrays)
    assert all(np.all(a == 1) for a in arrays)                  # every element once, in place
    assert max(sizes) * 4 * np.dtype(dtype).itemsize == parallel.BLOCK_BYTES


def test_for_blocks_runs_every_block_and_reraises_a_blocks_error(threads):
    mg.set_num_threads(2)
    out = np.zeros(100_000)

    def work(lo, hi):
        out[lo:hi] = np.arange(lo, hi)
    parallel.for_blocks(100_000, 8, work, row_elements=1)
    assert np.array_equal(out, np.arange(100_000))

    def broken(lo, hi):
        if lo > 0:
            raise RuntimeError("block failed")
    with pytest.raises(RuntimeError, match="block failed"):
        parallel.for_blocks(100_000, 8, broken, row_elements=1)


def test_fused_ops_give_identical_results_at_one_and_two_threads(threads):
    rng = np.random.default_rng(0)
    x = mg.tensor(rng.standard_normal((300, 257)).astype(np.float32), requires_grad=True)
    w = mg.tensor(rng.standard_normal(257).astype(np.float32), requires_grad=True)
    ids = rng.integers(0, 257, 300)

    def run():
        x.grad = w.grad = None
        out = (F.gelu(x) * F.softmax(x) + F.log_softmax(x) + F.layer_norm(x, w, w)).sum()
        out = out + F.cross_entropy(x, ids)
        out.backward()
        return [out.numpy(), x.grad.numpy(), w.grad.numpy()]
    mg.set_num_threads(1)
    one = run()
    mg.set_num_threads(2)
    for a, b in zip(one, run()):
        assert np.array_equal(a, b)


# --------------------------------------------------------------------------- erf
def test_erf_float32_is_within_one_rounding_of_the_true_value(device):
    x = np.concatenate([np.linspace(-5, 5, 4001), np.geomspace(1e-30, 1, 200), [0.0, -0.0]]).astype(np.float32)
    got = mg.ops.erf(mg.tensor(x)).numpy()
    assert got.dtype == np.float32
    exact = math_erf(x.astype(np.float64))
    ulp = np.spacing(np.abs(exact).astype(np.float32)).astype(np.float64)
    assert np.max(np.abs(got - exact) / ulp) <= 0.55


def test_erf_float64_without_scipy_is_within_a_few_ulp():
    x = np.concatenate([np.linspace(-7, 7, 20001), np.geomspace(1e-300, 1, 300), -np.geomspace(1e-20, 5, 300)])
    got = special.erf_float64(x)
    exact = math_erf(x)
    assert np.max(np.abs(got - exact) / np.spacing(np.abs(exact))) <= 4
    assert np.array_equal(np.sign(got), np.sign(x))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_erf_keeps_nan_and_sends_infinities_to_plus_minus_one(device, dtype):
    """erf_float64 (float64 without scipy, and on the cupy double) used to start from 1 and
    fill in only the finite ranges, so erf(nan) came out as 1."""
    x = mg.tensor(np.array([np.nan, np.inf, -np.inf, 0.5, -np.nan], dtype=dtype))
    want = np.array([np.nan, 1.0, -1.0, math.erf(0.5), np.nan])
    tol = 1e-7 if dtype == np.float32 else 1e-15
    np.testing.assert_allclose(mg.ops.erf(x).numpy(), want, rtol=tol)       # nan == nan here
    if dtype == np.float64:                       # the scipy-less formula on this device's arrays
        got = special.erf_float64(x.data)
        np.testing.assert_allclose(mg.tensor(got).numpy(), want, rtol=tol)


def test_erf_float16_and_integers_keep_or_pick_a_float_dtype():
    x16 = np.linspace(-3, 3, 101).astype(np.float16)
    got = special.erf(x16)
    assert got.dtype == np.float16
    assert np.max(np.abs(got.astype(np.float64) - math_erf(x16.astype(np.float64)))) < 1e-3
    assert special.erf(np.array([0, 1, -2])).dtype == np.float64


# --------------------------------------------------------------------------- fused ops: kernel == composed math
def _data(shape, seed=0, dtype=np.float64):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


FUSED_UNARY = {
    "gelu": (lambda t: F.gelu(t), lambda t: composite.gelu_composed(t)),
    "gelu_tanh": (lambda t: F.gelu(t, approximate="tanh"), lambda t: composite.gelu_composed(t, "tanh")),
    "softmax": (lambda t: F.softmax(t), lambda t: composite.softmax_composed(t)),
    "softmax_axis0": (lambda t: F.softmax(t, axis=0), lambda t: composite.softmax_composed(t, axis=0)),
    "log_softmax": (lambda t: F.log_softmax(t), lambda t: composite.log_softmax_composed(t)),
}


@pytest.mark.parametrize("name", sorted(FUSED_UNARY))
@pytest.mark.parametrize("shape", [(3, 5), (70, 300), (2, 3, 4), (1,)])
def test_fused_kernel_equals_composed_math_in_value_and_gradient(device, name, shape):
    fused, composed = FUSED_UNARY[name]
    x = mg.tensor(_data(shape), requires_grad=True)
    upstream = mg.tensor(_data(shape, seed=1))
    y = fused(x)
    (gx,) = mg.grad((y * upstream).sum(), [x])
    y_ref = composed(x)
    (gx_ref,) = mg.grad((y_ref * upstream).sum(), [x])
    np.testing.assert_allclose(y.numpy(), y_ref.numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(gx.numpy(), gx_ref.numpy(), rtol=1e-11, atol=1e-13)


@pytest.mark.parametrize("shape", [(3, 5), (70, 300), (4, 1)])
def test_layer_norm_kernel_equals_composed_math(device, shape):
    x = mg.tensor(_data(shape), requires_grad=True)
    w = mg.tensor(_data(shape[-1:], 2), requires_grad=True)
    b = mg.tensor(_data(shape[-1:], 3), requires_grad=True)
    upstream = mg.tensor(_data(shape, seed=1))
    grads = mg.grad((F.layer_norm(x, w, b) * upstream).sum(), [x, w, b])
    grads_ref = mg.grad((composite.layer_norm_composed(x, w, b, 1e-5) * upstream).sum(), [x, w, b])
    for a, r in zip(grads, grads_ref):
        np.testing.assert_allclose(a.numpy(), r.numpy(), rtol=1e-10, atol=1e-12)


FUSED_FUNCTIONS = {   # name -> (Function factory, input shapes)
    "gelu": (lambda: composite.GeluOp(), [(6, 9)]),
    "gelu_tanh": (lambda: composite.GeluOp("tanh"), [(6, 9)]),
    "softmax": (lambda: composite.SoftmaxOp(-1), [(6, 9)]),
    "log_softmax": (lambda: composite.LogSoftmaxOp(0), [(6, 9)]),
    "layer_norm": (lambda: composite.LayerNormOp(1e-5), [(6, 9), (9,), (9,)]),
    "batch_norm": (lambda: image.BatchNormOp(1e-5), [(4, 3, 5, 5), (3,), (3,)]),
    "conv2d": (lambda: image.Conv2dOp(stride=1, padding=1), [(2, 3, 6, 6), (4, 3, 3, 3), (4,)]),
    "conv2d_strided": (lambda: image.Conv2dOp(stride=2, padding=0), [(2, 3, 7, 7), (4, 3, 3, 3), (4,)]),
    "linear": (lambda: reduce_ops.LinearOp(), [(2, 5, 7), (7, 4), (4,)]),
    "relu": (lambda: mg.ops.Relu(), [(6, 9)]),
    "linear_without_bias": (lambda: reduce_ops.LinearOp(), [(6, 7), (7, 4)]),
}


@pytest.mark.parametrize("name", sorted(FUSED_FUNCTIONS))
def test_backward_arrays_equals_the_tensor_backward(device, name):
    """The engine takes backward_arrays for a plain backward and the Tensor backward
    under create_graph=True: both must give the same gradients."""
    make, shapes = FUSED_FUNCTIONS[name]
    inputs = [mg.tensor(_data(s, seed=i), requires_grad=True) for i, s in enumerate(shapes)]
    upstream = mg.tensor(_data(make()(*inputs).shape, seed=9))
    fast = mg.grad((make()(*inputs) * upstream).sum(), inputs)
    graph = mg.grad((make()(*inputs) * upstream).sum(), inputs, create_graph=True)
    for a, b in zip(fast, graph):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-11, atol=1e-13)


# --------------------------------------------------------------------------- float16
def test_float16_softmax_log_softmax_layer_norm_accumulate_in_float32(device):
    row = np.full((2, 4000), 0.01, dtype=np.float16)
    row[:, 0] = 10.0
    x = mg.tensor(row)
    reference = row.astype(np.float32)
    for fused, composed in ((F.softmax, composite.softmax_composed),
                            (F.log_softmax, composite.log_softmax_composed)):
        got = fused(x)
        assert got.dtype == mg.float16
        want = composed(mg.tensor(reference)).numpy().astype(np.float16)
        np.testing.assert_array_equal(got.numpy(), want)
    # mean of 4000 values of 300 is 300, but a float16 running sum overflows at 65504
    big = mg.tensor(np.full((3, 4000), 300.0, dtype=np.float16) + _data((3, 4000)).astype(np.float16))
    normed = F.layer_norm(big)
    assert normed.dtype == mg.float16 and np.all(np.isfinite(normed.numpy()))
    want = composite.layer_norm_composed(mg.tensor(big.numpy().astype(np.float32)), 1.0, 0.0, 1e-5)
    np.testing.assert_allclose(normed.numpy(), want.numpy(), atol=2e-3)


# --------------------------------------------------------------------------- attention
def _attention_inputs(lead, tq, tk, d, seed=0):
    rng = np.random.default_rng(seed)
    return [mg.tensor(rng.standard_normal(lead + (t, d)), requires_grad=True) for t in (tq, tk, tk)]


def _causal(tq, tk):
    return np.tril(np.ones((tq, tk), dtype=bool), k=tk - tq)


ATTENTION_CASES = {   # name -> (lead, Tq, Tk, d, mask or None)
    "plain": ((2, 3), 5, 7, 4, None),
    "causal": ((2,), 6, 6, 3, _causal(6, 6)),
    "cached queries": ((1, 2), 3, 8, 4, _causal(3, 8)),
    "padding and a fully masked row": ((2, 1), 4, 4, 2, np.array([[[[1, 1, 0, 0]]], [[[0, 0, 0, 0]]]], bool)),
    "query blocks (T x T over the block size)": ((1,), 400, 400, 3, _causal(400, 400)),
}


@pytest.mark.parametrize("case", sorted(ATTENTION_CASES))
def test_fused_attention_equals_composed_math_in_value_and_gradient(device, case):
    lead, tq, tk, d, mask = ATTENTION_CASES[case]
    q, k, v = _attention_inputs(lead, tq, tk, d)
    allowed = None if mask is None else mg.tensor(mask).data
    upstream = mg.tensor(_data(lead + (tq, d), seed=5))
    out = composite.AttentionOp(allowed)(q, k, v)
    fused = mg.grad((out * upstream).sum(), [q, k, v])
    weights = composite.attention_weights_composed(q, k, allowed)
    out_ref = weights @ v
    composed = mg.grad((out_ref * upstream).sum(), [q, k, v])
    np.testing.assert_allclose(out.numpy(), out_ref.numpy(), rtol=1e-11, atol=1e-13)
    for a, b in zip(fused, composed):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-10, atol=1e-12)
    graph = mg.grad((composite.AttentionOp(allowed)(q, k, v) * upstream).sum(), [q, k, v], create_graph=True)
    for a, b in zip(fused, graph):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-10, atol=1e-12)
    assert np.all(np.isfinite(out.numpy()))


def _mask_of_shape(shape, tq, tk, seed=1):
    """A random boolean mask of `shape` (broadcastable to (B, H, Tq, Tk)); some rows of keys fully
    masked, so that padding-mask batches where every key of one query is hidden are covered too."""
    if shape == ():
        return np.array(True)
    mask = np.random.default_rng(seed).random(shape) > 0.3
    mask[..., -1] = False                       # the last key masked everywhere
    if len(shape) >= 2 and shape[-2] == tq and tq > 1:
        mask[..., 1, :] = False                 # a query that may attend to nothing
    return mask


MASK_SHAPES = {   # name -> mask shape, for q (B=2, H=2, Tq, d) and k, v (2, 2, Tk, d)
    "key padding (B, 1, 1, Tk)": lambda tq, tk: (2, 1, 1, tk),
    "key padding (1, Tk)": lambda tq, tk: (1, tk),
    "key padding (Tk,)": lambda tq, tk: (tk,),
    "per batch (B, 1, Tq, Tk)": lambda tq, tk: (2, 1, tq, tk),
    "shared (Tq, Tk)": lambda tq, tk: (tq, tk),
    "query rows (Tq, 1)": lambda tq, tk: (tq, 1),
    "0-d": lambda tq, tk: (),
}


@pytest.mark.parametrize("dtype, t", [(np.float32, 600), (np.float64, 400)])   # Tq Tk over 1 MB of scores
@pytest.mark.parametrize("name", sorted(MASK_SHAPES))
def test_fused_attention_takes_a_mask_of_any_broadcastable_shape_across_query_blocks(device, dtype, t, name):
    """A mask with one row (key padding) used to be sliced by query block: from the second block
    on it was empty and the op crashed (T > 512 in float32); a 1-D (Tk,) mask was sliced along its
    keys as if they were queries (a crash, or with Tq = 1 the first key's mask for every key)."""
    shape = MASK_SHAPES[name]
    for tq, tk in ((t, t), (1, 9), (3, 9)):
        mask = _mask_of_shape(shape(tq, tk), tq, tk)
        rng = np.random.default_rng(0)
        q, k, v = (mg.tensor(rng.standard_normal((2, 2, n, 4)).astype(dtype), requires_grad=True)
                   for n in (tq, tk, tk))
        upstream = mg.tensor(rng.standard_normal((2, 2, tq, 4)).astype(dtype))
        allowed = F.attention_mask(mask, (2, 2, tq, tk), q.device)
        out = composite.AttentionOp(allowed)(q, k, v)
        fused = mg.grad((out * upstream).sum(), [q, k, v])
        # the reference in float64: the composed math on the full broadcast mask
        q64, k64, v64 = (mg.tensor(x.numpy().astype(np.float64), requires_grad=True) for x in (q, k, v))
        full = np.broadcast_to(mask, (2, 2, tq, tk))
        out_ref = composite.attention_weights_composed(q64, k64, mg.tensor(full).data) @ v64
        composed = mg.grad((out_ref * mg.tensor(upstream.numpy().astype(np.float64))).sum(), [q64, k64, v64])
        tol = dict(rtol=1e-4, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-12)
        assert out.dtype == q.dtype
        np.testing.assert_allclose(out.numpy(), out_ref.numpy(), **tol)
        for a, b in zip(fused, composed):
            np.testing.assert_allclose(a.numpy(), b.numpy(), **tol)


def test_fused_attention_passes_gradcheck_and_grad_of_grad(device):
    q, k, v = _attention_inputs((2,), 3, 4, 2)
    mask = mg.tensor(np.array([[1, 1, 0, 0], [1, 1, 1, 0], [0, 0, 0, 0]], bool)).data
    assert mg.gradcheck(lambda a, b, c: composite.AttentionOp(mask)(a, b, c), [q, k, v])
    assert mg.gradcheck(lambda a, b, c: composite.AttentionOp(None)(a, b, c), [q, k, v])
    # second derivatives of the fused op equal those of the composed math
    first = mg.grad((composite.AttentionOp(mask)(q, k, v) ** 2).sum(), [q, k, v], create_graph=True)
    first_ref = mg.grad(((composite.attention_weights_composed(q, k, mask) @ v) ** 2).sum(), [q, k, v],
                        create_graph=True)
    second = mg.grad(sum((g * g).sum() for g in first), [q, k, v])
    second_ref = mg.grad(sum((g * g).sum() for g in first_ref), [q, k, v])
    for a, b in zip(second, second_ref):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-9, atol=1e-11)


def test_attention_function_uses_the_fused_op_unless_weights_or_dropout_are_asked(device):
    q, k, v = _attention_inputs((2, 2), 5, 5, 4)
    out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    assert isinstance(out.grad_fn, composite.AttentionOp)
    out_ref, weights = F.scaled_dot_product_attention(q, k, v, mask=_causal(5, 5), return_weights=True)
    np.testing.assert_allclose(out.numpy(), out_ref.numpy(), rtol=1e-12)
    np.testing.assert_allclose(weights.numpy().sum(-1), 1.0)
    np.testing.assert_array_equal(np.triu(weights.numpy()[0, 0], 1), 0.0)
    # broadcast leading axes (one key/value set for every batch element)
    k1, v1 = k[:1], v[:1]
    out_b = F.scaled_dot_product_attention(q, k1, v1)
    want = F.scaled_dot_product_attention(q, k1, v1, return_weights=True)[0]
    np.testing.assert_allclose(out_b.numpy(), want.numpy(), rtol=1e-12)


@pytest.mark.parametrize("fill", [-np.inf, -1e9, 0.5])
def test_attention_rejects_an_additive_float_mask(device, fill):
    """Issue 11 item 13: a 0 / -inf mask used to be cast to bool, so -inf meant 'may attend'."""
    q, k, v = _attention_inputs((1,), 3, 3, 2)
    additive = np.where(_causal(3, 3), 0.0, fill)
    with pytest.raises(ValueError, match="boolean mask"):
        F.scaled_dot_product_attention(q, k, v, mask=additive)
    out = F.scaled_dot_product_attention(q, k, v, mask=_causal(3, 3).astype(np.float64))   # 0/1 floats: fine
    np.testing.assert_allclose(out.numpy(), F.scaled_dot_product_attention(q, k, v, is_causal=True).numpy())


# --------------------------------------------------------------------------- cross-entropy
@pytest.mark.parametrize("smoothing", [0.0, 0.15])
@pytest.mark.parametrize("ignore", [False, True])
def test_cross_entropy_kernel_equals_composed_math_and_its_tensor_backward(device, smoothing, ignore):
    rng = np.random.default_rng(3)
    logits = mg.tensor(rng.standard_normal((40, 7)), requires_grad=True)
    ids = rng.integers(0, 7, 40)
    valid = rng.random(40) > 0.3 if ignore else None
    op_ids = mg.tensor(ids).data
    op_valid = None if valid is None else mg.tensor(valid).data
    upstream = mg.tensor(rng.standard_normal(40))
    loss = composite.CrossEntropyOp(op_ids, op_valid, smoothing)(logits)
    log_p = composite.log_softmax_composed(logits)
    q = np.full((40, 7), smoothing / 7)
    q[np.arange(40), ids] += 1 - smoothing
    loss_ref = -(log_p * mg.tensor(q)).sum(axis=-1)
    if valid is not None:
        loss_ref = loss_ref * mg.tensor(valid.astype(np.float64))
    np.testing.assert_allclose(loss.numpy(), loss_ref.numpy(), rtol=1e-12, atol=1e-14)
    (fast,) = mg.grad((loss * upstream).sum(), [logits])
    (ref,) = mg.grad((loss_ref * upstream).sum(), [logits])
    (graph,) = mg.grad((composite.CrossEntropyOp(op_ids, op_valid, smoothing)(logits) * upstream).sum(),
                       [logits], create_graph=True)
    np.testing.assert_allclose(fast.numpy(), ref.numpy(), rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose(graph.numpy(), ref.numpy(), rtol=1e-11, atol=1e-13)


# --------------------------------------------------------------------------- optimizers over flat arrays
OPTIMIZERS = {
    "sgd": lambda params: mg.optim.SGD(params, lr=0.1),
    "sgd_momentum_wd": lambda params: mg.optim.SGD(params, lr=0.1, momentum=0.9, weight_decay=0.01, dampening=0.1),
    "sgd_nesterov": lambda params: mg.optim.SGD(params, lr=0.1, momentum=0.9, nesterov=True),
    "adam_l2": lambda params: mg.optim.Adam(params, lr=0.01, weight_decay=0.1),
    "adamw": lambda params: mg.optim.AdamW(params, lr=0.01, weight_decay=0.1),
    "gd": lambda params: mg.optim.GD(params, lr=0.1),
}


def _params(seed, device=None):
    rng = np.random.default_rng(seed)
    return [mg.tensor(rng.standard_normal(shape), requires_grad=True) for shape in ((3, 4), (4,), (2, 2, 2), ())]


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_one_flat_update_equals_the_per_parameter_updates_bit_for_bit(device, name):
    together, alone = _params(0), _params(0)
    optimizer = OPTIMIZERS[name](together)
    singles = [OPTIMIZERS[name]([p]) for p in alone]      # one parameter each: the per-parameter path
    rng = np.random.default_rng(1)
    for _ in range(3):
        for a, b in zip(together, alone):
            a.grad = mg.tensor(rng.standard_normal(a.shape))
            b.grad = mg.tensor(a.grad.numpy())
        optimizer.step()
        for single in singles:
            single.step()
    for a, b in zip(together, alone):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    flat_state = optimizer.state_dict()
    for i, single in enumerate(singles):
        for key, value in single.state_dict().items():
            if key.startswith("state."):
                np.testing.assert_array_equal(flat_state[key.replace("state.0.", f"state.{i}.")].numpy(),
                                              value.numpy())


def test_flat_parameters_are_views_of_one_array_and_are_remade_when_replaced(device):
    params = _params(2)
    optimizer = mg.optim.Adam(params, lr=0.1)
    for p in params:
        p.grad = mg.ones_like(p)
    optimizer.step()
    flats = list(optimizer._flats.values())
    assert len(flats) == 1 and all(p.data is view for p, view in zip(params, flats[0].data_views))
    before = [p.numpy().copy() for p in params]
    # replacing a parameter's data (as loading or moving a model does) is noticed at the next step
    params[0].data = params[0].data * 0 + 5.0
    optimizer.step()
    assert params[0].numpy()[0, 0] != 5.0 and np.all(np.abs(params[0].numpy() - 5.0) < 0.2)
    for p, old in zip(params[1:], before[1:]):
        assert not np.array_equal(p.numpy(), old)
    # a checkpoint taken now and loaded into a fresh optimizer resumes bit for bit
    saved = {k: mg.tensor(v.numpy().copy()) for k, v in optimizer.state_dict().items()}
    twin = [mg.tensor(p.numpy().copy(), requires_grad=True) for p in params]
    resumed = mg.optim.Adam(twin, lr=0.1)
    resumed.load_state_dict(saved)
    for a, b in zip(params, twin):
        a.grad = mg.full_like(a, 0.3)
        b.grad = mg.tensor(a.grad.numpy())
    optimizer.step()
    resumed.step()
    for a, b in zip(params, twin):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_a_parameter_without_a_gradient_is_skipped_by_the_flat_update(device):
    params, reference = _params(3), _params(3)
    optimizer, singles = mg.optim.AdamW(params, lr=0.1), [mg.optim.AdamW([p], lr=0.1) for p in reference]
    for step in range(3):
        for i, (a, b) in enumerate(zip(params, reference)):
            has_grad = not (step == 1 and i == 2)
            a.grad = mg.ones_like(a) * (i + 1) if has_grad else None
            b.grad = mg.ones_like(b) * (i + 1) if has_grad else None
        optimizer.step()
        for single in singles:
            single.step()
    for a, b in zip(params, reference):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert optimizer.state[params[2]]["step"] == 2 and optimizer.state[params[0]]["step"] == 3
    # the three that still step together keep one flat array (their step counts agree); the
    # flat copy of all four, which no longer holds them, is gone
    together = [params[0], params[1], params[3]]
    flats = list(optimizer._flats.values())
    assert len(flats) == 1 and [id(p) for p in flats[0].params] == [id(p) for p in together]
    assert all(p.data is view for p, view in zip(together, flats[0].data_views))


# --------------------------------------------------------------------------- dropout masks on the device
def test_dropout_masks_are_drawn_on_the_device_and_follow_the_seed(device):
    x = mg.ones(50_000)
    mg.manual_seed(3)
    first = F.dropout(x, 0.25).numpy()
    mg.manual_seed(3)
    second = F.dropout(x, 0.25).numpy()
    np.testing.assert_array_equal(first, second)
    assert abs((first == 0).mean() - 0.25) < 0.01
    np.testing.assert_allclose(first[first != 0], 1 / 0.75, rtol=1e-6)
    assert not np.array_equal(second, F.dropout(x, 0.25).numpy())
    scale = kernels.dropout.dropout_scale(mg.backend.generator(device), (1000,), 0.5, np.float64)
    assert mg.backend.device_of(scale) == device


# --------------------------------------------------------------------------- Gaussian noise in blocks
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gaussian_noise_follows_the_seed_not_the_thread_count_and_its_blocks_are_independent(threads, dtype):
    """3.5 blocks of CHUNK numbers (and one array under a block): the same numbers at 1
    and 2 threads for one seed, std * N(0, 1) in value (mean within 5 standard errors,
    std within 2%), and no two blocks alike (a stream reused per block would repeat)."""
    chunk = kernels.noise.CHUNK
    shape = (7, chunk // 2)
    draws = []
    for n_threads in (1, 2):
        mg.set_num_threads(n_threads)
        generator = np.random.default_rng(5)
        draws.append(kernels.noise.gaussian(generator, shape, dtype, 3.0))
        draws.append(kernels.noise.gaussian(generator, (100,), dtype, 3.0))
    np.testing.assert_array_equal(draws[0], draws[2])
    np.testing.assert_array_equal(draws[1], draws[3])
    noise = draws[0]
    assert noise.shape == shape and noise.dtype == dtype
    assert abs(noise.mean()) < 5 * 3.0 / np.sqrt(noise.size)
    assert abs(noise.std() / 3.0 - 1) < 0.02
    blocks = noise.reshape(-1)[: 3 * chunk].reshape(3, chunk)
    correlation = np.corrcoef(blocks)
    assert np.abs(correlation[np.triu_indices(3, 1)]).max() < 0.05
    assert not np.array_equal(draws[0], kernels.noise.gaussian(np.random.default_rng(6), shape, dtype, 3.0))


# --------------------------------------------------------------------------- matrix products on the kernel threads
@pytest.mark.parametrize("shapes", [((2048, 256), (256, 768)),          # rows
                                    ((64, 4096), (4096, 3000)),         # columns (fewer rows than n / 4)
                                    ((16, 4, 128, 64), (16, 4, 64, 128)),  # batch
                                    ((1, 700, 64), (5, 64, 140)),       # a broadcast batch
                                    ((3, 600, 64), (64, 600))])         # 2-D right operand
def test_matmul_shared_over_threads_equals_one_blas_call(threads, shapes, monkeypatch):
    """Every case is above linalg.MIN_PARALLEL_FLOPS, so the product is really cut into
    parts (counted), in both operand orders."""
    mg.set_num_threads(3)
    parts = _count_calls(monkeypatch, kernels.parallel, "run_parts")
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal(s) for s in shapes)
    np.testing.assert_allclose(kernels.linalg.matmul(a, b), np.matmul(a, b), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(kernels.linalg.matmul(b.swapaxes(-1, -2), a.swapaxes(-1, -2)),
                               np.matmul(b.swapaxes(-1, -2), a.swapaxes(-1, -2)), rtol=1e-12, atol=1e-12)
    assert parts == [1, 1] or not kernels.parallel.shares_out_products()


def _count_calls(monkeypatch, module, name):
    """Wrap module.name so that each call appends 1 to the returned list."""
    calls, original = [], getattr(module, name)

    def counted(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)
    monkeypatch.setattr(module, name, counted)
    return calls


@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("lead", [(400,), (3, 140), ()])
def test_linear_equals_matmul_plus_bias_and_its_gradients_the_formulas(threads, n_threads, lead, monkeypatch):
    """The dense layer's fused kernel: y = x @ W + b, dL/dx = g W^T, dL/dW = x^T g, dL/db = sum g,
    whether the rows are shared out over threads (and both products run side by side) or not:
    400 and 420 rows are above linalg.MIN_PARALLEL_FLOPS (checked: the threads are used at 2)."""
    mg.set_num_threads(n_threads)
    parts = _count_calls(monkeypatch, kernels.parallel, "run_parts")
    tasks = _count_calls(monkeypatch, kernels.parallel, "run_tasks")
    rng = np.random.default_rng(1)
    x, w, b, g = (rng.standard_normal(s) for s in (lead + (256,), (256, 200), (200,), lead + (200,)))
    np.testing.assert_allclose(kernels.linalg.linear(x, w, b), x @ w + b, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(kernels.linalg.linear(x, w), x @ w, rtol=1e-12, atol=1e-12)
    grad_x, grad_w, grad_b = kernels.linalg.linear_backward(g, x, w, [True, True, True])
    rows_x, rows_g = x.reshape(-1, 256), g.reshape(-1, 200)
    np.testing.assert_allclose(grad_x, g @ w.T, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(grad_w, rows_x.T @ rows_g, rtol=1e-12, atol=1e-11)
    np.testing.assert_allclose(grad_b, rows_g.sum(axis=0), rtol=1e-12, atol=1e-12)
    assert kernels.linalg.linear_backward(g, x, w, [False, True])[0::2] == (None, None)
    if n_threads == 2 and lead and kernels.parallel.shares_out_products():
        # both forwards cut into rows; the full backward's two products side by side; the lone
        # weight gradient (needs [False, True]) cut into parts itself
        assert len(parts) == 3 and len(tasks) == 1


@pytest.mark.parametrize("n_threads", [1, 2])
def test_relu_kernel_on_blocks_equals_the_formula_nan_included(threads, n_threads):
    mg.set_num_threads(n_threads)
    rng = np.random.default_rng(2)
    x, g = rng.standard_normal((1030, 1025)), rng.standard_normal((1030, 1025))   # > 1M: on the threads
    x[0, :3] = [0.0, -0.0, np.nan]
    np.testing.assert_array_equal(kernels.activations.relu(x), np.maximum(x, 0))
    np.testing.assert_array_equal(kernels.activations.relu_backward(g, x), g * (x > 0))


def test_linear_op_passes_gradcheck_with_leading_axes(device):
    x = mg.tensor(_data((2, 3, 4)), requires_grad=True)
    w = mg.tensor(_data((4, 5), seed=1), requires_grad=True)
    b = mg.tensor(_data((5,), seed=2), requires_grad=True)
    assert mg.gradcheck(lambda x, w, b: reduce_ops.linear(x, w, b), [x, w, b])
    with pytest.raises(ValueError, match=r"linear: input of shape \(2, 3, 4\) does not fit weight of shape \(5, 4\)"):
        reduce_ops.linear(x, w.T)


def test_matmul_op_reports_batch_shapes_that_do_not_broadcast(threads):
    mg.set_num_threads(2)
    with pytest.raises(ValueError, match="batch shapes"):
        mg.randn(3, 200, 300) @ mg.randn(4, 300, 200)


def test_blas_is_held_to_one_thread_so_the_kernel_threads_share_out_the_products(threads):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    mg.set_num_threads(2)
    blas = [info for info in threadpoolctl.threadpool_info() if info["user_api"] == "blas"]
    assert blas and all(info["num_threads"] == 1 for info in blas)
    assert parallel.shares_out_products()


def test_scatter_add_of_rows_equals_add_at_with_repeats_and_negative_ids():
    rng = np.random.default_rng(4)
    ids = rng.integers(-5, 7, (30, 4))
    values = rng.standard_normal((30, 4, 3, 2))
    target = rng.standard_normal((7, 3, 2))
    expected = target.copy()
    np.add.at(expected, (ids,), values)
    got = mg.backend.scatter_add(target.copy(), (ids,), values)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    x = mg.tensor(rng.standard_normal((7, 3)), requires_grad=True)
    assert mg.gradcheck(lambda t: t[ids[:, :2]], [x])
