"""Reference solution to lessons/exercises/conv2d.py (im2col and conv2d_forward come from there)."""
import numpy as np

from exercises.conv2d import im2col, output_size


def col2im(cols, x_shape, kernel_size, stride=1, padding=0):
    kh, kw = kernel_size
    n, c, h, w = x_shape
    ho, wo = output_size(h, kh, stride, padding), output_size(w, kw, stride, padding)
    cols = cols.reshape(n, c, kh, kw, ho, wo)
    xpad = np.zeros((n, c, h + 2 * padding, w + 2 * padding), dtype=cols.dtype)
    for i in range(kh):              # im2col's loop, with = turned into +=
        for j in range(kw):
            xpad[:, :, i:i + stride * ho:stride, j:j + stride * wo:stride] += cols[:, :, i, j]
    return xpad[:, :, padding:padding + h, padding:padding + w]


def conv2d_backward(g, x, weight, stride=1, padding=0):
    o, c, kh, kw = weight.shape
    n = x.shape[0]
    g_rows = g.reshape(n, o, -1)                                   # (N, O, L)
    cols = im2col(x, (kh, kw), stride, padding)                    # (N, C*kh*kw, L)
    d_weight = (g_rows @ np.swapaxes(cols, 1, 2)).sum(axis=0)      # sum_n g_n cols_n^T
    d_cols = weight.reshape(o, c * kh * kw).T @ g_rows             # W^T g_n
    dx = col2im(d_cols, x.shape, (kh, kw), stride, padding)
    return dx, d_weight.reshape(weight.shape), g.sum(axis=(0, 2, 3))
