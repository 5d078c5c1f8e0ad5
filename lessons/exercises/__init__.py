"""Exercises that grade themselves: write, for arrays, the backward passes minigrad computes.

Each file here states the math of one operation and leaves a function for you to
write (its body raises NotImplementedError until you do). In the order of the course:

    matmul.py         warm-up: dL/dA and dL/dB of Y = A @ B, with a broadcast B
    softmax.py        dL/dx of y = softmax(x), from y alone
    cross_entropy.py  dL/dlogits of the mean cross-entropy: (softmax - onehot) / N
    layer_norm.py     dL/dx, dL/dweight, dL/dbias of layer normalisation
    attention.py      dL/dq, dL/dk, dL/dv of softmax(q k^T / sqrt(d_k)) v, with a mask
    conv2d.py         col2im, then the backward of a convolution computed by im2col
    adam.py           one step of the Adam optimizer

Grade them (from the repository root):

    python lessons check                 every exercise
    python lessons check layer_norm      one (or several names)
    python lessons check --solutions     the reference solutions in solutions/ (what CI runs)

The grader (grading.py) compares your answer with minigrad's own on several cases,
each first confirmed against central differences by mg.gradcheck, and when they
differ names the case, the output, the element, the value expected and the one you
gave, and a hint (it recognises the usual mistakes). Try before you peek at solutions/.
"""
