"""mg.full, full_like, eye, linspace, rand, randn, randint and from_numpy: values against numpy, the
dtype PyTorch would give, the device under test."""
import numpy as np
import pytest

import minigrad as mg


def test_full_and_full_like_take_the_values_dtype_as_pytorch(device):
    for value, dtype in [(2.5, np.float32), (3, np.int64), (True, np.bool_)]:
        t = mg.full((2, 3), value)
        assert t.shape == (2, 3) and t.dtype == dtype and t.device == device
        np.testing.assert_array_equal(t.numpy(), np.full((2, 3), value))
    assert mg.full(4, 1.0, dtype="float64").dtype == np.float64
    like = mg.full_like(mg.zeros(2, dtype="float16"), 7)
    assert like.dtype == np.float16 and like.tolist() == [7.0, 7.0]
    assert mg.full((2,), 0.5, requires_grad=True).requires_grad


def test_eye_and_linspace_match_numpy(device):
    np.testing.assert_array_equal(mg.eye(3).numpy(), np.eye(3))
    np.testing.assert_array_equal(mg.eye(2, 4).numpy(), np.eye(2, 4))
    assert mg.eye(3).dtype == np.float32 and mg.eye(3).device == device
    np.testing.assert_allclose(mg.linspace(-1, 2, 7).numpy(), np.linspace(-1, 2, 7), rtol=1e-6)
    assert mg.linspace(0, 1, 5).dtype == np.float32 and mg.linspace(0, 1, 0).shape == (0,)
    with pytest.raises(ValueError, match="linspace: n must be >= 0"):
        mg.linspace(0, 1, -1)


def test_randint_draws_in_range_from_the_seeded_generator(device):
    mg.manual_seed(3)
    first = mg.randint(2, 5, (1000,))
    mg.manual_seed(3)
    again = mg.randint(2, 5, (1000,))
    assert first.dtype == np.int64 and first.device == device
    np.testing.assert_array_equal(first.numpy(), again.numpy())
    assert set(np.unique(first.numpy())) == {2, 3, 4}
    assert mg.randint(4, shape=(3, 2)).numpy().max() < 4
    with pytest.raises(ValueError, match="randint: needs low < high"):
        mg.randint(3, 3, (2,))


def test_rand_and_randn_draw_float32_from_the_seeded_generator_with_their_distribution(device):
    """20,000 draws: U[0, 1) has mean 1/2 and variance 1/12, N(0, 1) mean 0 and variance 1
    (each within 5 standard errors); the shape may be given as sizes or as one tuple."""
    for draw, mean, var in [(mg.rand, 0.5, 1 / 12), (mg.randn, 0.0, 1.0)]:
        mg.manual_seed(11)
        first = draw(100, 200)
        mg.manual_seed(11)
        again = draw((100, 200))
        assert first.shape == (100, 200) and first.dtype == np.float32 and first.device == device
        np.testing.assert_array_equal(first.numpy(), again.numpy())
        values = first.numpy().astype(np.float64)
        assert abs(values.mean() - mean) < 5 * np.sqrt(var / values.size)
        assert abs(values.var() / var - 1) < 5 * np.sqrt(2 / values.size)
        assert not np.array_equal(values, draw(100, 200).numpy())
        assert draw(3, dtype="float64").dtype == np.float64 and draw(2, requires_grad=True).requires_grad
    values = mg.rand(50_000).numpy()
    assert values.min() >= 0 and values.max() < 1


def test_from_numpy_shares_memory_both_ways():
    array = np.arange(4.0)
    t = mg.from_numpy(array)
    assert t.dtype == np.float64 and t.device == "cpu"
    array[0] = 10.0
    t.data[1] = 20.0
    assert t.tolist()[:2] == [10.0, 20.0] and array[1] == 20.0
    with pytest.raises(TypeError, match="from_numpy: expected a numpy.ndarray, got list"):
        mg.from_numpy([1.0])
