"""How an answer is compared, and what a wrong one is told (the tools of checks.py).

For a gradient, minigrad's autograd computes the reference on a small float64 case,
after mg.gradcheck has confirmed it against central differences on that very case.
The student's array must match it element by element (relative 1e-6). When it does
not, the message names the case, the output, the worst element, the value expected
(with its central difference, an independent second opinion) and the one given, and
a hint: a specific one when the answer equals a known mistake (a forgotten 1/N, a
flipped sign, a missing path of the chain rule), else the exercise's general one.
"""
import importlib.util
import os
import traceback

import numpy as np

import minigrad as mg

RTOL, ATOL = 1e-6, 1e-9


class NotWritten(Exception):
    """The student's function still raises NotImplementedError."""


class Failure(Exception):
    """The student's answer is wrong; the message says where and why."""


class Result:
    def __init__(self, name, status, message):
        self.name, self.status, self.message = name, status, message     # status: PASS, FAIL or TODO

    @property
    def passed(self):
        return self.status == "PASS"


# --------------------------------------------------------------------------- calling the student's code
def shown(path):
    """A path as the student would type it: relative to the current folder when inside it."""
    relative = os.path.relpath(path)
    return path if relative.startswith("..") else relative


def call(module, function, *args, **kwargs):
    """module.function(*args), with its exceptions turned into messages about the student's code."""
    try:
        with np.errstate(all="ignore"):          # an overflow shows as nan in the answer, and diagnose names it
            return getattr(module, function)(*args, **kwargs)
    except NotImplementedError as todo:
        raise NotWritten(f"{function} in {shown(module.__file__)} is not written yet: {todo}") from None
    except Exception as error:                  # any bug in the student's code becomes a report
        frames = [frame for frame in traceback.extract_tb(error.__traceback__) if frame.filename == module.__file__]
        where = f" at line {frames[-1].lineno}: {frames[-1].line}" if frames else ""
        raise Failure(f"{function} raised {type(error).__name__}: {error}{where}") from None


def outputs(result, names, function):
    """The student's result as a tuple of float64 arrays, one per name."""
    values = result if isinstance(result, (tuple, list)) else (result,)
    if len(values) != len(names):
        raise Failure(f"{function} should return {len(names)} value(s) ({', '.join(names)}), "
                      f"it returned {len(values)}")
    arrays = []
    for name, value in zip(names, values):
        if value is None:
            raise Failure(f"{function} returned None for {name}")
        arrays.append(np.asarray(value, dtype=np.float64))
    return arrays


# --------------------------------------------------------------------------- references
def reference_gradients(forward, arrays, g, wrt):
    """The gradients of sum(g * forward(*inputs)) with respect to inputs[i] for i in wrt,
    from minigrad's autograd, after mg.gradcheck has confirmed them on these inputs."""
    inputs = [mg.tensor(a, dtype="float64", requires_grad=i in wrt) for i, a in enumerate(arrays)]
    mg.gradcheck(forward, inputs)            # raises if minigrad itself were wrong here
    output = forward(*inputs)
    grads = mg.grad(output, [inputs[i] for i in wrt], grad_outputs=mg.tensor(g, dtype="float64"))
    return [grad.numpy() for grad in grads]


def central_difference(forward, arrays, g, which, eps=1e-6):
    """index -> (L(x + eps e_index) - L(x - eps e_index)) / (2 eps) for input `which`,
    with L = sum(g * forward(*inputs)): a numerical value for one element."""
    def at(index):
        def loss(shift):
            moved = [a.copy() for a in arrays]
            moved[which][index] += shift
            with mg.no_grad():
                return float((forward(*[mg.tensor(a, dtype="float64") for a in moved]).numpy() * g).sum())
        return (loss(eps) - loss(-eps)) / (2 * eps)
    return at


def close(got, expected):
    return got.shape == expected.shape and bool(np.all(np.abs(got - expected) <= ATOL + RTOL * np.abs(expected)))


def expect(function, case, name, got, expected, numeric=None, mistakes=(), hint="", source="minigrad"):
    """Raise Failure, with everything a student needs to find the bug, unless got matches expected.
    numeric: index -> a central difference for that element; source: where expected comes from;
    mistakes: (wrong answer or a function computing it, hint) pairs for known mistakes."""
    head = f"{function}, case {case}: {name}"
    if got.shape != expected.shape:
        raise Failure(f"{head} has shape {got.shape}, expected {expected.shape}"
                      + (f"\n    hint: {hint}" if hint else ""))
    if close(got, expected):
        return
    error = np.abs(got - expected) - RTOL * np.abs(expected)
    error = np.where(np.isfinite(got), error, np.inf)
    index = np.unravel_index(int(np.argmax(error)), error.shape) if got.ndim else ()
    where = f"at index {tuple(int(i) for i in index)}" if got.ndim else "(a single number)"
    off = int(np.sum(error > ATOL))
    second_opinion = f"; central difference {numeric(index):.8g}" if numeric is not None else ""
    lines = [f"{head} is wrong",
             f"    {where}: expected {expected[index]:.8g} ({source}{second_opinion}), got {got[index]:.8g}",
             f"    {off} of {got.size} elements are off",
             f"    hint: {diagnose(got, expected, mistakes) or hint}"]
    raise Failure("\n".join(lines))


def diagnose(got, expected, mistakes):
    """A specific hint when got is a known mistake or a simple distortion of the answer."""
    if not np.all(np.isfinite(got)):
        return ("your answer has nan or inf: an exp of a large number overflows (subtract the row maximum "
                "before exp), or something divides by zero")
    for wrong, why in mistakes:
        try:
            wrong = np.asarray(wrong() if callable(wrong) else wrong, dtype=np.float64)
        except ValueError:          # a mistake that these shapes cannot make (a transpose of a non-square)
            continue
        if close(got, wrong):
            return why
    if close(-got, expected):
        return "every element has the wrong sign"
    big = np.abs(expected) > 1e-3 * np.abs(expected).max() if expected.size else np.zeros(0, bool)
    if big.sum() > 1:
        ratios = got[big] / expected[big]
        if np.ptp(ratios) < 1e-6 * np.abs(ratios).max():
            return (f"every element is {ratios[0]:.6g} times the right one: a constant factor is missing "
                    f"or extra (a mean's 1/N, a scale, a 2 from a square?)")
    if got.ndim >= 2 and got.shape[-1] == got.shape[-2] and close(got.swapaxes(-1, -2), expected):
        return "your answer is the transpose of the right one"
    return None


# --------------------------------------------------------------------------- loading a file
def load(path):
    """The exercise file at `path` as a fresh module, or a Result saying why it cannot be read."""
    spec = importlib.util.spec_from_file_location(f"exercise_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as error:              # a syntax error or a failing import in the student's file
        line = getattr(error, "lineno", None) or next(
            (frame.lineno for frame in reversed(traceback.extract_tb(error.__traceback__))
             if frame.filename == str(path)), None)
        where = f" (line {line})" if line else ""
        return Result(path.stem, "FAIL", f"{shown(path)} cannot be loaded{where}: {type(error).__name__}: {error}")
    return module
