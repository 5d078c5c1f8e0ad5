"""Checkpoints: model and optimizer state through mg.save / mg.load (safetensors, never
pickle), and training that resumes exactly where it stopped."""
import json

import numpy as np
import pytest

import minigrad as mg
import minigrad.functional as F
import minigrad.nn as nn
from minigrad import optim
from minigrad.datasets import make_spirals


def make_model(seed):
    mg.manual_seed(seed)
    return nn.Sequential(nn.Dense(2, 16), nn.Tanh(), nn.LayerNorm(16), nn.Dense(16, 3))


def batches(n_steps, batch_size=16):
    X, y = make_spirals(n_steps * batch_size, classes=3, seed=0)
    return [(X[i:i + batch_size], y[i:i + batch_size]) for i in range(0, len(y), batch_size)]


def train(model, optimizer, scheduler, steps):
    for xb, yb in steps:
        loss = F.cross_entropy(model(mg.tensor(xb)), yb)
        optimizer.zero_grad()
        loss.backward()
        optim.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        if scheduler is not None:
            scheduler.step()


def read_safetensors_header(path):
    raw = open(path, "rb").read()
    length = int.from_bytes(raw[:8], "little")
    return json.loads(raw[8:8 + length])


def test_model_state_round_trips_through_a_safetensors_file(tmp_path, device):
    model = make_model(0)
    path = tmp_path / "model.safetensors"
    mg.save(model.state_dict(), path)
    header = read_safetensors_header(path)
    assert set(header) - {"__metadata__"} == set(model.state_dict())
    assert header["0.weight"]["shape"] == [2, 16] and header["0.weight"]["dtype"] == "F32"
    other = make_model(1)
    x = mg.randn(5, 2)
    assert not np.array_equal(other(x).numpy(), model(x).numpy())
    other.load_state_dict(mg.load(path))
    np.testing.assert_array_equal(other(x).numpy(), model(x).numpy())
    assert all(p.device == device for p in other.parameters())


def test_loading_a_checkpoint_into_the_wrong_architecture_names_the_keys(tmp_path):
    path = tmp_path / "model.safetensors"
    mg.save(make_model(0).state_dict(), path)
    wrong = nn.Sequential(nn.Dense(2, 16), nn.Tanh(), nn.Dense(16, 3))
    with pytest.raises(RuntimeError) as info:
        wrong.load_state_dict(mg.load(path))
    assert "unexpected keys: '3.bias', '3.weight'" in str(info.value)
    assert "size mismatch for 2.weight: checkpoint has shape (16,), the model has (16, 3)" in str(info.value)


def test_optimizer_state_dict_is_flat_arrays_with_exact_hyperparameters(tmp_path):
    model = make_model(0)
    optimizer = optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.98))
    train(model, optimizer, None, batches(2))
    state = optimizer.state_dict()
    assert state["state.0.step"].dtype == np.int64 and state["state.0.step"].item() == 2
    assert state["state.0.exp_avg"].shape == (2, 16) and state["state.0.exp_avg"].dtype == np.float32
    assert state["param_groups.0.params"].numpy().tolist() == list(range(6))
    path = tmp_path / "optimizer.safetensors"
    mg.save(state, path)
    header = read_safetensors_header(path)
    assert header["param_groups.0.lr"]["dtype"] == "F64"                 # lr is not rounded to float32
    fresh = optim.Adam(make_model(1).parameters(), lr=0.5)
    fresh.load_state_dict(mg.load(path))
    assert fresh.param_groups[0]["lr"] == 1e-3 and fresh.param_groups[0]["betas"] == (0.9, 0.98)


OPTIMIZERS = {
    "GD": lambda params: (optim.GD(params, lr=0.1), None),
    "SGD-nesterov": lambda params: (optim.SGD(params, lr=0.05, momentum=0.9, nesterov=True,
                                              weight_decay=1e-3), None),
    "Adam": lambda params: (optim.Adam(params, lr=0.01), None),
    "AdamW-cosine": lambda params: _with_schedule(optim.AdamW(params, lr=0.02, weight_decay=0.1)),
}


def _with_schedule(optimizer):
    return optimizer, optim.WarmupCosine(optimizer, warmup=3, total_steps=10, min_lr=1e-3)


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_training_resumes_exactly_after_saving_and_loading(name, tmp_path, device):
    steps = batches(10)
    # ten steps in one go
    model = make_model(0)
    optimizer, scheduler = OPTIMIZERS[name](model.parameters())
    train(model, optimizer, scheduler, steps)
    straight = {key: value.numpy().copy() for key, value in model.state_dict().items()}

    # five steps, a checkpoint, a new process (new objects, other weights), five more
    model = make_model(0)
    optimizer, scheduler = OPTIMIZERS[name](model.parameters())
    train(model, optimizer, scheduler, steps[:5])
    mg.save(model.state_dict(), tmp_path / "model.safetensors")
    training_state = {"optimizer." + key: value for key, value in optimizer.state_dict().items()}
    if scheduler is not None:
        training_state.update({"scheduler." + key: value for key, value in scheduler.state_dict().items()})
    mg.save(training_state, tmp_path / "training.safetensors")

    model = make_model(1)
    optimizer, scheduler = OPTIMIZERS[name](model.parameters())
    model.load_state_dict(mg.load(tmp_path / "model.safetensors"))
    loaded = mg.load(tmp_path / "training.safetensors")
    optimizer.load_state_dict({key[len("optimizer."):]: value for key, value in loaded.items()
                               if key.startswith("optimizer.")})
    if scheduler is not None:
        scheduler.load_state_dict({key[len("scheduler."):]: value for key, value in loaded.items()
                                   if key.startswith("scheduler.")})
    train(model, optimizer, scheduler, steps[5:])
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), straight[key], err_msg=key)


def test_resuming_without_the_optimizer_state_does_not_match(tmp_path):
    """The control for the test above: Adam's moments matter, so a fresh optimizer drifts."""
    steps = batches(10)
    model = make_model(0)
    optimizer = optim.Adam(model.parameters(), lr=0.01)
    train(model, optimizer, None, steps)
    straight = model.state_dict()["0.weight"].numpy().copy()
    model = make_model(0)
    train(model, optim.Adam(model.parameters(), lr=0.01), None, steps[:5])
    train(model, optim.Adam(model.parameters(), lr=0.01), None, steps[5:])
    assert np.abs(model.state_dict()["0.weight"].numpy() - straight).max() > 1e-4


def test_optimizer_state_saved_on_the_host_loads_onto_the_device(tmp_path, device):
    mg.set_default_device("cpu")
    model = make_model(0)
    optimizer = optim.Adam(model.parameters(), lr=0.01)
    train(model, optimizer, None, batches(2))
    mg.save(optimizer.state_dict(), tmp_path / "optimizer.safetensors")
    mg.set_default_device(device)
    moved = make_model(0)
    restored = optim.Adam(moved.parameters(), lr=0.01)
    restored.load_state_dict(mg.load(tmp_path / "optimizer.safetensors"))
    state = restored.state[moved.parameters()[0]]
    assert state["step"] == 2
    assert mg.tensor(state["exp_avg"]).device == device
    np.testing.assert_array_equal(mg.tensor(state["exp_avg_sq"]).numpy(),
                                  optimizer.state[model.parameters()[0]]["exp_avg_sq"])


def test_optimizer_load_rejects_a_checkpoint_of_another_shape(tmp_path):
    small = optim.SGD(nn.Dense(2, 2).parameters(), lr=0.1)
    big = optim.SGD(nn.MLP([2, 2, 2]).parameters(), lr=0.1)
    with pytest.raises(ValueError, match=r"param groups \(sizes \[4\]\) do not match.*sizes \[2\]"):
        small.load_state_dict(big.state_dict())
    with pytest.raises(KeyError, match="unexpected key 'momentum'"):
        small.load_state_dict({"momentum": mg.tensor(0.9)})
    saved = small.state_dict()
    saved["param_groups.0.momentun"] = saved.pop("param_groups.0.momentum")
    saved["param_groups.0.lr"] = mg.tensor(np.float64(7.0))
    with pytest.raises(KeyError, match="unknown setting 'momentun'"):
        small.load_state_dict(saved)
    assert small.param_groups[0]["lr"] == 0.1                 # a rejected checkpoint changes nothing


def stepped_adam():
    model = nn.Dense(2, 2)
    optimizer = optim.Adam(model.parameters(), lr=0.01)
    model(mg.ones(1, 2)).sum().backward()
    optimizer.step()
    return optimizer


def assert_rejected_and_unchanged(optimizer, saved, error, message):
    before = {key: value.numpy().copy() for key, value in optimizer.state_dict().items()}
    with pytest.raises(error, match=message):
        optimizer.load_state_dict(saved)
    after = optimizer.state_dict()
    assert sorted(after) == sorted(before)
    assert all(np.array_equal(after[key].numpy(), before[key]) for key in before)


def test_optimizer_load_rejects_missing_state_buffers_at_load_not_at_the_next_step():
    optimizer = stepped_adam()
    saved = optimizer.state_dict()
    del saved["state.1.exp_avg_sq"]
    assert_rejected_and_unchanged(optimizer, saved, KeyError,
                                  r"Adam.load_state_dict: state.1 should hold \['exp_avg', 'exp_avg_sq', 'step'\], "
                                  r"got \['exp_avg', 'step'\] \(missing \['exp_avg_sq'\], extra \[\]\)")
    saved = optimizer.state_dict()
    del saved["state.0.step"]
    assert_rejected_and_unchanged(optimizer, saved, KeyError, r"state.0 .*missing \['step'\]")


def test_optimizer_load_rejects_extra_entries():
    optimizer = stepped_adam()
    saved = optimizer.state_dict()
    saved["state.0.momentum_buffer"] = saved["state.0.exp_avg"]
    assert_rejected_and_unchanged(optimizer, saved, KeyError, r"state.0 .*extra \['momentum_buffer'\]")
    saved = optimizer.state_dict()
    saved["state.2.step"] = saved["state.0.step"]
    assert_rejected_and_unchanged(optimizer, saved, ValueError,
                                  "the checkpoint has state for parameter 2, but this optimizer has 2 parameters")
    saved = optimizer.state_dict()
    saved["param_groups.1.lr"] = saved["param_groups.0.lr"]
    assert_rejected_and_unchanged(optimizer, saved, ValueError, r"param groups \(sizes \[2, None\]\) do not match")


def test_optimizer_load_rejects_a_group_missing_a_setting():
    optimizer = stepped_adam()
    saved = optimizer.state_dict()
    del saved["param_groups.0.eps"]
    assert_rejected_and_unchanged(optimizer, saved, KeyError, r"param group 0 lacks the setting\(s\) \['eps'\]")


def test_optimizer_load_checks_the_settings_it_loads_as_the_constructor_does():
    optimizer = stepped_adam()
    saved = optimizer.state_dict()
    saved["param_groups.0.betas"] = mg.tensor(np.array([0.9, 1.0]))
    assert_rejected_and_unchanged(optimizer, saved, ValueError, r"Adam.load_state_dict: betas\[1\] must be in \[0, 1\)")
    saved["param_groups.0.betas"] = mg.tensor(np.array([0.9, 0.99, 0.999]))
    assert_rejected_and_unchanged(optimizer, saved, ValueError,
                                  r"param_groups.0.betas should hold 2 real number\(s\), got float64 of shape \(3,\)")
    saved = optimizer.state_dict()
    saved["param_groups.0.lr"] = mg.tensor(np.float64("nan"))
    assert_rejected_and_unchanged(optimizer, saved, ValueError, "lr must be finite, got nan")


def test_optimizer_load_rejects_bad_state_values():
    optimizer = stepped_adam()
    saved = optimizer.state_dict()
    saved["state.0.step"] = mg.tensor(np.array([1.5]))
    assert_rejected_and_unchanged(optimizer, saved, ValueError,
                                  "state.0.step should be one non-negative integer, got float64 of shape \\(1,\\)")
    saved = optimizer.state_dict()
    saved["state.1.exp_avg"] = mg.tensor(np.zeros(3, dtype=np.float32))
    assert_rejected_and_unchanged(optimizer, saved, ValueError,
                                  r"state.1.exp_avg should be a real array of its parameter's shape \(2,\), got float32 \(3,\)")
    saved = optimizer.state_dict()
    saved["state.1.exp_avg"] = None
    assert_rejected_and_unchanged(optimizer, saved, TypeError, "state.1.exp_avg must be a Tensor or an array, got NoneType")


def test_optimizer_load_of_a_list_names_what_it_expected():
    with pytest.raises(TypeError, match=r"SGD.load_state_dict: expected a dict of name -> Tensor .*got list"):
        optim.SGD(nn.Dense(2, 2).parameters(), lr=0.1).load_state_dict([1, 2])


def test_sgd_without_momentum_keeps_no_buffer_and_loads_its_own_checkpoint():
    model = nn.Dense(2, 2)
    optimizer = optim.SGD(model.parameters(), lr=0.1)
    model(mg.ones(1, 2)).sum().backward()
    optimizer.step()
    saved = optimizer.state_dict()
    assert sorted(saved) == ["param_groups.0.dampening", "param_groups.0.lr", "param_groups.0.momentum",
                             "param_groups.0.nesterov", "param_groups.0.params", "param_groups.0.weight_decay",
                             "state.0.step", "state.1.step"]
    fresh = optim.SGD(model.parameters(), lr=0.5)
    fresh.load_state_dict(saved)
    assert fresh.param_groups[0]["lr"] == 0.1 and fresh.state[model.weight]["step"] == 1
