"""Lesson 1: tensors and automatic differentiation.

What you will learn
  * a Tensor is an array that remembers the operation that made it;
  * those operations form a directed acyclic graph (DAG) from the inputs (leaves)
    to the output, and backward() walks it in reverse, applying the chain rule
    dL/dx = dL/dy * dy/dx at every node;
  * a value used twice gets the SUM of the gradients from both uses;
  * how to check a gradient against finite differences with mg.gradcheck;
  * .grad accumulates across backward calls, no_grad() records nothing, and
    create_graph=True lets you differentiate a derivative again.

Read alongside
  minigrad/autograd.py        Function, run_backward (counting each node's uses, then Kahn's order)
  minigrad/tensor.py          Tensor: every operator and method is one op
  minigrad/ops/elementwise.py each op's forward and backward side by side
  minigrad/tools/gradcheck.py central differences
  minigrad/tools/viz.py       the graph as Graphviz DOT text

Run:  python lessons/01_autograd.py [--quick] [--out DIR]
Writes graph.dot (the DAG as Graphviz text), graph.png (the same DAG drawn by
matplotlib) and tanh_derivative.png into the output folder.
"""
import argparse
import math
import os
import re

import matplotlib
matplotlib.use("Agg")                    # write PNG files, never open a window
import matplotlib.pyplot as plt
import numpy as np

import minigrad as mg

parser = argparse.ArgumentParser(description="Lesson 1: tensors and automatic differentiation")
parser.add_argument("--quick", action="store_true", help="a run of a few seconds (used by the tests)")
parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                  "output", "01_autograd"),
                    help="folder for the pictures and files this lesson writes")
args = parser.parse_args()
os.makedirs(args.out, exist_ok=True)
mg.manual_seed(0)


def section(title):
    print(f"\n=== {title} " + "=" * max(0, 70 - len(title)))


# ---------------------------------------------------------------------------
section("1. A tensor is an array plus (optionally) a history")
x = mg.tensor([1.0, 2.0, 3.0])
print("x         =", x)
print("x.shape   =", x.shape, " x.dtype =", x.dtype, " x.device =", x.device)
print("x.data is a plain numpy array:", type(x.data).__name__)
print("Python floats become float32, as in PyTorch.")

# ---------------------------------------------------------------------------
section("2. A small expression, by hand and by autograd")
# The expression (a scalar version of one neuron with a squared error):
#     z = w * x + b              the neuron's weighted input
#     y = tanh(z)                its activation
#     L = (y - t)^2 + 0.1 * w^2  a squared error plus a penalty on w
# Note that w is used TWICE (in z and in the penalty): the graph is a DAG, not a tree.
w = mg.tensor(0.5, requires_grad=True, dtype="float64"); w.name = "w"
b = mg.tensor(-0.3, requires_grad=True, dtype="float64"); b.name = "b"
x_value, target = 2.0, 0.8
z = w * x_value + b;              z.name = "z"
y = z.tanh();                     y.name = "y"
error = (y - target) ** 2;        error.name = "error"
penalty = 0.1 * w ** 2;           penalty.name = "penalty"
L = error + penalty;              L.name = "L"
print(f"z = w*x + b           = {z.item():.6f}")
print(f"y = tanh(z)           = {y.item():.6f}")
print(f"L = (y-t)^2 + 0.1 w^2 = {L.item():.6f}")
print("L =", L, " <- grad_fn names the operation that made L")

# The graph exists now, so draw it BEFORE backward: backward frees the saved
# inputs of every operation (to save memory) unless retain_graph=True.
dot_text = mg.viz.to_dot(L)
dot_path = os.path.join(args.out, "graph.dot")
with open(dot_path, "w") as handle:
    handle.write(dot_text)
print(f"\nThe graph in Graphviz DOT ({dot_path}; render with `dot -Tpng graph.dot`):")
print(dot_text)

# ---------------------------------------------------------------------------
section("3. The DAG, and the order in which backward visits it")
# Read the nodes and edges back from the DOT text. Ellipses are tensors, boxes
# are operations; an edge goes from an input to its op and from an op to its output.
labels = dict(re.findall(r'^\s*(\w+) \[label="([^"]*)"', dot_text, flags=re.M))
is_parameter = set(re.findall(r'^\s*(\w+) \[.*fillcolor', dot_text, flags=re.M))
edges = re.findall(r"^\s*(\w+) -> (\w+);", dot_text, flags=re.M)
edges = sorted(set(edges), key=edges.index)     # w * w would list the edge twice; keep one
inputs_of = {node: [s for s, t in edges if t == node] for node in labels}


def describe(node):
    """A short name: the tensor's name, 'const' for a leaf that needs no gradient,
    'tmp' for an unnamed intermediate result, the op's class name for an op."""
    if node.startswith("f"):
        return labels[node]
    if ":" in labels[node]:
        return labels[node].split(":")[0]
    return "tmp" if inputs_of[node] else ("param" if node in is_parameter else "const")


# depth = length of the longest path from a leaf, so every input of a node is
# shallower than the node: sorting by depth is one topological order of the graph.
# backward needs the reverse of such an order; minigrad's run_backward gets it by
# counting how many ops use each op's output and running an op once all of them
# have passed their gradient back (Kahn's algorithm, minigrad/autograd.py).
depth = {node: 0 for node in labels}
for _ in labels:                                 # relax until stable (the graph is small)
    for source, target_node in edges:
        depth[target_node] = max(depth[target_node], depth[source] + 1)
print("Each operation, in forward (topological) order:")
for node in sorted((n for n in labels if n.startswith("f")), key=depth.get):
    output = next(t for s, t in edges if s == node)
    arguments = ", ".join(describe(s) for s in inputs_of[node])
    print(f"  depth {depth[node]:2d}:  {describe(output):8s} = {labels[node]}({arguments})")
print("backward() visits them in reverse: an op runs only after every op that used its")
print("output has passed its gradient back (it counts those uses first), so the gradient")
print("of w is complete (both of its uses summed) before it is passed on.")

# Draw it: output on the right; each node's inputs are stacked to its left.
place, next_free_row = {}, {}
root = next(n for n in labels if n.startswith("t") and all(s != n for s, _ in edges))
stack = [(root, 0.0)]
while stack:
    node, row = stack.pop()
    if node in place:
        continue
    column = depth[node] if inputs_of[node] else min(depth[t] for s, t in edges if s == node) - 1
    row = max(row, next_free_row.get(column, row))   # do not overlap a node already in the column
    next_free_row[column] = row + 1
    place[node] = (column, -row)
    stack.extend((source, row + k) for k, source in reversed(list(enumerate(inputs_of[node]))))
figure, axes = plt.subplots(figsize=(12, 4))
for source, target_node in edges:
    axes.annotate("", xy=place[target_node], xytext=place[source],
                  arrowprops=dict(arrowstyle="->", color="gray", shrinkA=18, shrinkB=18))
for node, (px, py) in place.items():
    is_op = node.startswith("f")
    axes.text(px, py, describe(node), ha="center", va="center", fontsize=9,
              bbox=dict(boxstyle="square" if is_op else "round",
                        facecolor="wheat" if is_op else ("lightblue" if node in is_parameter else "white")))
axes.set_xlim(-0.7, max(px for px, _ in place.values()) + 0.7)
axes.set_ylim(min(py for _, py in place.values()) - 0.7, 0.7)
axes.axis("off")
axes.set_title("The graph of L: tensors (rounded; blue = needs a gradient) and operations (square)")
figure.tight_layout()
figure.savefig(os.path.join(args.out, "graph.png"), dpi=100)
plt.close(figure)

# ---------------------------------------------------------------------------
section("4. backward(): the chain rule, node by node")
L.backward()
# By hand, going backwards through the graph:
#     dL/dy = 2 (y - t)
#     dL/dz = dL/dy * (1 - tanh(z)^2)
#     dL/db = dL/dz * 1
#     dL/dw = dL/dz * x  +  0.2 w        <- two paths from w to L, summed
y_value = math.tanh(0.5 * x_value - 0.3)
dL_dy = 2 * (y_value - target)
dL_dz = dL_dy * (1 - y_value ** 2)
by_hand = {"w": dL_dz * x_value + 0.2 * 0.5, "b": dL_dz}
print(f"dL/dw  autograd {w.grad.item(): .10f}   by hand {by_hand['w']: .10f}")
print(f"dL/db  autograd {b.grad.item(): .10f}   by hand {by_hand['b']: .10f}")
assert abs(w.grad.item() - by_hand["w"]) < 1e-12 and abs(b.grad.item() - by_hand["b"]) < 1e-12

# ---------------------------------------------------------------------------
section("5. Checking gradients numerically: mg.gradcheck")
# Central differences: dL/dx_j ~ (L(x + eps e_j) - L(x - eps e_j)) / (2 eps), error O(eps^2).
# gradcheck compares every element of every input that requires grad.
X = mg.randn(4, 3, dtype="float64", requires_grad=True)
W = mg.randn(3, 2, dtype="float64", requires_grad=True)
bias = mg.randn(2, dtype="float64", requires_grad=True)     # broadcast over the 4 rows


def small_layer(X, W, bias):
    """mean((tanh(X W + bias))^2): a matmul, a broadcast add, tanh, a power and a mean."""
    return ((X @ W + bias).tanh() ** 2).mean()


print("gradcheck(small_layer, [X, W, bias]) ->", mg.gradcheck(small_layer, [X, W, bias]))
try:
    # A deliberately wrong "gradient": detach() cuts W out of the graph in one place,
    # so autograd misses a path and the numerical check catches it.
    mg.gradcheck(lambda X, W: (X @ W).sum() + (X @ W.detach()).sum(), [X, W])
except AssertionError as problem:
    print("a function whose graph misses a path fails, as it should:\n   ", str(problem)[:150])

# ---------------------------------------------------------------------------
section("6. Gradients accumulate; zero them between steps")
p = mg.tensor([1.0, -2.0], requires_grad=True)
(p * p).sum().backward()
print("after one backward   p.grad =", p.grad, "  (d/dp sum p^2 = 2p)")
(p * p).sum().backward()
print("after a second one   p.grad =", p.grad, "  (added, not replaced)")
p.grad = None                                  # what optimizer.zero_grad() does
with mg.no_grad():
    q = p * 3
print("inside no_grad, q.requires_grad =", q.requires_grad, "(no graph is recorded)")

# ---------------------------------------------------------------------------
section("7. Derivatives of derivatives (create_graph=True)")
s = mg.tensor(0.7, dtype="float64", requires_grad=True)
(first,) = mg.grad(s.tanh(), [s], create_graph=True)       # d tanh/ds = 1 - tanh^2
(second,) = mg.grad(first, [s])                             # d^2 tanh/ds^2 = -2 tanh (1 - tanh^2)
t = math.tanh(0.7)
print(f"tanh'(0.7)  = {first.item():.8f}   formula {1 - t * t:.8f}")
print(f"tanh''(0.7) = {second.item():.8f}   formula {-2 * t * (1 - t * t):.8f}")

grid = mg.tensor(np.linspace(-4, 4, 41 if args.quick else 201), requires_grad=True)
values = grid.tanh()
values.sum().backward()                       # d/dx_i sum_j tanh(x_j) = tanh'(x_i)
figure, axes = plt.subplots(figsize=(6, 4))
axes.plot(grid.numpy(), values.detach().numpy(), label="tanh(x)")
axes.plot(grid.numpy(), grid.grad.numpy(), label="autograd: d tanh / dx")
axes.plot(grid.numpy(), 1 - np.tanh(grid.numpy()) ** 2, "k:", label="1 - tanh(x)^2")
axes.legend(); axes.set_xlabel("x"); axes.grid(alpha=0.3)
figure.tight_layout()
figure.savefig(os.path.join(args.out, "tanh_derivative.png"), dpi=100)
plt.close(figure)

print(f"\nWrote graph.dot, graph.png and tanh_derivative.png to {args.out}")
