"""End-to-end training: an MLP learns two interleaved spirals with mini-batch SGD, and
full-batch gradient descent recovers the weights of a linear model."""
import numpy as np

import minigrad as mg
import minigrad.functional as F
import minigrad.nn as nn
from minigrad import optim
from minigrad.datasets import make_linear_regression, make_spirals


def accuracy(model, X, y):
    with mg.no_grad():
        return float((model(mg.tensor(X)).numpy().argmax(-1) == y).mean())


def test_mlp_fits_two_spirals_with_minibatch_sgd():
    mg.manual_seed(0)
    X, y = make_spirals(n=600, classes=2, seed=0)
    X_train, y_train, X_test, y_test = X[:400], y[:400], X[400:], y[400:]
    model = nn.MLP([2, 64, 64, 2], activation="relu")
    optimizer = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    loader = mg.data.DataLoader((X_train, y_train), batch_size=32, shuffle=True, seed=0)
    assert accuracy(model, X_train, y_train) < 0.8                     # not solved by chance
    for epoch in range(60):                                              # about 1 s
        for xb, yb in loader:
            loss = F.cross_entropy(model(mg.tensor(xb)), yb)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    assert accuracy(model, X_train, y_train) >= 0.95
    assert accuracy(model, X_test, y_test) >= 0.95                      # and it generalises


def test_full_batch_gradient_descent_recovers_linear_weights():
    X, y, true_weight, true_bias = make_linear_regression(n=200, n_features=3, noise=1e-3, seed=0)
    mg.manual_seed(0)
    layer = nn.Dense(3, 1)
    optimizer = optim.GD(layer.parameters(), lr=0.1)
    inputs, targets = mg.tensor(X), mg.tensor(y)
    losses = []
    for step in range(300):
        loss = F.mse_loss(layer(inputs), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    # a convex quadratic with a small enough step: the loss never goes up (up to float32 rounding)
    assert all(later <= earlier + 1e-7 for earlier, later in zip(losses, losses[1:]))
    assert losses[-1] < 1e-5 < losses[0]
    np.testing.assert_allclose(layer.weight.numpy(), true_weight, atol=1e-3)
    np.testing.assert_allclose(layer.bias.numpy(), true_bias, atol=1e-3)
