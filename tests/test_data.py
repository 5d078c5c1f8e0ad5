"""Tests for minigrad.data: the DataLoader and the sequence batching helpers
(the data sets themselves are tested in test_datasets.py)."""
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from minigrad.data import DataLoader, lm_batch, pad_sequences, train_val_split

FAST = settings(max_examples=50, deadline=None)


# ----------------------------------------------------------------------------- DataLoader

@FAST
@given(st.integers(0, 60), st.integers(1, 20), st.booleans(), st.booleans())
def test_number_and_sizes_of_batches(n, batch_size, drop_last, shuffle):
    X = np.arange(n * 2).reshape(n, 2)
    loader = DataLoader(X, batch_size, shuffle=shuffle, drop_last=drop_last, seed=0)
    sizes = [len(batch) for batch in loader]
    expected = n // batch_size if drop_last else math.ceil(n / batch_size)
    assert len(loader) == len(sizes) == expected
    assert all(size == batch_size for size in sizes[:-1])
    if sizes:
        assert sizes[-1] == (batch_size if drop_last or n % batch_size == 0 else n % batch_size)


def test_last_partial_batch_is_kept_or_dropped():
    X = np.arange(10)
    assert [len(b) for b in DataLoader(X, 4)] == [4, 4, 2]
    assert [len(b) for b in DataLoader(X, 4, drop_last=True)] == [4, 4]
    assert len(DataLoader(X, 4)) == 3 and len(DataLoader(X, 4, drop_last=True)) == 2


def test_without_shuffle_batches_are_in_order_and_pair_x_with_y():
    X = np.arange(14).reshape(7, 2)
    y = np.arange(7) * 10
    batches = list(DataLoader((X, y), batch_size=3))
    assert all(isinstance(batch, tuple) and len(batch) == 2 for batch in batches)
    np.testing.assert_array_equal(np.concatenate([xb for xb, _ in batches]), X)
    np.testing.assert_array_equal(np.concatenate([yb for _, yb in batches]), y)


def test_a_single_array_yields_arrays_not_tuples():
    batch = next(iter(DataLoader(np.ones((5, 3)), batch_size=2)))
    assert isinstance(batch, np.ndarray) and batch.shape == (2, 3)


def test_a_list_of_arrays_yields_tuples():
    batch = next(iter(DataLoader([np.ones((5, 3)), np.zeros(5)], batch_size=2)))
    assert isinstance(batch, tuple) and batch[0].shape == (2, 3) and batch[1].shape == (2,)


@FAST
@given(st.integers(1, 80), st.integers(1, 16), st.integers(0, 2**32 - 1))
def test_shuffle_visits_every_sample_exactly_once_per_epoch(n, batch_size, seed):
    X = np.arange(n)
    y = -np.arange(n)
    loader = DataLoader((X, y), batch_size, shuffle=True, seed=seed)
    for _ in range(2):
        seen_x, seen_y = zip(*loader)
        seen_x, seen_y = np.concatenate(seen_x), np.concatenate(seen_y)
        np.testing.assert_array_equal(np.sort(seen_x), X)
        np.testing.assert_array_equal(seen_y, -seen_x)          # rows stay paired


def test_same_seed_gives_the_same_batches_every_epoch():
    X = np.arange(100)
    first = DataLoader(X, 16, shuffle=True, seed=123)
    second = DataLoader(X, 16, shuffle=True, seed=123)
    for _ in range(3):
        for a, b in zip(first, second):
            np.testing.assert_array_equal(a, b)


def test_different_seeds_give_different_orders():
    X = np.arange(100)
    a = np.concatenate(list(DataLoader(X, 10, shuffle=True, seed=1)))
    b = np.concatenate(list(DataLoader(X, 10, shuffle=True, seed=2)))
    assert not np.array_equal(a, b)


def test_each_epoch_draws_a_new_order():
    loader = DataLoader(np.arange(100), 10, shuffle=True, seed=0)
    epoch_one = np.concatenate(list(loader))
    epoch_two = np.concatenate(list(loader))
    assert not np.array_equal(epoch_one, epoch_two)
    assert not np.array_equal(epoch_one, np.arange(100))     # and it really is shuffled


def test_drop_last_with_shuffle_drops_different_samples_but_never_repeats():
    loader = DataLoader(np.arange(10), 3, shuffle=True, drop_last=True, seed=0)
    batches = np.concatenate(list(loader))
    assert len(batches) == 9 and len(set(batches.tolist())) == 9


def test_mismatched_lengths_are_an_error_naming_the_lengths():
    with pytest.raises(ValueError, match=r"\[5, 4\]"):
        DataLoader((np.ones(5), np.ones(4)), batch_size=2)


@pytest.mark.parametrize("batch_size", [0, -1, 2.5, True, None])
def test_bad_batch_size_is_an_error(batch_size):
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader(np.ones(5), batch_size=batch_size)


def test_empty_tuple_and_zero_d_arrays_are_errors():
    with pytest.raises(ValueError):
        DataLoader((), batch_size=2)
    with pytest.raises(ValueError, match="0-d"):
        DataLoader(np.float32(3.0), batch_size=2)


# ----------------------------------------------------------------------------- sequences

def test_pad_sequences_pads_on_the_right_to_the_longest():
    padded = pad_sequences([[5], [6, 7, 8], []], pad_id=9)
    assert padded.dtype == np.int64
    np.testing.assert_array_equal(padded, [[5, 9, 9], [6, 7, 8], [9, 9, 9]])
    np.testing.assert_array_equal(pad_sequences([[5], [6, 7]]), [[5, 0], [6, 7]])
    assert pad_sequences([]).shape == (0, 0)


@FAST
@given(st.integers(1, 12), st.integers(0, 30), st.integers(1, 9), st.integers(0, 2 ** 16))
def test_lm_batches_are_windows_of_the_stream_and_targets_are_the_next_tokens(block_size, extra, batch_size, seed):
    ids = np.arange(100, 100 + block_size + 1 + extra)          # token i of the stream is 100 + i
    x, y = lm_batch(ids, block_size, batch_size, np.random.default_rng(seed))
    assert x.shape == y.shape == (batch_size, block_size)
    starts = x[:, 0] - 100
    assert np.all((0 <= starts) & (starts <= extra))           # every window fits, with its target
    np.testing.assert_array_equal(x, ids[starts[:, None] + np.arange(block_size)])
    np.testing.assert_array_equal(y, x + 1)                      # y[:, t] is the token after x[:, t]


def test_lm_batches_reach_both_ends_and_repeat_with_the_same_generator():
    ids = np.arange(20)
    x, _ = lm_batch(ids, 4, 2000, np.random.default_rng(0))
    assert set(x[:, 0].tolist()) == set(range(16))              # every start 0..N-T-1 is drawn
    again, _ = lm_batch(ids, 4, 2000, np.random.default_rng(0))
    np.testing.assert_array_equal(x, again)


def test_a_stream_too_short_for_one_window_is_an_error_naming_the_sizes():
    with pytest.raises(ValueError, match="5 tokens.*5 \\+ 1"):
        lm_batch(np.arange(5), 5, 2, np.random.default_rng(0))


def test_train_val_split_is_contiguous_head_and_tail():
    ids = np.arange(101)
    train, val = train_val_split(ids, 0.1)
    assert len(train) == int(101 * 0.9) == 90 and len(val) == 11
    np.testing.assert_array_equal(np.concatenate([train, val]), ids)


def test_dataloader_of_a_dict_names_its_keys_and_says_what_to_pass():
    with pytest.raises(TypeError, match=r"DataLoader: expected an array or a tuple/list of arrays, got a dict "
                                        r"with keys \['x', 'y'\]; pass the arrays themselves"):
        DataLoader({"x": np.zeros((4, 2)), "y": np.zeros(4)}, batch_size=2)
