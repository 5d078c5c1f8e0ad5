"""Einstein summation: mg.einsum("bij,bjk->bik", a, b).

Each operand's axes are named by letters; the output keeps the letters after "->"
and sums the products over the others. Without "->" the output is every letter
that appears once, in alphabetical order (numpy's and PyTorch's rule); "..."
stands for the same leading axes in every operand (right-aligned, broadcasting).

The derivative is another einsum. For y[o] = sum prod_j x_j[s_j], the gradient of
x_i is g[o] times the other operands, summed to x_i's letters s_i:

    dL/dx_i[s_i] = einsum(o, s_1, .., (not s_i), .., s_n -> s_i)(g, x_1, .., x_n)

Two details make that hold for every spec: a letter repeated in s_i (a diagonal,
"ii->i") is renamed apart and tied back by an identity matrix, and a letter that
only x_i has was summed away by the forward, so its gradient is broadcast along it.
"""
import string

from .. import backend
from ..autograd import Function
from ..tensor import Tensor, as_tensors

xp_of = backend.get_array_module


def _parse(spec, ndims):
    """The subscripts of each operand and of the output as letters only ("..." expanded)."""
    spec = spec.replace(" ", "")
    inputs, arrow, output = spec.partition("->")
    inputs = inputs.split(",")
    if len(inputs) != len(ndims):
        raise ValueError(f"einsum: {spec!r} names {len(inputs)} operands, got {len(ndims)}")
    used = set(spec) - set(",->.")
    if not used <= set(string.ascii_letters):
        raise ValueError(f"einsum: subscripts must be letters, got {spec!r}")
    spare = [c for c in string.ascii_letters if c not in used]
    ellipsis_ndim = 0
    for subs, ndim in zip(inputs, ndims):
        explicit = len(subs.replace("...", ""))
        if ("..." in subs and explicit > ndim) or ("..." not in subs and explicit != ndim):
            raise ValueError(f"einsum: operand {subs!r} of {spec!r} does not fit a tensor with {ndim} dimensions")
        if "..." in subs:
            ellipsis_ndim = max(ellipsis_ndim, ndim - explicit)
    broadcast = "".join(spare[:ellipsis_ndim])
    expanded = []
    for subs, ndim in zip(inputs, ndims):
        covered = ndim - len(subs.replace("...", ""))
        expanded.append(subs.replace("...", broadcast[ellipsis_ndim - covered:] if covered else ""))
    if not arrow:
        letters = "".join(expanded)
        output = broadcast + "".join(sorted(c for c in set(letters) - set(broadcast) if letters.count(c) == 1))
    else:
        output = output.replace("...", broadcast)
        missing = set(output) - set("".join(expanded))
        if missing or len(set(output)) != len(output):
            raise ValueError(f"einsum: output {output!r} of {spec!r} must name each input letter at most once")
    return expanded, output


class Einsum(Function):
    """y = einsum(inputs -> output) of the operands (letters only: see _parse).
    dL/dx_i = einsum of g with the other operands, to x_i's letters (module docstring)."""

    def __init__(self, inputs, output):
        self.inputs, self.output = inputs, output

    def forward(self, *arrays):
        self.sizes = {}
        for subs, array in zip(self.inputs, arrays):
            for letter, size in zip(subs, array.shape):
                if self.sizes.get(letter, 1) not in (1, size) and size != 1:
                    raise ValueError(f"einsum: letter {letter!r} has sizes {self.sizes[letter]} and {size} "
                                     f"(shapes {[tuple(a.shape) for a in arrays]})")
                self.sizes[letter] = max(self.sizes.get(letter, 1), size)
        self.save_for_backward(*arrays)
        spec = ",".join(self.inputs) + "->" + self.output
        return xp_of(arrays[0]).einsum(spec, *arrays, optimize=len(arrays) > 2)

    def backward(self, g):
        operands = self.saved_tensors
        return tuple(self._gradient(i, g, operands) if needed else None
                     for i, needed in enumerate(self.needs_input_grad))

    def _gradient(self, i, g, operands):
        subs = self.inputs[i]
        spare = iter(c for c in string.ascii_letters if c not in "".join(self.inputs) + self.output)
        renamed, seen, specs, tensors = "", set(), [self.output], [g]
        sizes = dict(self.sizes)
        for letter in subs:
            if letter in seen:                       # a diagonal: a new letter tied by eye
                fresh = next(spare)
                sizes[fresh] = sizes[letter]
                eye = xp_of(g.data).eye(self.sizes[letter], dtype=g.dtype)
                specs.append(letter + fresh)
                tensors.append(Tensor._from_array(eye))
                renamed += fresh
            else:
                renamed += letter
                seen.add(letter)
        for j, other in enumerate(operands):
            if j != i:
                specs.append(self.inputs[j])
                tensors.append(other)
        available = set("".join(specs))
        target = "".join(c for c in renamed if c in available)
        grad = einsum(",".join(specs) + "->" + target, *tensors)
        if target != renamed:                        # letters only x_i had: broadcast back along them
            grad = grad.reshape(tuple(sizes[c] if c in available else 1 for c in renamed))
            grad = grad.broadcast_to(tuple(sizes[c] for c in renamed))
        return grad


def einsum(spec, *operands):
    """mg.einsum(spec, *tensors): Einstein summation, e.g. "ij,jk->ik" (matmul),
    "bhqd,bhkd->bhqk" (attention scores), "ii->" (trace), "i,j->ij" (outer product)."""
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    operands = as_tensors(list(operands))
    inputs, output = _parse(spec, [t.ndim for t in operands])
    return Einsum(inputs, output)(*operands)
