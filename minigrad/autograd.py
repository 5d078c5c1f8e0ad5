"""Reverse-mode automatic differentiation: the whole idea, in one file.

1. Every operation is a ``Function``. Its ``forward`` computes the output array y
   from the input arrays; its ``backward`` turns g = dL/dy into dL/dx_i for each
   input (the chain rule: dL/dx_i = dL/dy * dy/dx_i).
2. When an input requires a gradient and grad mode is on, calling a Function
   records it as the output's ``grad_fn``, with an edge to each input that needs a
   gradient: the input's own grad_fn, or the input itself if it is a leaf (a tensor
   made by the user, such as a weight). Tensors and functions form a DAG.
3. ``backward`` walks that DAG from the output towards the leaves. A function runs
   only when every function that used its output has passed its gradient back, so
   the gradient it receives is complete (summed over all uses). The walk counts
   those uses first, then runs whatever is ready (Kahn's topological sort, with no
   recursion, so a chain of 10,000 operations works).
4. Leaves receive their summed gradient in ``.grad``. ``backward`` itself is
   written with Tensor operations, so with ``create_graph=True`` the walk records
   a graph of the backward pass and gradients can be differentiated again.

The operations live in minigrad/ops/, the Tensor in tensor.py, what a function saves
for backward in saved.py, and the grad-mode switch (no_grad) in grad_mode.py.
"""
import weakref
from itertools import zip_longest

from . import backend
from .grad_mode import _GradMode


# --------------------------------------------------------------------------- Function
class Function:
    """One differentiable operation, and its node in the graph.

    A subclass writes the math and nothing else:

        forward(self, *arrays) -> array     y = f(x_1, ..., x_n) on backend arrays
        backward(self, g) -> grads          dL/dx_i for each input, from g = dL/dy,
                                            written with Tensor operations

    forward calls self.save_for_backward(...) with the arrays backward will need;
    backward reads them as self.saved_tensors (saved.py). The engine does the rest:
    it sums each gradient back to its input's shape (undoing broadcasting), drops
    the gradients of inputs that need none (self.needs_input_grad says which, for
    ops that can skip costly work) and frees what was saved once backward has run.
    A gradient given as None (or not given) counts as zero, as in PyTorch.

    A fused op may also define backward_arrays(self, g) -> grads on arrays: a fast
    path the engine takes when no graph of the backward pass is wanted. backward
    must then give the same result with differentiable ops (for grad of grad).
    """
    hooks = ()          # hooks on the gradient of this function's output (Tensor.register_hook)
    float_valued = False  # True: integer inputs are made float32 first (/, exp, mean: dtypes.py)
    saved = ()          # what forward saved (None once released)
    saved_versions = ()
    output_array = None  # the output's array, if forward saved it
    to_save = ()

    def __call__(self, *inputs):
        # This runs for every op: the common case (Tensors of one dtype on one device) takes no detours.
        inputs = as_tensors(inputs)
        first = inputs[0].data
        kind, dtype = type(first), first.dtype
        arrays, record = [], False
        for x in inputs:
            data = x.data
            arrays.append(data)
            if type(data) is not kind or data.dtype is not dtype:
                kind = None
            if x.requires_grad:
                record = True
        if kind is None or (self.float_valued and dtype.kind in "biu"):
            inputs = conform_inputs(self, inputs)     # one device, one dtype (dtypes.py)
            arrays = [x.data for x in inputs]
        result = self.forward(*arrays)
        output = Tensor._from_array(result)
        if record and _GradMode.enabled and output.data.dtype.kind in "fc":
            # link output -> this function -> the node of each input that needs a gradient
            output.requires_grad, output.grad_fn = True, self
            self.output_ref = weakref.ref(output)
            self.next_nodes, self.input_shapes = nodes, shapes = [], []
            for x in inputs:
                nodes.append((x.grad_fn or x) if x.requires_grad else None)
                shapes.append(x.data.shape)
            if self.to_save:
                self.saved, self.saved_versions = saved.pack(self, self.to_save, inputs, arrays, result, output)
                self.to_save = ()
        if _GradMode.anomaly is not None:
            _GradMode.anomaly.forward(self, inputs, output)
        return output

    def save_for_backward(self, *arrays):
        """Keep arrays for backward (called in forward); read back as self.saved_tensors."""
        self.to_save = arrays

    @property
    def saved_tensors(self):
        return saved.unpack(self)

    @property
    def saved_arrays(self):
        """What forward saved, as arrays (for backward_arrays)."""
        return [self.output_array if t is saved.OUTPUT else None if t is None else t.data for t in self.saved]

    @property
    def needs_input_grad(self):
        """For each input, whether it needs a gradient (ops may skip the work for the others)."""
        return [node is not None for node in self.next_nodes]

    def _input_grads(self, g, create_graph):
        """dL/dx for each input as Tensors (None where not needed): by the fast array
        path when it exists and no graph is wanted, else by backward."""
        if self.saved is None:
            saved.unpack(self)                  # raises: the graph was already freed
        saved.check_versions(self)
        if not create_graph and hasattr(self, "backward_arrays"):
            grads = self.backward_arrays(g.data)
            if type(grads) is not tuple:
                return (Tensor._from_array(grads),)
            return [None if a is None else Tensor._from_array(a) for a in grads]
        grads = self.backward(g)
        return grads if type(grads) is tuple else (grads,)

    def release(self):
        """Forget what forward saved once backward no longer needs it."""
        self.saved = self.output_array = None
        self.saved_versions = ()

    def forward(self, *arrays):
        raise NotImplementedError

    def backward(self, g):
        raise NotImplementedError


# --------------------------------------------------------------------------- the backward walk
def run_backward(roots, root_grads, create_graph=False, retain_graph=False, deliver=None, capture=()):
    """Propagate root_grads (dL/droot) back through the graph.

    Each leaf that needs a gradient gets deliver(leaf, its complete gradient) as soon
    as every path to it is done. capture: ids of grad_fns whose output's gradient is
    wanted too (mg.grad of a non-leaf); returns {id(grad_fn): gradient} for them.
    """
    # 1. count, for every node, how many gradients will arrive at it
    nodes = [root.grad_fn or root for root in roots]
    waiting = count_uses(nodes)
    # 2. add up the gradients arriving at each node; a function whose output's gradient
    #    is complete runs its backward, whose results arrive at its inputs' nodes
    gradients, captured, ready = {}, {}, []
    arriving = zip(nodes, root_grads)
    previous_mode, _GradMode.enabled = _GradMode.enabled, create_graph
    try:
        while True:
            for node, grad in arriving:
                key = id(node)
                gradients[key] = gradients[key] + grad if key in gradients else grad
                waiting[key] -= 1
                if waiting[key] == 0:                    # nothing else will add to it
                    if isinstance(node, Function):
                        ready.append(node)
                    else:
                        deliver(node, _run_hooks(node.hooks, gradients.pop(key)))
            if not ready:
                return captured
            function = ready.pop()
            grad = _run_hooks(function.hooks, gradients.pop(id(function)))
            if id(function) in capture:
                captured[id(function)] = grad
            input_grads = function._input_grads(grad, create_graph)
            if _GradMode.anomaly is not None:
                _GradMode.anomaly.backward(function, grad, input_grads)
            if not retain_graph:
                function.release()
            arriving = [(node, g if g is not None and g.shape == shape else _fit(g, shape, grad))
                        for node, shape, g in zip_longest(function.next_nodes, function.input_shapes, input_grads)
                        if node is not None]
    finally:
        _GradMode.enabled = previous_mode


def count_uses(nodes):
    """{id(node): the number of gradients that will arrive at it}, for every node (grad_fn
    or leaf) reachable from `nodes`: one per edge into it, plus one per time it is in
    `nodes`. Backward's first step; a parameter's count is how many times the graph
    uses it, and a parameter the graph never reaches is absent."""
    waiting, stack = {}, [nodes]
    while stack:
        for node in stack.pop():
            if node is not None:
                key = id(node)
                if key in waiting:
                    waiting[key] += 1
                else:
                    waiting[key] = 1
                    if isinstance(node, Function):
                        stack.append(node.next_nodes)
    return waiting


def graph_roots(output):
    """The graph nodes behind the tensors in a module's output (a Tensor, or tuples,
    lists and dicts of them, nested): each tensor's grad_fn, or the tensor itself if it
    is a leaf that requires grad. count_uses(graph_roots(output)) sees the whole graph."""
    roots, pending = [], [output]
    while pending:
        value = pending.pop()
        if isinstance(value, (tuple, list)):
            pending.extend(value)
        elif isinstance(value, dict):
            pending.extend(value.values())
        elif isinstance(value, Tensor) and value.requires_grad:
            roots.append(value.grad_fn or value)
    return roots


def _fit(g, shape, output_grad):
    """g summed back to the input's shape (undoing broadcasting); a missing gradient
    (None, or one that backward did not return) counts as zero, as in PyTorch, so the
    input's node still hears from every edge into it and its upstream graph still runs."""
    if g is None:
        return Tensor._from_array(backend.get_array_module(output_grad.data).zeros(shape, output_grad.data.dtype))
    return sum_to(g, shape)


def _run_hooks(hooks, grad):
    """A tensor's hooks see its gradient in turn; one may return a replacement."""
    for hook in hooks:                   # usually none: hooks is an empty tuple
        replaced = hook(grad)
        if replaced is not None:
            grad = replaced
    return grad


def backward(tensor, grad=None, create_graph=False, retain_graph=None):
    """Add d(tensor)/d(leaf) to leaf.grad for every leaf that requires grad (Tensor.backward)."""
    if not tensor.requires_grad:
        raise RuntimeError("backward(): this tensor does not require grad and has no graph "
                           "(did you forget requires_grad=True, or compute it under no_grad?)")
    given = set()

    def accumulate(leaf, g):
        if leaf.grad is not None:
            leaf.grad = leaf.grad + g
        elif not create_graph and (id(g.data) in given or getattr(g.data, "base", None) is not None):
            # one array may reach several leaves (x + y), or be a view (a broadcast, a
            # reshape of another gradient): each .grad gets its own, so that changing
            # one in place never changes another
            leaf.grad = Tensor._from_array(g.data.copy())
        else:
            leaf.grad = g
        given.add(id(leaf.grad.data))
        for hook in leaf.post_accumulate_hooks:
            hook(leaf)

    run_backward([tensor], [_initial_grad(tensor, grad)], create_graph,
                 create_graph if retain_graph is None else retain_graph, deliver=accumulate)


def grad(outputs, inputs, grad_outputs=None, create_graph=False, retain_graph=None):
    """The gradients of `outputs` with respect to `inputs`, as a list (torch.autograd.grad).
    .grad is not touched. An input that does not influence the outputs gets a zero
    gradient (PyTorch raises unless allow_unused=True)."""
    outputs = list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]
    inputs = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
    if not isinstance(grad_outputs, (list, tuple)):
        grad_outputs = [grad_outputs] * len(outputs) if grad_outputs is None else [grad_outputs]
    for output in outputs:
        if not output.requires_grad:
            raise RuntimeError("grad(): an output does not require grad and has no graph")
    found = {}
    captured = run_backward(
        outputs, [_initial_grad(o, g) for o, g in zip(outputs, grad_outputs)], create_graph,
        create_graph if retain_graph is None else retain_graph,
        deliver=lambda leaf, g: found.__setitem__(id(leaf), g),
        capture={id(x.grad_fn) for x in inputs if x.grad_fn is not None})
    result = []
    for x in inputs:
        g = captured.get(id(x.grad_fn)) if x.grad_fn is not None else found.get(id(x))
        result.append(g if g is not None else Tensor._from_array(backend.get_array_module(x.data).zeros_like(x.data)))
    return result


def _initial_grad(output, grad):
    if grad is None:
        if output.size != 1:
            raise RuntimeError(f"backward(): grad can be omitted only for a single-element tensor, "
                               f"this one has shape {output.shape}")
        return Tensor._from_array(backend.get_array_module(output.data).ones(output.shape, dtype=output.dtype))
    grad = grad if isinstance(grad, Tensor) else Tensor(grad, dtype=output.dtype, device=output.device)
    if grad.shape != output.shape:
        raise ValueError(f"backward(): grad of shape {grad.shape} does not match output shape {output.shape}")
    return grad


# tensor.py builds Tensor on Function (above), the ops build on both: imported last.
from .tensor import Tensor, as_tensors, conform_inputs  # noqa: E402
from . import saved  # noqa: E402
from .ops.shape import sum_to  # noqa: E402
