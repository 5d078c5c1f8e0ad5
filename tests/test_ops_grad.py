"""Every differentiable op: forward value against numpy, gradient against central
differences (mg.gradcheck, float64), with broadcasting, 0-d and size-1 shapes.
Each test runs on "cpu" and on "cuda" (the `device` fixture in conftest.py)."""
import math

import numpy as np
import pytest
from hypothesis import given, strategies as st
from hypothesis.extra import numpy as hnp

import minigrad as mg
from minigrad.backend.kernels.special import erf_float64


# --------------------------------------------------------------------------- strategies
def floats(lo=-2.0, hi=2.0):
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False, allow_subnormal=False)


ANY = floats()
POSITIVE = floats(0.2, 3.0)
# |x| >= 0.1: away from the kink of abs / relu and the pole of 1/x
AWAY_FROM_ZERO = st.tuples(st.booleans(), floats(0.1, 2.0)).map(lambda s: s[1] if s[0] else -s[1])

shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=4)
broadcast_pairs = hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=4)

# the shapes the issue names, plus 0-d and size-1 corners
EDGE_PAIRS = [((3, 1), (4,)), ((2, 1, 3), (1, 4, 1)), ((), (3,)), ((2, 2), ()), ((1,), (2, 3)),
              ((1, 1), (1,)), ((), ())]


def arrays(shape, elements=ANY):
    return hnp.arrays(np.float64, shape, elements=elements)


def check(device, fn, numpy_fn, *arrays_in, rtol=1e-10):
    """fn on tensors equals numpy_fn on arrays; its gradient passes gradcheck."""
    tensors = [mg.tensor(a, requires_grad=True) for a in arrays_in]
    out = fn(*tensors)
    assert out.device == device
    assert out.dtype == np.float64
    np.testing.assert_allclose(out.numpy(), numpy_fn(*arrays_in), rtol=rtol, atol=1e-12)
    assert mg.gradcheck(fn, tensors)


# --------------------------------------------------------------------------- binary arithmetic
BINARY = {
    "add": (lambda a, b: a + b, np.add, ANY),
    "sub": (lambda a, b: a - b, np.subtract, ANY),
    "mul": (lambda a, b: a * b, np.multiply, ANY),
    "div": (lambda a, b: a / b, np.divide, AWAY_FROM_ZERO),
    "pow": (lambda a, b: a ** b, np.power, ANY),
}


def _binary_inputs(name, a_shape, b_shape, draw):
    base = POSITIVE if name == "pow" else ANY        # a ** b needs a > 0 for real b
    return draw(arrays(a_shape, base)), draw(arrays(b_shape, BINARY[name][2]))


@pytest.mark.parametrize("name", sorted(BINARY))
@given(data=st.data())
def test_binary_op_matches_numpy_and_gradcheck_with_broadcasting(device, name, data):
    a_shape, b_shape = data.draw(broadcast_pairs).input_shapes
    a, b = _binary_inputs(name, a_shape, b_shape, data.draw)
    fn, numpy_fn, _ = BINARY[name]
    check(device, fn, numpy_fn, a, b)


@pytest.mark.parametrize("name", sorted(BINARY))
@pytest.mark.parametrize("a_shape, b_shape", EDGE_PAIRS)
def test_binary_op_gradient_on_edge_shapes(device, name, a_shape, b_shape):
    rng = np.random.default_rng(0)
    a = rng.uniform(0.5, 2.0, a_shape)
    b = rng.uniform(0.5, 2.0, b_shape)
    fn, numpy_fn, _ = BINARY[name]
    check(device, fn, numpy_fn, a, b)
    check(device, fn, numpy_fn, b, a)   # and the other way round


@given(a=arrays(shapes), value=floats(0.5, 2.0))
def test_python_numbers_mix_with_tensors_as_constants(device, a, value):
    x = mg.tensor(a, requires_grad=True)
    for fn, expected in [(lambda t: value + t, value + a), (lambda t: t - value, a - value),
                         (lambda t: value - t, value - a), (lambda t: value * t, value * a),
                         (lambda t: t / value, a / value), (lambda t: -t, -a)]:
        np.testing.assert_allclose(fn(x).numpy(), expected, rtol=1e-12)
        assert mg.gradcheck(fn, [x])


def test_numpy_array_constant_mixes_with_tensor_on_either_side(device):
    a = np.array([1.0, 2.0, 3.0])
    x = mg.tensor([4.0, 5.0, 6.0], dtype="float64", requires_grad=True)
    for out, expected in [(x + a, [5, 7, 9]), (a + x, [5, 7, 9]), (a * x, [4, 10, 18]),
                          (a - x, [-3, -3, -3]), (a / x, [0.25, 0.4, 0.5])]:
        assert isinstance(out, mg.Tensor) and out.device == device
        np.testing.assert_allclose(out.numpy(), expected)
    (a * x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), a)


# --------------------------------------------------------------------------- matmul
@st.composite
def matmul_shapes(draw):
    n, k, m = (draw(st.integers(1, 4)) for _ in range(3))
    batch = draw(st.sampled_from([(), (2,), (3, 1)]))
    other_batch = draw(st.sampled_from([(), batch, (1,) * len(batch), (2,) if batch == (3, 1) else ()]))
    kind = draw(st.sampled_from(["matrix", "vector_left", "vector_right", "dot"]))
    if kind == "vector_left":
        return (k,), other_batch + (k, m)
    if kind == "vector_right":
        return batch + (n, k), (k,)
    if kind == "dot":
        return (k,), (k,)
    return batch + (n, k), other_batch + (k, m)


@given(data=st.data())
def test_matmul_matches_numpy_and_gradcheck(device, data):
    a_shape, b_shape = data.draw(matmul_shapes())
    a, b = data.draw(arrays(a_shape)), data.draw(arrays(b_shape))
    check(device, lambda x, y: x @ y, np.matmul, a, b)


def test_matmul_shape_mismatch_names_the_op_and_shapes(device):
    with pytest.raises(ValueError, match=r"matmul: shapes \(2, 3\) and \(4, 5\) do not align: 3 != 4"):
        mg.zeros(2, 3) @ mg.zeros(4, 5)


# --------------------------------------------------------------------------- unary functions
UNARY = {
    "neg": (lambda x: -x, np.negative, ANY),
    "exp": (lambda x: x.exp(), np.exp, ANY),
    "log": (lambda x: x.log(), np.log, POSITIVE),
    "sqrt": (lambda x: x.sqrt(), np.sqrt, POSITIVE),
    "abs": (lambda x: x.abs(), np.abs, AWAY_FROM_ZERO),
    "tanh": (lambda x: x.tanh(), np.tanh, ANY),
    "sigmoid": (lambda x: x.sigmoid(), lambda a: 1 / (1 + np.exp(-a)), floats(-6, 6)),
    "relu": (lambda x: x.relu(), lambda a: np.maximum(a, 0), AWAY_FROM_ZERO),
    "erf": (lambda x: mg.ops.erf(x), np.vectorize(math.erf, otypes=[float]), floats(-4, 4)),
}


@pytest.mark.parametrize("name", sorted(UNARY))
@given(data=st.data())
def test_unary_op_matches_numpy_and_gradcheck(device, name, data):
    fn, numpy_fn, elements = UNARY[name]
    check(device, fn, numpy_fn, data.draw(arrays(shapes, elements)))


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_op_keeps_float32(device, name):
    fn, numpy_fn, _ = UNARY[name]
    x = mg.tensor([0.5, 1.5, 2.5])
    assert fn(x).dtype == np.float32
    np.testing.assert_allclose(fn(x).numpy(), numpy_fn(np.array([0.5, 1.5, 2.5], np.float32)), rtol=1e-6)


def test_erf_fallback_without_scipy_matches_math_erf():
    a = np.concatenate([np.linspace(-9, 9, 1801), [0.0, 1.999999, 2.0, 2.000001, -1e-300]])
    expected = np.array([math.erf(v) for v in a])
    np.testing.assert_allclose(erf_float64(a), expected, rtol=0, atol=2e-15)


def test_abs_and_relu_gradient_at_zero_is_zero_as_in_pytorch(device):
    """On both backward paths: relu's kernel (a plain backward) and its Tensor backward
    (create_graph=True), which random test data never reaches at exactly 0."""
    x = mg.tensor([0.0, -0.0], requires_grad=True)
    (x.abs() + x.relu()).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 0.0])
    for create_graph in (False, True):
        grad, = mg.grad(x.relu().sum(), [x], create_graph=create_graph)
        np.testing.assert_array_equal(grad.numpy(), [0.0, 0.0])


def test_sigmoid_does_not_overflow_for_huge_inputs(device):
    x = mg.tensor([-1000.0, 1000.0], requires_grad=True)
    y = x.sigmoid()
    y.sum().backward()
    np.testing.assert_array_equal(y.numpy(), [0.0, 1.0])
    assert np.isfinite(x.grad.numpy()).all()


# --------------------------------------------------------------------------- reductions
@st.composite
def shape_and_axis(draw, min_dims=0):
    shape = draw(hnp.array_shapes(min_dims=min_dims, max_dims=3, min_side=1, max_side=4))
    if not shape:
        return shape, None
    choice = draw(st.sampled_from(["none", "int", "tuple"]))
    if choice == "none":
        return shape, None
    if choice == "int":
        return shape, draw(st.integers(-len(shape), len(shape) - 1))
    axes = draw(st.lists(st.integers(0, len(shape) - 1), min_size=1, max_size=len(shape), unique=True))
    return shape, tuple(axes)


REDUCTIONS = {
    "sum": (lambda x, **kw: x.sum(**kw), np.sum),
    "mean": (lambda x, **kw: x.mean(**kw), np.mean),
    "var": (lambda x, **kw: x.var(**kw), np.var),      # biased: numpy's ddof=0
    "max": (lambda x, **kw: x.max(**kw), np.max),
}


@pytest.mark.parametrize("name", sorted(REDUCTIONS))
@given(data=st.data(), keepdims=st.booleans())
def test_reduction_matches_numpy_and_gradcheck(device, name, data, keepdims):
    shape, axis = data.draw(shape_and_axis())
    if name == "max":   # distinct values at least 0.1 apart: central differences never cross a tie
        size = int(np.prod(shape))
        values = data.draw(st.permutations(range(size)))
        a = np.array(values, dtype=np.float64).reshape(shape) * 0.1 - 1.0
    else:
        a = data.draw(arrays(shape))
    fn, numpy_fn = REDUCTIONS[name]
    check(device, lambda x: fn(x, axis=axis, keepdims=keepdims),
          lambda x: numpy_fn(x, axis=axis, keepdims=keepdims), a)


def test_max_shares_the_gradient_between_ties(device):
    x = mg.tensor([[1.0, 3.0, 3.0], [2.0, 0.0, 2.0]], requires_grad=True)
    x.max(axis=1).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [[0, 0.5, 0.5], [0.5, 0, 0.5]])


@given(data=st.data(), keepdims=st.booleans())
def test_min_matches_numpy_and_gradcheck(device, data, keepdims):
    shape, axis = data.draw(shape_and_axis())
    a = np.array(data.draw(st.permutations(range(int(np.prod(shape))))), dtype=np.float64).reshape(shape)
    check(device, lambda x: x.min(axis=axis, keepdims=keepdims),
          lambda x: np.min(x, axis=axis, keepdims=keepdims), a * 0.1)


# --------------------------------------------------------------------------- shapes
@given(data=st.data())
def test_broadcast_to_matches_numpy_and_gradcheck(device, data):
    a = data.draw(arrays(shapes))
    target = data.draw(hnp.broadcastable_shapes(a.shape, max_dims=4).map(
        lambda s: np.broadcast_shapes(s, a.shape)))
    check(device, lambda x: x.broadcast_to(target), lambda x: np.broadcast_to(x, target), a)


@given(a=arrays(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=3)))
def test_squeeze_unsqueeze_flatten_swapaxes_match_numpy_and_gradcheck(device, a):
    check(device, lambda x: x.unsqueeze(0), lambda x: x[None], a)
    check(device, lambda x: x.unsqueeze(-1), lambda x: x[..., None], a)
    check(device, lambda x: x.squeeze(), lambda x: np.squeeze(x), a)
    check(device, lambda x: x.flatten(), lambda x: x.reshape(-1), a)
    check(device, lambda x: x.swapaxes(0, -1), lambda x: np.swapaxes(x, 0, -1), a)


def test_astype_casts_and_casts_the_gradient_back(device):
    x = mg.tensor([1.5, 2.5], requires_grad=True)
    y = x.astype("float64")
    assert y.dtype == np.float64
    (y * y).sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 5.0])
    assert mg.gradcheck(lambda t: t.astype("float32").astype("float64") * 2.0,
                        [mg.tensor([0.5, 1.0], dtype="float64", requires_grad=True)], eps=1e-2, atol=1e-3)


@given(data=st.data())
def test_reshape_matches_numpy_and_gradcheck(device, data):
    a = data.draw(arrays(shapes))
    target = data.draw(st.sampled_from([(-1,), a.shape[::-1], (1,) + a.shape, (a.size, 1), ()]
                                       if a.size == 1 else [(-1,), a.shape[::-1], (1,) + a.shape, (a.size, 1)]))
    check(device, lambda x: x.reshape(*target), lambda x: x.reshape(target), a)
    check(device, lambda x: x.reshape(target), lambda x: x.reshape(target), a)


@given(data=st.data())
def test_transpose_matches_numpy_and_gradcheck(device, data):
    a = data.draw(arrays(shapes))
    axes = tuple(data.draw(st.permutations(range(a.ndim))))
    check(device, lambda x: x.transpose(*axes), lambda x: x.transpose(axes), a)
    check(device, lambda x: x.transpose(), lambda x: x.transpose(), a)     # no axes: reversed
    check(device, lambda x: x.T, lambda x: x.T, a)


def test_transpose_with_negative_axes(device):
    a = np.arange(24.0).reshape(2, 3, 4)
    check(device, lambda x: x.transpose(-1, 0, -2), lambda x: x.transpose(2, 0, 1), a)


# --------------------------------------------------------------------------- indexing
@st.composite
def basic_index(draw, shape):
    parts = []
    for size in shape[:draw(st.integers(1, len(shape)))]:
        if draw(st.booleans()):
            parts.append(draw(st.slices(size)))
        else:
            parts.append(draw(st.integers(-size, size - 1)))
    return tuple(parts)


@given(data=st.data())
def test_basic_slicing_matches_numpy_and_gradcheck(device, data):
    a = data.draw(arrays(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=5)))
    index = data.draw(basic_index(a.shape))
    check(device, lambda x: x[index], lambda x: x[index], a)


@given(data=st.data())
def test_integer_array_indexing_with_repeats_matches_numpy_and_gradcheck(device, data):
    a = data.draw(arrays(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4)))
    rows = data.draw(st.lists(st.integers(-a.shape[0], a.shape[0] - 1), min_size=1, max_size=6))
    kinds = ["list", "array", "tensor", "2d"] + (["with_slice"] if a.ndim >= 2 else [])
    kind = data.draw(st.sampled_from(kinds))
    if kind == "list":
        index = rows
    elif kind == "array":
        index = np.array(rows)
    elif kind == "tensor":
        index = mg.tensor(np.array(rows))
    elif kind == "2d":
        index = np.array(rows + rows).reshape(2, -1)
    else:
        index = (np.array(rows), slice(None, None, -1))
    host_index = index.numpy() if isinstance(index, mg.Tensor) else index
    check(device, lambda x: x[index], lambda x: x[host_index], a)


def test_repeated_indices_accumulate_their_gradients(device):
    x = mg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    x[[0, 0, 2, 0]].sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 0.0, 1.0])


def test_boolean_mask_indexing_and_its_gradient(device):
    a = np.arange(6.0).reshape(2, 3)
    mask = a % 2 == 0
    check(device, lambda x: x[mask], lambda x: x[mask], a)
    x = mg.tensor(a)
    np.testing.assert_array_equal(x[x > 2.5].numpy(), a[a > 2.5])


def test_index_out_of_range_is_a_clear_error(device):
    with pytest.raises(IndexError, match=r"index.*shape \(3,\)"):
        mg.zeros(3)[5]


# --------------------------------------------------------------------------- masked_fill, clip, where
@given(data=st.data(), value=floats(-3, 3))
def test_masked_fill_matches_numpy_and_gradcheck(device, data, value):
    a = data.draw(arrays(shapes))
    mask_shape = data.draw(hnp.broadcastable_shapes(a.shape, max_dims=a.ndim))
    mask = data.draw(hnp.arrays(np.bool_, mask_shape))
    check(device, lambda x: x.masked_fill(mask, value), lambda x: np.where(mask, value, x), a)
    tensor_mask = mg.tensor(mask)
    check(device, lambda x: x.masked_fill(tensor_mask, value), lambda x: np.where(mask, value, x), a)


@given(data=st.data(), lo=st.integers(-10, 0), width=st.integers(0, 10),
       bounds=st.sampled_from(["both", "lo", "hi"]))
def test_clip_matches_numpy_and_gradcheck(device, data, lo, width, bounds):
    # values on a 0.1 grid shifted by 0.05, bounds on the grid: never at a kink
    shape = data.draw(shapes)
    a = (data.draw(hnp.arrays(np.int64, shape, elements=st.integers(-15, 15))) + 0.5) * 0.1
    lo, hi = lo * 0.1, (lo + width) * 0.1
    lo, hi = (lo, hi) if bounds == "both" else (lo, None) if bounds == "lo" else (None, hi)
    check(device, lambda x: x.clip(lo, hi), lambda x: np.clip(x, lo, hi), a)


@pytest.mark.parametrize("lo, hi, expected", [
    (-1.0, 2.0, [1, 1, 0, 0, 1]),        # x = lo and x = hi pass the gradient, as torch.clamp does
    (-1.0, None, [1, 1, 0, 1, 1]),
    (None, 2.0, [1, 1, 1, 0, 1]),
])
def test_clip_gradient_exactly_at_the_bounds_passes_as_in_pytorch(device, lo, hi, expected):
    # the property test's values never land on a bound, where the choice is a convention
    x = mg.tensor([-1.0, 2.0, -1.5, 2.5, 0.5], requires_grad=True)
    x.clip(lo, hi).backward(mg.tensor([1.0, 1.0, 1.0, 1.0, 1.0]))
    np.testing.assert_array_equal(x.grad.numpy(), expected)


def test_clip_with_equal_bounds_passes_the_gradient_only_at_that_value(device):
    x = mg.tensor([0.5, 0.25, 1.0], requires_grad=True)
    x.clip(0.5, 0.5).backward(mg.tensor([2.0, 3.0, 4.0]))
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 0.0, 0.0])


@given(data=st.data())
def test_where_matches_numpy_and_gradcheck_with_broadcasting(device, data):
    c_shape, a_shape, b_shape = data.draw(
        hnp.mutually_broadcastable_shapes(num_shapes=3, min_dims=0, max_dims=3, max_side=3)).input_shapes
    cond = data.draw(hnp.arrays(np.bool_, c_shape))
    a, b = data.draw(arrays(a_shape)), data.draw(arrays(b_shape))
    check(device, lambda x, y: mg.where(cond, x, y), lambda x, y: np.where(cond, x, y), a, b)
    check(device, lambda x: mg.where(cond, x, 0.5), lambda x: np.where(cond, x, 0.5), a)
    check(device, lambda y: mg.where(mg.tensor(cond), -1.0, y), lambda y: np.where(cond, -1.0, y), b)


def test_where_with_a_number_keeps_the_tensor_dtype(device):
    x = mg.tensor([1.0, -2.0])
    assert mg.where(x > 0, x, 0.0).dtype == np.float32
    assert mg.where(x > 0, 0.0, x).dtype == np.float32


# --------------------------------------------------------------------------- concatenate, stack
@given(data=st.data())
def test_concatenate_matches_numpy_and_gradcheck(device, data):
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=3))
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    pieces = []
    for _ in range(data.draw(st.integers(1, 3))):
        piece_shape = list(shape)
        piece_shape[axis] = data.draw(st.integers(1, 3))
        pieces.append(data.draw(arrays(tuple(piece_shape))))
    check(device, lambda *xs: mg.concatenate(xs, axis), lambda *xs: np.concatenate(xs, axis), *pieces)


@given(data=st.data())
def test_stack_matches_numpy_and_gradcheck(device, data):
    shape = data.draw(shapes)
    axis = data.draw(st.integers(-len(shape) - 1, len(shape)))
    pieces = [data.draw(arrays(shape)) for _ in range(data.draw(st.integers(1, 3)))]
    check(device, lambda *xs: mg.stack(xs, axis), lambda *xs: np.stack(xs, axis), *pieces)


def test_concatenate_and_stack_shape_errors_name_the_shapes(device):
    with pytest.raises(ValueError, match=r"concatenate: shapes \(2, 3\), \(2, 4\)"):
        mg.concatenate([mg.zeros(2, 3), mg.zeros(2, 4)], axis=0)
    with pytest.raises(ValueError, match=r"stack: .*\(2, 3\).*\(3, 2\)"):
        mg.stack([mg.zeros(2, 3), mg.zeros(3, 2)])
    for join in (mg.concatenate, mg.stack):         # numpy's own message would not name the op
        with pytest.raises(ValueError, match=rf"{join.__name__}: needs at least one tensor"):
            join([])
        with pytest.raises(ValueError, match=rf"{join.__name__}: needs at least one tensor"):
            join(iter(()))


# --------------------------------------------------------------------------- comparisons
COMPARISONS = {"<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal,
               "==": np.equal, "!=": np.not_equal}


@pytest.mark.parametrize("symbol", sorted(COMPARISONS))
@given(data=st.data())
def test_comparisons_give_boolean_tensors_outside_the_graph(device, symbol, data):
    a_shape, b_shape = data.draw(broadcast_pairs).input_shapes
    grid = hnp.arrays(np.float64, a_shape, elements=st.sampled_from([-1.0, 0.0, 1.0]))
    a, b = data.draw(grid), data.draw(hnp.arrays(np.float64, b_shape, elements=st.sampled_from([-1.0, 0.0, 1.0])))
    x, y = mg.tensor(a, requires_grad=True), mg.tensor(b, requires_grad=True)
    out = eval(f"x {symbol} y")
    assert out.dtype == np.bool_ and not out.requires_grad and out.grad_fn is None
    assert out.device == device
    np.testing.assert_array_equal(out.numpy(), COMPARISONS[symbol](a, b))
    np.testing.assert_array_equal(eval(f"x {symbol} 0.0").numpy(), COMPARISONS[symbol](a, 0.0))
