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
