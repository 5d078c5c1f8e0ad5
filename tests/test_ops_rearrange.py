"""The newer shape, indexing and rearranging ops: flatten / unflatten / squeeze, flip,
roll, repeat, repeat_interleave, expand, tril / triu, split / chunk, gather /
scatter_add, sort / topk, clone, F.pad. Values against numpy, gradients against
central differences (float64), on "cpu" and on the cupy double."""
import numpy as np
import pytest
from hypothesis import given, strategies as st
from hypothesis.extra import numpy as hnp

import minigrad as mg
import minigrad.functional as F
from test_ops_grad import arrays, check, shapes

nonempty = hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4)


@given(data=st.data())
def test_flatten_and_unflatten_match_numpy_and_gradcheck(device, data):
    a = data.draw(arrays(shapes))
    if a.ndim == 0:
        check(device, lambda x: x.flatten(), lambda x: x.reshape(1), a)
        return
    start = data.draw(st.integers(0, a.ndim - 1))
    end = data.draw(st.integers(start, a.ndim - 1))
    merged = a.shape[:start] + (int(np.prod(a.shape[start:end + 1])),) + a.shape[end + 1:]
    check(device, lambda x: x.flatten(start, end), lambda x: x.reshape(merged), a)
    check(device, lambda x: x.flatten(start - a.ndim, end), lambda x: x.reshape(merged), a)
    axis = data.draw(st.integers(-a.ndim, a.ndim - 1))
    size = a.shape[axis]
    split_shape = a.shape[:axis % a.ndim] + (1, size) + a.shape[axis % a.ndim + 1:]
    check(device, lambda x: x.unflatten(axis, (1, -1)), lambda x: x.reshape(split_shape), a)


def test_flatten_and_unflatten_errors(device):
    with pytest.raises(ValueError, match="flatten: start_dim 2 comes after end_dim 1"):
        mg.zeros(2, 3, 4).flatten(2, 1)
    with pytest.raises(ValueError, match=r"unflatten: sizes \(4, 2\) do not multiply to axis 1's size 6"):
        mg.zeros(2, 6).unflatten(1, (4, 2))
    assert mg.zeros(2, 0, 3).flatten(1).shape == (2, 0)


def test_squeeze_with_an_axis_or_a_tuple_keeps_the_others(device):
    x = mg.zeros(1, 3, 1, 2)
    assert x.squeeze().shape == (3, 2)
    assert x.squeeze(0).shape == (3, 1, 2)
    assert x.squeeze(1).shape == (1, 3, 1, 2)          # not size 1: kept, as PyTorch
    assert x.squeeze((0, 2)).shape == (3, 2)
    assert x.squeeze(-2).shape == (1, 3, 2)


@given(data=st.data())
def test_flip_and_roll_match_numpy_and_gradcheck(device, data):
    a = data.draw(arrays(nonempty))
    axes = tuple(data.draw(st.lists(st.integers(0, a.ndim - 1), min_size=1, max_size=a.ndim, unique=True)))
    check(device, lambda x: x.flip(axes), lambda x: np.flip(x, axes), a)
    check(device, lambda x: x.flip(*axes), lambda x: np.flip(x, axes), a)
    shifts = tuple(data.draw(st.integers(-5, 5)) for _ in axes)
    check(device, lambda x: x.roll(shifts, axes), lambda x: np.roll(x, shifts, axes), a)
    check(device, lambda x: x.roll(shifts[0]), lambda x: np.roll(x, shifts[0]), a)


def test_flip_copies_as_pytorch(device):
    x = mg.tensor([1.0, 2.0, 3.0])
    y = x.flip(0)
    y.data[0] = 9.0
    assert x.tolist() == [1.0, 2.0, 3.0]


@given(data=st.data())
def test_repeat_matches_numpy_tile_and_gradcheck(device, data):
    a = data.draw(arrays(shapes))
    extra = data.draw(st.integers(0, 2))
    reps = tuple(data.draw(st.integers(1, 3)) for _ in range(a.ndim + extra))
    check(device, lambda x: x.repeat(*reps), lambda x: np.tile(x, reps), a)
    check(device, lambda x: x.repeat(reps), lambda x: np.tile(x, reps), a)


@given(data=st.data())
def test_repeat_interleave_matches_numpy_and_gradcheck(device, data):
    a = data.draw(arrays(nonempty))
    axis = data.draw(st.integers(-a.ndim, a.ndim - 1))
    n = data.draw(st.integers(1, 3))
    check(device, lambda x: x.repeat_interleave(n, axis), lambda x: np.repeat(x, n, axis), a)
    counts = data.draw(st.lists(st.integers(0, 3), min_size=a.shape[axis], max_size=a.shape[axis]))
    check(device, lambda x: x.repeat_interleave(counts, axis), lambda x: np.repeat(x, counts, axis), a)
    check(device, lambda x: x.repeat_interleave(n), lambda x: np.repeat(x, n), a)


@given(data=st.data())
def test_expand_matches_numpy_and_gradcheck(device, data):
    a = data.draw(arrays(shapes))
    target = data.draw(hnp.broadcastable_shapes(a.shape, max_dims=4).map(
        lambda s: np.broadcast_shapes(s, a.shape)))
    lead = len(target) - a.ndim
    with_minus_one = target[:lead] + tuple(-1 if size == t else t for size, t in zip(a.shape, target[lead:]))
    check(device, lambda x: x.expand(*target), lambda x: np.broadcast_to(x, target), a)
    check(device, lambda x: x.expand(with_minus_one), lambda x: np.broadcast_to(x, target), a)


def test_expand_errors(device):
    with pytest.raises(ValueError, match=r"expand: shape \(2, 3\) cannot be expanded to \(4, 3\)"):
        mg.zeros(2, 3).expand(4, 3)
    with pytest.raises(ValueError, match="-1 is allowed only for an existing axis"):
        mg.zeros(3).expand(-1, 3)


@given(a=arrays(hnp.array_shapes(min_dims=2, max_dims=3, min_side=1, max_side=4)), k=st.integers(-3, 3))
def test_tril_and_triu_match_numpy_and_gradcheck(device, a, k):
    check(device, lambda x: x.tril(k), lambda x: np.tril(x, k), a)
    check(device, lambda x: x.triu(k), lambda x: np.triu(x, k), a)


def test_tril_keeps_integer_dtype_and_needs_two_axes(device):
    assert mg.tensor(np.ones((2, 2), dtype=np.int32)).tril().dtype == np.int32
    with pytest.raises(ValueError, match="tril: needs at least 2 dimensions"):
        mg.zeros(3).tril()


@given(data=st.data())
def test_split_and_chunk_match_numpy_and_gradcheck(device, data):
    a = data.draw(arrays(nonempty))
    axis = data.draw(st.integers(-a.ndim, a.ndim - 1))
    length = a.shape[axis]
    size = data.draw(st.integers(1, length + 1))
    bounds = list(range(size, length, size))
    expected = np.split(a, bounds, axis)
    pieces = mg.tensor(a).split(size, axis)
    assert [p.shape for p in pieces] == [e.shape for e in expected]
    for i in range(len(expected)):
        check(device, lambda x: x.split(size, axis)[i], lambda x: np.split(x, bounds, axis)[i], a)
    sizes = data.draw(st.lists(st.integers(0, length), min_size=1, max_size=3).filter(lambda s: sum(s) <= length))
    sizes = sizes + [length - sum(sizes)]
    listed = mg.tensor(a).split(sizes, axis)
    np.testing.assert_array_equal(mg.concatenate(listed, axis).numpy(), a)
    n = data.draw(st.integers(1, 5))
    chunks = mg.tensor(a).chunk(n, axis)
    per_chunk = -(-length // n)
    assert [c.shape[axis] for c in chunks] == [min(per_chunk, length - s) for s in range(0, length, per_chunk)]


def test_split_errors(device):
    with pytest.raises(ValueError, match=r"split: sizes \[1, 1\] do not add up to axis 0's size 3"):
        mg.zeros(3).split([1, 1])
    with pytest.raises(ValueError, match="chunk: needs a positive number of chunks"):
        mg.zeros(3).chunk(0)


# --------------------------------------------------------------------------- gather / scatter_add
@st.composite
def gather_case(draw):
    shape = draw(nonempty)
    axis = draw(st.integers(0, len(shape) - 1))
    index_shape = tuple(draw(st.integers(1, 4)) if d == axis else draw(st.integers(1, size))
                        for d, size in enumerate(shape))
    index = draw(hnp.arrays(np.int64, index_shape, elements=st.integers(0, shape[axis] - 1)))
    return draw(arrays(shape)), axis, index


def numpy_gather(a, axis, index):
    # PyTorch's gather: out[i, j] = a[index[i, j], j] (axis 0), over index's shape
    cut = a[tuple(slice(0, s) if d != axis else slice(None) for d, s in enumerate(index.shape))]
    return np.take_along_axis(cut, index, axis)


@given(case=gather_case())
def test_gather_matches_pytorchs_rule_and_gradcheck(device, case):
    a, axis, index = case
    check(device, lambda x: x.gather(axis, index), lambda x: numpy_gather(x, axis, index), a)
    check(device, lambda x: x.gather(axis - a.ndim, mg.tensor(index)), lambda x: numpy_gather(x, axis, index), a)


@given(case=gather_case(), data=st.data())
def test_scatter_add_matches_a_loop_and_gradcheck(device, case, data):
    target, axis, index = case
    src = data.draw(arrays(tuple(s + data.draw(st.integers(0, 1)) for s in index.shape)))   # may be larger

    def reference(t, s):
        out = t.copy()
        for position in np.ndindex(*index.shape):
            at = list(position)
            at[axis] = index[position]
            out[tuple(at)] += s[position]
        return out
    check(device, lambda t, s: t.scatter_add(axis, index, s), reference, target, src)


def test_gather_and_scatter_add_check_their_index(device):
    x = mg.zeros(2, 3)
    with pytest.raises(IndexError, match=r"gather: index values must lie in \[0, 3\) along axis 1, got 0 to 3"):
        x.gather(1, np.array([[0, 3]]))
    with pytest.raises(ValueError, match="gather: index has 1 dimensions, the tensor 2"):
        x.gather(1, np.array([0]))
    with pytest.raises(TypeError, match="gather: index must hold integers"):
        x.gather(1, np.array([[0.0]]))
    with pytest.raises(ValueError, match=r"scatter_add: src of shape \(1, 1\) must be at least index's shape"):
        x.scatter_add(1, np.array([[0, 1]]), mg.zeros(1, 1))


# --------------------------------------------------------------------------- sort / topk / clone
@st.composite
def distinct_values_and_axis(draw):
    """Values 0.1 apart (no ties: central differences never reorder them) and an axis."""
    shape = draw(nonempty)
    a = np.array(draw(st.permutations(range(int(np.prod(shape))))), dtype=np.float64).reshape(shape) * 0.1
    return a, draw(st.integers(-len(shape), len(shape) - 1))


@given(case=distinct_values_and_axis(), descending=st.booleans())
def test_sort_matches_numpy_and_gradcheck(device, case, descending):
    a, axis = case
    order = np.argsort(-a if descending else a, axis=axis)
    values, indices = mg.tensor(a).sort(axis, descending=descending)
    np.testing.assert_array_equal(indices.numpy(), order)
    assert indices.dtype == np.int64
    check(device, lambda x: x.sort(axis, descending)[0], lambda x: np.take_along_axis(x, order, axis), a)


def test_sort_is_stable_for_ties_both_ways(device):
    x = mg.tensor([2.0, 1.0, 2.0, 1.0])
    assert x.sort()[1].tolist() == [1, 3, 0, 2]
    assert x.sort(descending=True)[1].tolist() == [0, 2, 1, 3]
    assert mg.tensor(np.array([3, 0, 255], dtype=np.uint8)).sort(descending=True)[0].tolist() == [255, 3, 0]


@given(case=distinct_values_and_axis(), data=st.data(), largest=st.booleans())
def test_topk_matches_numpy_and_gradcheck(device, case, data, largest):
    a, axis = case
    k = data.draw(st.integers(0, a.shape[axis]))
    order = np.take(np.argsort(-a if largest else a, axis=axis), range(k), axis=axis)
    values, indices = mg.tensor(a).topk(k, axis, largest=largest)
    np.testing.assert_array_equal(indices.numpy(), order)
    check(device, lambda x: x.topk(k, axis, largest)[0], lambda x: np.take_along_axis(x, order, axis), a)


def test_topk_k_out_of_range_is_an_error(device):
    with pytest.raises(ValueError, match=r"topk: k=4 is out of range for an axis of size 3"):
        mg.zeros(3).topk(4)


@given(a=arrays(shapes))
def test_clone_copies_and_passes_the_gradient(device, a):
    x = mg.tensor(a, requires_grad=True)
    y = x.clone()
    assert y.data is not x.data
    y.data[...] = 7.0
    np.testing.assert_array_equal(x.numpy(), a)
    check(device, lambda t: t.clone(), lambda t: t.copy(), a)


# --------------------------------------------------------------------------- pad
@given(data=st.data())
def test_pad_uses_pytorchs_order_and_gradcheck(device, data):
    a = data.draw(arrays(nonempty))
    n_axes = data.draw(st.integers(1, a.ndim))
    widths = []
    for i in range(n_axes):
        size = a.shape[a.ndim - 1 - i]
        # negative widths cut, at most the whole axis between them
        widths += [data.draw(st.integers(-(size // 2), 2)), data.draw(st.integers(-(size - size // 2), 2))]
    value = data.draw(st.sampled_from([0.0, -1.5]))

    def reference(x):
        per_axis = [(0, 0)] * x.ndim
        for i in range(n_axes):
            per_axis[x.ndim - 1 - i] = (widths[2 * i], widths[2 * i + 1])
        cut = x[tuple(slice(max(-b, 0), s - max(-e, 0)) for (b, e), s in zip(per_axis, x.shape))]
        return np.pad(cut, [(max(b, 0), max(e, 0)) for b, e in per_axis], constant_values=value)
    check(device, lambda x: F.pad(x, widths, value=value), reference, a)


def test_pad_order_is_last_axis_first(device):
    x = mg.ones(1, 2)
    assert F.pad(x, (1, 2)).shape == (1, 5)
    assert F.pad(x, (0, 0, 3, 0)).shape == (4, 2)
    np.testing.assert_array_equal(F.pad(x, (1, 0), value=5.0).numpy(), [[5.0, 1.0, 1.0]])
    with pytest.raises(ValueError, match="pad: needs an even number of widths"):
        F.pad(x, (1, 2, 3))
    with pytest.raises(ValueError, match='only mode="constant"'):
        F.pad(x, (1, 1), mode="reflect")
