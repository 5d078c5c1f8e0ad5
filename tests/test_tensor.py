"""The Tensor and its autograd: accumulation, no_grad, detach, retain_graph,
mg.grad and create_graph, deep graphs, freeing the graph, gradcheck's report,
DOT export, dtype rules and error messages. Each test runs on cpu and cuda."""
import gc
import re
import sys
import weakref

import numpy as np
import pytest

import minigrad as mg
from minigrad.tools.gradcheck import GradcheckError
from minigrad.autograd import Function


# --------------------------------------------------------------------------- basics
def test_tensor_facts_and_host_copy(device):
    t = mg.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    assert (t.shape, t.ndim, t.size, t.dtype, t.device) == ((2, 3), 2, 6, np.float32, device)
    assert isinstance(t.numpy(), np.ndarray)
    np.testing.assert_array_equal(t.numpy(), [[1, 2, 3], [4, 5, 6]])
    assert t.sum().item() == 21.0 and isinstance(t.sum().item(), float)
    assert mg.tensor([7]).item() == 7
    with pytest.raises(ValueError, match=r"item\(\).*shape is \(2, 3\)"):
        t.item()


def test_factories_make_tensors_on_the_device_with_float32_by_default(device):
    for t, expected in [(mg.zeros(2, 3), np.zeros((2, 3))), (mg.ones((2, 3)), np.ones((2, 3))),
                        (mg.zeros_like(mg.ones(4)), np.zeros(4)), (mg.ones_like(mg.zeros(4)), np.ones(4))]:
        assert t.device == device and t.dtype == np.float32
        np.testing.assert_array_equal(t.numpy(), expected)
    assert mg.arange(5).dtype == np.int64 and mg.arange(5).device == device
    np.testing.assert_array_equal(mg.arange(5).numpy(), np.arange(5))
    assert mg.zeros(3, dtype="float64", requires_grad=True).requires_grad
    assert mg.randn(3, 4).shape == (3, 4) and mg.randn(3, 4).device == device


def test_manual_seed_repeats_the_same_draws_on_every_device(device):
    mg.manual_seed(123)
    first = mg.randn(5).numpy()
    mg.manual_seed(123)
    np.testing.assert_array_equal(mg.randn(5, device="cpu").numpy(), first)


def test_truth_value_of_a_multi_element_tensor_is_an_error(device):
    assert bool(mg.tensor([2.0]) > 1.0)
    assert not bool(mg.tensor(0.0))
    with pytest.raises(ValueError, match="ambiguous"):
        bool(mg.tensor([1.0, 2.0]) == mg.tensor([1.0, 3.0]))


def test_iterating_gives_the_rows_and_keeps_the_graph(device):
    x = mg.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    rows = list(x)
    assert len(rows) == 2 and rows[1].shape == (2,)
    np.testing.assert_array_equal(rows[1].numpy(), [3.0, 4.0])
    (rows[0] * 2 + rows[1]).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[2.0, 2.0], [1.0, 1.0]])
    with pytest.raises(TypeError, match="0-d"):
        list(mg.tensor(1.0))


def test_only_float_tensors_can_require_grad(device):
    with pytest.raises(TypeError, match="floating-point"):
        mg.tensor([1, 2], requires_grad=True)


# --------------------------------------------------------------------------- dtype rules
def test_python_floats_become_float32_and_numpy_float64_stays(device):
    assert mg.tensor(1.5).dtype == np.float32
    assert mg.tensor([1.0, 2.0]).dtype == np.float32
    assert mg.tensor([1, 2]).dtype == np.int64
    assert mg.tensor(np.array([1.0, 2.0])).dtype == np.float64
    assert mg.tensor(np.float64(1.0)).dtype == np.float64
    assert mg.tensor([1.0], dtype="float64").dtype == np.float64


def test_numbers_take_the_tensors_dtype(device):
    x32 = mg.tensor([1.0, 2.0])
    x64 = mg.tensor(np.array([1.0, 2.0]))
    for out in (2 * x32, x32 * 2.5, x32 + 1, 1 - x32, x32 / 3.0, x32 ** 2, 2.0 ** x32, -x32, x32.mean(),
                x32.var(), x32.masked_fill(x32 > 1, 0.0), x32.clip(0.5, 1.5)):
        assert out.dtype == np.float32
    for out in (2 * x64, x64 + 0.5, x64.mean()):
        assert out.dtype == np.float64


def test_gradients_have_the_dtype_and_device_of_their_tensor(device):
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    (x * x).sum().backward()
    assert x.grad.dtype == np.float32 and x.grad.device == device


# --------------------------------------------------------------------------- backward
def test_gradients_accumulate_over_two_backward_calls(device):
    x = mg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    (x * x).sum().backward()
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 4 * np.array([1.0, 2.0, 3.0]))
    x.zero_grad()
    assert x.grad is None


def test_a_tensor_used_twice_gets_both_contributions(device):
    x = mg.tensor([3.0], requires_grad=True)
    y = x * x + x            # dy/dx = 2x + 1
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), [7.0])


def test_leaves_sharing_an_upstream_gradient_get_separate_arrays(device):
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    y = mg.tensor([3.0, 4.0], requires_grad=True)
    (x + y).sum().backward()
    x.grad.data[0] = 100.0                       # an in-place change to one grad ...
    np.testing.assert_array_equal(y.grad.numpy(), [1.0, 1.0])   # ... does not reach the other


def test_leaf_gradients_are_writable_arrays_of_their_own(device):
    # sum's backward broadcasts a scalar (a read-only view); a leaf must not keep that view,
    # nor a view of another leaf's gradient, or an in-place optimizer step would break
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    y = mg.tensor([[3.0, 4.0]], requires_grad=True)
    (x.reshape(1, 2) + y).sum().backward()
    x.grad.data[0] = 100.0
    y.grad.data[0, 1] = 50.0
    np.testing.assert_array_equal(x.grad.numpy(), [100.0, 1.0])
    np.testing.assert_array_equal(y.grad.numpy(), [[1.0, 50.0]])


def test_backward_with_an_explicit_gradient(device):
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    (x * 3.0).backward(mg.tensor([1.0, -1.0]))
    np.testing.assert_allclose(x.grad.numpy(), [3.0, -3.0])
    with pytest.raises(ValueError, match=r"grad of shape \(3,\) does not match output shape \(2,\)"):
        (x * 3.0).backward(mg.tensor([1.0, 1.0, 1.0]))


def test_backward_on_a_non_scalar_needs_a_gradient(device):
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=r"single-element.*shape \(2,\)"):
        (x * 2).backward()


def test_backward_without_a_graph_is_a_clear_error(device):
    with pytest.raises(RuntimeError, match="does not require grad"):
        mg.tensor([1.0]).sum().backward()


def test_no_grad_context_records_nothing(device):
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    with mg.no_grad():
        y = x * 2 + 1
        assert not mg.is_grad_enabled()
    assert mg.is_grad_enabled()
    assert not y.requires_grad and y.grad_fn is None
    z = x * 2
    assert z.requires_grad and z.grad_fn is not None


def test_no_grad_decorator_records_nothing_and_survives_recursion(device):
    x = mg.tensor([1.0], requires_grad=True)

    @mg.no_grad()
    def depth(n):
        return x * 2 if n == 0 else depth(n - 1)

    @mg.no_grad
    def bare():
        return x * 2

    assert not depth(3).requires_grad and not bare().requires_grad
    assert mg.is_grad_enabled()                  # restored after the nested calls
    with mg.no_grad():
        with mg.enable_grad():
            assert (x * 2).requires_grad


def test_detach_shares_data_and_cuts_the_graph(device):
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    y = x * 3
    d = y.detach()
    assert not d.requires_grad and d.grad_fn is None and d.device == device
    assert d.data is y.data
    (y * d).sum().backward()                     # d is a constant: dy*d/dx = 3 * d
    np.testing.assert_allclose(x.grad.numpy(), [9.0, 18.0])


def test_second_backward_without_retain_graph_raises_a_clear_error(device):
    x = mg.tensor([2.0], requires_grad=True)
    y = (x * x).exp().sum()
    y.backward()
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        y.backward()


def test_second_backward_with_retain_graph_works(device):
    x = mg.tensor([2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), [8.0])


def test_grad_returns_gradients_without_touching_dot_grad(device):
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    w = mg.tensor([3.0, 4.0], requires_grad=True)
    unused = mg.tensor([5.0], requires_grad=True)
    gx, gw, gu = mg.grad((x * w).sum(), [x, w, unused])
    np.testing.assert_allclose(gx.numpy(), [3.0, 4.0])
    np.testing.assert_allclose(gw.numpy(), [1.0, 2.0])
    np.testing.assert_array_equal(gu.numpy(), [0.0])
    assert x.grad is None and w.grad is None and unused.grad is None


def test_grad_of_an_intermediate_tensor(device):
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    h = x * 2
    (gh,) = mg.grad((h * h).sum(), [h])
    np.testing.assert_allclose(gh.numpy(), 2 * h.numpy())


# --------------------------------------------------------------------------- higher order
def test_grad_of_grad_of_cube(device):
    x = mg.tensor([0.5, -1.0, 2.0], dtype="float64", requires_grad=True)
    (first,) = mg.grad((x ** 3).sum(), [x], create_graph=True)
    np.testing.assert_allclose(first.numpy(), 3 * x.numpy() ** 2)
    assert first.requires_grad
    (second,) = mg.grad(first.sum(), [x], create_graph=True)
    np.testing.assert_allclose(second.numpy(), 6 * x.numpy())
    (third,) = mg.grad(second.sum(), [x])
    np.testing.assert_allclose(third.numpy(), [6.0, 6.0, 6.0])


def test_backward_with_create_graph_lets_grad_be_differentiated(device):
    x = mg.tensor([1.5], dtype="float64", requires_grad=True)
    (x ** 3).sum().backward(create_graph=True)
    g = x.grad
    x.grad = None
    g.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [6 * 1.5])


def test_hessian_vector_product_matches_the_analytic_hessian(device):
    # f(x) = 1/2 x^T A x + sum(x^3) + logsumexp(x);  H = (A + A^T)/2 + diag(6x) + diag(p) - p p^T
    rng = np.random.default_rng(0)
    a_host, x_host, v_host = rng.standard_normal((4, 4)), rng.standard_normal(4), rng.standard_normal(4)
    A, v = mg.tensor(a_host), mg.tensor(v_host)
    x = mg.tensor(x_host, requires_grad=True)
    m = x.max().detach()
    f = 0.5 * (x @ (A @ x)) + (x ** 3).sum() + ((x - m).exp().sum().log() + m)
    (g,) = mg.grad(f, [x], create_graph=True)
    (hv,) = mg.grad((g * v).sum(), [x])
    p = np.exp(x_host - x_host.max())
    p /= p.sum()
    hessian = (a_host + a_host.T) / 2 + np.diag(6 * x_host) + np.diag(p) - np.outer(p, p)
    np.testing.assert_allclose(hv.numpy(), hessian @ v_host, rtol=1e-10)


# --------------------------------------------------------------------------- deep graphs and memory
def test_a_chain_of_10000_ops_backpropagates_without_recursion_error(device):
    x = mg.tensor([1.0], dtype="float64", requires_grad=True)
    y = x
    for _ in range(10_000):
        y = y * 1.0001
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(200)                   # any recursion over the chain would fail
    try:
        y.backward()
        mg.viz.to_dot(x * 2)
    finally:
        sys.setrecursionlimit(limit)
    np.testing.assert_allclose(x.grad.numpy(), [1.0001 ** 10_000], rtol=1e-9)


def test_a_deep_retained_graph_is_freed_without_crashing(device):
    x = mg.tensor([1.0], requires_grad=True)
    y = x
    for _ in range(10_000):
        y = y + 1.0
    y.backward(retain_graph=True)
    del y                                        # 10,000 nested objects released at once
    gc.collect()


def test_backward_releases_the_graph_unless_retained(device):
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    hidden = x.exp()
    alive = weakref.ref(hidden)
    loss = (hidden * 2.0).sum()
    creator = loss.grad_fn
    del hidden
    assert alive() is not None                   # the graph holds the intermediate ...
    loss.backward()
    gc.collect()
    assert alive() is None                       # ... until backward frees it
    assert creator.saved is None

    hidden = x.exp()
    alive = weakref.ref(hidden)
    loss = (hidden * 2.0).sum()
    del hidden
    loss.backward(retain_graph=True)
    gc.collect()
    assert alive() is not None and loss.grad_fn.saved is not None


def test_no_grad_keeps_no_intermediate_alive(device):
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    with mg.no_grad():
        hidden = x.exp()
        alive = weakref.ref(hidden)
        out = hidden * 2.0
    del hidden
    gc.collect()
    assert alive() is None and out.grad_fn is None


# --------------------------------------------------------------------------- gradcheck
class WrongSquare(Function):
    """y = x^2 with a deliberately wrong derivative (x instead of 2x)."""

    def forward(self, x):
        self.save_for_backward(x)
        return x * x

    def backward(self, g):
        x, = self.saved_tensors
        return g * x


def test_gradcheck_reports_index_analytic_and_numeric_for_a_wrong_derivative(device):
    x = mg.tensor([1.0, -2.0, 3.0], requires_grad=True)
    with pytest.raises(GradcheckError) as info:
        mg.gradcheck(lambda t: WrongSquare()(t), [x])
    message = str(info.value)
    match = re.search(r"index \((\d+),\): analytic (\S+) vs numerical (\S+)", message)
    assert match, message
    index, analytic, numeric = int(match[1]), float(match[2]), float(match[3])
    assert 0 <= index < 3
    np.testing.assert_allclose(numeric, 2 * analytic, rtol=1e-6)   # the true slope is twice ours


def test_gradcheck_passes_a_correct_function_and_needs_an_input_with_grad(device):
    x = mg.tensor([1.0, -2.0, 3.0], requires_grad=True)
    assert mg.gradcheck(lambda t: t * t, [x])
    assert mg.gradcheck(lambda t: (t * t).sum(), x)
    with pytest.raises(ValueError, match="no input requires grad"):
        mg.gradcheck(lambda t: t * t, [mg.tensor([1.0])])


# --------------------------------------------------------------------------- DOT export
def test_to_dot_shows_the_ops_and_the_edges(device):
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    x.name = "x"
    w = mg.tensor([3.0, 4.0], requires_grad=True)
    loss = (x * w).exp().sum()
    dot = mg.viz.to_dot(loss)
    assert dot.startswith("digraph") and dot.rstrip().endswith("}")
    for op in ("Mul", "Exp", "Sum"):
        assert f'label="{op}"' in dot
    assert 'label="x: (2,) float32"' in dot
    edges = re.findall(r"(\w+) -> (\w+);", dot)
    assert len(edges) == 7                         # x, w -> Mul -> t -> Exp -> t -> Sum -> loss
    mul = re.search(r'(f\d+) \[label="Mul"', dot)[1]
    assert (f"t{id(x)}", mul) in edges and (f"t{id(w)}", mul) in edges
    with pytest.raises(TypeError, match="to_dot"):
        mg.viz.to_dot(np.zeros(2))


# --------------------------------------------------------------------------- numpy interplay
def test_numpy_functions_refuse_tensors_and_operators_defer_to_them(device):
    x = mg.tensor([1.0, 2.0])
    assert isinstance(np.float64(2.0) * x, mg.Tensor)
    assert isinstance(np.ones(2) + x, mg.Tensor)
    with pytest.raises(TypeError):
        np.exp(x)
    if device == "cpu":
        np.testing.assert_array_equal(np.asarray(x), [1.0, 2.0])
    else:
        with pytest.raises(TypeError, match=r"t\.numpy\(\)"):
            np.asarray(x)


def test_repr_shows_values_and_the_grad_fn(device):
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    assert "requires_grad=True" in repr(x)
    assert "grad_fn=Mul" in repr(x * 2)
    assert ("device='cuda'" in repr(x)) == (device == "cuda")


def test_gradcheck_accepts_a_function_that_differentiates_inside():
    # d/dx of (d/dx sum(x^3)) = d/dx 3x^2 = 6x: checks grad-of-grad through gradcheck itself
    def first_derivative(x):
        (g,) = mg.grad((x ** 3).sum(), x, create_graph=True)
        return g
    x = mg.tensor(np.array([0.5, -1.5, 2.0]), requires_grad=True)
    assert mg.gradcheck(first_derivative, [x])


# ---- in-place changes and the version counter
def test_optimizer_step_between_forward_and_backward_is_detected(device):
    from minigrad import nn, optim
    w = nn.Parameter(mg.ones(3, 2))
    loss = (mg.ones(4, 3) @ w).sum()
    w.grad = mg.ones(3, 2)
    optim.SGD([w], lr=0.1).step()                      # changes w, which MatMul saved
    with pytest.raises(RuntimeError, match=r"input 1 of MatMul .*modified in place.*version 0 -> 1"):
        loss.backward()


def test_in_place_add_to_a_saved_constant_is_detected_and_changes_the_data(device):
    c = mg.tensor([1.0, 2.0])
    a = mg.tensor([3.0, 4.0], requires_grad=True)
    y = (a * c).sum()
    c += 1.0
    np.testing.assert_array_equal(c.numpy(), [2.0, 3.0])
    assert c._version == 1
    with pytest.raises(RuntimeError, match="Mul"):
        y.backward()


def test_changing_an_ops_saved_output_in_place_is_detected(device):
    x = mg.tensor([0.5, 1.0], requires_grad=True)
    y = x.exp()
    with mg.no_grad():
        y *= 2.0
    with pytest.raises(RuntimeError, match="output of Exp"):
        y.sum().backward()


def test_setitem_writes_in_place_and_is_refused_while_recording(device):
    t = mg.zeros(3)
    t[1] = 5.0
    t[[0, 2]] = mg.tensor([1.0, 2.0])
    np.testing.assert_array_equal(t.numpy(), [1.0, 5.0, 2.0])
    assert t._version == 2
    w = mg.tensor([1.0, 1.0, 1.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="does not record assignment"):
        w[0] = 2.0
    with mg.no_grad():
        w[0] = 2.0
    np.testing.assert_array_equal(w.numpy(), [2.0, 1.0, 1.0])


def test_in_place_ops_on_a_leaf_that_requires_grad_need_no_grad(device):
    w = mg.tensor([1.0, 2.0], requires_grad=True)
    for update in (lambda: w.__iadd__(1.0), lambda: w.__isub__(1.0),
                   lambda: w.__imul__(2.0), lambda: w.__itruediv__(2.0)):
        with pytest.raises(RuntimeError, match="leaf tensor that requires grad"):
            update()
    with mg.no_grad():
        w -= 0.5
        w *= 2.0
    np.testing.assert_allclose(w.numpy(), [1.0, 3.0])


def test_in_place_add_on_a_graph_tensor_is_out_of_place_and_keeps_gradients_right(device):
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    h = x * x
    saved = h
    h += x                                  # h = x^2 + x, a new tensor; the saved x^2 is untouched
    assert h is not saved
    h.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 5.0])   # 2x + 1


def test_in_place_update_with_a_shape_that_does_not_broadcast_names_both(device):
    t = mg.zeros(2, 3)
    with pytest.raises(ValueError, match=r"__iadd__.*\(2, 3\).*\(4,\)"):
        t += mg.ones(4)


class SquareWrongInOneElement(Function):
    """y = x^2 whose derivative 2 g x is off by 1e-3 in element `wrong` alone."""

    def __init__(self, wrong):
        self.wrong = wrong

    def forward(self, x):
        self.save_for_backward(x)
        return x * x

    def backward(self, g):
        x, = self.saved_tensors
        nudge = np.zeros(x.shape)
        nudge[self.wrong] = 1e-3
        return 2.0 * g * x + mg.tensor(nudge, device=x.device)


class IdentityWithPermutedGradient(Function):
    """y = x, whose backward returns the upstream gradient reversed: right only when
    every entry of g is the same, as under an all-ones cotangent."""

    def forward(self, x):
        return x.copy()

    def backward(self, g):
        return g[list(range(g.shape[0] - 1, -1, -1))]


class ScaleSecondInputWrongly(Function):
    """y = a * b whose gradient for b (the second input) alone is wrong: g * a * 1.01."""

    def forward(self, a, b):
        self.save_for_backward(a, b)
        return a * b

    def backward(self, g):
        a, b = self.saved_tensors
        return g * b, g * a * 1.01


@pytest.mark.parametrize("wrong", [(0, 0), (1, 2)])
def test_gradcheck_catches_a_backward_wrong_in_one_element_only(device, wrong):
    x = mg.tensor(np.arange(1.0, 7.0).reshape(2, 3), requires_grad=True)
    with pytest.raises(GradcheckError, match=re.escape(f"input 0 (shape (2, 3)) at index {wrong}:")):
        mg.gradcheck(lambda t: SquareWrongInOneElement(wrong)(t), [x])


def test_gradcheck_catches_a_permuted_gradient_that_an_all_ones_cotangent_would_miss(device):
    x = mg.tensor([0.5, -1.0, 2.0, 3.5], requires_grad=True)
    y = IdentityWithPermutedGradient()(x)
    y.backward(mg.ones(4))                          # the blind spot: all-ones sees the right answer
    np.testing.assert_array_equal(x.grad.numpy(), np.ones(4))
    with pytest.raises(GradcheckError, match=r"input 0 \(shape \(4,\)\)"):
        mg.gradcheck(lambda t: IdentityWithPermutedGradient()(t), [x])


def test_gradcheck_checks_every_input_not_only_the_first(device):
    a = mg.tensor([1.0, 2.0], requires_grad=True)
    b = mg.tensor([3.0, -1.0], requires_grad=True)
    with pytest.raises(GradcheckError, match=r"input 1 \(shape \(2,\)\)"):
        mg.gradcheck(lambda s, t: ScaleSecondInputWrongly()(s, t), [a, b])
    assert mg.gradcheck(lambda s, t: ScaleSecondInputWrongly()(s, t), [a, b.detach()])   # b not checked


class NaNValuedWithFiniteGradient(Function):
    """y = NaN everywhere, with backward claiming dy/dx = 1: nothing can confirm that."""

    def forward(self, x):
        return x * float("nan")

    def backward(self, g):
        return g


def test_gradcheck_fails_where_the_numerical_slope_is_nan_instead_of_passing_silently(device):
    # NaN > tolerance is False, so a NaN numerical slope used to pass whenever backward was finite
    x = mg.tensor([4.0, -1.0], requires_grad=True)
    with pytest.raises(GradcheckError, match=r"analytic [-0-9.e]+ vs numerical nan"):
        mg.gradcheck(lambda t: NaNValuedWithFiniteGradient()(t), [x])


def test_gradcheck_accepts_differences_within_its_tolerance_and_not_beyond(device):
    x = mg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    assert mg.gradcheck(lambda t: SquareWrongInOneElement((1,))(t), [x], atol=2e-3)
    with pytest.raises(GradcheckError):
        mg.gradcheck(lambda t: SquareWrongInOneElement((1,))(t), [x], atol=5e-4, rtol=0.0)


def test_an_integer_or_boolean_result_never_joins_the_graph(device):
    # as in PyTorch, only floating-point tensors carry gradients: a cast of a tensor
    # that requires grad to integers is a constant, and backward through it is an error
    x = mg.tensor([1.5, -2.5, 3.0], requires_grad=True)
    for dtype in ("int64", "int32", "uint8", "bool"):
        y = x.astype(dtype)
        assert not y.requires_grad and y.grad_fn is None, dtype
    assert (x * 2.0).astype("float32").requires_grad                  # a float cast stays in the graph
    with pytest.raises(RuntimeError, match="does not require grad"):
        x.astype("int64").sum().backward()
