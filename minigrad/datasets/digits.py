"""Handwritten digits (8x8 images of 0-9): real images small enough for a first ResNet
trained on a CPU in seconds. Plain host-side numpy: wrap the arrays in mg.tensor."""
import numpy as np

__all__ = ["load_digits"]


def load_digits(test_fraction=0.2, seed=0):
    """Handwritten digits: scikit-learn's bundled copy of the UCI optical digits set
    (1,797 greyscale images of 8x8 pixels, classes 0-9), split into train and test.

    The split is stratified: every class puts round(test_fraction * its count) of its
    images, chosen by a numpy Generator seeded with `seed`, into the test set, so both
    sets have the same class balance. Pixels (0..16 in the source) are scaled to [0, 1].
    Returns X_train (n, 1, 8, 8) float32, y_train (n,) int64, X_test, y_test, with rows
    shuffled. Needs scikit-learn (in the [dev] extra); it reads a file scikit-learn
    ships, so nothing is downloaded.
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"load_digits: test_fraction must be in (0, 1), got {test_fraction}")
    try:
        from sklearn.datasets import load_digits as sklearn_digits
    except ImportError as exc:
        raise ImportError(f"load_digits needs scikit-learn ({exc}); install it with "
                          f'`pip install scikit-learn` or `pip install -e ".[dev]"`') from None
    bunch = sklearn_digits()
    images = (bunch.images / 16.0).astype(np.float32)[:, None]          # (1797, 1, 8, 8)
    labels = bunch.target.astype(np.int64)
    rng = np.random.default_rng(seed)
    train_rows, test_rows = [], []
    for label in np.unique(labels):
        rows = rng.permutation(np.flatnonzero(labels == label))
        n_test = int(round(test_fraction * len(rows)))
        test_rows.append(rows[:n_test])
        train_rows.append(rows[n_test:])
    train_rows = rng.permutation(np.concatenate(train_rows))
    test_rows = rng.permutation(np.concatenate(test_rows))
    return images[train_rows], labels[train_rows], images[test_rows], labels[test_rows]
