"""Course data sets: what the lessons, tests and benchmarks train on. None is downloaded.

These are not part of the framework (minigrad.data holds the library's batching);
they are small, deterministic problems chosen to teach one idea each:

    synthetic.py    make_spirals, make_moons, make_blobs, make_linear_regression:
                    2-D point clouds and a known linear model, from formulas
    digits.py       load_digits: scikit-learn's bundled 8x8 handwritten digits
    translation.py  DateTranslation: "1987-03-14" -> "fourteenth of march nineteen
                    eighty seven", with its word-level Vocab
    text.py         stdlib_corpus, stdlib_docstrings: Python's own library as text;
                    CharTokenizer
    opinions.py     opinion_task: positive or negative sentences, tested on unseen words

    from minigrad.datasets import make_moons
    from minigrad.data import DataLoader
    X, y = make_moons(n=200, noise=0.1, seed=0)        # X (200, 2) float32, y (200,) int64
    for xb, yb in DataLoader((X, y), batch_size=32, shuffle=True, seed=0): ...

Every set is the same on every run given its seed. The arrays are host-side numpy
(the training loop wraps them in mg.tensor); nothing here touches tensors.
"""
from .digits import load_digits
from .opinions import (OPINION_TEMPLATES, OPINION_TEST_WORDS, OPINION_THINGS, OPINION_TRAIN_WORDS,
                       opinion_task)
from .synthetic import make_blobs, make_linear_regression, make_moons, make_spirals
from .text import STDLIB_FILES, CharTokenizer, stdlib_corpus, stdlib_docstrings
from .translation import (DATE_FORMATS, MONTHS, DateTranslation, Vocab, date_words, number_words,
                          ordinal_words, year_words)

__all__ = ["make_spirals", "make_moons", "make_blobs", "make_linear_regression", "load_digits",
           "DateTranslation", "Vocab", "number_words", "ordinal_words", "year_words", "date_words",
           "DATE_FORMATS", "MONTHS", "stdlib_corpus", "stdlib_docstrings", "STDLIB_FILES", "CharTokenizer",
           "opinion_task", "OPINION_THINGS", "OPINION_TEMPLATES", "OPINION_TRAIN_WORDS", "OPINION_TEST_WORDS"]
