"""A synthetic translation task: dates written in digits -> the same dates in English words.

    "1987-03-14"  or  "14.03.1987"   ->   "fourteenth of march nineteen eighty seven"

    Vocab             tokens <-> ids, with <pad> = 0, <bos> = 1, <eos> = 2 first
    number_words, ordinal_words, year_words, date_words    the target language, by rule
    DateTranslation   seeded train/test pairs (test dates never occur in training) and
                      their padded id arrays, ready for nn.Transformer

Generated at run time, deterministic given the seed; the arrays are host-side numpy.
"""
import datetime

import numpy as np

from ..data import pad_sequences

__all__ = ["Vocab", "number_words", "ordinal_words", "year_words", "date_words", "DateTranslation",
           "DATE_FORMATS", "MONTHS"]

# --------------------------------------------------------------------------- the vocabulary
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
    "mdy": lambda d: f"{d.month}/{d.day}/{d.year}",                 # 3/14/1987: 8 to 10 characters, so a
}                                                                   # batch needs padding and a padding mask


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
