"""Grad mode: whether calling an op records it in the graph (mg.no_grad, mg.enable_grad).

One switch for the process, read by Function.__call__ (autograd.py) for every op, and
set by run_backward to create_graph while it walks the graph, so that a backward
pass is itself recorded only when a graph of it is wanted (grad of grad).
"""
import contextlib


class _GradMode:
    enabled = True      # is a graph recorded?
    anomaly = None      # while mg.detect_anomaly() is on: its checker (anomaly.py)


def is_grad_enabled():
    return _GradMode.enabled


class _GradModeSwitch(contextlib.ContextDecorator):
    """Grad mode set inside a with-block or a decorated function, and restored after
    (a stack of previous modes, so that nesting and recursion unwind correctly)."""

    def __init__(self, mode):
        self.mode, self.previous = mode, []

    def __enter__(self):
        self.previous.append(_GradMode.enabled)
        _GradMode.enabled = self.mode

    def __exit__(self, *exc):
        _GradMode.enabled = self.previous.pop()


def no_grad(function=None):
    """Record no graph inside: ``with mg.no_grad():``, ``@mg.no_grad()`` or ``@mg.no_grad``."""
    return _GradModeSwitch(False)(function) if callable(function) else _GradModeSwitch(False)


def enable_grad(function=None):
    """The opposite of no_grad: record a graph again, even inside a no_grad block."""
    return _GradModeSwitch(True)(function) if callable(function) else _GradModeSwitch(True)
