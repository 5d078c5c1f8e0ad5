"""Type promotion as PyTorch does it (minigrad/dtypes.py), float16 accumulation in the
reductions, and clear errors for what cannot become a tensor (issue 11 items 9, 11
and the unclear crashes). Each test runs on "cpu" and on the cupy double."""
import numpy as np
import pytest

import minigrad as mg
import minigrad.functional as F


# --------------------------------------------------------------------------- numbers never widen
@pytest.mark.parametrize("dtype", ["int8", "uint8", "int16", "int32", "int64"])
def test_an_integer_tensor_with_a_python_int_keeps_its_dtype(device, dtype):
    x = mg.tensor(np.array([1, 2, 3], dtype=dtype))
    for out in (x * 2, 2 * x, x + 1, 1 + x, x - 1, x // 2, x % 2, x ** 2, mg.where(x > 1, x, 0)):
        assert out.dtype == dtype, out
    np.testing.assert_array_equal((x * 2).numpy(), [2, 4, 6])


def test_float16_with_python_numbers_stays_float16(device):
    x = mg.tensor(np.array([1.0, 2.0], dtype=np.float16), requires_grad=True)
    for out in (x + 0.5, 0.5 * x, x - 1, x / 3, 2.0 ** x, x ** 2, x.masked_fill(x > 1, 0.0),
                mg.maximum(x, 0.0), x * np.float64(2.0)):
        assert out.dtype == np.float16, out
    (x * 0.5).sum().backward()
    assert x.grad.dtype == np.float16


@pytest.mark.parametrize("zero", [0.0, np.float32(0.0), np.float16(0.0), np.float64(0.0)])
def test_a_number_zero_keeps_its_sign_after_the_other_zero_was_used(device, zero):
    """Numbers become constants kept for reuse; 0.0 == -0.0, yet x * -0.0 must stay -0."""
    x = mg.tensor([1.0, 2.0])
    for first, then in ((zero, -zero), (-zero, zero), (zero, -zero)):
        np.testing.assert_array_equal(np.signbit((x * first).numpy()), np.signbit(first))
        np.testing.assert_array_equal(np.signbit((x * then).numpy()), np.signbit(then))


@pytest.mark.parametrize("dtype", ["bool", "int32", "int64", "uint8"])
def test_integer_and_bool_tensors_meeting_a_python_float_become_float32(device, dtype):
    x = mg.tensor(np.array([1, 0, 1], dtype=dtype))
    for out in (x * 0.5, 0.5 + x, x - 1.5, mg.where(x > 0, x, 0.5)):
        assert out.dtype == np.float32, out
    np.testing.assert_allclose((x * 0.5).numpy(), np.array([1, 0, 1]) * 0.5)


def test_bool_with_a_python_int_becomes_int64(device):
    assert (mg.tensor([True, False]) + 1).dtype == np.int64


def test_a_python_int_too_large_for_the_tensor_is_a_clear_error(device):
    x = mg.tensor(np.array([1, 2], dtype=np.int32))
    with pytest.raises(OverflowError, match=r"2199023255552 does not fit in int32"):
        x + 2 ** 41


# --------------------------------------------------------------------------- tensors meeting tensors
@pytest.mark.parametrize("int_dtype", ["bool", "uint8", "int32", "int64"])
@pytest.mark.parametrize("float_dtype", ["float16", "float32", "float64"])
def test_an_integer_tensor_meeting_a_float_tensor_takes_its_dtype(device, int_dtype, float_dtype):
    i = mg.tensor(np.array([1, 2] if int_dtype != "bool" else [True, False], dtype=int_dtype))
    f = mg.tensor(np.array([0.5, 1.5], dtype=float_dtype))
    for out in (i * f, f + i, i - f, f / i if int_dtype != "bool" else f * i, mg.maximum(i, f),
                mg.concatenate([i, f])):
        assert out.dtype == float_dtype, out


def test_floats_of_two_widths_meet_at_the_wider_and_gradients_come_back_in_each_dtype(device):
    half = mg.tensor(np.array([1.0, 2.0], dtype=np.float16), requires_grad=True)
    single = mg.tensor(np.array([3.0, 4.0], dtype=np.float32), requires_grad=True)
    out = half * single
    assert out.dtype == np.float32
    out.sum().backward()
    assert half.grad.dtype == np.float16 and single.grad.dtype == np.float32
    np.testing.assert_allclose(half.grad.numpy(), [3.0, 4.0])
    np.testing.assert_allclose(single.grad.numpy(), [1.0, 2.0])


def test_a_zero_dim_tensor_only_counts_when_it_raises_the_category(device):
    half = mg.tensor(np.array([1.0, 2.0], dtype=np.float16))
    int32 = mg.tensor(np.array([1, 2], dtype=np.int32))
    assert (half * mg.tensor(np.float32(2.0))).dtype == np.float16      # same category: ignored
    assert (int32 * mg.tensor(np.int64(2))).dtype == np.int32
    assert (int32 * mg.tensor(np.float64(0.5))).dtype == np.float64      # raises the category
    assert (mg.tensor(np.float16(1.0)) * mg.tensor(np.float32(1.0))).dtype == np.float32


def test_integers_of_two_kinds_meet_as_pytorch(device):
    u8 = mg.tensor(np.array([200], dtype=np.uint8))
    i8 = mg.tensor(np.array([-1], dtype=np.int8))
    assert (u8 + i8).dtype == np.int16 and (u8 + i8).item() == 199
    assert (u8 + mg.tensor(np.array([1], dtype=np.int64))).dtype == np.int64


# --------------------------------------------------------------------------- float-valued ops
@pytest.mark.parametrize("dtype", ["bool", "int32", "int64"])
def test_division_and_float_valued_math_on_integers_give_float32(device, dtype):
    x = mg.tensor(np.array([1, 2, 4], dtype=dtype) if dtype != "bool" else np.array([True, True, False]))
    host = x.numpy().astype(np.float64)
    for name, out, expected in [("/", x / 2, host / 2), ("rdiv", 4 / x if dtype != "bool" else x / 1, None),
                                ("exp", x.exp(), np.exp(host)), ("sqrt", x.sqrt(), np.sqrt(host)),
                                ("sin", x.sin(), np.sin(host)), ("mean", x.mean(), host.mean()),
                                ("var", x.var(), host.var()), ("std", x.std(), host.std()),
                                ("sigmoid", x.sigmoid(), 1 / (1 + np.exp(-host))),
                                ("logsumexp", x.logsumexp(), np.log(np.exp(host).sum())),
                                ("silu", F.silu(x), host / (1 + np.exp(-host)))]:
        assert out.dtype == np.float32, name
        if expected is not None:
            np.testing.assert_allclose(out.numpy(), expected, rtol=1e-6, err_msg=name)


def test_arange_divided_by_its_length_is_float32(device):
    T = 7
    positions = mg.arange(T) / T
    assert positions.dtype == np.float32
    np.testing.assert_allclose(positions.numpy(), np.arange(T) / T, rtol=1e-7)


def test_sum_of_integers_is_int64_as_in_pytorch(device):
    for dtype in ("bool", "uint8", "int32"):
        total = mg.tensor(np.array([1, 1, 1], dtype=dtype)).sum()
        assert total.dtype == np.int64 and total.item() == 3


# --------------------------------------------------------------------------- float16 accumulation
def test_float16_mean_of_100000_ones_is_one_not_inf(device):
    x = mg.ones(1000, 100, dtype="float16")
    assert x.mean().dtype == np.float16 and x.mean().item() == 1.0
    assert x.mean(axis=0).dtype == np.float16
    np.testing.assert_array_equal(x.mean(axis=0).numpy(), np.ones(100))


def test_float16_sum_and_var_accumulate_in_float32_and_return_float16(device):
    # 4096 values of 1 + 1/1024 (exact in float16): a float16 running sum stalls at 2048,
    # where adding 1 no longer changes it (the spacing there is 2)
    x = mg.full((4096,), 1.0 + 2 ** -10, dtype="float16")
    assert x.sum().dtype == np.float16
    assert x.sum().item() == 4100.0                 # 4096 * (1 + 2^-10), exact in float16
    # down the columns numpy adds one row at a time (no pairwise sum to hide a float16 accumulator)
    ones = mg.ones(4096, 3, dtype="float16")
    np.testing.assert_array_equal(ones.sum(axis=0).numpy(), [4096.0] * 3)
    values = np.arange(1000) % 2 * 300.0        # the squared deviations add up past float16's 65504
    big = mg.tensor(values.astype(np.float16))
    assert big.var().dtype == np.float16
    assert big.var().item() == pytest.approx(np.var(values), rel=1e-3)
    assert big.std(correction=1).item() == pytest.approx(np.std(values, ddof=1), rel=1e-3)


def test_float16_gradients_of_mean_are_not_flushed_to_zero(device):
    x = mg.ones(1000, 100, dtype="float16", requires_grad=True)
    x.mean().backward()
    assert x.grad.dtype == np.float16
    np.testing.assert_allclose(x.grad.numpy(), 1e-5, rtol=1e-2)


# --------------------------------------------------------------------------- min (item 9)
def test_min_is_right_for_unsigned_extreme_integers_and_bool(device):
    assert mg.tensor(np.array([0, 1, 2], dtype=np.uint8)).min().item() == 0
    assert mg.tensor(np.array([3, 1, 2], dtype=np.uint8)).min().item() == 1
    assert mg.tensor(np.array([-2 ** 31, 0, 5], dtype=np.int32)).min().item() == -2 ** 31
    assert mg.tensor(np.array([2 ** 63 - 1, -2 ** 63], dtype=np.int64)).min().item() == -2 ** 63
    smallest = mg.tensor([True, False, True]).min()
    assert smallest.dtype == np.bool_ and smallest.item() is False
    assert mg.tensor([[True, True], [False, True]]).min(axis=1).tolist() == [True, False]
    assert mg.tensor(np.array([0, 255], dtype=np.uint8)).argmin().item() == 0


# --------------------------------------------------------------------------- clear errors
@pytest.mark.parametrize("bad, error, words", [
    (None, TypeError, "NoneType None"),
    ("abc", TypeError, "str 'abc'"),
    ({"a": 1}, TypeError, "dict"),
    (b"ab", TypeError, "bytes"),
    ([1.0, None], TypeError, "list"),
    (2 ** 70, OverflowError, "outside int64's range"),
    ([1, 2 ** 64], OverflowError, "outside int64's range"),
    ([[1, 2], [3]], ValueError, "cannot make a tensor from list"),
])
def test_what_is_not_numbers_cannot_become_a_tensor(device, bad, error, words):
    with pytest.raises(error, match=words):
        mg.tensor(bad)


def test_an_array_of_strings_cannot_become_a_tensor(device):
    with pytest.raises(TypeError, match="expected numbers"):
        mg.Tensor(np.array(["a", "b"]))


def test_len_of_a_zero_dim_tensor_is_a_clear_error(device):
    with pytest.raises(TypeError, match="len\\(\\) of a 0-d tensor"):
        len(mg.tensor(1.0))
    assert len(mg.zeros(3, 2)) == 3


def test_batched_matmul_shape_mismatch_names_both_shapes(device):
    with pytest.raises(ValueError, match=r"matmul: batch shapes of \(2, 3, 4\) and \(5, 4, 6\) do not broadcast"):
        mg.zeros(2, 3, 4) @ mg.zeros(5, 4, 6)
    with pytest.raises(ValueError, match=r"matmul: shapes \(3,\) and \(4, 5\) do not align: 3 != 4"):
        mg.zeros(3) @ mg.zeros(4, 5)
    with pytest.raises(ValueError, match=r"matmul: shapes \(2, 3\) and \(4,\) do not align: 3 != 4"):
        mg.zeros(2, 3) @ mg.zeros(4)
