"""The synthetic translation task, the stdlib corpus and the tokenizers; and a short
Transformer training run on the task that must clearly beat chance (the full run is
benchmarks/train_translation.py)."""
import contextlib
import datetime
import re

import numpy as np
import pytest

import minigrad as mg
import minigrad.functional as F
import minigrad.nn as nn
from minigrad.tasks import (STDLIB_FILES, CharTokenizer, DateTranslation, Vocab, date_words, lm_batch,
                            number_words, ordinal_words, pad_sequences, stdlib_corpus, train_val_split,
                            year_words)


def one_blas_thread():
    """Small matrix products run fastest on one BLAS thread, and a shared 2-core CI
    machine makes OpenBLAS's spinning threads far slower still."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(1)


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


def test_vocab_and_padding():
    vocab = Vocab(["b", "a", "b"])
    assert vocab.itos == ["<pad>", "<bos>", "<eos>", "b", "a"] and len(vocab) == 5
    assert vocab.encode(["a", "b"], add_bos=True, add_eos=True) == [1, 4, 3, 2]
    assert vocab.decode([1, 4, 0, 3, 2, 4]) == ["a", "b"]
    with pytest.raises(KeyError, match="'z'"):
        vocab.encode(["z"])
    np.testing.assert_array_equal(pad_sequences([[5], [6, 7]]), [[5, 0], [6, 7]])


# --------------------------------------------------------------------------- the corpus
def test_stdlib_corpus_is_python_source_read_deterministically():
    text = stdlib_corpus()
    assert len(text) > 500_000 and "def " in text and "import " in text
    assert stdlib_corpus(max_chars=1000) == text[:1000]
    assert list(STDLIB_FILES) == sorted(STDLIB_FILES)
    assert stdlib_corpus(files=("abc.py", "no_such_module.py")).startswith(stdlib_corpus(files=("abc.py",)))
    with pytest.raises(FileNotFoundError):
        stdlib_corpus(files=("no_such_module.py",))


def test_char_tokenizer_round_trips_and_lm_batches_shift_by_one():
    text = stdlib_corpus(max_chars=20_000)
    tokenizer = CharTokenizer(text)
    ids = tokenizer.encode(text)
    assert tokenizer.decode(ids) == text and ids.max() == tokenizer.vocab_size - 1
    assert tokenizer.chars == sorted(set(text))
    with pytest.raises(KeyError):
        tokenizer.encode("\u2603")
    train, val = train_val_split(ids, 0.1)
    assert len(val) == len(ids) - int(len(ids) * 0.9) and np.array_equal(np.concatenate([train, val]), ids)
    x, y = lm_batch(train, 16, 8, np.random.default_rng(0))
    assert x.shape == y.shape == (8, 16)
    np.testing.assert_array_equal(x[:, 1:], y[:, :-1])


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
