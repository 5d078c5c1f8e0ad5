"""Properties of backward that hold for every op, beyond matching central differences
(which tests/test_ops_grad.py and tests/test_fused.py check op by op):

- backward is linear in its upstream gradient:
      grad(y, x, a*g1 + b*g2) == a*grad(y, x, g1) + b*grad(y, x, g2)
  (the chain rule multiplies g by the Jacobian; a backward that squares g, drops it
  or adds a constant breaks this);
- d(sum x)/dx is ones, for every shape including 0-d;
- two backward() calls into .grad accumulate to the sum of the separate gradients;
- second derivatives (create_graph=True) of functions whose f'' is known in closed
  form, the mixed partial of x*y, and the Hessian of 1/2 x^T A x, which is (A + A^T)/2.

Everything runs in float64 on "cpu" and on "cuda" (the `device` fixture).
"""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

import minigrad as mg
import minigrad.functional as F
from minigrad.autograd import Function


def floats(lo=-2.0, hi=2.0):
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False, allow_subnormal=False)


def arrays(shape, elements=None):
    return hnp.arrays(np.float64, shape, elements=floats() if elements is None else elements)


shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=4)
nonscalar_shapes = hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4)


# --------------------------------------------------------------------------- the ops under test
# each case draws its input arrays and returns (inputs, fn); fn maps tensors to one tensor
def _matmul(draw):
    n, k, m = draw(st.integers(1, 4)), draw(st.integers(1, 4)), draw(st.integers(1, 4))
    batch = draw(st.sampled_from([(), (2,), (3, 1)]))
    return [draw(arrays(batch + (n, k))), draw(arrays((k, m)))], lambda a, b: a @ b


def _broadcast(op):
    def case(draw):
        pair = draw(hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=4))
        return [draw(arrays(pair.input_shapes[0])), draw(arrays(pair.input_shapes[1]))], op
    return case


def _softmax(draw):
    shape = draw(nonscalar_shapes)
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    return [draw(arrays(shape))], lambda x: F.softmax(x, axis=axis)


def _layer_norm(draw):
    shape = draw(nonscalar_shapes)
    d = shape[-1]
    return ([draw(arrays(shape)), draw(arrays((d,))), draw(arrays((d,)))],
            lambda x, w, b: F.layer_norm(x, w, b))


def _unary(method):
    def case(draw):
        return [draw(arrays(draw(shapes)))], method
    return case


def _getitem_with_repeats(draw):
    shape = draw(nonscalar_shapes)
    index = np.array(draw(st.lists(st.integers(0, shape[0] - 1), min_size=1, max_size=6)))
    return [draw(arrays(shape))], lambda x: x[index]


def _reduction(name):
    def case(draw):
        shape = draw(shapes)
        axis = draw(st.none() | st.integers(-len(shape), len(shape) - 1)) if shape else None
        keepdims = draw(st.booleans())
        return [draw(arrays(shape))], lambda x: getattr(x, name)(axis=axis, keepdims=keepdims)
    return case


CASES = {
    "matmul": _matmul,
    "mul_broadcast": _broadcast(lambda a, b: a * b),
    "add_broadcast": _broadcast(lambda a, b: a + b),
    "div_broadcast": _broadcast(lambda a, b: a / (b * b + 1.0)),
    "softmax": _softmax,
    "log_softmax": lambda draw: (lambda inputs, _: (inputs, lambda x: F.log_softmax(x)))(*_softmax(draw)),
    "layer_norm": _layer_norm,
    "tanh": _unary(lambda x: x.tanh()),
    "sigmoid": _unary(lambda x: x.sigmoid()),
    "exp": _unary(lambda x: x.exp()),
    "gelu": _unary(lambda x: F.gelu(x)),
    "getitem_repeats": _getitem_with_repeats,
    "sum": _reduction("sum"),
    "max": _reduction("max"),
    "mean": _reduction("mean"),
    "var": _reduction("var"),
}


def _tensors(arrays_in):
    return [mg.tensor(a, requires_grad=True) for a in arrays_in]


def _assert_close(actual, expected, what, atol=1e-10):
    np.testing.assert_allclose(actual, expected, rtol=1e-9, atol=atol, err_msg=what)


# --------------------------------------------------------------------------- linearity in g
@pytest.mark.parametrize("name", sorted(CASES))
@settings(max_examples=20)
@given(data=st.data(), a=floats(-3, 3), b=floats(-3, 3))
def test_backward_is_linear_in_the_upstream_gradient(device, name, data, a, b):
    arrays_in, fn = CASES[name](data.draw)
    xs = _tensors(arrays_in)
    y = fn(*xs)
    g1 = data.draw(arrays(y.shape), label="g1")
    g2 = data.draw(arrays(y.shape), label="g2")
    grads1 = mg.grad(y, xs, mg.tensor(g1), retain_graph=True)
    grads2 = mg.grad(y, xs, mg.tensor(g2), retain_graph=True)
    combined = mg.grad(y, xs, mg.tensor(a * g1 + b * g2))
    for i, (x, c, d1, d2) in enumerate(zip(xs, combined, grads1, grads2)):
        assert c.shape == x.shape, f"{name}: gradient of input {i} has shape {c.shape}, input {x.shape}"
        _assert_close(c.numpy(), a * d1.numpy() + b * d2.numpy(), f"{name}: input {i}")


def test_linearity_check_catches_a_backward_that_is_not_linear(device):
    """The property is not vacuous: a Function whose backward squares g fails it."""
    class SquaresGradient(Function):
        def forward(self, x):
            return x * 2.0

        def backward(self, g):
            return g * g * 2.0

    x = mg.tensor(np.array([1.0, -2.0]), requires_grad=True)
    y = SquaresGradient()(x)
    g1, g2 = np.array([1.0, 2.0]), np.array([-1.0, 0.5])
    (d1,) = mg.grad(y, [x], mg.tensor(g1), retain_graph=True)
    (d2,) = mg.grad(y, [x], mg.tensor(g2), retain_graph=True)
    (both,) = mg.grad(y, [x], mg.tensor(g1 + g2))
    assert not np.allclose(both.numpy(), d1.numpy() + d2.numpy())


# --------------------------------------------------------------------------- grad of sum
@given(shape=shapes, dtype=st.sampled_from(["float32", "float64"]))
@settings(max_examples=25)
def test_grad_of_the_sum_is_ones(device, shape, dtype):
    x = mg.randn(*shape, dtype=dtype, requires_grad=True)
    x.sum().backward()
    assert x.grad.shape == x.shape and x.grad.dtype == x.dtype
    np.testing.assert_array_equal(x.grad.numpy(), np.ones(shape))
    (again,) = mg.grad(x.sum(), [x])
    np.testing.assert_array_equal(again.numpy(), np.ones(shape))


@given(shape=nonscalar_shapes)
@settings(max_examples=20)
def test_grad_of_the_sum_over_each_axis_is_ones(device, shape):
    x = mg.randn(*shape, dtype="float64", requires_grad=True)
    for axis in range(-len(shape), len(shape)):
        (g,) = mg.grad(x.sum(axis=axis).sum(), [x])
        np.testing.assert_array_equal(g.numpy(), np.ones(shape))


# --------------------------------------------------------------------------- accumulation
# functions of one x of any non-scalar shape, for the accumulation test
ON_X = {
    "tanh": lambda x: x.tanh(),
    "mul_self": lambda x: x * x[..., :1],
    "softmax": lambda x: F.softmax(x),
    "layer_norm": lambda x: F.layer_norm(x),
    "getitem_repeats": lambda x: x[np.array([0, 0, x.shape[0] - 1])],
    "max": lambda x: x.max(axis=-1),
    "var": lambda x: x.var(axis=0, keepdims=True),
    "exp": lambda x: x.exp(),
}


@pytest.mark.parametrize("first,second", [("mul_self", "tanh"), ("softmax", "layer_norm"),
                                          ("getitem_repeats", "max"), ("var", "exp")])
@settings(max_examples=15)
@given(data=st.data())
def test_two_backward_calls_accumulate_to_the_sum_of_the_separate_gradients(device, first, second, data):
    host = data.draw(arrays(data.draw(nonscalar_shapes)))
    f1, f2 = ON_X[first], ON_X[second]
    w1 = data.draw(arrays(f1(mg.tensor(host)).shape), label="w1")
    w2 = data.draw(arrays(f2(mg.tensor(host)).shape), label="w2")
    x = mg.tensor(host, requires_grad=True)

    def loss1():
        return (f1(x) * mg.tensor(w1)).sum()

    def loss2():
        return (f2(x) * mg.tensor(w2)).sum()

    (alone1,) = mg.grad(loss1(), [x])
    (alone2,) = mg.grad(loss2(), [x])
    assert x.grad is None, "mg.grad must not write .grad"
    loss1().backward()
    _assert_close(x.grad.numpy(), alone1.numpy(), f"{first} alone")
    loss2().backward()
    _assert_close(x.grad.numpy(), alone1.numpy() + alone2.numpy(), f"{first} then {second}")


# --------------------------------------------------------------------------- second derivatives
def _sig(v):
    return 1.0 / (1.0 + np.exp(-v))


SECOND_DERIVATIVES = {
    # name: (f on tensors, f'' on arrays, elements)
    "cube": (lambda x: x ** 3, lambda v: 6 * v, floats()),
    "exp": (lambda x: x.exp(), np.exp, floats()),
    "tanh": (lambda x: x.tanh(), lambda v: -2 * np.tanh(v) * (1 - np.tanh(v) ** 2), floats()),
    "log": (lambda x: x.log(), lambda v: -1 / v ** 2, floats(0.2, 3.0)),
    "sigmoid": (lambda x: x.sigmoid(), lambda v: _sig(v) * (1 - _sig(v)) * (1 - 2 * _sig(v)), floats()),
    "reciprocal": (lambda x: 1.0 / x, lambda v: 2 / v ** 3, floats(0.2, 3.0)),
    "sqrt": (lambda x: x.sqrt(), lambda v: -0.25 * v ** -1.5, floats(0.2, 3.0)),
}


@pytest.mark.parametrize("name", sorted(SECOND_DERIVATIVES))
@settings(max_examples=20)
@given(data=st.data())
def test_second_derivative_of_a_known_function(device, name, data):
    f, second, elements = SECOND_DERIVATIVES[name]
    host = data.draw(arrays(data.draw(shapes), elements))
    x = mg.tensor(host, requires_grad=True)
    # f acts elementwise, so the Hessian of sum f(x) is diag(f''(x)) and grad(sum f') = f''
    (first,) = mg.grad(f(x).sum(), [x], create_graph=True)
    assert first.requires_grad, f"{name}: create_graph=True should give a differentiable gradient"
    (hessian_diagonal,) = mg.grad(first.sum(), [x])
    _assert_close(hessian_diagonal.numpy(), second(host), name, atol=1e-9)


@given(x0=floats(), y0=floats())
@settings(max_examples=20)
def test_mixed_partials_of_products(device, x0, y0):
    x = mg.tensor(np.float64(x0), requires_grad=True)
    y = mg.tensor(np.float64(y0), requires_grad=True)
    # d2(xy)/dxdy = 1
    (dx,) = mg.grad(x * y, [x], create_graph=True)
    (dxy,) = mg.grad(dx, [y])
    _assert_close(dxy.numpy(), 1.0, "x*y")
    # f = x^2 y^3: f_xy = 6 x y^2, and the two orders agree
    f = x ** 2 * y ** 3
    dx, dy = mg.grad(f, [x, y], create_graph=True)
    (dxy,) = mg.grad(dx, [y], retain_graph=True)
    (dyx,) = mg.grad(dy, [x])
    _assert_close(dxy.numpy(), 6 * x0 * y0 ** 2, "x^2 y^3: d/dy d/dx")
    _assert_close(dyx.numpy(), 6 * x0 * y0 ** 2, "x^2 y^3: d/dx d/dy")


@given(n=st.integers(1, 5), data=st.data())
@settings(max_examples=20)
def test_hessian_of_a_quadratic_form_is_the_symmetric_part(device, n, data):
    a_host = data.draw(arrays((n, n)))
    x_host = data.draw(arrays((n,)))
    A = mg.tensor(a_host)
    x = mg.tensor(x_host, requires_grad=True)
    f = 0.5 * (x @ (A @ x))
    (g,) = mg.grad(f, [x], create_graph=True)
    _assert_close(g.numpy(), 0.5 * (a_host + a_host.T) @ x_host, "gradient of 1/2 x^T A x")
    rows = [mg.grad(g[i], [x], retain_graph=True)[0].numpy() for i in range(n)]
    _assert_close(np.stack(rows), 0.5 * (a_host + a_host.T), "Hessian of 1/2 x^T A x")


@pytest.mark.parametrize("name", ["softmax", "layer_norm", "matmul", "mul_broadcast", "tanh", "var"])
@settings(max_examples=10)
@given(data=st.data())
def test_gradients_of_gradients_match_central_differences(device, name, data):
    """For ops without a closed-form f'' here: the gradient, made with create_graph, is
    itself differentiated and checked against central differences of the gradient."""
    arrays_in, fn = CASES[name](data.draw)
    xs = _tensors(arrays_in)
    w = mg.tensor(data.draw(arrays(fn(*xs).shape), label="w"))

    def first_gradient(*inputs):
        (g,) = mg.grad((fn(*inputs) * w).sum(), [inputs[0]], create_graph=True)
        return g

    assert mg.gradcheck(first_gradient, xs)
