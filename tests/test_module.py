"""nn.Module, Sequential and ModuleList: registration, names, modes, devices, state dicts, repr."""
import re
from collections import OrderedDict

import numpy as np
import pytest

import minigrad as mg
import minigrad.nn as nn


class Block(nn.Module):
    """Two Dense layers, a registered buffer, a non-persistent buffer and a plain tensor."""

    def __init__(self):
        super().__init__()
        self.first = nn.Dense(3, 4)
        self.second = nn.Dense(4, 2, bias=False)
        self.register_buffer("scale", mg.ones(2) * 2.0)
        self.register_buffer("cache", mg.zeros(5), persistent=False)
        self.not_state = mg.ones(7)          # a plain Tensor attribute: not a buffer

    def forward(self, x):
        return self.second(self.first(x).relu()) * self.scale


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.block = Block()
        self.blocks = nn.ModuleList([nn.Dense(2, 2), nn.Dropout(0.5)])
        self.gain = nn.Parameter(mg.ones(1))

    def forward(self, x):
        x = self.block(x)
        for module in self.blocks:
            x = module(x)
        return x * self.gain


NET_NAMES = ["gain", "block.first.weight", "block.first.bias", "block.second.weight",
             "blocks.0.weight", "blocks.0.bias"]


def test_assignment_registers_parameters_and_submodules_with_dotted_names(device):
    net = Net()
    assert [name for name, _ in net.named_parameters()] == NET_NAMES
    assert net.parameters()[1] is net.block.first.weight
    assert [name for name, _ in net.named_children()] == ["block", "blocks"]
    assert list(net.children()) == [net.block, net.blocks]
    assert [name for name, _ in net.named_modules()] == [
        "", "block", "block.first", "block.second", "blocks", "blocks.0", "blocks.1"]
    assert [name for name, _ in net.named_buffers()] == ["block.scale", "block.cache"]
    assert all(p.device == device for p in net.parameters() + net.buffers())
    assert net.num_parameters() == 1 + (3 * 4 + 4) + 4 * 2 + (2 * 2 + 2)


def test_plain_tensor_attribute_is_not_state_and_shared_parameters_count_once():
    block = Block()
    assert "not_state" not in block.state_dict() and "cache" not in block.state_dict()
    # PyTorch's order: a module's own parameters and buffers, then its children's
    assert list(block.state_dict()) == ["scale", "first.weight", "first.bias", "second.weight"]
    shared = nn.Sequential(block.first, nn.ReLU(), nn.Dense(4, 3))
    shared.add_module("again", shared[0])        # the same layer reachable twice
    assert [name for name, _ in shared.named_parameters()] == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert shared.num_parameters() == 3 * 4 + 4 + 4 * 3 + 3


def test_reassignment_keeps_order_and_type_errors_name_the_attribute():
    layer = nn.Dense(2, 3)
    layer.weight = nn.Parameter(np.zeros((2, 3), dtype=np.float32))
    assert [name for name, _ in layer.named_parameters()] == ["weight", "bias"]
    with pytest.raises(TypeError, match="Dense.*parameter 'weight'"):
        layer.weight = mg.zeros(2, 3)
    block = Block()
    block.scale = mg.zeros(2)                      # a registered buffer can be replaced by a tensor
    assert block.state_dict()["scale"].numpy().tolist() == [0.0, 0.0]
    with pytest.raises(TypeError, match="buffer 'scale'"):
        block.scale = 3.0
    layer.bias = None
    assert [name for name, _ in layer.named_parameters()] == ["weight"]
    del layer.weight
    assert layer.parameters() == [] and not hasattr(layer, "weight")
    with pytest.raises(TypeError, match="register_parameter: 'w' must be an nn.Parameter"):
        layer.register_parameter("w", mg.zeros(1))
    with pytest.raises(TypeError, match="add_module: 'child' must be an nn.Module"):
        layer.add_module("child", mg.zeros(1))
    block.register_buffer("cache", mg.ones(5))             # re-registered as persistent
    assert "cache" in block.state_dict()


def test_super_init_must_come_first():
    class Forgetful(nn.Module):
        def __init__(self):
            self.layer = nn.Dense(1, 1)
    with pytest.raises(AttributeError, match="super\\(\\).__init__"):
        Forgetful()


def test_train_and_eval_propagate_to_every_descendant():
    net = Net()
    assert all(m.training for m in net.modules())
    assert net.eval() is net
    assert not any(m.training for m in net.modules())
    net.blocks.train()
    assert net.blocks[1].training and not net.block.training and not net.training
    net.train()
    assert all(m.training for m in net.modules())


def test_dropout_inside_a_model_follows_the_models_mode(device):
    net = nn.Sequential(nn.Dropout(0.5))
    x = mg.ones(1000)
    assert (net(x).numpy() == 0).any()
    net.eval()
    np.testing.assert_array_equal(net(x).numpy(), np.ones(1000))


def test_zero_grad_clears_every_parameter_gradient(device):
    net = Net()
    net(mg.randn(5, 3)).sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad(set_to_none=False)
    assert all(p.grad is not None and not p.grad.numpy().any() for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())


def test_state_dict_shares_memory_and_load_copies_in_place(device):
    mg.manual_seed(0)
    source = Net()
    mg.manual_seed(1)
    target = Net()
    before = target.state_dict()
    weight = target.block.first.weight
    result = target.load_state_dict(source.state_dict())
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert target.block.first.weight is weight             # same Parameter object, new values
    for name, value in source.state_dict().items():
        np.testing.assert_array_equal(target.state_dict()[name].numpy(), value.numpy())
        np.testing.assert_array_equal(before[name].numpy(), value.numpy())   # old views see the load
    # loaded values are copies: changing the source afterwards leaves the target alone
    source.block.first.weight.data[...] = 0
    assert target.block.first.weight.numpy().any()
    x = mg.randn(4, 3)
    source.eval(), target.eval()
    source.load_state_dict(target.state_dict())
    np.testing.assert_array_equal(source(x).numpy(), target(x).numpy())


def test_load_state_dict_accepts_host_arrays_and_casts_to_the_parameters_dtype(device):
    layer = nn.Dense(2, 2)
    layer.load_state_dict({"weight": np.eye(2), "bias": np.array([1.0, 2.0])})
    assert layer.weight.dtype == np.float32 and layer.weight.device == device
    np.testing.assert_array_equal(layer(mg.tensor([[3.0, 4.0]])).numpy(), [[4.0, 6.0]])


def test_strict_loading_names_missing_unexpected_and_mismatched_keys():
    net = Net()
    state = net.state_dict()
    del state["block.first.bias"]
    state["block.extra"] = mg.zeros(3)
    state["blocks.0.weight"] = mg.zeros(3, 2)
    before = net.block.first.weight.numpy().copy()
    with pytest.raises(RuntimeError) as info:
        net.load_state_dict(state)
    message = str(info.value)
    assert "Net" in message
    assert "missing keys: 'block.first.bias'" in message
    assert "unexpected keys: 'block.extra'" in message
    assert "blocks.0.weight" in message and "(3, 2)" in message and "(2, 2)" in message
    # nothing was loaded when the call failed
    np.testing.assert_array_equal(net.block.first.weight.numpy(), before)


def test_a_bad_value_late_in_the_checkpoint_is_found_before_anything_is_copied(device):
    # the string array has the right shape, so only the copy itself used to fail, after
    # every parameter before it had been overwritten
    layer = nn.Dense(2, 2)
    before = {name: value.numpy().copy() for name, value in layer.state_dict().items()}
    with pytest.raises(RuntimeError, match=r"bad value for weight: expected real numbers \(float, int or bool\), "
                                           r"got an array of dtype <U1"):
        layer.load_state_dict({"bias": np.array([5.0, 6.0]), "weight": np.array([["a", "b"], ["c", "d"]])})
    for name, value in layer.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), before[name])


@pytest.mark.parametrize("value, shown", [
    (None, "got None (a NoneType)"),
    ("0.5", "got '0.5' (a str)"),
    (np.array([1 + 2j, 3j]), "got an array of dtype complex128"),
    ([1j, 2.0], "got [1j, 2.0] (a list)"),
    (np.array([None, None]), "got an array of dtype object"),
])
def test_none_strings_and_complex_values_are_errors_naming_the_key(value, shown):
    layer = nn.Dense(2, 2)
    bias = layer.bias.numpy().copy()
    with pytest.raises(RuntimeError, match="bad value for bias: expected real numbers .*" + re.escape(shown)):
        layer.load_state_dict({"weight": np.eye(2), "bias": value})
    np.testing.assert_array_equal(layer.bias.numpy(), bias)
    with pytest.raises(RuntimeError, match="bad value for bias"):
        layer.load_state_dict({"bias": value}, strict=False)


def test_a_ragged_list_is_an_error_naming_the_key():
    with pytest.raises(RuntimeError, match="bad value for weight: cannot make an array of the list given"):
        nn.Dense(2, 2).load_state_dict({"weight": [[1.0, 2.0], [3.0]], "bias": [0.0, 0.0]})


def test_integer_and_bool_values_are_cast_to_the_parameters_dtype():
    layer = nn.Dense(2, 2)
    layer.load_state_dict({"weight": np.array([[1, 0], [0, 1]], dtype=np.int64), "bias": np.array([True, False])})
    assert layer.weight.dtype == np.float32 and layer.bias.numpy().tolist() == [1.0, 0.0]


@pytest.mark.parametrize("bad", [[("weight", np.eye(2))], None, "model.safetensors"])
def test_load_state_dict_of_something_other_than_a_dict_names_what_came(bad):
    with pytest.raises(TypeError, match=f"Dense.load_state_dict: expected a dict of name -> Tensor "
                                        f".*got {type(bad).__name__}"):
        nn.Dense(2, 2).load_state_dict(bad)


def test_non_strict_loading_reports_keys_loads_the_rest_but_still_rejects_shapes():
    net = Net()
    state = {"gain": mg.tensor([3.0]), "surplus": mg.zeros(1)}
    result = net.load_state_dict(state, strict=False)
    assert result.unexpected_keys == ["surplus"]
    assert result.missing_keys == [name for name in net.state_dict() if name != "gain"]
    assert net.gain.numpy().tolist() == [3.0]
    with pytest.raises(RuntimeError, match="size mismatch for gain"):
        net.load_state_dict({"gain": mg.zeros(2)}, strict=False)


def test_to_moves_parameters_buffers_and_gradients_and_casts_floats(device):
    mg.set_default_device("cpu")          # made on the host, then moved (the fixture restores the default)
    net = Net()
    net(mg.randn(2, 3)).sum().backward()
    parameters = net.parameters()
    assert net.to(device) is net
    assert net.parameters() == parameters                   # the same objects, moved in place
    for tensor in net.parameters() + net.buffers():
        assert tensor.device == device
    assert all(p.grad.device == device for p in net.parameters())
    net.to(dtype="float64")
    assert {p.dtype for p in net.parameters()} == {np.dtype("float64")}
    assert net.parameters()[0].grad.dtype == np.float64
    net.to("float32")                                      # PyTorch's module.to(dtype) spelling
    assert {p.dtype for p in net.parameters()} == {np.dtype("float32")}
    out = net.to(device)(mg.randn(2, 3, device=device))
    assert out.device == device and out.shape == (2, 2)
    assert net.to("cpu").block.scale.device == "cpu"


def test_repr_prints_the_tree_like_pytorch():
    model = nn.Sequential(nn.Dense(2, 3), nn.ReLU(), nn.MLP([3, 4, 1], activation="tanh"),
                          nn.LayerNorm(1), nn.Dropout(0.25))
    assert repr(model) == (
        "Sequential(\n"
        "  (0): Dense(n_in=2, n_out=3, bias=True)\n"
        "  (1): ReLU()\n"
        "  (2): MLP(\n"
        "    activation='tanh'\n"
        "    (layers): ModuleList(\n"
        "      (0): Dense(n_in=3, n_out=4, bias=True)\n"
        "      (1): Dense(n_in=4, n_out=1, bias=True)\n"
        "    )\n"
        "  )\n"
        "  (3): LayerNorm((1,), eps=1e-05)\n"
        "  (4): Dropout(p=0.25)\n"
        ")")


def test_sequential_applies_in_order_and_indexes_like_a_list(device):
    double = nn.Dense(1, 1, bias=False)
    double.weight.data[...] = 2.0
    plus_one = nn.Dense(1, 1)
    plus_one.weight.data[...] = 1.0
    plus_one.bias.data[...] = 1.0
    model = nn.Sequential(double, plus_one)
    assert model(mg.tensor([[3.0]])).item() == 7.0               # (3 * 2) + 1, not (3 + 1) * 2
    assert model[0] is double and model[-1] is plus_one and len(model) == 2
    assert model[1:][0] is plus_one and isinstance(model[1:], nn.Sequential)
    named = nn.Sequential(OrderedDict([("scale", double), ("shift", plus_one)]))
    assert [name for name, _ in named.named_parameters()] == ["scale.weight", "shift.weight", "shift.bias"]
    model.append(nn.ReLU())
    assert model(mg.tensor([[-3.0]])).item() == 0.0


def test_module_list_registers_entries_and_keeps_order_on_replacement():
    layers = nn.ModuleList([nn.Dense(1, 2), nn.Dense(2, 3)])
    layers.append(nn.Dense(3, 4))
    layers.extend([nn.ReLU()])
    assert len(layers) == 4 and layers[-2].n_out == 4
    layers[0] = nn.Dense(1, 5)
    assert [name for name, _ in layers.named_parameters()][:2] == ["0.weight", "0.bias"]
    assert layers[0].n_out == 5
    assert isinstance(layers[1:3], nn.ModuleList) and len(layers[1:3]) == 2
    with pytest.raises(IndexError, match="ModuleList"):
        layers[4]
    with pytest.raises(NotImplementedError, match="ModuleList"):
        layers(mg.zeros(1))


def test_apply_visits_children_before_parents():
    net = Net()
    order = []
    net.apply(lambda module: order.append(type(module).__name__))
    assert order == ["Dense", "Dense", "Block", "Dense", "Dropout", "ModuleList", "Net"]


def test_requires_grad_toggles_every_parameter():
    net = Net().requires_grad_(False)
    assert not any(p.requires_grad for p in net.parameters())
    net.requires_grad_()
    assert all(p.requires_grad for p in net.parameters())


# --------------------------------------------------------------------------- forward hooks
class Affine(nn.Module):
    """y = a * x + b, with b a keyword argument: enough to see what hooks receive."""

    def forward(self, x, b=0.0):
        return 2.0 * x + b


def test_forward_hook_sees_module_args_and_output_and_may_replace_the_output():
    layer, seen = Affine(), []

    def watch(module, args, output):
        seen.append((module, args, output.numpy().tolist()))

    handle = layer.register_forward_hook(watch)
    x = mg.tensor([1.0, 2.0])
    assert layer(x, b=1.0).numpy().tolist() == [3.0, 5.0]          # None: output kept
    assert seen[0][0] is layer and seen[0][1] == (x,) and seen[0][2] == [3.0, 5.0]
    replace = layer.register_forward_hook(lambda module, args, output: output * 10)
    assert layer(x).numpy().tolist() == [20.0, 40.0]
    handle.remove()
    replace.remove()
    assert layer(x).numpy().tolist() == [2.0, 4.0] and len(seen) == 2


def test_forward_pre_hook_replaces_args_with_a_tuple_or_a_single_value():
    layer = Affine()
    x = mg.tensor([1.0])
    handle = layer.register_forward_pre_hook(lambda module, args: (args[0] + 1,))
    assert layer(x).item() == 4.0
    handle.remove()
    handle = layer.register_forward_pre_hook(lambda module, args: args[0] * 3)     # -> (x * 3,)
    assert layer(x).item() == 6.0
    handle.remove()
    handle = layer.register_forward_pre_hook(lambda module, args: None)           # keeps args
    assert layer(x).item() == 2.0


def test_hooks_run_pre_hooks_forward_then_forward_hooks_each_in_registration_order():
    order = []

    class Recorder(nn.Module):
        def forward(self, x):
            order.append("forward")
            return x

    layer = Recorder()
    for name in ("pre 1", "pre 2"):
        layer.register_forward_pre_hook(lambda module, args, name=name: order.append(name))
    for name in ("post 1", "post 2"):
        layer.register_forward_hook(lambda module, args, output, name=name: order.append(name))
    # each forward hook sees the output the one before it returned
    layer.register_forward_hook(lambda module, args, output: output + 1)
    layer.register_forward_hook(lambda module, args, output: output * 10)
    assert layer(mg.tensor(1.0)).item() == 20.0
    assert order == ["pre 1", "pre 2", "forward", "post 1", "post 2"]


def test_hooks_with_kwargs_see_and_may_replace_keyword_arguments():
    layer, seen = Affine(), []

    def pre(module, args, kwargs):
        return (args[0] * 0 + 1,), {**kwargs, "b": kwargs.get("b", 0.0) + 100.0}

    layer.register_forward_pre_hook(pre, with_kwargs=True)
    layer.register_forward_hook(lambda module, args, kwargs, output: seen.append((args, kwargs, output.item())),
                                with_kwargs=True)
    assert layer(mg.tensor(5.0), b=1.0).item() == 103.0
    args, kwargs, output = seen[0]
    assert args[0].item() == 1.0 and kwargs == {"b": 101.0} and output == 103.0
    bad = Affine()
    bad.register_forward_pre_hook(lambda module, args, kwargs: args, with_kwargs=True)
    with pytest.raises(RuntimeError, match=r"must return None or \(args, kwargs\)"):
        bad(mg.tensor(1.0), b=2.0)


def test_removing_a_hook_twice_is_harmless_and_removes_only_that_hook():
    layer, calls = Affine(), []
    first = layer.register_forward_hook(lambda module, args, output: calls.append("first"))
    layer.register_forward_hook(lambda module, args, output: calls.append("second"))
    first.remove()
    first.remove()
    layer(mg.tensor(1.0))
    assert calls == ["second"]
    with pytest.raises(TypeError, match="expected a callable"):
        layer.register_forward_hook("not a function")


def test_hooks_belong_to_one_instance_and_fire_inside_a_parent_forward():
    net, other, outputs = Net(), Block(), []
    handle = net.block.first.register_forward_hook(lambda module, args, output: outputs.append(output.shape))
    net(mg.ones(5, 3))
    other(mg.ones(5, 3))                          # another Block's Dense: no hook of its own
    assert outputs == [(5, 4)]
    assert not other.first._forward_hooks and not nn.Dense(2, 2)._forward_hooks
    handle.remove()
    assert not net.block.first._forward_hooks     # empty again: __call__ takes its fast path
