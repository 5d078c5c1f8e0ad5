"""Shared test set-up: the cuda stand-in, the `device` fixture, hypothesis settings.

Every test that takes the `device` fixture runs twice: on "cpu" (numpy) and on
"cuda". Without a GPU, "cuda" is served by tests/fake_cupy.py, a double that
enforces cupy's rules (no implicit numpy conversion, no mixing of host and
device arrays), so any code path that slips into numpy on device data fails
here. With MINIGRAD_TEST_REAL_CUDA=1 (benchmarks/gpu_check.py sets it) the real
cupy is used instead and the same tests run on the GPU.

During a test that takes `device`, new tensors are made there by default
(mg.set_default_device), so `mg.tensor(...)` and modules' parameters land on
the device under test; compare values through `t.numpy()`.
"""
import os

import pytest
from hypothesis import HealthCheck, settings

import minigrad as mg
from minigrad import backend

import fake_cupy

REAL_CUDA = os.environ.get("MINIGRAD_TEST_REAL_CUDA") == "1"

# Deterministic examples keep CI reproducible; the function-scoped `device`
# fixture is safe to share between examples (it only sets the default device).
settings.register_profile(
    "minigrad", max_examples=25, deadline=None, derandomize=True, database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
# HYPOTHESIS_PROFILE=thorough explores fresh random examples, many more of them
settings.register_profile(
    "thorough", max_examples=150, deadline=None, derandomize=False, database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "minigrad"))


def cuda_module():
    """The module that serves "cuda" in tests: real cupy when asked for, else the double."""
    if REAL_CUDA:
        import cupy
        return cupy
    return fake_cupy


@pytest.fixture(scope="session", autouse=True)
def _register_cuda_module():
    backend.register_cuda_module(cuda_module())
    yield
    backend.register_cuda_module(None)


@pytest.fixture(autouse=True)
def _same_seed_for_every_test():
    """Each test starts from seed 0, so its random draws do not depend on which tests ran before it."""
    mg.manual_seed(0)


@pytest.fixture(params=["cpu", "cuda"])
def device(request):
    """"cpu" or "cuda"; new tensors go there by default for the test's duration."""
    previous = backend.get_default_device()
    backend.set_default_device(request.param)
    yield request.param
    backend.set_default_device(previous)
