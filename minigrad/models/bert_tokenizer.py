"""BERT's WordPiece tokenizer (uncased), written from the algorithm.

Turning text into the integer ids that BERT reads happens in two stages.

1. Basic tokenization splits raw text into "words":
   a. clean the text: drop NUL (U+0000), the replacement character (U+FFFD)
      and control/format characters (Unicode category C*); turn every kind of
      whitespace (space, tab, newline, carriage return, category Zs) into " ";
   b. put spaces around every CJK ideograph, so that each Chinese character
      becomes a word of its own (Chinese is written without spaces);
   c. split on whitespace;
   d. lower-case each word and strip its accents: Unicode NFD decomposition
      writes "é" as "e" followed by a combining acute accent (category Mn),
      and we drop the Mn characters: "Café" -> "cafe";
   e. split punctuation off: every punctuation character becomes a word of
      its own: "world!" -> "world", "!".
   The special tokens [CLS] [SEP] [PAD] [MASK] [UNK] are cut out of the text
   before all of this and pass through untouched.

2. WordPiece splits each word into pieces from a fixed vocabulary, greedily:
   take the longest prefix that is in the vocabulary, then the longest piece
   of the rest (spelled with a "##" prefix, meaning "continues the previous
   piece"), and so on: "unaffable" -> "un", "##aff", "##able". A word that
   cannot be covered by vocabulary pieces, or that is longer than
   `max_chars_per_word` characters, becomes the single token [UNK].

Finally `encode` adds the markers BERT was trained with:
[CLS] tokens-of-a [SEP] (tokens-of-b [SEP]) and looks every token up in the
vocabulary file (one token per line; the line number is the id).

Example (all-MiniLM-L6-v2's vocabulary):
    >>> tok = BertTokenizer.from_pretrained(model_dir)
    >>> tok.tokenize("Hello, world!")
    ['hello', ',', 'world', '!']
    >>> tok.encode("Hello, world!")
    [101, 7592, 1010, 2088, 999, 102]

Differences from the reference (Hugging Face `BertTokenizer`): no added
tokens beyond the five special ones, no offsets/overflow outputs, no stride;
`__call__` returns numpy arrays (int64) by default instead of lists.
"""

import json
import os
import unicodedata

import numpy as np

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")

# Code-point ranges that count as CJK ideographs (the same blocks as BERT's
# original release): CJK Unified Ideographs, Extensions A to E, and the
# CJK Compatibility Ideographs (+ Supplement). Hiragana, katakana and hangul
# are not here: they are written with spaces (Korean) or are split by
# WordPiece like any other word.
CJK_RANGES = (
    (0x4E00, 0x9FFF),    # CJK Unified Ideographs
    (0x3400, 0x4DBF),    # Extension A
    (0x20000, 0x2A6DF),  # Extension B
    (0x2A700, 0x2B73F),  # Extension C
    (0x2B740, 0x2B81F),  # Extension D
    (0x2B820, 0x2CEAF),  # Extension E
    (0xF900, 0xFAFF),    # CJK Compatibility Ideographs
    (0x2F800, 0x2FA1F),  # CJK Compatibility Ideographs Supplement
)


# ----------------------------------------------------------------------------
# Character classes
# ----------------------------------------------------------------------------

def is_whitespace(char):
    """Space, tab, newline, carriage return, or any Unicode space separator (Zs)."""
    if char in (" ", "\t", "\n", "\r"):
        return True
    return unicodedata.category(char) == "Zs"


def is_control(char):
    """A control or format character (category C*), except \\t \\n \\r,
    which we treat as whitespace instead."""
    if char in ("\t", "\n", "\r"):
        return False
    return unicodedata.category(char).startswith("C")


def is_punctuation(char):
    """Unicode punctuation (category P*) plus every ASCII non-letter,
    non-digit symbol: "$", "+", "<", "^", "`", "~" are symbols (S*) in Unicode,
    but BERT splits them off like punctuation."""
    code = ord(char)
    if 33 <= code <= 47 or 58 <= code <= 64 or 91 <= code <= 96 or 123 <= code <= 126:
        return True
    return unicodedata.category(char).startswith("P")


def is_cjk_ideograph(char):
    """True for a CJK ideograph (see CJK_RANGES)."""
    code = ord(char)
    return any(low <= code <= high for low, high in CJK_RANGES)


# ----------------------------------------------------------------------------
# Stage 1: basic tokenization
# ----------------------------------------------------------------------------

def clean_text(text):
    """Drop U+0000, U+FFFD and control characters; map all whitespace to " ".
    "a\\tb\\x00c" -> "a bc"."""
    output = []
    for char in text:
        if char == "\x00" or char == "\ufffd" or is_control(char):
            continue
        output.append(" " if is_whitespace(char) else char)
    return "".join(output)


def space_cjk_ideographs(text):
    """Surround every CJK ideograph with spaces: "我爱NLP" -> " 我  爱 NLP"."""
    output = []
    for char in text:
        if is_cjk_ideograph(char):
            output.extend((" ", char, " "))
        else:
            output.append(char)
    return "".join(output)


def strip_accents(text):
    """Remove accents: NFD splits "é" into "e" + U+0301 (a combining mark,
    category Mn), and we keep everything but the Mn characters.
    "Café déjà vu" -> "Cafe deja vu"."""
    decomposed = unicodedata.normalize("NFD", text)
    return "".join(char for char in decomposed if unicodedata.category(char) != "Mn")


def split_on_punctuation(word):
    """Make every punctuation character a word of its own.
    "don't!" -> ["don", "'", "t", "!"]."""
    pieces = []
    current = []
    for char in word:
        if is_punctuation(char):
            if current:
                pieces.append("".join(current))
                current = []
            pieces.append(char)
        else:
            current.append(char)
    if current:
        pieces.append("".join(current))
    return pieces


def split_special_tokens(text, special_tokens):
    """Cut `text` at every exact occurrence of a special token.
    "a [MASK] b" -> [("a ", False), ("[MASK]", True), (" b", False)].
    Earliest match wins; at one position the longest token wins."""
    chunks = []
    start = 0
    position = 0
    while position < len(text):
        match = None
        if text[position] == "[":  # every special token starts with "["
            for token in special_tokens:
                if text.startswith(token, position) and (match is None or len(token) > len(match)):
                    match = token
        if match is None:
            position += 1
            continue
        if position > start:
            chunks.append((text[start:position], False))
        chunks.append((match, True))
        position += len(match)
        start = position
    if start < len(text):
        chunks.append((text[start:], False))
    return chunks


def basic_tokenize(text, do_lower_case=True, strip_accents_too=None):
    """Stage 1 on text that holds no special token: clean, space CJK,
    split on whitespace, lower-case + strip accents, split punctuation.
    strip_accents_too=None follows do_lower_case (the uncased model does both).
    "Héllo, 世界!" -> ["hello", ",", "世", "界", "!"]."""
    if strip_accents_too is None:
        strip_accents_too = do_lower_case
    text = clean_text(text)
    text = space_cjk_ideographs(text)
    # NFC first so that one character typed two ways ("é" vs "e" + U+0301)
    # gives one token in the cased case; the uncased path decomposes anyway.
    text = unicodedata.normalize("NFC", text)
    words = []
    # str.split() with no argument splits on any run of whitespace (after
    # cleaning that is mostly " ", plus line/paragraph separators U+2028/9).
    for word in text.split():
        if do_lower_case:
            word = word.lower()
        if strip_accents_too:
            word = strip_accents(word)
        words.extend(split_on_punctuation(word))
    return words


# ----------------------------------------------------------------------------
# Stage 2: WordPiece
# ----------------------------------------------------------------------------

def wordpiece(word, vocab, unk_token="[UNK]", max_chars_per_word=100, prefix="##"):
    """Greedy longest-match-first split of one word into vocabulary pieces.

    Start at the first character; try the whole rest of the word, then one
    character shorter, ... until a piece is in `vocab` (pieces after the
    first carry the "##" prefix). Take it and continue after it. If no piece
    matches at some position, the whole word is [UNK] (not just that part).
    Words longer than max_chars_per_word are [UNK] without trying.
    "unaffable" -> ["un", "##aff", "##able"]."""
    if len(word) > max_chars_per_word:
        return [unk_token]
    pieces = []
    start = 0
    while start < len(word):
        end = len(word)
        match = None
        while end > start:
            candidate = word[start:end]
            if start > 0:
                candidate = prefix + candidate
            if candidate in vocab:
                match = candidate
                break
            end -= 1
        if match is None:
            return [unk_token]
        pieces.append(match)
        start = end
    return pieces


# ----------------------------------------------------------------------------
# The tokenizer
# ----------------------------------------------------------------------------

def load_vocab(vocab_file):
    """vocab.txt: one token per line; the token on line i (from 0) has id i."""
    if not os.path.isfile(vocab_file):
        raise FileNotFoundError(f"BertTokenizer: vocabulary file not found: {vocab_file}")
    vocab = {}
    with open(vocab_file, encoding="utf-8") as handle:
        for index, line in enumerate(handle):
            token = line.rstrip("\n")
            if token not in vocab:  # keep the first id of a duplicated line
                vocab[token] = index
    return vocab


# Spaces that decode() removes again, as the reference's
# clean_up_tokenization_spaces does: "hello , world !" -> "hello, world!",
# "i ' m" -> "i'm", "do n't" -> "don't".
CLEAN_UP_RULES = (
    (" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"),
    (" n't", "n't"), (" 'm", "'m"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re"),
)


def _special_token_id(token):
    """A read-only property: the vocabulary id of a special token such as "[PAD]"."""
    return property(lambda self: self.vocab[token], doc=f"the id of {token} in the vocabulary")


class BertTokenizer:
    """Uncased WordPiece tokenizer for BERT models.

    BertTokenizer(vocab_file, do_lower_case=True, max_chars_per_word=100)
    BertTokenizer.from_pretrained(model_dir)   reads model_dir/vocab.txt

    tokenize(text) -> list of token strings
    encode(text, text_pair=None, ...) -> list of ids: [CLS] a [SEP] (b [SEP])
    decode(ids) -> str
    tokenizer(texts, ...) -> dict of (B, T) int64 arrays: input_ids,
        attention_mask (1 = real token, 0 = padding), token_type_ids
        (0 = first segment, 1 = second segment)
    """

    def __init__(self, vocab_file, do_lower_case=True, max_chars_per_word=100,
                 strip_accents=None, model_max_length=512):
        self.vocab_file = str(vocab_file)
        self.vocab = load_vocab(self.vocab_file)
        self.ids_to_tokens = {index: token for token, index in self.vocab.items()}
        self.do_lower_case = do_lower_case
        self.strip_accents = strip_accents
        self.max_chars_per_word = max_chars_per_word
        self.model_max_length = model_max_length
        missing = [token for token in SPECIAL_TOKENS if token not in self.vocab]
        if missing:
            raise ValueError(f"BertTokenizer: {self.vocab_file} lacks the special tokens {missing}")
        # Longest first, so that split_special_tokens prefers the longer token.
        self.special_tokens = tuple(sorted(SPECIAL_TOKENS, key=len, reverse=True))

    @classmethod
    def from_pretrained(cls, model_dir, **kwargs):
        """Load model_dir/vocab.txt. If model_dir/tokenizer_config.json exists,
        its do_lower_case, strip_accents and model_max_length are used unless
        given as keyword arguments."""
        model_dir = str(model_dir)
        vocab_file = os.path.join(model_dir, "vocab.txt")
        if not os.path.isfile(vocab_file):
            raise FileNotFoundError(f"BertTokenizer.from_pretrained: no vocab.txt in {model_dir} "
                                    f"(looked for {vocab_file})")
        config_file = os.path.join(model_dir, "tokenizer_config.json")
        if os.path.isfile(config_file):
            with open(config_file, encoding="utf-8") as handle:
                config = json.load(handle)
            for key in ("do_lower_case", "strip_accents", "model_max_length"):
                if key in config and key not in kwargs:
                    kwargs[key] = config[key]
        return cls(vocab_file, **kwargs)

    # --- vocabulary -------------------------------------------------------

    @property
    def vocab_size(self):
        return len(self.ids_to_tokens)

    def __len__(self):
        return self.vocab_size

    pad_token_id = _special_token_id("[PAD]")
    unk_token_id = _special_token_id("[UNK]")
    cls_token_id = _special_token_id("[CLS]")
    sep_token_id = _special_token_id("[SEP]")
    mask_token_id = _special_token_id("[MASK]")

    @property
    def all_special_ids(self):
        return [self.vocab[token] for token in SPECIAL_TOKENS]

    def convert_tokens_to_ids(self, tokens):
        """A token (str) -> its id; a list of tokens -> a list of ids.
        Tokens not in the vocabulary map to the [UNK] id."""
        if isinstance(tokens, str):
            return self.vocab.get(tokens, self.unk_token_id)
        return [self.vocab.get(token, self.unk_token_id) for token in tokens]

    def convert_ids_to_tokens(self, ids):
        """An id -> its token; a list (or array) of ids -> a list of tokens."""
        if isinstance(ids, (int, np.integer)):
            return self._id_to_token(int(ids))
        return [self._id_to_token(int(index)) for index in ids]

    def _id_to_token(self, index):
        if index not in self.ids_to_tokens:
            raise ValueError(f"BertTokenizer: id {index} is not in the vocabulary "
                             f"(ids run from 0 to {self.vocab_size - 1})")
        return self.ids_to_tokens[index]

    # --- text -> tokens -> ids ----------------------------------------------

    def tokenize(self, text):
        """Text -> WordPiece tokens (no [CLS]/[SEP] added).
        Special tokens written in the text ("[MASK]") are kept whole."""
        _check_text(text, "text")
        tokens = []
        for chunk, is_special in split_special_tokens(text, self.special_tokens):
            if is_special:
                tokens.append(chunk)
                continue
            for word in basic_tokenize(chunk, self.do_lower_case, self.strip_accents):
                tokens.extend(wordpiece(word, self.vocab, "[UNK]", self.max_chars_per_word))
        return tokens

    def encode(self, text, text_pair=None, add_special_tokens=True, max_length=None,
               truncation=True):
        """Text (and optionally a second text) -> list of ids.
        With special tokens: [CLS] a [SEP] or [CLS] a [SEP] b [SEP].
        max_length (with truncation=True) limits the total length, special
        tokens included; see truncate_pair for how a pair is shortened."""
        return self._encode_with_types(text, text_pair, add_special_tokens, max_length,
                                       truncation)[0]

    def _encode_with_types(self, text, text_pair, add_special_tokens, max_length, truncation):
        """encode(), also returning token_type_ids (0 for [CLS] a [SEP], 1 for b [SEP])."""
        ids_a = self.convert_tokens_to_ids(self.tokenize(text))
        ids_b = None if text_pair is None else self.convert_tokens_to_ids(self.tokenize(text_pair))
        if max_length is not None and truncation:
            num_special = (3 if ids_b is not None else 2) if add_special_tokens else 0
            budget = max_length - num_special
            if budget < 0:
                raise ValueError(f"BertTokenizer: max_length={max_length} leaves no room for "
                                 f"the {num_special} special tokens")
            ids_a, ids_b = truncate_pair(ids_a, ids_b, budget)
        if add_special_tokens:
            ids = [self.cls_token_id] + ids_a + [self.sep_token_id]
        else:
            ids = list(ids_a)
        types = [0] * len(ids)
        if ids_b is not None:
            second = ids_b + [self.sep_token_id] if add_special_tokens else list(ids_b)
            ids += second
            types += [1] * len(second)
        return ids, types

    # --- ids -> text ----------------------------------------------------------

    def decode(self, ids, skip_special_tokens=False, clean_up_tokenization_spaces=True):
        """Ids -> text: join the tokens with spaces, glue "##" pieces back onto
        the piece before them (" ##" -> ""), then (clean_up_tokenization_spaces)
        remove the space before . , ! ? and inside contractions.
        The text comes back lower-cased and without accents; [UNK] stays
        [UNK]: decoding is not the exact inverse of encoding."""
        special_ids = set(self.all_special_ids)
        tokens = [self._id_to_token(int(index)) for index in ids
                  if not (skip_special_tokens and int(index) in special_ids)]
        text = " ".join(tokens).replace(" ##", "").strip()
        if clean_up_tokenization_spaces:
            for before, after in CLEAN_UP_RULES:
                text = text.replace(before, after)
        return text

    # --- batches ------------------------------------------------------------------

    def __call__(self, texts, text_pairs=None, padding=True, max_length=None, truncation=True,
                 return_tensors=None):
        """Encode a batch into (B, T) int64 arrays.

        texts: a str or a list of B str; text_pairs: the same for second
        segments (or None).
        padding=True (or "longest"): pad every row with [PAD] to the longest
        row; padding="max_length": pad to max_length; padding=False: no
        padding (all rows must then have one length).
        truncation=True cuts each row to max_length (model_max_length=512 when
        max_length is None), keeping [CLS] and [SEP]; pairs lose tokens from
        the longer segment first.
        return_tensors: None or "np" (numpy arrays; the only kind offered).

        Returns {"input_ids", "attention_mask", "token_type_ids"}, each (B, T):
        attention_mask is 1 on real tokens and 0 on padding.
        """
        if return_tensors not in (None, "np"):
            raise ValueError(f"BertTokenizer: return_tensors must be None or 'np', "
                             f"got {return_tensors!r}")
        if isinstance(texts, str):
            texts = [texts]
        if isinstance(text_pairs, str):
            text_pairs = [text_pairs]
        for name, batch in (("texts", texts), ("text_pairs", text_pairs)):
            if batch is None and name == "text_pairs":
                continue
            if not isinstance(batch, (list, tuple)):
                raise TypeError(f"BertTokenizer: {name} must be a str or a list of str, "
                                f"got {type(batch).__name__}")
            for index, text in enumerate(batch):
                _check_text(text, f"{name}[{index}]")
        if text_pairs is not None and len(text_pairs) != len(texts):
            raise ValueError(f"BertTokenizer: {len(texts)} texts but {len(text_pairs)} text_pairs")
        if padding == "max_length" and max_length is None:
            raise ValueError("BertTokenizer: padding='max_length' needs max_length")
        limit = max_length if max_length is not None else self.model_max_length
        rows = []
        for index, text in enumerate(texts):
            pair = None if text_pairs is None else text_pairs[index]
            rows.append(self._encode_with_types(text, pair, True, limit, truncation))

        lengths = [len(ids) for ids, _ in rows]
        if padding in (True, "longest"):
            width = max(lengths, default=0)
        elif padding == "max_length":
            width = max(max(lengths, default=0), max_length)
        elif padding in (False, "do_not_pad"):
            if len(set(lengths)) > 1:
                raise ValueError(f"BertTokenizer: padding=False but the rows have different "
                                 f"lengths {lengths}; use padding=True")
            width = max(lengths, default=0)
        else:
            raise ValueError(f"BertTokenizer: padding must be True, False, 'longest' or "
                             f"'max_length', got {padding!r}")

        batch = len(rows)
        input_ids = np.full((batch, width), self.pad_token_id, dtype=np.int64)   # (B, T)
        attention_mask = np.zeros((batch, width), dtype=np.int64)                # (B, T)
        token_type_ids = np.zeros((batch, width), dtype=np.int64)                # (B, T)
        for row, (ids, types) in enumerate(rows):
            input_ids[row, :len(ids)] = ids
            attention_mask[row, :len(ids)] = 1
            token_type_ids[row, :len(types)] = types
        return {"input_ids": input_ids, "attention_mask": attention_mask,
                "token_type_ids": token_type_ids}

    def __repr__(self):
        return (f"BertTokenizer(vocab_size={self.vocab_size}, do_lower_case={self.do_lower_case}, "
                f"max_chars_per_word={self.max_chars_per_word})")


def _check_text(text, name):
    """Raise a TypeError naming `name` unless text is a str (None, bytes and numbers are not)."""
    if isinstance(text, str):
        return
    hint = " (decode bytes first: text.decode('utf-8'))" if isinstance(text, (bytes, bytearray)) else ""
    raise TypeError(f"BertTokenizer: {name} must be a str, got {type(text).__name__}{hint}")


def truncate_pair(ids_a, ids_b, budget):
    """Shorten ids_a (and ids_b) to at most `budget` ids in total, dropping
    from the end. "Longest first": remove one id at a time from whichever
    segment is longer at that moment (from the second one on a tie), so the
    two segments end up about equally long. ids_b may be None."""
    ids_a = list(ids_a)
    if ids_b is None:
        return ids_a[:max(budget, 0)], None
    ids_b = list(ids_b)
    while len(ids_a) + len(ids_b) > budget:
        if len(ids_a) > len(ids_b):
            ids_a.pop()
        else:
            ids_b.pop()
    return ids_a, ids_b
