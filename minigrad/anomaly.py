"""Anomaly detection: find the op where NaN or inf first appears.

    with mg.detect_anomaly():
        loss = F.cross_entropy(model(x), y)
        loss.backward()

Inside the block every op checks the array it makes (forward) and the gradients
it passes back (backward) for NaN and inf, and remembers the line of user code
that called it. The first op that makes a non-finite value raises AnomalyError,
naming the op, that line, and whether the op's inputs were already non-finite.

Outside the block nothing is recorded or checked: the engine tests one flag per
op (grad_mode._GradMode.anomaly). Inside, every op pays for a stack capture and a
scan of its output, so it is a tool for finding a bug, not for training.
"""
import contextlib
import os
import traceback

from . import autograd, backend
from .grad_mode import _GradMode

_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep
_AUTOGRAD = autograd.__file__


class AnomalyError(RuntimeError):
    """An op made NaN or inf while mg.detect_anomaly() was on."""


def _finite(array):
    return array.dtype.kind not in "fc" or bool(backend.get_array_module(array).isfinite(array).all())


def _what(array):
    xp = backend.get_array_module(array)
    kinds = [name for name, found in (("NaN", xp.isnan(array).any()), ("inf", xp.isinf(array).any())) if found]
    return " and ".join(kinds)


def _user_line(stack):
    """The innermost frame of the stack outside minigrad's own files: the user's line."""
    for frame in reversed(stack):
        if not os.path.abspath(frame.filename).startswith(_PACKAGE):
            return f'File "{frame.filename}", line {frame.lineno}, in {frame.name}\n    {frame.line}'
    return "(no frame outside minigrad)"


class _Checker:
    """What the engine calls while anomaly mode is on."""

    @staticmethod
    def forward(function, inputs, output):
        stack = traceback.extract_stack()[:-2]                       # without the engine's frames
        if any(frame.name == "_input_grads" and frame.filename == _AUTOGRAD for frame in stack):
            return      # an op inside some function's backward: that backward's check reports it
        function.anomaly_stack = stack
        if not _finite(output.data):
            before = "its inputs were finite" if all(_finite(x.data) for x in inputs) else \
                "an input already held NaN or inf"
            raise AnomalyError(f"forward of {type(function).__name__} produced {_what(output.data)} "
                               f"({before}); the op was called at\n  {_user_line(function.anomaly_stack)}")

    @staticmethod
    def backward(function, gradient, input_grads):
        for i, grad in enumerate(input_grads):
            if grad is not None and not _finite(grad.data):
                before = "the gradient it received was finite" if _finite(gradient.data) else \
                    "the gradient it received already held NaN or inf"
                stack = getattr(function, "anomaly_stack", None)
                where = _user_line(stack) if stack else "(created before anomaly detection was on)"
                raise AnomalyError(f"backward of {type(function).__name__} produced {_what(grad.data)} in the "
                                   f"gradient of its input {i} ({before}); the op was called at\n  {where}")


class detect_anomaly(contextlib.ContextDecorator):
    """with mg.detect_anomaly(): (or @mg.detect_anomaly()) raise AnomalyError at the first
    op whose forward or backward makes NaN or inf, naming the op and the user's line
    that called it."""

    def __init__(self):
        self.previous = []

    def __enter__(self):
        self.previous.append(_GradMode.anomaly)
        _GradMode.anomaly = _Checker
        return self

    def __exit__(self, *exc):
        _GradMode.anomaly = self.previous.pop()
