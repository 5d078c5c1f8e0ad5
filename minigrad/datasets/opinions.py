"""A generated sentence-classification task: is the opinion positive or negative?

    opinion_task()   "our hotel turned out awful." -> 0, "what a superb film!" -> 1;
                     the test sentences use opinion words never seen in training

Deterministic given the seed; labels are host-side numpy int64 arrays.
"""
import numpy as np

__all__ = ["opinion_task", "OPINION_THINGS", "OPINION_TEMPLATES", "OPINION_TRAIN_WORDS", "OPINION_TEST_WORDS"]

OPINION_THINGS = ("film", "meal", "hotel", "concert", "book", "service", "phone", "trip", "song", "game",
                  "room", "show", "class", "car", "restaurant", "holiday")
OPINION_TEMPLATES = ("the {t} was {a}.", "what a {a} {t}!", "i thought the {t} was {a}.",
                     "honestly, the {t} was {a}.", "our {t} turned out {a}.", "it was a {a} {t}.",
                     "my friends found the {t} {a}.", "overall the {t} felt {a}.")
OPINION_TRAIN_WORDS = {"great": 1, "wonderful": 1, "excellent": 1, "lovely": 1, "amazing": 1, "good": 1,
                       "terrible": 0, "awful": 0, "horrible": 0, "disappointing": 0, "bad": 0, "boring": 0}
OPINION_TEST_WORDS = {"fantastic": 1, "superb": 1, "delightful": 1, "brilliant": 1, "enjoyable": 1,
                      "dreadful": 0, "mediocre": 0, "dull": 0, "poor": 0, "unpleasant": 0}


def opinion_task(n_train=192, n_test=160, seed=0):
    """A generated two-class sentence task: is the opinion positive (1) or negative (0)?

    Each sentence is a template of OPINION_TEMPLATES filled with a thing and an opinion
    word; training sentences use only OPINION_TRAIN_WORDS and test sentences only
    OPINION_TEST_WORDS, so test accuracy measures what the encoder knows about words
    the classifier never saw. Classes are balanced (words drawn in turn).
    Returns ((train_texts, train_labels), (test_texts, test_labels)): lists of str and
    int64 arrays.
    """
    rng = np.random.default_rng(seed)

    def make(words, count):
        items = list(words.items())
        texts, labels = [], []
        for i in range(count):
            word, label = items[i % len(items)]
            template = OPINION_TEMPLATES[rng.integers(len(OPINION_TEMPLATES))]
            texts.append(template.format(t=OPINION_THINGS[rng.integers(len(OPINION_THINGS))], a=word))
            labels.append(label)
        order = rng.permutation(count)
        return [texts[i] for i in order], np.array(labels, dtype=np.int64)[order]

    return make(OPINION_TRAIN_WORDS, n_train), make(OPINION_TEST_WORDS, n_test)
