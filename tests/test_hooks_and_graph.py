"""Tensor hooks, post-accumulate hooks, the graph's memory and the version counter
that detach() shares: the engine's behaviour beyond the values of gradients."""
import gc
import weakref

import numpy as np
import pytest

import minigrad as mg


def test_a_hook_on_a_leaf_sees_its_complete_gradient_and_may_replace_it(device):
    x = mg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    seen = []
    x.register_hook(lambda g: seen.append(g.numpy().copy()))
    handle = x.register_hook(lambda g: g * 10.0)
    (x * x + x).sum().backward()                 # two uses of x: the hook sees their sum once
    assert len(seen) == 1
    np.testing.assert_allclose(seen[0], [3.0, 5.0, 7.0])
    np.testing.assert_allclose(x.grad.numpy(), [30.0, 50.0, 70.0])
    handle.remove()
    handle.remove()                              # a second remove is harmless
    x.grad = None
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 4.0, 6.0])


def test_a_hook_on_an_intermediate_changes_what_flows_to_the_leaves(device):
    x = mg.tensor([1.0, -2.0], requires_grad=True)
    h = x * 3.0
    h.register_hook(lambda g: g * 0.0 + 1.0)     # replace dL/dh by ones
    (h * h).sum().backward()                     # without the hook dL/dh = 2h
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 3.0])


def test_hooks_run_in_registration_order_each_seeing_the_previous_result(device):
    x = mg.tensor([1.0], requires_grad=True)
    order = []
    x.register_hook(lambda g: order.append("first") or g + 1.0)
    x.register_hook(lambda g: order.append(float(g.item())))
    x.sum().backward()
    assert order == ["first", 2.0]


def test_mg_grad_runs_hooks_but_leaves_grad_and_post_accumulate_hooks_alone(device):
    x = mg.tensor([2.0], requires_grad=True)
    x.register_hook(lambda g: g * 2.0)
    called = []
    x.register_post_accumulate_grad_hook(lambda t: called.append(t))
    (g,) = mg.grad((x * x).sum(), [x])
    assert g.item() == 8.0 and x.grad is None and called == []


def test_post_accumulate_hook_fires_once_per_leaf_after_grad_is_complete(device):
    """Data-parallel training starts communicating from this hook, so the gradient
    must be final when it fires, even when the leaf is used by several ops."""
    w = mg.tensor([1.0, 2.0], requires_grad=True)
    b = mg.tensor([0.5], requires_grad=True)
    seen = {}
    for name, leaf in (("w", w), ("b", b)):
        leaf.register_post_accumulate_grad_hook(lambda t, name=name: seen.setdefault(name, []).append(t.grad.numpy().copy()))
    y = (w * w).sum() + (w * b).sum() + b.sum()
    y.backward()
    assert {k: len(v) for k, v in seen.items()} == {"w": 1, "b": 1}
    np.testing.assert_allclose(seen["w"][0], 2 * w.numpy() + 0.5)
    np.testing.assert_allclose(seen["b"][0], [w.numpy().sum() + 1.0])
    with pytest.raises(RuntimeError, match="leaf"):
        (w * 2.0).register_post_accumulate_grad_hook(lambda t: None)
    with pytest.raises(RuntimeError, match="does not require grad"):
        mg.tensor([1.0]).register_hook(lambda g: g)


def test_intermediates_that_no_op_saved_are_freed_during_forward(device):
    """Edges point at grad_fns, not at tensors: y = x @ w + b keeps the product only if
    an op saved it. Add saves nothing, so the product is gone before backward."""
    x = mg.randn(4, 3)
    w = mg.randn(3, 2, requires_grad=True)
    product = x @ w
    alive = weakref.ref(product)
    y = (product + 1.0).sum()
    del product
    gc.collect()
    assert alive() is None
    y.backward()
    np.testing.assert_allclose(w.grad.numpy(), x.numpy().sum(axis=0)[:, None] * np.ones((1, 2)), rtol=1e-6)


def test_a_saved_output_dropped_by_the_user_is_rebuilt_for_grad_of_grad(device):
    x = mg.tensor([0.3, -0.7], requires_grad=True, dtype="float64")
    y = x.exp()                                  # Exp saves its output array, not the Tensor
    z = (y * 1.0).sum()
    del y
    gc.collect()
    (g,) = mg.grad(z, [x], create_graph=True)    # dz/dx = exp(x), itself differentiable
    (gg,) = mg.grad(g.sum(), [x])
    np.testing.assert_allclose(gg.numpy(), np.exp(x.numpy()), rtol=1e-12)


def test_detach_shares_the_version_counter_so_an_in_place_change_is_caught(device):
    """issue 11, item 6: d = y.detach(); d += 100 must not silently corrupt y's gradient."""
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    y = x.exp()                                  # Exp saves y for its backward
    d = y.detach()
    d += 100.0
    assert y._version == d._version == 1
    with pytest.raises(RuntimeError, match="output of Exp.*modified in place"):
        y.sum().backward()


def test_changing_an_output_that_its_function_did_not_save_is_allowed(device):
    """Mul saves its inputs, not y: y += 1 leaves its gradient right (PyTorch allows it too)."""
    a = mg.tensor([1.0, 2.0], requires_grad=True)
    y = a * 3.0
    s = y.sum()
    with mg.no_grad():
        y += 1.0
    s.backward()
    np.testing.assert_allclose(a.grad.numpy(), [3.0, 3.0])


def test_mg_grad_of_an_intermediate_and_of_a_root(device):
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    h = x * x
    y = (h * 3.0).sum()
    gh, gy, gx = mg.grad(y, [h, y, x])
    np.testing.assert_allclose(gh.numpy(), [3.0, 3.0])
    assert gy.item() == 1.0
    np.testing.assert_allclose(gx.numpy(), [6.0, 12.0])


def test_one_output_given_twice_to_grad_counts_twice(device):
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    (g,) = mg.grad([y, y], [x])
    np.testing.assert_allclose(g.numpy(), [4.0, 8.0])


def test_engine_skips_a_constant_input_and_sums_broadcast_gradients_to_shape(device):
    """The engine, not the op, undoes broadcasting and drops gradients nobody needs."""
    a = mg.randn(3, 1, requires_grad=True)
    b = mg.randn(4)
    c = mg.randn(2, 3, 4, requires_grad=True)
    (a * b + c).sum().backward()
    assert a.grad.shape == (3, 1) and c.grad.shape == (2, 3, 4) and b.grad is None
    np.testing.assert_allclose(a.grad.numpy(), 2 * b.numpy().sum() * np.ones((3, 1)), rtol=1e-5)


def test_count_uses_counts_every_edge_into_a_node_and_every_root_it_is():
    """Backward's first step, which DataParallel (find_unused_parameters) and
    GradSampleModule (a parameter used outside its layer) read as well."""
    from minigrad.autograd import count_uses, graph_roots
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    unused = mg.tensor([3.0], requires_grad=True)
    y = x * x                                    # two edges into x
    z = (y + x).sum()                            # one edge into y's node, a third into x
    output = {"loss": z, "parts": [(y,), {"again": z}], "leaf": unused, "constant": mg.tensor([1.0]),
              "label": "not a tensor"}
    uses = count_uses(graph_roots(output))
    assert uses[id(z.grad_fn)] == 2              # a root twice
    assert uses[id(y.grad_fn)] == 2              # one edge, one root
    assert uses[id(x)] == 3
    assert uses[id(unused)] == 1                 # a leaf returned as it is
    assert count_uses(graph_roots([mg.tensor([1.0]), None])) == {}


class HalfOfFirst(mg.autograd.Function):
    """y = x / 2; its backward gives no gradient for w (None, or nothing at all)."""
    def __init__(self, omit_by="None"):
        self.omit_by = omit_by

    def forward(self, x, w):
        return x / 2

    def backward(self, g):
        return g * 0.5 if self.omit_by == "too few" else (g * 0.5, None)


@pytest.mark.parametrize("omit_by", ["None", "too few"])
def test_a_backward_that_gives_no_gradient_for_an_input_counts_as_zero(device, omit_by):
    """As in PyTorch, a missing gradient is a zero one: the other uses of w, and
    everything upstream of w, still get theirs (it used to skip w's whole subgraph)."""
    x = mg.tensor([1.0, 3.0], requires_grad=True)
    v = mg.tensor([1.0, 1.0], requires_grad=True)
    w = v * 1.0                                  # not a leaf: its upstream must still run
    y = HalfOfFirst(omit_by)(x, w) + w * 2.0
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [0.5, 0.5])
    np.testing.assert_allclose(v.grad.numpy(), [2.0, 2.0])
    (gw,) = mg.grad(HalfOfFirst(omit_by)(x, v).sum(), [v])    # the only path gives nothing
    np.testing.assert_array_equal(gw.numpy(), [0.0, 0.0])
