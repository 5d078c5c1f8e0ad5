"""The course data sets of minigrad.datasets: the synthetic point clouds, dates in words
and the translation task, the stdlib corpus and the character tokenizer; and a short
Transformer training run on the translation task that must clearly beat chance (the full
run is benchmarks/train_translation.py). The BERT corpora are tested in
test_bert_training.py, the digits by the ResNet run in test_resnet.py."""
import contextlib
import datetime
import re

import numpy as np
import pytest

import minigrad as mg
import minigrad.functional as F
import minigrad.nn as nn
from minigrad.datasets import (STDLIB_FILES, CharTokenizer, DateTranslation, Vocab, date_words,
                               make_blobs, make_linear_regression, make_moons, make_spirals, number_words,
                               ordinal_words, stdlib_corpus, year_words)


def one_blas_thread():
    """Small matrix products run fastest on one BLAS thread, and a shared 2-core CI
    machine makes OpenBLAS's spinning threads far slower still."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(1)


# --------------------------------------------------------------------------- synthetic point clouds

@pytest.mark.parametrize("make, kwargs, classes", [
    (make_spirals, dict(n=200, classes=2), 2),
    (make_spirals, dict(n=301, classes=3), 3),
    (make_moons, dict(n=200), 2),
    (make_moons, dict(n=151), 2),
    (make_blobs, dict(n=200, centers=3), 3),
    (make_blobs, dict(n=50, centers=4), 4),
])
def test_classification_sets_have_shapes_dtypes_and_balanced_classes(make, kwargs, classes):
    X, y = make(**kwargs)
    n = kwargs["n"]
    assert X.shape == (n, 2) and X.dtype == np.float32
    assert y.shape == (n,) and y.dtype == np.int64
    counts = np.bincount(y, minlength=classes)
    assert len(counts) == classes
    assert counts.max() - counts.min() <= 1 and counts.sum() == n
    assert np.all(np.isfinite(X))


@pytest.mark.parametrize("make", [make_spirals, make_moons, make_blobs])
def test_datasets_are_reproducible_from_the_seed(make):
    X1, y1 = make(seed=7)
    X2, y2 = make(seed=7)
    X3, _ = make(seed=8)
    np.testing.assert_array_equal(X1, X2)
    np.testing.assert_array_equal(y1, y2)
    assert not np.array_equal(X1, X3)


@pytest.mark.parametrize("make", [make_spirals, make_moons, make_blobs])
def test_rows_are_shuffled_not_grouped_by_class(make):
    _, y = make(n=200)
    assert not np.array_equal(y, np.sort(y))


def test_spirals_without_noise_lie_on_their_arms():
    X, y = make_spirals(n=300, classes=3, noise=0.0)
    radius = np.hypot(X[:, 0], X[:, 1])
    assert radius.max() <= 1.0 + 1e-6
    # radius = t and angle = 4 t + 2 pi k / classes, so each point satisfies the arm equation
    angle = np.arctan2(X[:, 0], X[:, 1])
    expected = 4.0 * radius + 2.0 * np.pi * y / 3
    wrapped = np.angle(np.exp(1j * (angle - expected)))
    assert np.all(np.abs(wrapped[radius > 1e-3]) < 1e-4)


def test_moons_without_noise_lie_on_their_half_circles():
    X, y = make_moons(n=100, noise=0.0)
    upper, lower = X[y == 0], X[y == 1]
    np.testing.assert_allclose(np.hypot(upper[:, 0], upper[:, 1]), 1.0, atol=1e-6)
    assert np.all(upper[:, 1] >= -1e-6)
    np.testing.assert_allclose(np.hypot(lower[:, 0] - 1.0, lower[:, 1] - 0.5), 1.0, atol=1e-6)
    assert np.all(lower[:, 1] <= 0.5 + 1e-6)


def test_blobs_gather_around_given_centres_with_the_given_spread():
    centers = np.array([[0.0, 0.0, 0.0], [20.0, 0.0, 5.0]])
    X, y = make_blobs(n=4000, centers=centers, std=0.5, seed=1)
    assert X.shape == (4000, 3)
    for k in range(2):
        np.testing.assert_allclose(X[y == k].mean(axis=0), centers[k], atol=0.05)
        np.testing.assert_allclose(X[y == k].std(axis=0), 0.5, atol=0.03)


def test_linear_regression_data_follows_y_equals_x_w_plus_b_within_noise():
    noise = 0.01
    X, y, w, b = make_linear_regression(n=2000, n_features=3, noise=noise, seed=0)
    assert X.shape == (2000, 3) and y.shape == (2000, 1)
    assert w.shape == (3, 1) and b.shape == (1,)
    assert all(a.dtype == np.float32 for a in (X, y, w, b))
    residual = y - (X @ w + b)
    assert abs(residual.mean()) < 4 * noise / np.sqrt(2000)
    assert 0.9 * noise < residual.std() < 1.1 * noise       # the residual is the noise, nothing else


def test_least_squares_recovers_the_true_weights_and_bias():
    X, y, w, b = make_linear_regression(n=500, n_features=4, noise=0.01, seed=3)
    design = np.concatenate([X, np.ones((500, 1), np.float32)], axis=1)
    solution, *_ = np.linalg.lstsq(design.astype(np.float64), y.astype(np.float64), rcond=None)
    np.testing.assert_allclose(solution[:4], w, atol=5e-3)
    np.testing.assert_allclose(solution[4], b, atol=5e-3)


@pytest.mark.parametrize("make, kwargs", [
    (make_spirals, dict(n=0)), (make_spirals, dict(classes=0)), (make_moons, dict(n=0)),
    (make_blobs, dict(centers=0)), (make_blobs, dict(centers=np.zeros(3))),
    (make_linear_regression, dict(n_features=0)),
])
def test_impossible_sizes_are_errors(make, kwargs):
    with pytest.raises(ValueError):
        make(**kwargs)


# --------------------------------------------------------------------------- words
@pytest.mark.parametrize("year,words", [
    (1987, "nineteen eighty seven"), (1905, "nineteen oh five"), (1900, "nineteen hundred"),
    (2000, "two thousand"), (2007, "two thousand seven"), (2010, "twenty ten"), (2024, "twenty twenty four"),
    (1066, "ten sixty six"), (1100, "eleven hundred"), (1813, "eighteen thirteen")])
def test_years_are_written_as_spoken(year, words):
    assert year_words(year) == words


@pytest.mark.parametrize("day,words", [
    (1, "first"), (2, "second"), (3, "third"), (11, "eleventh"), (12, "twelfth"), (20, "twentieth"),
    (21, "twenty first"), (22, "twenty second"), (23, "twenty third"), (30, "thirtieth"), (31, "thirty first")])
def test_days_are_ordinals(day, words):
    assert ordinal_words(day) == words


def test_number_and_date_words_and_their_range_checks():
    assert [number_words(n) for n in (0, 13, 40, 99)] == ["zero", "thirteen", "forty", "ninety nine"]
    assert date_words(datetime.date(1987, 3, 14)) == "fourteenth of march nineteen eighty seven"
    for bad in (lambda: number_words(100), lambda: ordinal_words(0), lambda: year_words(999)):
        with pytest.raises(ValueError):
            bad()


# --------------------------------------------------------------------------- the translation task
def parse_source(source):
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", source):
        year, month, day = source.split("-")
    else:
        assert re.fullmatch(r"\d{2}\.\d{2}\.\d{4}", source), source
        day, month, year = source.split(".")
    return datetime.date(int(year), int(month), int(day))


def test_task_pairs_are_correct_and_test_dates_never_occur_in_training():
    task = DateTranslation(n_train=3000, n_test=500, seed=1)
    assert len(task.train) == 3000 and len(task.test) == 500
    for source, target in task.train + task.test:
        assert target == date_words(parse_source(source))
    train_dates = {parse_source(s) for s, _ in task.train}
    test_dates = {parse_source(s) for s, _ in task.test}
    assert len(test_dates) == 500 and not train_dates & test_dates
    formats = {"-" in s for s, _ in task.train}
    assert formats == {True, False}                               # both formats occur
    again = DateTranslation(n_train=3000, n_test=500, seed=1)
    assert again.train == task.train and DateTranslation(n_train=3000, n_test=500, seed=2).train != task.train


def test_task_arrays_round_trip_through_the_vocabularies():
    task = DateTranslation(n_train=200, n_test=50)
    src, tgt = task.arrays("test")
    assert src.shape == (50, 10) and src.dtype == np.int64
    assert np.all(tgt[:, 0] == task.tgt_vocab.bos_id)
    for row, (source, target) in enumerate(task.test):
        assert "".join(task.src_vocab.decode(src[row])) == source
        assert task.decode_target(tgt[row]) == target
        n_words = len(target.split())
        assert tgt[row, n_words + 1] == task.tgt_vocab.eos_id and np.all(tgt[row, n_words + 2:] == 0)
    with pytest.raises(ValueError, match="only"):
        DateTranslation(n_train=10 ** 6, n_test=10, years=(2000, 2001))


def test_vocab_puts_special_tokens_first_and_decodes_up_to_eos():
    vocab = Vocab(["b", "a", "b"])
    assert vocab.itos == ["<pad>", "<bos>", "<eos>", "b", "a"] and len(vocab) == 5
    assert vocab.encode(["a", "b"], add_bos=True, add_eos=True) == [1, 4, 3, 2]
    assert vocab.decode([1, 4, 0, 3, 2, 4]) == ["a", "b"]
    with pytest.raises(KeyError, match="'z'"):
        vocab.encode(["z"])


# --------------------------------------------------------------------------- the corpus
def test_stdlib_corpus_is_python_source_read_deterministically():
    text = stdlib_corpus()
    assert len(text) > 500_000 and "def " in text and "import " in text
    assert stdlib_corpus(max_chars=1000) == text[:1000]
    assert list(STDLIB_FILES) == sorted(STDLIB_FILES)
    assert stdlib_corpus(files=("abc.py", "no_such_module.py")).startswith(stdlib_corpus(files=("abc.py",)))
    with pytest.raises(FileNotFoundError):
        stdlib_corpus(files=("no_such_module.py",))


def test_char_tokenizer_round_trips_the_corpus():
    text = stdlib_corpus(max_chars=20_000)
    tokenizer = CharTokenizer(text)
    ids = tokenizer.encode(text)
    assert ids.dtype == np.int64
    assert tokenizer.decode(ids) == text and ids.max() == tokenizer.vocab_size - 1
    assert tokenizer.chars == sorted(set(text))
    with pytest.raises(KeyError):
        tokenizer.encode("\u2603")


# --------------------------------------------------------------------------- a short training run
def test_a_transformer_trained_briefly_translates_unseen_dates_far_above_chance():
    task = DateTranslation(n_train=3000, n_test=200, seed=0)
    src, tgt = task.arrays("train")
    test_src, test_tgt = task.arrays("test")
    mg.manual_seed(0)
    model = nn.Transformer(len(task.src_vocab), len(task.tgt_vocab), d_model=32, n_heads=2, n_layers=1,
                           d_ff=64, dropout=0.0, max_len=32)
    optimizer = mg.optim.Adam(model.parameters(), lr=1.0, betas=(0.9, 0.98), eps=1e-9)
    scheduler = mg.optim.NoamScheduler(optimizer, d_model=32, warmup=50, factor=0.5)
    rng = np.random.default_rng(0)
    with one_blas_thread():
        for step in range(200):
            rows = rng.integers(0, len(src), size=32)
            logits = model(src[rows], tgt[rows, :-1])
            loss = F.cross_entropy(logits, tgt[rows, 1:], ignore_index=0, label_smoothing=0.1)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
        model.eval()
        with mg.no_grad():
            predicted = model(test_src, test_tgt[:, :-1]).numpy().argmax(-1)
        outputs = model.translate(test_src, 10, bos_id=1, eos_id=2)
    real = test_tgt[:, 1:] != 0
    token_accuracy = ((predicted == test_tgt[:, 1:]) & real).sum() / real.sum()
    exact = np.mean([task.tgt_vocab.decode(ids) == t.split() for ids, (_, t) in zip(outputs, task.test)])
    chance = 1 / (len(task.tgt_vocab) - 3)
    assert token_accuracy > 0.9 > 50 * chance
    assert exact > 0.5


def test_mdy_dates_vary_in_length_and_read_month_first():
    task = DateTranslation(n_train=400, n_test=50, seed=3, formats=("mdy",))
    for source, target in task.train + task.test:
        month, day, year = (int(part) for part in source.split("/"))
        assert target == date_words(datetime.date(year, month, day))
        assert not source.startswith("0")                            # no zero padding
    lengths = {len(source) for source, _ in task.train}
    assert lengths == {8, 9, 10}
    src, _ = task.arrays("train")
    assert (src == task.src_vocab.pad_id).any()                      # shorter dates are padded
