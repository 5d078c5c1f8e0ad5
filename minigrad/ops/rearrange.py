"""Rearranging copies: flip, roll, repeat, repeat_interleave, expand, the triangles, padding.

Like the shape ops, none of these does arithmetic: every output element is a copy
of one input element (or a constant), so each derivative moves g back to where
the elements came from. Where an existing op already says that (a reshape and a
broadcast for repeat, indexing for repeat_interleave, where for tril), the
function is that composition; flip, roll and pad are Functions of their own.
"""
import operator

from .. import backend
from ..autograd import Function
from ..tensor import as_array
from .elementwise import where
from .shape import normalize_axis

xp_of = backend.get_array_module


class Flip(Function):
    """y = x reversed along `axes` (a copy, as PyTorch's).   dL/dx = g reversed along the same axes"""

    def __init__(self, axes):
        self.axes = axes

    def forward(self, x):
        return xp_of(x).flip(x, self.axes).copy() if self.axes else x.copy()

    def backward(self, g):
        return Flip(self.axes)(g)


def flip(x, axes):
    """x reversed along each axis in `axes` (an int or a tuple)."""
    axes = normalize_axis(axes, x.ndim, "flip")
    return Flip(axes if x.ndim else ())(x)


class Roll(Function):
    """y = x shifted cyclically by `shifts` along `axes` (elements leaving one end come
    back at the other; axes None: the flattened tensor, shape kept).
    dL/dx = g rolled back by -shifts"""

    def __init__(self, shifts, axes):
        self.shifts, self.axes = shifts, axes

    def forward(self, x):
        return xp_of(x).roll(x, self.shifts, axis=self.axes)

    def backward(self, g):
        return Roll(tuple(-s for s in self.shifts) if self.axes is not None else -self.shifts, self.axes)(g)


def roll(x, shifts, axes=None):
    """x rolled by `shifts` along `axes` (ints or equally long tuples; axes None: flattened)."""
    if axes is None:
        return Roll(operator.index(shifts), None)(x)
    shifts = tuple(shifts) if isinstance(shifts, (tuple, list)) else (shifts,)
    axes_given = tuple(axes) if isinstance(axes, (tuple, list)) else (axes,)
    if len(shifts) != len(axes_given):
        raise ValueError(f"roll: {len(shifts)} shifts for {len(axes_given)} axes (shifts {shifts}, axes {axes_given})")
    for a in axes_given:
        normalize_axis(a, x.ndim, "roll")
    if x.ndim == 0:
        return Roll(0, None)(x)
    return Roll(tuple(map(operator.index, shifts)), tuple(a % x.ndim for a in axes_given))(x)


def repeat(x, reps):
    """x tiled reps[i] times along axis i (PyTorch's repeat, numpy's tile); reps may be
    longer than x.ndim (new leading axes). As a composition: x viewed as (1, s0, 1, s1, ...),
    broadcast to (r0, s0, r1, s1, ...) and merged, so the gradient sums over the copies."""
    reps = tuple(map(operator.index, reps))
    if len(reps) < x.ndim or any(r < 0 for r in reps):
        raise ValueError(f"repeat: needs one non-negative count per axis (at least {x.ndim}), got {reps} "
                         f"for shape {x.shape}")
    shape = (1,) * (len(reps) - x.ndim) + x.shape
    pairs = [(1, size) for size in shape]
    copies = [(r, size) for r, size in zip(reps, shape)]
    merged = tuple(r * size for r, size in zip(reps, shape))
    return x.reshape(tuple(n for pair in pairs for n in pair)).broadcast_to(
        tuple(n for pair in copies for n in pair)).reshape(merged)


def repeat_interleave(x, repeats, axis=None):
    """Each element repeated `repeats` times in a row along `axis` ([1, 2] -> [1, 1, 2, 2]);
    repeats: an int, or one count per element. axis None: the flattened tensor.
    As indexing with the repeated positions, so the gradient adds up the copies."""
    if axis is None:
        x, axis = x.reshape(-1), 0
    axis, = normalize_axis(axis, x.ndim, "repeat_interleave") or (0,)
    if x.ndim == 0:
        x = x.reshape(1)
    xp = xp_of(x.data)
    counts = as_array(repeats, "cpu").tolist()
    if isinstance(counts, list) and len(counts) != x.shape[axis]:
        raise ValueError(f"repeat_interleave: {len(counts)} counts for an axis of size {x.shape[axis]}")
    positions = xp.repeat(xp.arange(x.shape[axis]), counts)      # host counts: cupy takes no array
    return x[(slice(None),) * axis + (positions,)]


def expand(x, shape):
    """x broadcast to `shape` (PyTorch's expand: -1 keeps an axis' size; new axes lead)."""
    shape = tuple(shape)
    lead = len(shape) - x.ndim
    if lead < 0:
        raise ValueError(f"expand: shape {shape} has fewer axes than the tensor's {x.shape}")
    target = tuple(x.shape[i - lead] if size == -1 and i >= lead else size for i, size in enumerate(shape))
    if any(size < 0 for size in target):
        raise ValueError(f"expand: -1 is allowed only for an existing axis, got {shape} for {x.shape}")
    try:
        return x.broadcast_to(target)
    except ValueError:
        raise ValueError(f"expand: shape {x.shape} cannot be expanded to {shape} (only size-1 axes grow)") from None


def triangle(x, k, lower):
    """tril / triu over the last two axes: x where (column - row <= k) for the lower
    triangle, (column - row >= k) for the upper, else 0. As where, so the gradient is g
    inside the triangle and 0 outside."""
    if x.ndim < 2:
        raise ValueError(f"{'tril' if lower else 'triu'}: needs at least 2 dimensions, got shape {x.shape}")
    xp = xp_of(x.data)
    rows, columns = x.shape[-2:]
    ones = xp.ones((rows, columns), dtype=bool)
    return where(xp.tril(ones, k) if lower else xp.triu(ones, k), x, 0)


class Pad(Function):
    """y = x with widths[d] = (before, after) elements of `value` added on each side of
    axis d; a negative width cuts that many elements off instead.
    dL/dx = g with the added elements cut off again (and zeros where x was cut):
    Pad with the widths negated."""

    def __init__(self, widths, value=0.0):
        self.widths, self.value = widths, value

    def forward(self, x):
        crop = []
        for (before, after), size in zip(self.widths, x.shape):
            start, stop = max(-before, 0), size - max(-after, 0)
            if stop < start:
                raise ValueError(f"pad: widths {self.widths} cut more than all of shape {tuple(x.shape)}")
            crop.append(slice(start, stop))
        growth = [(max(before, 0), max(after, 0)) for before, after in self.widths]
        return xp_of(x).pad(x[tuple(crop)], growth, mode="constant", constant_values=self.value)

    def backward(self, g):
        return Pad([(-before, -after) for before, after in self.widths], 0)(g)


def pad(x, widths, value=0.0):
    """F.pad with PyTorch's order: widths = (before_last, after_last, before_second_last, ...)."""
    widths = tuple(map(operator.index, widths))
    if len(widths) % 2 or len(widths) > 2 * x.ndim:
        raise ValueError(f"pad: needs an even number of widths, two per axis from the last, at most "
                         f"{2 * x.ndim} for shape {x.shape}; got {widths}")
    per_axis = [(0, 0)] * x.ndim
    for i in range(len(widths) // 2):
        per_axis[x.ndim - 1 - i] = (widths[2 * i], widths[2 * i + 1])
    return Pad(per_axis, value)(x)
