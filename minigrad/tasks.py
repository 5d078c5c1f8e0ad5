"""Small tasks for training sequence models, generated or read at run time (no downloads).

    DateTranslation   a synthetic translation task: dates written in digits -> English words,
                      "1987-03-14" -> "fourteenth of march nineteen eighty seven",
                      with a train/test split on distinct dates (test dates are never seen)
    stdlib_corpus()   the source code of Python's own standard library, read from the
                      installed Python: a character-level language-modelling corpus
    stdlib_docstrings()  the docstrings of those modules, one paragraph a text, with a
                      train/validation split: a small English corpus for masked-LM training
    opinion_task()    templated sentences labelled positive/negative, the test sentences
                      using opinion words never seen in training (sentence classification)
    CharTokenizer     characters <-> integer ids
    Vocab             tokens <-> ids with <pad>, <bos>, <eos>

Everything is deterministic given its seed, and the arrays are numpy (host) arrays,
ready for mg.tensor or an nn.Embedding.
"""
import ast
import datetime
import functools
import os
import re
import sysconfig

from . import backend

np = backend.numpy

# --------------------------------------------------------------------------- vocabularies
PAD, BOS, EOS = "<pad>", "<bos>", "<eos>"


class Vocab:
    """An ordered list of tokens with <pad> = 0, <bos> = 1, <eos> = 2 first.

    encode(tokens, add_bos=False, add_eos=False) -> list of ids; decode(ids) -> tokens,
    stopping at <eos> and skipping <pad> and <bos>.
    """

    def __init__(self, tokens):
        self.itos = [PAD, BOS, EOS] + [t for t in dict.fromkeys(tokens) if t not in (PAD, BOS, EOS)]
        self.stoi = {t: i for i, t in enumerate(self.itos)}
        self.pad_id, self.bos_id, self.eos_id = 0, 1, 2

    def __len__(self):
        return len(self.itos)

    def encode(self, tokens, add_bos=False, add_eos=False):
        try:
            ids = [self.stoi[t] for t in tokens]
        except KeyError as exc:
            raise KeyError(f"Vocab: token {exc.args[0]!r} is not in the vocabulary of {len(self)}") from None
        return ([self.bos_id] if add_bos else []) + ids + ([self.eos_id] if add_eos else [])

    def decode(self, ids):
        tokens = []
        for i in ids:
            i = int(i)
            if i == self.eos_id:
                break
            if i not in (self.pad_id, self.bos_id):
                tokens.append(self.itos[i])
        return tokens


def pad_sequences(sequences, pad_id=0):
    """A list of id lists -> (N, longest) int64 array, padded on the right with pad_id."""
    longest = max((len(s) for s in sequences), default=0)
    out = np.full((len(sequences), longest), pad_id, dtype=np.int64)
    for row, seq in enumerate(sequences):
        out[row, :len(seq)] = seq
    return out


# --------------------------------------------------------------------------- dates in words
_UNITS = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
          "fifteen sixteen seventeen eighteen nineteen").split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_ORDINAL_UNITS = ("_ first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth "
                  "thirteenth fourteenth fifteenth sixteenth seventeenth eighteenth nineteenth").split()
_ORDINAL_TENS = {20: "twentieth", 30: "thirtieth"}
MONTHS = ("january february march april may june july august september october november "
          "december").split()


def number_words(n):
    """0 <= n < 100 in words: 7 -> "seven", 42 -> "forty two"."""
    if not 0 <= n < 100:
        raise ValueError(f"number_words: expected 0 <= n < 100, got {n}")
    if n < 20:
        return _UNITS[n]
    tens, units = divmod(n, 10)
    return _TENS[tens] + ("" if units == 0 else " " + _UNITS[units])


def ordinal_words(n):
    """1 <= n <= 31 as an ordinal: 1 -> "first", 22 -> "twenty second", 30 -> "thirtieth"."""
    if not 1 <= n <= 31:
        raise ValueError(f"ordinal_words: expected a day 1..31, got {n}")
    if n < 20:
        return _ORDINAL_UNITS[n]
    tens, units = divmod(n, 10)
    return _ORDINAL_TENS[10 * tens] if units == 0 else _TENS[tens] + " " + _ORDINAL_UNITS[units]


def year_words(year):
    """A year as spoken: 1987 -> "nineteen eighty seven", 1905 -> "nineteen oh five",
    1900 -> "nineteen hundred", 2000 -> "two thousand", 2007 -> "two thousand seven",
    2024 -> "twenty twenty four". Years 1000..9999."""
    if not 1000 <= year <= 9999:
        raise ValueError(f"year_words: expected a four-digit year, got {year}")
    if 2000 <= year <= 2009:
        return "two thousand" + ("" if year == 2000 else " " + _UNITS[year - 2000])
    century, rest = divmod(year, 100)
    if rest == 0:
        return number_words(century) + " hundred"
    if rest < 10:
        return number_words(century) + " oh " + _UNITS[rest]
    return number_words(century) + " " + number_words(rest)


def date_words(date):
    """datetime.date -> "fourteenth of march nineteen eighty seven"."""
    return f"{ordinal_words(date.day)} of {MONTHS[date.month - 1]} {year_words(date.year)}"


DATE_FORMATS = {
    "iso": lambda d: f"{d.year:04d}-{d.month:02d}-{d.day:02d}",     # 1987-03-14
    "dmy": lambda d: f"{d.day:02d}.{d.month:02d}.{d.year:04d}",     # 14.03.1987
}


class DateTranslation:
    """Translate dates in digits into English words.

        source (characters):  "1987-03-14"  or  "14.03.1987"
        target (words):       "fourteenth of march nineteen eighty seven"

    The model has to read the format from the separators, find day, month and year,
    and spell each out (ordinals, month names, the spoken form of the year: "oh five",
    "hundred", "two thousand seven"). Every date from years[0]-01-01 to years[1]-12-31
    is a candidate; a seeded permutation of them gives n_test test dates and then
    n_train training dates, so no test date occurs in training (in any format).
    Each example's format is drawn from `formats`.

    Attributes: train, test (lists of (source str, target str)), src_vocab (characters),
    tgt_vocab (words), both with <pad> = 0, <bos> = 1, <eos> = 2.
    arrays(split) -> (src ids (N, Ts), tgt ids (N, Tt)); tgt is <bos> words <eos> <pad>...
    """

    def __init__(self, n_train=20000, n_test=1000, seed=0, years=(1000, 2099), formats=("iso", "dmy")):
        for name in formats:
            if name not in DATE_FORMATS:
                raise ValueError(f"DateTranslation: unknown format {name!r}, choose from {sorted(DATE_FORMATS)}")
        first = datetime.date(years[0], 1, 1).toordinal()
        last = datetime.date(years[1], 12, 31).toordinal()
        if n_train + n_test > last - first + 1:
            raise ValueError(f"DateTranslation: {n_train} + {n_test} examples but only "
                             f"{last - first + 1} dates in {years}")
        rng = np.random.default_rng(seed)
        ordinals = first + rng.permutation(last - first + 1)[:n_test + n_train]
        chosen = rng.integers(0, len(formats), size=len(ordinals))
        examples = []
        for ordinal, format_index in zip(ordinals.tolist(), chosen.tolist()):
            date = datetime.date.fromordinal(ordinal)
            examples.append((DATE_FORMATS[formats[format_index]](date), date_words(date)))
        self.test, self.train = examples[:n_test], examples[n_test:]
        self.src_vocab = Vocab(sorted("0123456789-./"))
        words = (_UNITS + _TENS[2:] + _ORDINAL_UNITS[1:] + list(_ORDINAL_TENS.values()) + MONTHS
                 + ["of", "oh", "hundred", "thousand"])
        self.tgt_vocab = Vocab(words)

    def encode_source(self, texts):
        """Source strings -> (N, longest) int64 ids, padded with <pad>."""
        return pad_sequences([self.src_vocab.encode(t) for t in texts], self.src_vocab.pad_id)

    def encode_target(self, texts):
        """Target strings -> (N, longest + 2) int64 ids: <bos> words <eos>, padded with <pad>."""
        return pad_sequences([self.tgt_vocab.encode(t.split(), add_bos=True, add_eos=True) for t in texts],
                             self.tgt_vocab.pad_id)

    def decode_target(self, ids):
        """Target ids (with or without <bos>, stopping at <eos>) -> the sentence."""
        return " ".join(self.tgt_vocab.decode(ids))

    def arrays(self, split):
        """(src (N, Ts), tgt (N, Tt)) int64 id arrays of the "train" or "test" split."""
        examples = {"train": self.train, "test": self.test}[split]
        return (self.encode_source([s for s, _ in examples]), self.encode_target([t for _, t in examples]))


# --------------------------------------------------------------------------- the stdlib corpus
# A fixed set of pure-Python modules present in every CPython 3.9+; read in this
# (sorted) order so the corpus is the same string on every run of one Python version.
STDLIB_FILES = tuple(sorted((
    "abc.py", "argparse.py", "ast.py", "bisect.py", "calendar.py", "collections/__init__.py",
    "contextlib.py", "copy.py", "csv.py", "dataclasses.py", "enum.py", "fractions.py",
    "functools.py", "heapq.py", "inspect.py", "json/decoder.py", "json/encoder.py",
    "logging/__init__.py", "operator.py", "os.py", "pathlib.py", "pprint.py", "queue.py",
    "random.py", "shutil.py", "statistics.py", "string.py", "textwrap.py", "threading.py",
    "typing.py", "weakref.py")))


def stdlib_corpus(files=STDLIB_FILES, max_chars=None):
    """The source text of Python standard-library modules, concatenated in the given order.

    files: paths relative to sysconfig's "stdlib" directory of the running Python
    (pathlib.py became a package in 3.13: a missing file is read from its package's
    __init__.py, and is skipped if neither exists). max_chars: keep only the first ones.
    Returns one str (about 1.2 million characters for the default files).
    """
    root = sysconfig.get_paths()["stdlib"]
    parts = []
    for name in files:
        path = os.path.join(root, name)
        if not os.path.exists(path):
            path = os.path.join(root, name[:-3], "__init__.py") if name.endswith(".py") else path
        if not os.path.exists(path):
            continue
        with open(path, encoding="utf-8") as handle:
            parts.append(handle.read())
    if not parts:
        raise FileNotFoundError(f"stdlib_corpus: none of {len(files)} files found under {root}")
    text = "\n\n".join(parts)
    return text[:max_chars] if max_chars is not None else text


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
    root = sysconfig.get_paths()["stdlib"]
    paragraphs = []
    for name in files:
        path = os.path.join(root, name)
        if not os.path.exists(path) and name.endswith(".py"):
            path = os.path.join(root, name[:-3], "__init__.py")
        if not os.path.exists(path):
            continue
        with open(path, encoding="utf-8") as handle:
            tree = ast.parse(handle.read())
        for node in ast.walk(tree):
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
        raise FileNotFoundError(f"stdlib_docstrings: no docstrings found in {len(files)} files under {root}")
    return tuple(paragraphs)


# --------------------------------------------------------------------------- opinion classification
OPINION_THINGS = ("film", "meal", "hotel", "concert", "book", "service", "phone", "trip", "song", "game",
                  "room", "show", "class", "car", "restaurant", "holiday")
OPINION_TEMPLATES = ("the {t} was {a}.", "what a {a} {t}!", "i thought the {t} was {a}.",
                     "honestly, the {t} was {a}.", "our {t} turned out {a}.", "it was a {a} {t}.",
                     "my friends found the {t} {a}.", "overall the {t} felt {a}.")
OPINION_TRAIN_WORDS = {"great": 1, "wonderful": 1, "excellent": 1, "lovely": 1, "amazing": 1, "good": 1,
                       "terrible": 0, "awful": 0, "horrible": 0, "disappointing": 0, "bad": 0, "boring": 0}
OPINION_TEST_WORDS = {"fantastic": 1, "superb": 1, "delightful": 1, "brilliant": 1, "enjoyable": 1,
                      "dreadful": 0, "mediocre": 0, "dull": 0, "poor": 0, "unpleasant": 0}


def opinion_task(n_train=192, n_test=160, seed=0):
    """A generated two-class sentence task: is the opinion positive (1) or negative (0)?

    Each sentence is a template of OPINION_TEMPLATES filled with a thing and an opinion
    word; training sentences use only OPINION_TRAIN_WORDS and test sentences only
    OPINION_TEST_WORDS, so test accuracy measures what the encoder knows about words
    the classifier never saw. Classes are balanced (words drawn in turn).
    Returns ((train_texts, train_labels), (test_texts, test_labels)): lists of str and
    int64 arrays.
    """
    rng = np.random.default_rng(seed)

    def make(words, count):
        items = list(words.items())
        texts, labels = [], []
        for i in range(count):
            word, label = items[i % len(items)]
            template = OPINION_TEMPLATES[rng.integers(len(OPINION_TEMPLATES))]
            texts.append(template.format(t=OPINION_THINGS[rng.integers(len(OPINION_THINGS))], a=word))
            labels.append(label)
        order = rng.permutation(count)
        return [texts[i] for i in order], np.array(labels, dtype=np.int64)[order]

    return make(OPINION_TRAIN_WORDS, n_train), make(OPINION_TEST_WORDS, n_test)


def train_val_split(ids, val_fraction=0.1):
    """The first (1 - val_fraction) of a token stream for training, the rest for validation
    (a contiguous split: validation text is text the model never trained on)."""
    cut = int(len(ids) * (1 - val_fraction))
    return ids[:cut], ids[cut:]


def lm_batch(ids, block_size, batch_size, rng):
    """Random windows of a token stream for next-token prediction:
    x (batch_size, block_size) and y = x shifted by one (y[:, t] = ids[start + t + 1])."""
    if len(ids) <= block_size:
        raise ValueError(f"lm_batch: a stream of {len(ids)} tokens has no window of {block_size} + 1")
    starts = rng.integers(0, len(ids) - block_size, size=batch_size)
    offsets = np.arange(block_size)
    x = ids[starts[:, None] + offsets]
    y = ids[starts[:, None] + offsets + 1]
    return x, y
