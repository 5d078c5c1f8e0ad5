"""Text from the running Python itself (no downloads): its standard library's source code
and docstrings, and a character-level tokenizer.

    stdlib_corpus()      the source of a fixed list of standard-library modules, one str:
                         a character-level language-modelling corpus (about 1.2 M characters)
    stdlib_docstrings()  their docstrings, one paragraph a text, split into train and
                         validation: a small English corpus for masked-LM training
    CharTokenizer        characters <-> integer ids

The same text on every run of one Python version; ids are host-side numpy arrays.
"""
import ast
import functools
import os
import re
import sysconfig

import numpy as np

__all__ = ["STDLIB_FILES", "stdlib_corpus", "stdlib_docstrings", "CharTokenizer"]

# A fixed set of pure-Python modules present in every CPython 3.9+; read in this
# (sorted) order so the corpus is the same string on every run of one Python version.
STDLIB_FILES = tuple(sorted((
    "abc.py", "argparse.py", "ast.py", "bisect.py", "calendar.py", "collections/__init__.py",
    "contextlib.py", "copy.py", "csv.py", "dataclasses.py", "enum.py", "fractions.py",
    "functools.py", "heapq.py", "inspect.py", "json/decoder.py", "json/encoder.py",
    "logging/__init__.py", "operator.py", "os.py", "pathlib.py", "pprint.py", "queue.py",
    "random.py", "shutil.py", "statistics.py", "string.py", "textwrap.py", "threading.py",
    "typing.py", "weakref.py")))


STDLIB_ROOT = sysconfig.get_paths()["stdlib"]       # where the running Python keeps its library


def _read_stdlib(files):
    """The source text of each of `files` (paths under STDLIB_ROOT) that exists, in order.

    pathlib.py became a package in 3.13: a missing "name.py" is read from
    "name/__init__.py" instead, and skipped if neither exists."""
    sources = []
    for name in files:
        path = os.path.join(STDLIB_ROOT, name)
        if not os.path.exists(path) and name.endswith(".py"):
            path = os.path.join(STDLIB_ROOT, name[:-3], "__init__.py")
        if os.path.exists(path):
            with open(path, encoding="utf-8") as handle:
                sources.append(handle.read())
    return sources


def stdlib_corpus(files=STDLIB_FILES, max_chars=None):
    """The source text of Python standard-library modules, concatenated in the given order.

    files: paths relative to sysconfig's "stdlib" directory of the running Python (a
    missing one is skipped). max_chars: keep only the first ones.
    Returns one str (about 1.2 million characters for the default files).
    """
    sources = _read_stdlib(files)
    if not sources:
        raise FileNotFoundError(f"stdlib_corpus: none of {len(files)} files found under {STDLIB_ROOT}")
    text = "\n\n".join(sources)
    return text[:max_chars] if max_chars is not None else text


def stdlib_docstrings(files=STDLIB_FILES, val_every=10, min_chars=40):
    """The docstrings of standard-library modules, split into paragraphs, for masked-LM training.

    Reads each file of `files` (as stdlib_corpus does) and collects, in ast.walk order,
    ast.get_docstring of the module, every class and every function; each docstring is cut
    at blank lines into paragraphs, whitespace runs become one space, and paragraphs shorter
    than min_chars (or that are doctest examples, starting with '>>>') are dropped.
    Paragraph i (counting over all files, in order) goes to validation when
    i % val_every == val_every - 1, else to training: both sets span every module.
    Returns (train, validation), two lists of str; the same lists on every run of one
    Python version (the file list is fixed and sorted, nothing is random).
    """
    if val_every < 2:
        raise ValueError(f"stdlib_docstrings: val_every must be >= 2, got {val_every}")
    paragraphs = _docstring_paragraphs(tuple(files), min_chars)
    train = [p for i, p in enumerate(paragraphs) if i % val_every != val_every - 1]
    validation = [p for i, p in enumerate(paragraphs) if i % val_every == val_every - 1]
    return train, validation


@functools.lru_cache(maxsize=4)
def _docstring_paragraphs(files, min_chars):
    """The paragraphs of stdlib_docstrings, as a tuple (cached: parsing takes ~0.5 s)."""
    paragraphs = []
    for source in _read_stdlib(files):
        for node in ast.walk(ast.parse(source)):
            if not isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            doc = ast.get_docstring(node)
            if not doc:
                continue
            for paragraph in re.split(r"\n\s*\n", doc):
                text = " ".join(paragraph.split())
                if len(text) >= min_chars and not text.startswith(">>>"):
                    paragraphs.append(text)
    if not paragraphs:
        raise FileNotFoundError(f"stdlib_docstrings: no docstrings found in {len(files)} files under {STDLIB_ROOT}")
    return tuple(paragraphs)


# --------------------------------------------------------------------------- characters <-> ids
class CharTokenizer:
    """Characters <-> ids: id i is the i-th of the sorted distinct characters of the text.

    tok = CharTokenizer(text); tok.encode("def") -> int64 array; tok.decode(ids) -> str.
    A character not in the text is an error (there is no unknown token)."""

    def __init__(self, text):
        self.chars = sorted(set(text))
        self.stoi = {c: i for i, c in enumerate(self.chars)}

    @property
    def vocab_size(self):
        return len(self.chars)

    def __len__(self):
        return len(self.chars)

    def encode(self, text):
        try:
            return np.array([self.stoi[c] for c in text], dtype=np.int64)
        except KeyError as exc:
            raise KeyError(f"CharTokenizer: character {exc.args[0]!r} is not in the vocabulary") from None

    def decode(self, ids):
        return "".join(self.chars[int(i)] for i in ids)
