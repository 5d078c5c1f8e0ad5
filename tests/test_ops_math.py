"""The newer math ops: functions of one variable, maximum / minimum, the new reductions,
logic and integer division, einsum. Values against numpy, gradients against central
differences (mg.gradcheck, float64) over shapes with 0-d, size-1 and broadcast cases;
each test runs on "cpu" and on the cupy double."""
import math

import numpy as np
import pytest
from hypothesis import given, strategies as st
from hypothesis.extra import numpy as hnp

import minigrad as mg
from test_ops_grad import ANY, POSITIVE, EDGE_PAIRS, arrays, broadcast_pairs, check, floats, shape_and_axis, shapes


def distinct(shape, spacing=0.1):
    """Values at least `spacing` apart (a strategy): central differences never cross a tie."""
    size = int(np.prod(shape))
    return st.permutations(range(size)).map(
        lambda p: (np.array(p, dtype=np.float64).reshape(shape) - size / 2) * spacing)


# --------------------------------------------------------------------------- one variable
UNARY = {
    "sin": (lambda x: x.sin(), np.sin, floats(-4, 4)),
    "cos": (lambda x: x.cos(), np.cos, floats(-4, 4)),
    "rsqrt": (lambda x: x.rsqrt(), lambda a: 1 / np.sqrt(a), POSITIVE),
    "log2": (lambda x: x.log2(), np.log2, POSITIVE),
    "exp2": (lambda x: x.exp2(), np.exp2, ANY),
}


@pytest.mark.parametrize("name", sorted(UNARY))
@given(data=st.data())
def test_new_unary_op_matches_numpy_and_gradcheck(device, name, data):
    fn, numpy_fn, elements = UNARY[name]
    check(device, fn, numpy_fn, data.draw(arrays(shapes, elements)))


@pytest.mark.parametrize("name", sorted(UNARY))
def test_new_unary_op_keeps_float32(device, name):
    fn, numpy_fn, _ = UNARY[name]
    x = mg.tensor([0.5, 1.5, 2.5])
    assert fn(x).dtype == np.float32
    np.testing.assert_allclose(fn(x).numpy(), numpy_fn(np.array([0.5, 1.5, 2.5], np.float32)), rtol=1e-6)


STEPS = {"floor": np.floor, "ceil": np.ceil, "round": np.round, "sign": np.sign}


@pytest.mark.parametrize("name", sorted(STEPS))
@given(data=st.data())
def test_step_functions_match_numpy_and_have_zero_gradient(device, name, data):
    # k + 0.1 .. k + 0.4: away from every step (integers, and round's halves), so central
    # differences see a flat function
    shape = data.draw(shapes)
    a = data.draw(hnp.arrays(np.int64, shape, elements=st.integers(-5, 5))) + \
        data.draw(hnp.arrays(np.float64, shape, elements=floats(0.1, 0.4)))
    check(device, lambda x: getattr(x, name)(), STEPS[name], a)
    x = mg.tensor(a, requires_grad=True)
    getattr(x, name)().sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.zeros_like(a))


def test_round_takes_halves_to_even_and_decimals(device):
    x = mg.tensor([0.5, 1.5, 2.5, -0.5, -1.5, 1.2345])
    np.testing.assert_array_equal(x.round().numpy(), np.float32([0, 2, 2, -0.0, -2, 1]))
    np.testing.assert_allclose(x.round(2).numpy()[-1], 1.23, rtol=1e-6)


def test_step_functions_keep_integer_tensors(device):
    i = mg.tensor(np.array([-3, 2], dtype=np.int32))
    for out in (i.floor(), i.ceil(), i.round(), i.sign()):
        assert out.dtype == np.int32
    np.testing.assert_array_equal(i.floor().numpy(), [-3, 2])


# --------------------------------------------------------------------------- maximum / minimum
@pytest.mark.parametrize("name", ["maximum", "minimum"])
@given(data=st.data())
def test_maximum_minimum_match_numpy_and_gradcheck_with_broadcasting(device, name, data):
    a_shape, b_shape = data.draw(broadcast_pairs).input_shapes
    both = data.draw(distinct((int(np.prod(a_shape)) + int(np.prod(b_shape)),), 0.1))
    a, b = both[:int(np.prod(a_shape))].reshape(a_shape), both[int(np.prod(a_shape)):].reshape(b_shape)
    check(device, getattr(mg, name), getattr(np, name), a, b)


@pytest.mark.parametrize("a_shape, b_shape", EDGE_PAIRS)
def test_maximum_gradient_on_edge_shapes(device, a_shape, b_shape):
    rng = np.random.default_rng(0)
    check(device, mg.maximum, np.maximum, rng.uniform(-1, 1, a_shape), rng.uniform(2, 3, b_shape))
    check(device, mg.minimum, np.minimum, rng.uniform(-1, 1, a_shape), rng.uniform(2, 3, b_shape))


def test_maximum_and_minimum_split_the_gradient_at_ties_as_pytorch(device):
    a = mg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    b = mg.tensor([1.0, 1.0, 4.0], requires_grad=True)
    mg.maximum(a, b).sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), [0.5, 1.0, 0.0])
    np.testing.assert_array_equal(b.grad.numpy(), [0.5, 0.0, 1.0])
    a.grad = b.grad = None
    mg.minimum(a, b).sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), [0.5, 0.0, 1.0])
    np.testing.assert_array_equal(b.grad.numpy(), [0.5, 1.0, 0.0])
    assert mg.maximum(mg.tensor([1, 5]), 3).tolist() == [3, 5]


# --------------------------------------------------------------------------- reductions
@given(data=st.data(), keepdims=st.booleans(), correction=st.sampled_from([0, 1]))
def test_var_and_std_with_correction_match_numpy_and_gradcheck(device, data, keepdims, correction):
    shape, axis = data.draw(shape_and_axis())
    a = data.draw(distinct(shape, 0.3))      # distinct: std's gradient is finite (no zero spread)
    n = a.size if axis is None else int(np.prod([a.shape[i] for i in np.atleast_1d(axis)]))
    if n - correction <= 0:
        return
    check(device, lambda x: x.var(axis=axis, keepdims=keepdims, correction=correction),
          lambda x: np.var(x, axis=axis, keepdims=keepdims, ddof=correction), a)
    if n > 1:
        check(device, lambda x: x.std(axis=axis, keepdims=keepdims, correction=correction),
              lambda x: np.std(x, axis=axis, keepdims=keepdims, ddof=correction), a)


def test_var_with_no_degrees_of_freedom_left_is_nan_as_pytorch(device):
    assert math.isnan(mg.tensor([2.0]).var(correction=1).item())
    assert mg.tensor([2.0]).var().item() == 0.0


@given(data=st.data(), keepdims=st.booleans())
def test_prod_matches_numpy_and_gradcheck(device, data, keepdims):
    shape, axis = data.draw(shape_and_axis())
    a = data.draw(arrays(shape, floats(-1.5, 1.5)))
    check(device, lambda x: x.prod(axis=axis, keepdims=keepdims),
          lambda x: np.prod(x, axis=axis, keepdims=keepdims), a)


def test_prod_gradient_is_exact_with_zeros(device):
    x = mg.tensor([[0.0, 2.0, 3.0], [0.0, 0.0, 5.0]], requires_grad=True)
    x.prod(axis=1).sum().backward()
    # d/dx_i of a product is the product of the others, even where x_i or another is 0
    np.testing.assert_array_equal(x.grad.numpy(), [[6.0, 0.0, 0.0], [0.0, 0.0, 0.0]])


def test_prod_second_derivative_matches_the_first_derivatives_array_path(device):
    # backward (Tensor ops, used with create_graph) and backward_arrays must agree
    a = np.array([[0.5, -1.0, 2.0, 0.0], [1.5, 0.25, -0.5, 3.0]])
    x = mg.tensor(a, requires_grad=True)
    first, = mg.grad(x.prod(axis=1).sum(), [x], create_graph=True)
    x.prod(axis=1).sum().backward()
    np.testing.assert_allclose(first.numpy(), x.grad.numpy())
    assert mg.gradcheck(lambda t: mg.grad(t.prod(axis=(0, 1)), [t], create_graph=True)[0],
                        [mg.tensor(a[:, :3], requires_grad=True)])


@given(data=st.data(), keepdims=st.booleans())
def test_logsumexp_matches_numpy_and_gradcheck(device, data, keepdims):
    shape, axis = data.draw(shape_and_axis())
    a = data.draw(arrays(shape, floats(-3, 3)))
    check(device, lambda x: x.logsumexp(axis=axis, keepdims=keepdims),
          lambda x: np.log(np.sum(np.exp(x), axis=axis, keepdims=keepdims)), a)


def test_logsumexp_is_stable_for_huge_and_infinite_inputs(device):
    x = mg.tensor([[1000.0, 1000.0], [-np.inf, -np.inf], [np.inf, 0.0]], dtype="float64")
    np.testing.assert_allclose(x.logsumexp(axis=1).numpy(), [1000 + math.log(2), -np.inf, np.inf])
    assert mg.zeros(2, 0).logsumexp(axis=1).tolist() == [-np.inf, -np.inf]


@given(data=st.data())
def test_cumsum_matches_numpy_and_gradcheck(device, data):
    a = data.draw(arrays(shapes))
    axis = data.draw(st.integers(-a.ndim, a.ndim - 1)) if a.ndim else 0
    check(device, lambda x: x.cumsum(axis), lambda x: np.cumsum(x, axis=axis).reshape(x.shape), a)


def test_cumsum_accumulates_float16_in_float32(device):
    x = mg.full((4096,), 1.0 + 2 ** -10, dtype="float16")
    assert x.cumsum(0).dtype == np.float16
    assert x.cumsum(0)[-1].item() == 4100.0        # 4096 * (1 + 2^-10), exact in float16


def test_mean_is_one_op_and_nan_over_an_empty_axis(device):
    x = mg.tensor([[1.0, 2.0], [3.0, 5.0]], requires_grad=True)
    y = x.mean(axis=0)
    assert type(y.grad_fn).__name__ == "Mean"
    np.testing.assert_allclose(y.numpy(), [2.0, 3.5])
    assert np.isnan(mg.zeros(0, 3).mean(axis=0).numpy()).all()


@pytest.mark.parametrize("name", ["argmax", "argmin"])
def test_argmax_argmin_match_numpy_with_keepdims(device, name):
    a = np.array([[3.0, -1.0, 7.0], [0.5, 9.0, -2.0]])
    x = mg.tensor(a)
    for axis in (None, 0, 1, -1):
        out = getattr(x, name)(axis=axis)
        assert out.dtype == np.int64
        np.testing.assert_array_equal(out.numpy(), getattr(np, name)(a, axis=axis))
        kept = getattr(x, name)(axis=axis, keepdims=True)
        np.testing.assert_array_equal(kept.numpy(), getattr(np, name)(a, axis=axis, keepdims=True))


def test_any_and_all_along_axes(device):
    mask = np.array([[True, False, False], [True, True, True]])
    x = mg.tensor(mask)
    for axis in (None, 0, 1, (0, 1)):
        np.testing.assert_array_equal(x.any(axis=axis).numpy(), mask.any(axis=axis))
        np.testing.assert_array_equal(x.all(axis=axis, keepdims=True).numpy(), mask.all(axis=axis, keepdims=True))
    assert mg.tensor([0.0, 2.0]).any().item() is True and mg.tensor([0.0, 2.0]).all().item() is False


# --------------------------------------------------------------------------- logic and tests
def test_boolean_operators_are_logical_on_bool_and_bitwise_on_int(device):
    a, b = mg.tensor([True, True, False]), mg.tensor([True, False, False])
    assert (a & b).tolist() == [True, False, False]
    assert (a | b).tolist() == [True, True, False]
    assert (a ^ b).tolist() == [False, True, False]
    assert (~a).tolist() == [False, False, True]
    i = mg.tensor(np.array([6, 3], dtype=np.int32))
    assert (i & 5).tolist() == [4, 1] and (i | 1).tolist() == [7, 3] and (~i).tolist() == [-7, -4]
    assert (i & 5).dtype == np.int32
    with pytest.raises(TypeError, match="and: cannot combine float32"):
        mg.tensor([1.0]) & mg.tensor([1.0])
    with pytest.raises(TypeError, match="logical not"):
        ~mg.tensor([1.0])


def test_isnan_isinf_isfinite_isclose_allclose(device):
    x = mg.tensor([1.0, np.nan, np.inf, -np.inf])
    assert mg.isnan(x).tolist() == [False, True, False, False]
    assert mg.isinf(x).tolist() == [False, False, True, True]
    assert mg.isfinite(x).tolist() == [True, False, False, False]
    a, b = mg.tensor([1.0, 2.0, np.nan]), mg.tensor([1.0 + 1e-7, 2.1, np.nan])
    assert mg.isclose(a, b).tolist() == [True, False, False]
    assert mg.isclose(a, b, equal_nan=True).tolist() == [True, False, True]
    assert mg.isclose(a, b, rtol=0.1, equal_nan=True).tolist() == [True, True, True]
    assert mg.allclose(a[:1], b[:1]) is True and mg.allclose(a, b) is False


def test_floor_division_and_remainder_follow_python_signs(device):
    a = np.array([7.0, -7.0, 7.0, -7.0, 5.5])
    b = np.array([2.0, 2.0, -2.0, -2.0, 2.0])
    x, y = mg.tensor(a), mg.tensor(b)
    np.testing.assert_array_equal((x // y).numpy(), np.float32(a // b))
    np.testing.assert_array_equal((x % y).numpy(), np.float32(a % b))
    np.testing.assert_array_equal((7 % y).numpy(), np.float32(7 % b))
    i = mg.tensor(np.array([7, -7], dtype=np.int32))
    assert (i // 2).tolist() == [3, -4] and (i % 3).tolist() == [1, 2] and (i % 3).dtype == np.int32


@given(data=st.data())
def test_remainder_and_floor_division_gradients_between_the_jumps(device, data):
    a_shape, b_shape = data.draw(broadcast_pairs).input_shapes
    # a = k + 1/4 or k + 3/4 and b in {-2, 1, 2, 4}: a / b is at least 1/16 from an integer,
    # so central differences never cross a jump
    a = data.draw(hnp.arrays(np.int64, a_shape, elements=st.integers(-6, 6))) + \
        data.draw(hnp.arrays(np.float64, a_shape, elements=st.sampled_from([0.25, 0.75])))
    b = data.draw(hnp.arrays(np.float64, b_shape, elements=st.sampled_from([-2.0, 1.0, 2.0, 4.0])))
    check(device, lambda x, y: x % y, np.mod, a, b)
    check(device, lambda x, y: x // y, np.floor_divide, a, b)


# --------------------------------------------------------------------------- einsum
EINSUMS = [
    ("ij,jk->ik", [(2, 3), (3, 4)]), ("i,i->", [(3,), (3,)]), ("i,j->ij", [(2,), (3,)]),
    ("ij->ji", [(2, 3)]), ("ii->i", [(3, 3)]), ("ii->", [(3, 3)]), ("ij->", [(2, 3)]),
    ("ij->j", [(2, 3)]), ("bij,bjk->bik", [(2, 2, 3), (2, 3, 2)]), ("ij,jk,kl->il", [(2, 3), (3, 2), (2, 2)]),
    ("...ij,...jk->...ik", [(2, 1, 2, 3), (3, 3, 2)]), ("ij,j", [(2, 3), (3,)]), ("ba,a", [(2, 3), (3,)]),
    ("iij->ij", [(2, 2, 3)]), ("ij,kj->ik", [(1, 3), (2, 3)]), (",i->i", [(), (3,)]), ("i,i", [(1,), (1,)]),
]


@pytest.mark.parametrize("spec, operand_shapes", EINSUMS)
def test_einsum_matches_numpy_and_gradcheck(device, spec, operand_shapes):
    rng = np.random.default_rng(0)
    operands = [rng.standard_normal(s) for s in operand_shapes]
    check(device, lambda *xs: mg.einsum(spec, *xs), lambda *xs: np.einsum(spec, *xs), *operands)


@given(data=st.data())
def test_einsum_batched_matmul_with_broadcasting_gradcheck(device, data):
    batch_a, batch_b = data.draw(hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=2, max_side=3)).input_shapes
    n, k, m = (data.draw(st.integers(1, 3)) for _ in range(3))
    a, b = data.draw(arrays(batch_a + (n, k))), data.draw(arrays(batch_b + (k, m)))
    check(device, lambda x, y: mg.einsum("...nk,...km->...nm", x, y), np.matmul, a, b)


def test_einsum_errors_name_the_spec(device):
    with pytest.raises(ValueError, match="einsum: 'ij,jk' names 2 operands, got 1"):
        mg.einsum("ij,jk", mg.zeros(2, 3))
    with pytest.raises(ValueError, match="does not fit a tensor with 2 dimensions"):
        mg.einsum("ijk->i", mg.zeros(2, 3))
    with pytest.raises(ValueError, match="letter 'j' has sizes 3 and 4"):
        mg.einsum("ij,jk->ik", mg.zeros(2, 3), mg.zeros(4, 5))


# --------------------------------------------------------------------------- pow at base 0 (item 10)
def test_pow_gradient_at_base_zero_follows_pytorch(device):
    a = mg.tensor([0.0, 0.0, 0.0, 2.0, 0.0], dtype="float64", requires_grad=True)
    b = mg.tensor([0.0, 2.0, 0.5, 0.0, -1.0], dtype="float64", requires_grad=True)
    (a ** b).sum().backward()
    # d/da = b a^(b-1), 0 where b == 0 (a^0 is constant); d/db = a^b log a, 0 where a == 0 and b >= 0
    np.testing.assert_array_equal(a.grad.numpy()[:4], [0.0, 0.0, np.inf, 0.0])
    np.testing.assert_allclose(b.grad.numpy()[:4], [0.0, 0.0, 0.0, math.log(2.0)])
    x = mg.tensor([0.0, 3.0], dtype="float64", requires_grad=True)
    (x ** 0).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 0.0])
    x.grad = None
    (x ** 2).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 6.0])
    y = mg.tensor([1.0, 2.5], dtype="float64", requires_grad=True)
    (0.0 ** y).sum().backward()
    np.testing.assert_array_equal(y.grad.numpy(), [0.0, 0.0])
