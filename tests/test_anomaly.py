"""mg.detect_anomaly(): the first op whose forward or backward makes NaN or inf raises,
naming the op and the user's line that called it; outside the block nothing is
captured or checked."""
import inspect

import numpy as np
import pytest

import minigrad as mg
import minigrad.functional as F
from minigrad import anomaly, autograd


def _line_of(marker):
    """The number of the line in this file that contains `marker`."""
    lines = inspect.getsource(inspect.getmodule(_line_of)).splitlines()
    return next(i + 1 for i, line in enumerate(lines) if marker in line and "_line_of" not in line)


def test_forward_nan_names_the_op_and_the_users_line(device):
    x = mg.tensor([1.0, -1.0], requires_grad=True)
    with pytest.raises(mg.AnomalyError) as error:
        with mg.detect_anomaly():
            y = x * 2.0
            z = y.log()          # the NaN is made here
            z.sum()
    message = str(error.value)
    assert "forward of Log produced NaN (its inputs were finite)" in message
    assert f"{__file__}\", line {_line_of('the NaN is made here')}" in message
    assert "z = y.log()" in message


def test_forward_inf_and_an_input_that_was_already_non_finite(device):
    with mg.detect_anomaly():
        assert (mg.tensor([1.0]) / 2.0).item() == 0.5            # finite: nothing happens
        with pytest.raises(mg.AnomalyError, match=r"forward of Div produced inf \(its inputs were finite\)"):
            mg.tensor([1.0]) / 0.0
        with pytest.raises(mg.AnomalyError, match="forward of Mul produced NaN .an input already held NaN or inf"):
            mg.tensor([np.nan]) * 2.0


def test_backward_inf_names_the_op_and_the_line_that_created_it(device):
    x = mg.tensor([0.0, 4.0], requires_grad=True)
    with mg.detect_anomaly():
        root = x.sqrt()          # d sqrt / dx at 0 is inf
        loss = root.sum()
        with pytest.raises(mg.AnomalyError) as error:
            loss.backward()
    message = str(error.value)
    assert "backward of Sqrt produced inf in the gradient of its input 0 (the gradient it received was finite)" \
        in message
    assert f"line {_line_of('d sqrt / dx at 0 is inf')}" in message and "root = x.sqrt()" in message


def test_an_op_made_inside_the_library_reports_the_users_call(device):
    with mg.detect_anomaly():
        with pytest.raises(mg.AnomalyError) as error:
            F.layer_norm(mg.ones(2, 4), eps=0.0)      # a constant row: 0 / sqrt(0)
    assert "forward of LayerNormOp produced NaN (its inputs were finite)" in str(error.value)
    assert "F.layer_norm(mg.ones(2, 4), eps=0.0)" in str(error.value)


def test_anomaly_mode_is_restored_after_errors_nesting_and_as_a_decorator(device):
    assert autograd._GradMode.anomaly is None
    with pytest.raises(mg.AnomalyError):
        with mg.detect_anomaly():
            with mg.detect_anomaly():
                pass
            assert autograd._GradMode.anomaly is not None      # the inner block restored the outer's mode
            mg.tensor([-1.0]).sqrt()
    assert autograd._GradMode.anomaly is None

    @mg.detect_anomaly()
    def step():
        return mg.tensor([-1.0]).log()
    with pytest.raises(mg.AnomalyError, match="forward of Log"):
        step()
    assert autograd._GradMode.anomaly is None


def test_zero_cost_when_off_no_stack_is_captured_and_nothing_checked(device, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a stack was captured outside anomaly mode")
    monkeypatch.setattr(anomaly.traceback, "extract_stack", refuse)
    x = mg.tensor([0.0, -1.0], requires_grad=True)
    y = x.log() + x.sqrt()                       # NaN and -inf, unchecked
    y.sum().backward()                           # inf and NaN gradients, unchecked
    assert not hasattr(y.grad_fn, "anomaly_stack")
    assert np.isnan(y.numpy()).any()


def test_integer_ops_are_never_flagged(device):
    with mg.detect_anomaly():
        assert (mg.arange(3) * 2).tolist() == [0, 2, 4]
