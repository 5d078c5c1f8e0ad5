"""Axes are never wrapped (issue 11 item 5): every op that takes an axis raises on one
outside [-ndim, ndim), naming the op, the axis and ndim; a 0-d tensor accepts 0 and -1
where PyTorch does. Mixed integer and array indexing gives PyTorch's shape (item 12)."""
import numpy as np
import pytest

import minigrad as mg
import minigrad.functional as F

INDEX = np.zeros((2, 3), dtype=np.int64)

# name -> call(x, axis) for x of shape (2, 3)
AXIS_OPS = {
    "sum": lambda x, a: x.sum(axis=a),
    "mean": lambda x, a: x.mean(axis=a),
    "var": lambda x, a: x.var(axis=a),
    "std": lambda x, a: x.std(axis=a),
    "max": lambda x, a: x.max(axis=a),
    "min": lambda x, a: x.min(axis=a),
    "prod": lambda x, a: x.prod(axis=a),
    "logsumexp": lambda x, a: x.logsumexp(axis=a),
    "cumsum": lambda x, a: x.cumsum(a),
    "argmax": lambda x, a: x.argmax(axis=a),
    "argmin": lambda x, a: x.argmin(axis=a),
    "any": lambda x, a: (x > 0).any(axis=a),
    "all": lambda x, a: (x > 0).all(axis=a),
    "squeeze": lambda x, a: x.squeeze(a),
    "flip": lambda x, a: x.flip(a),
    "roll": lambda x, a: x.roll(1, a),
    "softmax": lambda x, a: F.softmax(x, axis=a),
    "log_softmax": lambda x, a: F.log_softmax(x, axis=a),
    "flatten": lambda x, a: x.flatten(a),
    "unflatten": lambda x, a: x.unflatten(a, (1, -1)),
    "split": lambda x, a: x.split(1, a),
    "chunk": lambda x, a: x.chunk(2, a),
    "gather": lambda x, a: x.gather(a, INDEX),
    "scatter_add": lambda x, a: x.scatter_add(a, INDEX, x),
    "sort": lambda x, a: x.sort(a),
    "topk": lambda x, a: x.topk(1, a),
    "repeat_interleave": lambda x, a: x.repeat_interleave(2, a),
    "concatenate": lambda x, a: mg.concatenate([x, x], a),
}


@pytest.mark.parametrize("name", sorted(AXIS_OPS))
@pytest.mark.parametrize("axis", [2, -3, 7])
def test_an_axis_out_of_range_is_an_error_naming_op_axis_and_ndim(device, name, axis):
    x = mg.randn(2, 3)
    with pytest.raises(ValueError, match=rf"{name}: axis {axis} is out of range for a tensor with 2 dimensions"):
        AXIS_OPS[name](x, axis)


@pytest.mark.parametrize("name", sorted(AXIS_OPS))
def test_the_last_valid_axes_still_work_and_a_negative_axis_counts_from_the_end(device, name):
    x = mg.randn(2, 3)
    for negative, positive in [(-2, 0), (-1, 1)]:
        got, expected = _arrays(AXIS_OPS[name](x, negative)), _arrays(AXIS_OPS[name](x, positive))
        assert len(got) == len(expected)
        for a, b in zip(got, expected):
            np.testing.assert_array_equal(a, b)


def _arrays(result):
    """The arrays of an op's result: one Tensor, or a tuple/list of them (split, sort, topk)."""
    if isinstance(result, (tuple, list)):
        return [array for part in result for array in _arrays(part)]
    return [result.numpy()]


@pytest.mark.parametrize("name, call", [
    ("unsqueeze", lambda x, a: x.unsqueeze(a)), ("stack", lambda x, a: mg.stack([x, x], a))])
def test_ops_that_add_an_axis_accept_ndim_plus_one_positions_only(device, name, call):
    x = mg.randn(4, 3)
    reference = {"unsqueeze": lambda a, axis: np.expand_dims(a, axis), "stack": lambda a, axis: np.stack([a, a], axis)}
    for axis in (2, -3, -1, 0):
        np.testing.assert_array_equal(call(x, axis).numpy(), reference[name](x.numpy(), axis))
    for axis in (3, -4):
        with pytest.raises(ValueError, match=rf"{name}: axis {axis} is out of range for a tensor with 3 dimensions"):
            call(x, axis)


def test_swapaxes_and_transpose_refuse_axes_out_of_range(device):
    x = mg.randn(2, 3)
    with pytest.raises(ValueError, match=r"swapaxes: axes 0 and 2 must lie in \[-2, 2\)"):
        x.swapaxes(0, 2)
    with pytest.raises(ValueError, match=r"transpose: axes \(2, 1\) are not a permutation of the 2 axes"):
        x.transpose(2, 1)
    with pytest.raises(ValueError, match="transpose"):
        x.transpose(0, 0)


def test_an_axis_must_be_an_integer(device):
    with pytest.raises(TypeError, match=r"sum: axis must be an int or a tuple of ints, got 1.0"):
        mg.randn(2, 3).sum(axis=1.0)


@pytest.mark.parametrize("name, call, expected", [
    ("sum", lambda x, a: x.sum(axis=a), 2.0), ("mean", lambda x, a: x.mean(axis=a), 2.0),
    ("max", lambda x, a: x.max(axis=a), 2.0), ("min", lambda x, a: x.min(axis=a), 2.0),
    ("prod", lambda x, a: x.prod(axis=a), 2.0), ("var", lambda x, a: x.var(axis=a), 0.0),
    ("cumsum", lambda x, a: x.cumsum(a), 2.0), ("argmax", lambda x, a: x.argmax(axis=a), 0),
    ("softmax", lambda x, a: F.softmax(x, a), 1.0), ("log_softmax", lambda x, a: F.log_softmax(x, a), 0.0),
    ("logsumexp", lambda x, a: x.logsumexp(axis=a), 2.0), ("flip", lambda x, a: x.flip(a), 2.0),
    ("squeeze", lambda x, a: x.squeeze(a), 2.0), ("sort", lambda x, a: x.sort(a)[0], 2.0)])
def test_a_zero_dim_tensor_accepts_axis_0_and_minus_1_only(device, name, call, expected):
    x = mg.tensor(2.0)
    for axis in (0, -1):
        out = call(x, axis)
        assert out.shape == () and out.item() == expected
    with pytest.raises(ValueError, match=rf"{name}: axis 1 is out of range for a tensor with 0 dimensions"):
        call(x, 1)


def test_softmax_of_an_empty_axis_is_empty_and_of_a_zero_dim_tensor_is_one(device):
    x = mg.zeros(2, 0, requires_grad=True)
    assert F.softmax(x, axis=1).shape == (2, 0) and F.log_softmax(x, axis=-1).shape == (2, 0)
    F.softmax(x, axis=1).sum().backward()
    assert x.grad.shape == (2, 0)
    scalar = mg.tensor(3.0, requires_grad=True)
    y = F.softmax(scalar, axis=0)
    assert y.shape == () and y.item() == 1.0
    y.backward()
    assert scalar.grad.item() == 0.0


# --------------------------------------------------------------------------- indexing (item 12)
@pytest.mark.parametrize("index, expected_shape", [
    ((0, slice(None), [0, 1]), (4, 2)),
    ((slice(None), 1, [0, 2, 4]), (3, 3)),
    (([0, 2], slice(None), 1), (2, 4)),
    ((0, [1, 2], [0, 1]), (2,)),
    ((Ellipsis, 0, [1, 3]), (3, 2)),
    ((0, None, slice(None), [0, 1]), (1, 4, 2)),
    ((1, slice(1, 3), np.array([[0, 1], [2, 3]])), (2, 2, 2)),
    (([0, 1], slice(None), [0, 1]), (2, 4)),       # two arrays apart: numpy's and PyTorch's rule agree
])
def test_mixed_integer_and_array_indexing_gives_pytorchs_shape_and_gradient(device, index, expected_shape):
    a = np.arange(60.0).reshape(3, 4, 5)
    x = mg.tensor(a, requires_grad=True)
    y = x[index]
    assert y.shape == expected_shape
    # the values and gradient: integers applied first (basic indexing), then the rest
    ints_first = tuple(p if isinstance(p, int) or p is Ellipsis else slice(None) for p in index if p is not None)
    rest = tuple(p for p in index if not isinstance(p, int))
    weights = np.random.default_rng(0).standard_normal(expected_shape)
    expected_grad = np.zeros_like(a)
    if any(isinstance(p, int) for p in index):
        expected = a[ints_first][rest]
        np.add.at(expected_grad[ints_first], rest, weights)      # a view: writes into expected_grad
    else:
        expected = a[index]
        np.add.at(expected_grad, index, weights)
    np.testing.assert_array_equal(y.numpy(), expected)
    (y * mg.tensor(weights)).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), expected_grad)
    assert mg.gradcheck(lambda t: t[index], [mg.tensor(a, requires_grad=True)])
