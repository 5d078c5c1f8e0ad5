"""Train nn.Transformer to translate dates into words, and measure it.

    python benchmarks/train_translation.py            # the full run (a few minutes on 2 cores)
    python benchmarks/train_translation.py --quick    # a short run, as the CI test does

Task (minigrad.datasets.DateTranslation): "1987-03-14" or "14.03.1987" ->
"fourteenth of march nineteen eighty seven"; character-level source, word-level
target; the test dates never occur in training. The model is the paper's
encoder-decoder (post-LN), small: d_model 64, 2 + 2 layers, 4 heads. Training
follows the paper: Adam with betas (0.9, 0.98), eps 1e-9, the warm-up schedule
lr = factor * d_model^-0.5 * min(s^-0.5, s * warmup^-1.5), label smoothing 0.1,
dropout 0.1. Evaluation is greedy decoding (Transformer.translate) of every held-out
source and exact match of the whole sentence.

Writes benchmarks/results/translation.json (and .md): the settings, the loss
curve, token accuracy, exact match, and the time per step and in total.
"""
import argparse
import time

import numpy as np

import minigrad as mg
import minigrad.functional as F
import minigrad.nn as nn
from minigrad.datasets import DateTranslation
from minigrad.tools import progress

from common import add_run_arguments, default_out, run   # benchmarks/common.py, beside this script


def batches(src, tgt, batch_size, rng):
    order = rng.permutation(len(src))
    for start in range(0, len(order) - batch_size + 1, batch_size):
        rows = order[start:start + batch_size]
        yield src[rows], tgt[rows]


def evaluate(model, task, split="test", limit=None, batch_size=500):
    """Exact-match accuracy of greedy translations, and per-token accuracy under teacher forcing."""
    examples = {"train": task.train, "test": task.test}[split][:limit]
    src_all = task.encode_source([s for s, _ in examples])
    tgt_all = task.encode_target([t for _, t in examples])
    pad, bos, eos = task.tgt_vocab.pad_id, task.tgt_vocab.bos_id, task.tgt_vocab.eos_id
    exact, correct_tokens, total_tokens, failures = 0, 0, 0, []
    model.eval()
    for start in range(0, len(examples), batch_size):
        src, tgt = src_all[start:start + batch_size], tgt_all[start:start + batch_size]
        mask = nn.padding_mask(src, task.src_vocab.pad_id)
        with mg.no_grad():
            logits = model(src, tgt[:, :-1], src_mask=mask)
        predicted, target = logits.numpy().argmax(-1), tgt[:, 1:]
        real = target != pad
        correct_tokens += int(((predicted == target) & real).sum())
        total_tokens += int(real.sum())
        outputs = model.translate(src, max_len=tgt.shape[1], bos_id=bos, eos_id=eos, src_mask=mask)
        for (source, reference), ids in zip(examples[start:start + batch_size], outputs):
            guess = " ".join(task.tgt_vocab.decode(ids))
            exact += guess == reference
            if guess != reference and len(failures) < 5:
                failures.append({"source": source, "reference": reference, "model": guess})
    model.train()
    return exact / len(examples), correct_tokens / total_tokens, failures


def train(args, log=print):
    mg.manual_seed(args.seed)
    task = DateTranslation(n_train=args.n_train, n_test=args.n_test, seed=args.seed)
    src, tgt = task.arrays("train")
    model = nn.Transformer(len(task.src_vocab), len(task.tgt_vocab), d_model=args.d_model, n_heads=args.heads,
                           n_layers=args.layers, d_ff=args.d_ff, dropout=args.dropout, max_len=64,
                           norm_first=args.norm_first)
    optimizer = mg.optim.Adam(model.parameters(), lr=1.0, betas=(0.9, 0.98), eps=1e-9)
    scheduler = mg.optim.NoamScheduler(optimizer, d_model=args.d_model, warmup=args.warmup, factor=args.factor)
    rng = np.random.default_rng(args.seed)
    pad = task.tgt_vocab.pad_id
    log(f"{len(task.train)} training and {len(task.test)} test sentences; source vocab {len(task.src_vocab)}, "
        f"target vocab {len(task.tgt_vocab)}; model {model.num_parameters():,} parameters")
    step, losses, step_times = 0, [], []
    started = time.perf_counter()
    bar = progress(total=args.steps, desc="training", disable=args.quick)
    while step < args.steps:
        for src_batch, tgt_batch in batches(src, tgt, args.batch_size, rng):
            tick = time.perf_counter()
            mask = nn.padding_mask(src_batch, task.src_vocab.pad_id)
            # teacher forcing: read <bos> w1 ... wn, predict w1 ... wn <eos>
            logits = model(src_batch, tgt_batch[:, :-1], src_mask=mask)
            loss = F.cross_entropy(logits, tgt_batch[:, 1:], ignore_index=pad, label_smoothing=0.1)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
            step_times.append(time.perf_counter() - tick)
            losses.append(loss.item())
            step += 1
            bar.update()
            bar.set_postfix(loss=losses[-1])
            if step % args.log_every == 0 or step == args.steps:
                log(f"step {step:5d}  loss {np.mean(losses[-args.log_every:]):.4f}  "
                    f"lr {scheduler.get_last_lr()[0]:.2e}  {1000 * np.median(step_times[-args.log_every:]):.1f} ms/step")
            if step >= args.steps:
                break
    train_seconds = time.perf_counter() - started
    tick = time.perf_counter()
    exact, token_accuracy, failures = evaluate(model, task, "test")
    eval_seconds = time.perf_counter() - tick
    train_exact, _, _ = evaluate(model, task, "train", limit=len(task.test))
    log(f"held-out exact match {exact:.2%}, token accuracy {token_accuracy:.2%} "
        f"(train exact {train_exact:.2%}); training {train_seconds:.0f} s, evaluation {eval_seconds:.1f} s")
    for failure in failures:
        log(f"  {failure['source']} -> {failure['model']!r} (expected {failure['reference']!r})")
    return {
        "task": "DateTranslation (dates in digits -> English words), held-out dates",
        "settings": {k: v for k, v in vars(args).items() if k != "out"},
        "parameters": model.num_parameters(),
        "steps": step,
        "final_train_loss": float(np.mean(losses[-args.log_every:])),
        "loss_curve": [round(float(np.mean(losses[i:i + args.log_every])), 4)
                       for i in range(0, len(losses), args.log_every)],
        "test_exact_match": exact,
        "test_token_accuracy": token_accuracy,
        "train_exact_match_sample": train_exact,
        "chance_token_accuracy": 1 / (len(task.tgt_vocab) - 3),
        "train_seconds": round(train_seconds, 1),
        "median_step_ms": round(1000 * float(np.median(step_times)), 1),
        "eval_seconds": round(eval_seconds, 1),
        "examples_of_errors": failures,
    }


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short run (CI)")
    parser.add_argument("--steps", type=int, default=2500)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--n-train", type=int, default=20000)
    parser.add_argument("--n-test", type=int, default=1000)
    parser.add_argument("--d-model", type=int, default=64)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--d-ff", type=int, default=256)
    parser.add_argument("--dropout", type=float, default=0.1)
    parser.add_argument("--norm-first", action="store_true", help="pre-LN instead of the paper's post-LN")
    parser.add_argument("--warmup", type=int, default=400)
    parser.add_argument("--factor", type=float, default=1.0, help="scale of the warm-up schedule")
    parser.add_argument("--log-every", type=int, default=100)
    add_run_arguments(parser, "translation")
    args = parser.parse_args(argv)
    default_out(args, "translation")
    if args.quick:
        args.steps, args.n_train, args.n_test, args.log_every = 300, 5000, 200, 50
    return args


def main(argv=None):
    return run(parse_args(argv), train, report)


def report(result):
    s = result["settings"]
    lines = [
        "# Transformer on DateTranslation (benchmarks/train_translation.py)", "",
        f"Model: nn.Transformer d_model {s['d_model']}, {s['layers']}+{s['layers']} layers, {s['heads']} heads, "
        f"d_ff {s['d_ff']}, dropout {s['dropout']}, {'pre-LN' if s['norm_first'] else 'post-LN'}; "
        f"{result['parameters']:,} parameters.",
        f"Training: {result['steps']} steps of {s['batch_size']} sentences from {s['n_train']}; Adam (0.9, 0.98), "
        f"eps 1e-9, warm-up schedule ({s['warmup']} steps, factor {s['factor']}), label smoothing 0.1.", "",
        "| measure | value |", "| --- | --- |",
        f"| held-out exact match ({s['n_test']} unseen dates, greedy) | {result['test_exact_match']:.2%} |",
        f"| held-out token accuracy (teacher forcing) | {result['test_token_accuracy']:.2%} |",
        f"| chance token accuracy | {result['chance_token_accuracy']:.2%} |",
        f"| final training loss (smoothed targets) | {result['final_train_loss']:.4f} |",
        f"| training time | {result['train_seconds']} s |",
        f"| median time per step | {result['median_step_ms']} ms |",
        f"| evaluation time (greedy decoding) | {result['eval_seconds']} s |", "",
        f"Machine: {result['machine']}", "",
    ]
    if result["examples_of_errors"]:
        lines.append("Errors (first few):")
        lines += [f"- `{e['source']}` -> \"{e['model']}\" (expected \"{e['reference']}\")"
                  for e in result["examples_of_errors"]]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
