"""Train a small character-level GPT on the source code of Python's standard library.

    python benchmarks/train_gpt.py            # the full run (a few minutes on 2 cores)
    python benchmarks/train_gpt.py --quick    # a short run

Corpus: minigrad.datasets.stdlib_corpus(), a fixed, sorted list of pure-Python modules
read from the running interpreter's stdlib directory (about 1.2 million characters);
the first 90 % is for training, the last 10 % for validation. Model: models.GPT
(pre-LN, causal self-attention, GELU MLP, tied embeddings, GPT-2 initialisation),
trained with AdamW and a warm-up + cosine schedule, gradient clipping at 1.0.

Reports the validation loss (nats per character, and bits), the time per step,
and text sampled with the key/value cache (temperature 0.8, top-k 20), and the
speed of cached vs uncached generation. Writes benchmarks/results/gpt.json and .md.
"""
import argparse
import math
import sys
import time

import numpy as np

import minigrad as mg
import minigrad.functional as F
from minigrad.models import GPT
from minigrad.data import lm_batch, train_val_split
from minigrad.datasets import CharTokenizer, stdlib_corpus
from minigrad.tools import progress

from common import add_run_arguments, default_out, run   # benchmarks/common.py, beside this script


def estimate_loss(model, ids, block_size, batches, batch_size, seed):
    """Mean cross-entropy (nats per character) over fixed random windows of `ids`."""
    rng = np.random.default_rng(seed)
    model.eval()
    losses = []
    with mg.no_grad():
        for _ in range(batches):
            x, y = lm_batch(ids, block_size, batch_size, rng)
            losses.append(F.cross_entropy(model(x), y).item())
    model.train()
    return float(np.mean(losses))


def train(args, log=print):
    text = stdlib_corpus()
    tokenizer = CharTokenizer(text)
    train_ids, val_ids = train_val_split(tokenizer.encode(text), 0.1)
    mg.manual_seed(args.seed)
    model = GPT(tokenizer.vocab_size, args.block_size, args.n_layer, args.n_head, args.d_model, args.dropout)
    # no weight decay on biases, LayerNorm gains and the position table (as nanoGPT / GPT-2)
    decay = [p for p in model.parameters() if p.ndim == 2 and p is not model.pos_emb.weight]
    no_decay = [p for p in model.parameters() if p.ndim != 2 or p is model.pos_emb.weight]
    optimizer = mg.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                               lr=args.lr, betas=(0.9, 0.95))
    scheduler = mg.optim.WarmupCosine(optimizer, warmup=args.warmup, total_steps=args.steps,
                                      min_lr=args.lr / 10)
    log(f"corpus {len(text):,} characters, vocabulary {tokenizer.vocab_size}; "
        f"train {len(train_ids):,}, validation {len(val_ids):,}; model {model.num_parameters():,} parameters")
    rng = np.random.default_rng(args.seed)
    initial_val = estimate_loss(model, val_ids, args.block_size, args.eval_batches, args.batch_size, seed=1)
    log(f"step     0  val loss {initial_val:.4f} (uniform: {math.log(tokenizer.vocab_size):.4f})")
    curve, step_times, losses = [(0, None, initial_val)], [], []
    started = time.perf_counter()
    bar = progress(range(1, args.steps + 1), desc="training", disable=args.quick)
    for step in bar:
        tick = time.perf_counter()
        x, y = lm_batch(train_ids, args.block_size, args.batch_size, rng)
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        mg.optim.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        step_times.append(time.perf_counter() - tick)
        losses.append(loss.item())
        bar.set_postfix(loss=losses[-1])
        if step % args.eval_every == 0 or step == args.steps:
            val = estimate_loss(model, val_ids, args.block_size, args.eval_batches, args.batch_size, seed=1)
            train_loss = float(np.mean(losses[-args.eval_every:]))
            curve.append((step, round(train_loss, 4), round(val, 4)))
            log(f"step {step:5d}  train loss {train_loss:.4f}  val loss {val:.4f}  "
                f"{1000 * np.median(step_times[-args.eval_every:]):.0f} ms/step")
    train_seconds = time.perf_counter() - started
    final_val = curve[-1][2]

    prompt = tokenizer.encode("def ")[None, :]
    tick = time.perf_counter()
    sample_ids = model.generate(prompt, args.sample_chars, temperature=0.8, top_k=20, seed=args.seed)
    cached_seconds = time.perf_counter() - tick
    sample = tokenizer.decode(sample_ids.numpy()[0])
    tick = time.perf_counter()
    plain_ids = model.generate(prompt, args.sample_chars, temperature=0.8, top_k=20, seed=args.seed,
                               use_cache=False)
    uncached_seconds = time.perf_counter() - tick
    same = bool(np.array_equal(plain_ids.numpy(), sample_ids.numpy()))
    log(f"validation loss {final_val:.4f} nats/char ({final_val / math.log(2):.3f} bits); "
        f"training {train_seconds:.0f} s")
    log(f"generation of {args.sample_chars} characters: {cached_seconds:.2f} s with the KV cache, "
        f"{uncached_seconds:.2f} s without (same text: {same})")
    log("sample:\n" + sample)
    return {
        "corpus": f"Python {sys.version.split()[0]} stdlib, {len(text)} characters, 90/10 split",
        "settings": {k: v for k, v in vars(args).items() if k != "out"},
        "parameters": model.num_parameters(),
        "vocab_size": tokenizer.vocab_size,
        "initial_val_loss": initial_val,
        "final_val_loss": final_val,
        "final_val_bits_per_char": final_val / math.log(2),
        "curve_step_train_val": curve,
        "train_seconds": round(train_seconds, 1),
        "median_step_ms": round(1000 * float(np.median(step_times)), 1),
        "tokens_per_second": round(args.batch_size * args.block_size / float(np.median(step_times))),
        "generate_seconds_cached": round(cached_seconds, 2),
        "generate_seconds_uncached": round(uncached_seconds, 2),
        "cached_equals_uncached": same,
        "sample": sample,
    }


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--block-size", type=int, default=64)
    parser.add_argument("--n-layer", type=int, default=3)
    parser.add_argument("--n-head", type=int, default=4)
    parser.add_argument("--d-model", type=int, default=96)
    parser.add_argument("--dropout", type=float, default=0.0)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--eval-every", type=int, default=250)
    parser.add_argument("--eval-batches", type=int, default=8)
    parser.add_argument("--sample-chars", type=int, default=400)
    add_run_arguments(parser, "gpt")
    args = parser.parse_args(argv)
    default_out(args, "gpt")
    if args.quick:
        args.steps, args.eval_every, args.n_layer, args.d_model, args.sample_chars = 150, 50, 2, 64, 200
        args.warmup = 20
    return args


def report(result):
    s = result["settings"]
    return "\n".join([
        "# GPT on the Python standard library (benchmarks/train_gpt.py)", "",
        f"Model: models.GPT, {s['n_layer']} layers, {s['n_head']} heads, d_model {s['d_model']}, block {s['block_size']}, "
        f"{result['parameters']:,} parameters, character vocabulary {result['vocab_size']}.",
        f"Training: {s['steps']} steps of {s['batch_size']} x {s['block_size']} characters, AdamW (0.9, 0.95), "
        f"lr {s['lr']} with {s['warmup']} warm-up steps and cosine decay, weight decay 0.1, clip 1.0.",
        f"Corpus: {result['corpus']}.", "",
        "| measure | value |", "| --- | --- |",
        f"| validation loss at start | {result['initial_val_loss']:.4f} nats/char |",
        f"| validation loss at end | {result['final_val_loss']:.4f} nats/char ({result['final_val_bits_per_char']:.3f} bits) |",
        f"| training time | {result['train_seconds']} s |",
        f"| median time per step | {result['median_step_ms']} ms ({result['tokens_per_second']} tokens/s) |",
        f"| generating {s['sample_chars']} characters, KV cache | {result['generate_seconds_cached']} s |",
        f"| the same without the cache | {result['generate_seconds_uncached']} s (same text: {result['cached_equals_uncached']}) |",
        "", "Curve (step, train loss, val loss): " + ", ".join(str(tuple(c)) for c in result["curve_step_train_val"]),
        "", f"Machine: {result['machine']}", "",
        "Sample (prompt `def `, temperature 0.8, top-k 20):", "", "```python", result["sample"], "```", ""])


def main(argv=None):
    return run(parse_args(argv), train, report)


if __name__ == "__main__":
    main()
