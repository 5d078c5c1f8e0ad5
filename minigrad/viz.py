"""Draw the computation graph as Graphviz DOT text.

    print(mg.viz.to_dot(loss))      # paste into `dot -Tpng` or an online viewer

Tensors are ellipses (labelled with name or shape), operations are boxes; the
edges follow the forward direction, inputs -> op -> output, the DAG that
backward walks in reverse.
"""
from .tensor import Tensor


def _label(tensor):
    name = f"{tensor.name}: " if tensor.name else ""
    return f"{name}{tensor.shape} {tensor.dtype}"


def to_dot(tensor):
    """The graph that produced `tensor`, in DOT. Walks iteratively (no recursion)."""
    if not isinstance(tensor, Tensor):
        raise TypeError(f"to_dot: expected a Tensor, got {type(tensor).__name__}")
    lines = ["digraph minigrad {", "  rankdir=LR;", '  node [fontname="Helvetica"];']
    seen_tensors, seen_functions = set(), set()
    stack = [tensor]
    while stack:
        t = stack.pop()
        if id(t) in seen_tensors:
            continue
        seen_tensors.add(id(t))
        colour = ', style=filled, fillcolor="lightblue"' if t.is_leaf and t.requires_grad else ""
        lines.append(f'  t{id(t)} [label="{_label(t)}", shape=ellipse{colour}];')
        function = t._creator
        if function is None or id(function) in seen_functions:
            continue
        seen_functions.add(id(function))
        lines.append(f'  f{id(function)} [label="{type(function).__name__}", shape=box];')
        lines.append(f"  f{id(function)} -> t{id(t)};")
        for x in function.inputs or ():
            lines.append(f"  t{id(x)} -> f{id(function)};")
            stack.append(x)
    lines.append("}")
    return "\n".join(lines) + "\n"
