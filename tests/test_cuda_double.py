"""The "cuda" device without a GPU: the cupy double enforces cupy's rules, and the
engine moves data between devices only when asked to.

With MINIGRAD_TEST_REAL_CUDA=1 the device tests run against the real cupy; the
tests of the double itself are skipped then."""
import os
import sys
import types

import numpy as np
import pytest

import minigrad as mg
from minigrad import backend

import fake_cupy
from conftest import REAL_CUDA

double_only = pytest.mark.skipif(REAL_CUDA, reason="checks the cupy double, not real cupy")


# --------------------------------------------------------------------------- the double itself
@double_only
def test_the_double_refuses_implicit_conversion_to_numpy():
    a = fake_cupy.asarray(np.arange(3.0))
    assert not isinstance(a, np.ndarray)
    with pytest.raises(TypeError, match="Implicit conversion to a NumPy array is not allowed"):
        np.asarray(a)
    with pytest.raises(TypeError):
        np.sum(a)


@double_only
@pytest.mark.parametrize("mix", [
    lambda a, h: a + h, lambda a, h: h + a, lambda a, h: a * h, lambda a, h: h @ a, lambda a, h: a < h,
    lambda a, h: fake_cupy.exp(h), lambda a, h: fake_cupy.maximum(a, h), lambda a, h: fake_cupy.where(h > 0, a, a),
    lambda a, h: fake_cupy.concatenate([a, h]), lambda a, h: fake_cupy.matmul(a, h), lambda a, h: a[h.astype(int)],
    lambda a, h: a.__setitem__(0, h[:1]), lambda a, h: fake_cupy._scatter_add(a, fake_cupy.asarray(np.array([0])), h[:1]),
])
def test_the_double_refuses_to_mix_device_and_host_arrays(mix):
    with pytest.raises(TypeError):
        mix(fake_cupy.asarray(np.ones(3)), np.ones(3))


@double_only
def test_the_double_allows_explicit_copies_and_python_numbers():
    a = fake_cupy.asarray(np.array([1.0, 2.0, 3.0]))
    np.testing.assert_array_equal(fake_cupy.asnumpy(a * 2 + 1), [3.0, 5.0, 7.0])
    np.testing.assert_array_equal(a.get(), [1.0, 2.0, 3.0])
    total = a.sum()
    assert isinstance(total, fake_cupy.ndarray) and total.ndim == 0     # reductions stay on the device
    assert float(total) == 6.0 and total.item() == 6.0
    assert isinstance(np.float32(2.0) * a, fake_cupy.ndarray)
    np.testing.assert_array_equal(a[fake_cupy.asarray(np.array([2, 0, 2]))].get(), [3.0, 1.0, 3.0])
    target = fake_cupy.zeros(3)
    fake_cupy._scatter_add(target, fake_cupy.asarray(np.array([0, 0, 2])), fake_cupy.ones(3))
    np.testing.assert_array_equal(target.get(), [2.0, 0.0, 1.0])
    assert fake_cupy.cuda.runtime.getDeviceCount() == 1


# --------------------------------------------------------------------------- moving between devices
def test_to_cuda_and_back_round_trips_values_and_dtype():
    host = mg.tensor(np.array([[1.5, -2.0], [3.25, 4.0]]), device="cpu")
    on_gpu = host.to("cuda")
    assert on_gpu.device == "cuda" and host.device == "cpu"
    assert isinstance(on_gpu.data, backend.xp_for("cuda").ndarray)
    back = on_gpu.to("cpu")
    assert back.device == "cpu" and back.dtype == np.float64 and isinstance(back.data, np.ndarray)
    np.testing.assert_array_equal(back.numpy(), host.numpy())
    assert on_gpu.to("cuda") is on_gpu and host.to("cuda:0").device == "cuda"
    np.testing.assert_array_equal(on_gpu.cpu().numpy(), on_gpu.numpy())
    assert host.cuda().device == "cuda"


def test_gradients_flow_through_to_in_both_directions():
    x = mg.tensor([1.0, 2.0, 3.0], requires_grad=True, device="cpu")
    y = x.to("cuda")
    (y * y).sum().backward()
    assert x.grad.device == "cpu"
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 4.0, 6.0])

    z = mg.tensor([1.0, 2.0], requires_grad=True, device="cuda")
    (z.to("cpu") * 3.0).sum().backward()
    assert z.grad.device == "cuda"
    np.testing.assert_allclose(z.grad.numpy(), [3.0, 3.0])
    assert mg.gradcheck(lambda t: t.to("cuda").exp().to("cpu"), [mg.tensor([0.5, 1.0], device="cpu",
                                                                           requires_grad=True)])


@pytest.mark.parametrize("op", [
    lambda a, b: a + b, lambda a, b: a * b, lambda a, b: a @ b, lambda a, b: a < b,
    lambda a, b: mg.where(a > 0, a, b), lambda a, b: mg.concatenate([a, b]), lambda a, b: mg.stack([a, b]),
])
def test_mixing_cpu_and_cuda_tensors_is_an_error_naming_both_devices(op):
    a = mg.tensor([1.0, 2.0], device="cpu")
    b = mg.tensor([3.0, 4.0], device="cuda")
    for left, right in ((a, b), (b, a)):
        with pytest.raises(RuntimeError) as info:
            op(left, right)
        assert "cpu" in str(info.value) and "cuda" in str(info.value)


def test_host_arrays_and_numbers_mix_with_cuda_tensors_as_constants():
    x = mg.tensor([1.0, 2.0], device="cuda", requires_grad=True)
    y = x * np.array([2.0, 3.0]) + 1.0
    assert y.device == "cuda"
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 3.0])
    np.testing.assert_array_equal(x[np.array([1, 1])].numpy(), [2.0, 2.0])


# --------------------------------------------------------------------------- the default device
@pytest.fixture
def restore_default_device():
    previous = backend.get_default_device()
    yield
    backend.set_default_device(previous)


def test_set_default_device_decides_where_new_tensors_go(restore_default_device):
    mg.set_default_device("cuda")
    assert mg.get_default_device() == "cuda"
    for t in (mg.zeros(2), mg.ones(2), mg.randn(2), mg.arange(3), mg.tensor([1.0]),
              mg.tensor(np.ones(2)), mg.Tensor([1.0])):
        assert t.device == "cuda"
    assert mg.tensor([1.0], device="cpu").device == "cpu"
    assert mg.zeros(2, device="cpu").device == "cpu"
    # the class wraps an array where it lives (torch.as_tensor); mg.tensor copies it over
    assert mg.Tensor(np.ones(2)).device == "cpu"
    assert mg.Tensor(mg.zeros(2).data).device == "cuda"
    cpu_tensor = mg.tensor([1.0, 2.0], device="cpu", requires_grad=True)
    out = (cpu_tensor * 2.0).sum()                  # ops stay on their inputs' device
    out.backward()
    assert out.device == "cpu" and cpu_tensor.grad.device == "cpu"
    assert cpu_tensor.detach().device == "cpu"
    mg.set_default_device("cpu")
    assert mg.zeros(2).device == "cpu"


def test_cpu_tensors_keep_working_while_the_default_device_is_cuda(restore_default_device):
    import minigrad.functional as F
    x = mg.tensor(np.array([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]]), device="cpu", requires_grad=True)
    mg.set_default_device("cuda")
    parts = [x.relu(), x.abs(), x.clip(-0.5, 0.5), mg.where(x > 0, x, 0.0), x.max(axis=1, keepdims=True),
             F.softmax(x), F.log_softmax(x), F.layer_norm(x), F.gelu(x), x[[0, 0]].sum(axis=0, keepdims=True),
             x.masked_fill(x < 0, 1.0), mg.concatenate([x, x], axis=0)[:2], x.var(axis=0, keepdims=True)]
    loss = sum((p * p).sum() for p in parts)
    loss.backward()
    assert loss.device == "cpu" and x.grad.device == "cpu"
    assert mg.gradcheck(lambda t: F.layer_norm(t).tanh() * t.abs(), [x])


def test_minigrad_device_environment_variable_sets_the_default(monkeypatch, restore_default_device):
    monkeypatch.setenv("MINIGRAD_DEVICE", "cuda")
    monkeypatch.setattr(backend, "_default_device", None)
    assert mg.get_default_device() == "cuda"
    assert mg.zeros(1).device == "cuda"
    monkeypatch.setenv("MINIGRAD_DEVICE", "tpu")
    monkeypatch.setattr(backend, "_default_device", None)
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        mg.get_default_device()


def test_unknown_device_names_are_rejected():
    with pytest.raises(ValueError, match=r"unknown device 'gpu'.*\"cpu\" or \"cuda\""):
        mg.tensor([1.0], device="gpu")


# --------------------------------------------------------------------------- no cupy, no GPU
@pytest.fixture
def without_cupy(monkeypatch):
    """As on a machine where `import cupy` fails: the double is unregistered for one test."""
    monkeypatch.setattr(backend, "_cuda_module", None)
    monkeypatch.setattr(backend, "_cuda_error", None)
    monkeypatch.setitem(sys.modules, "cupy", None)          # makes `import cupy` raise ImportError


def test_asking_for_cuda_without_cupy_gives_the_install_hint(without_cupy):
    assert mg.cuda_available() is False
    for ask in (lambda: mg.tensor([1.0], device="cuda"), lambda: mg.zeros(2, device="cuda"),
                lambda: mg.tensor([1.0]).to("cuda"), lambda: mg.set_default_device("cuda")):
        with pytest.raises(RuntimeError) as info:
            ask()
        assert "cupy" in str(info.value) and 'pip install -e ".[gpu]"' in str(info.value)
    assert mg.get_default_device() == "cpu"
    assert mg.tensor([1.0]).device == "cpu"        # the cpu keeps working


def test_minigrad_device_cuda_without_cupy_keeps_raising_and_never_falls_back_to_the_cpu(
        without_cupy, monkeypatch, restore_default_device):
    monkeypatch.setenv("MINIGRAD_DEVICE", "cuda")
    monkeypatch.setattr(backend, "_default_device", None)
    for _ in range(3):                              # the first error used to leave "cpu" behind
        with pytest.raises(RuntimeError, match="MINIGRAD_DEVICE='cuda': device \"cuda\" needs cupy"):
            mg.zeros(2)
        with pytest.raises(RuntimeError, match="MINIGRAD_DEVICE='cuda'"):
            mg.get_default_device()
    mg.set_default_device("cpu")                    # an explicit choice still works
    assert mg.zeros(2).device == "cpu"


def test_asking_for_cuda_without_a_gpu_says_so(monkeypatch):
    no_gpu = types.SimpleNamespace(cuda=types.SimpleNamespace(runtime=types.SimpleNamespace(
        getDeviceCount=lambda: 0)))
    monkeypatch.setattr(backend, "_cuda_module", None)
    monkeypatch.setattr(backend, "_cuda_error", None)
    monkeypatch.setitem(sys.modules, "cupy", no_gpu)
    with pytest.raises(RuntimeError, match=r'needs an NVIDIA GPU.*pip install -e "\.\[gpu\]"'):
        mg.zeros(1, device="cuda")
    assert not mg.cuda_available()


def test_cuda_is_available_in_the_test_session():
    assert mg.cuda_available()
    assert os.environ.get("MINIGRAD_TEST_REAL_CUDA") == "1" or backend.xp_for("cuda") is fake_cupy


def test_malloc_tuning_can_be_turned_off_and_is_on_by_default_on_glibc():
    import subprocess, sys
    code = "import minigrad.backend.memory as m; print(m.MALLOC_TUNED)"
    off = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "MINIGRAD_MALLOC_TUNE": "0"})
    assert off.stdout.strip() == "False"
    on = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                        env={k: v for k, v in os.environ.items() if k != "MINIGRAD_MALLOC_TUNE"})
    import platform
    expected = "True" if sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc" else "False"
    assert on.stdout.strip() == expected
