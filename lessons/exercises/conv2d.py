"""Exercise: the backward of a convolution computed by im2col.

The forward (given below, read it first)
    y[n, o, oh, ow] = bias[o] + sum_{c, i, j} weight[o, c, i, j] * xpad[n, c, oh*s + i, ow*s + j]
    x (N, C, H, W), weight (O, C, kh, kw), bias (O,) -> y (N, O, H_out, W_out),
    H_out = (H + 2 padding - kh) // s + 1 (the same for W), xpad = x with `padding` zeros around.
im2col copies every kh x kw window of xpad into one column, so that the convolution
becomes one matrix product per image:
    cols = im2col(x)                     (N, C*kh*kw, L),  L = H_out * W_out
    y_n = W @ cols_n + bias              W = weight.reshape(O, C*kh*kw),  y_n (O, L)

What to write
    1. col2im(cols, x_shape, kernel_size, stride, padding) -> image (N, C, H, W): the
       adjoint of im2col. Every entry of cols was copied from one pixel of xpad (or from
       the padding): send each one back to its pixel and ADD them up, since overlapping
       windows copied the same pixel into several columns. Drop the padding at the end.
       (Adjoint means <im2col(x), c> = <x, col2im(c)> for every x and c: the grader checks
       exactly this.)
    2. conv2d_backward(g, x, weight, stride, padding) -> (dx, dweight, dbias), g = dL/dy.

The math, with g_n = g[n].reshape(O, L)
    dbias   = g summed over n, oh, ow                   the bias is added everywhere
    dW      = sum_n g_n @ cols_n^T, reshaped to weight's shape   (the matmul exercise)
    dcols_n = W^T @ g_n                                  (O, L) -> (C*kh*kw, L)
    dx      = col2im(dcols)                              each column entry back to its pixel
Why col2im: im2col is linear, cols = U x for a matrix U that copies; the gradient of a
copy is the sum of the gradients of its copies, U^T, which is col2im.

In minigrad
    minigrad/ops/image.py Conv2dOp (its docstring is this math), UnfoldOp (im2col) and
    FoldOp (col2im), each the other's backward; minigrad/backend/kernels/convolution.py.

Check:  python lessons check conv2d
"""
import numpy as np


def output_size(size, kernel, stride, padding):
    return (size + 2 * padding - kernel) // stride + 1


def im2col(x, kernel_size, stride=1, padding=0):
    """x (N, C, H, W) -> cols (N, C*kh*kw, H_out*W_out). Row (c, i, j) of column (oh, ow)
    holds xpad[n, c, oh*stride + i, ow*stride + j]."""
    kh, kw = kernel_size
    n, c, h, w = x.shape
    ho, wo = output_size(h, kh, stride, padding), output_size(w, kw, stride, padding)
    xpad = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    cols = np.empty((n, c, kh, kw, ho, wo), dtype=x.dtype)
    for i in range(kh):              # one slice per kernel tap, all windows at once
        for j in range(kw):
            cols[:, :, i, j] = xpad[:, :, i:i + stride * ho:stride, j:j + stride * wo:stride]
    return cols.reshape(n, c * kh * kw, ho * wo)


def conv2d_forward(x, weight, bias, stride=1, padding=0):
    """The convolution by im2col: x (N, C, H, W), weight (O, C, kh, kw), bias (O,) -> (N, O, H_out, W_out)."""
    o, c, kh, kw = weight.shape
    n, _, h, w = x.shape
    cols = im2col(x, (kh, kw), stride, padding)                      # (N, C*kh*kw, L)
    y = weight.reshape(o, c * kh * kw) @ cols + bias[:, None]        # (N, O, L)
    return y.reshape(n, o, output_size(h, kh, stride, padding), output_size(w, kw, stride, padding))


def col2im(cols, x_shape, kernel_size, stride=1, padding=0):
    """cols (N, C*kh*kw, L) -> image of shape x_shape (N, C, H, W), overlapping entries added."""
    raise NotImplementedError("send every column entry back to its pixel and add them up: "
                              "the math is at the top of this file")


def conv2d_backward(g, x, weight, stride=1, padding=0):
    """g (N, O, H_out, W_out), x (N, C, H, W), weight (O, C, kh, kw) -> dx, dweight, dbias."""
    raise NotImplementedError("return dx, dweight and dbias: the math is at the top of this file")
