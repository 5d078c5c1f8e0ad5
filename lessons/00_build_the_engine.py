"""Lesson 0: build the engine: a scalar autograd in one page, then minigrad's.

What you will learn
  * reverse-mode automatic differentiation is small: a number that remembers the
    numbers it was made from, and the derivative of itself with respect to each of
    them (its "local gradient"), is enough to compute every gradient of a result;
  * backward() visits the graph in reverse topological order: a node passes its
    gradient on only when every use of it has passed its share back (Kahn's
    algorithm). Written with a loop, not recursion, it handles a chain of 5,000
    steps, where a recursive walk hits Python's recursion limit;
  * your engine agrees with minigrad to the last digits, trains a neuron and a
    tiny network exactly as minigrad does, and needs a node per number where
    minigrad needs one per array;
  * the same ideas, named by file and function in minigrad's core.

Read alongside
  minigrad/autograd.py        Function.__call__ (records grad_fn and next_nodes), run_backward
                              (counts each node's uses, then Kahn's order)
  minigrad/ops/elementwise.py Mul.backward, Tanh.backward: the local derivatives, for arrays
  minigrad/saved.py           save_for_backward / saved_tensors, and the in-place check
  minigrad/tensor.py          Tensor.register_hook (used here to watch the order)

Run:  python lessons/00_build_the_engine.py [--quick] [--out DIR]
Writes training.png (your engine's losses beside minigrad's, and what the tiny
network learned) into the output folder.
"""
import argparse
import ast
import inspect
import math
import os
import random
import sys

import matplotlib
matplotlib.use("Agg")                    # write PNG files, never open a window
import matplotlib.pyplot as plt
import numpy as np

import minigrad as mg
from minigrad import optim

parser = argparse.ArgumentParser(description="Lesson 0: build the engine")
parser.add_argument("--quick", action="store_true", help="a run of a few seconds (used by the tests)")
parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                  "output", "00_build_the_engine"),
                    help="folder for the picture this lesson writes")
args = parser.parse_args()
os.makedirs(args.out, exist_ok=True)


def section(title):
    print(f"\n=== {title} " + "=" * max(0, 70 - len(title)))


# =========================================================================== the engine: one page
class Value:
    """A number that remembers how it was made.

    data         the number
    grad         dL/d(this number), filled in by L.backward()
    parents      the Values it was computed from: the edges of the graph
    local_grads  d(this)/d(parent) for each parent, computed right beside the value
    """

    def __init__(self, data, parents=(), local_grads=(), op=""):
        self.data, self.grad = float(data), 0.0
        self.parents, self.local_grads, self.op = parents, local_grads, op

    # Each operation computes its value and its local derivatives side by side.
    def __add__(self, other):                       # d(a+b)/da = 1, d(a+b)/db = 1
        other = other if isinstance(other, Value) else Value(other)
        return Value(self.data + other.data, (self, other), (1.0, 1.0), "+")

    def __mul__(self, other):                       # d(ab)/da = b, d(ab)/db = a
        other = other if isinstance(other, Value) else Value(other)
        return Value(self.data * other.data, (self, other), (other.data, self.data), "*")

    def __pow__(self, k):                           # k a plain number: d(a^k)/da = k a^(k-1)
        return Value(self.data ** k, (self,), (k * self.data ** (k - 1),), f"**{k}")

    def tanh(self):                                 # d tanh(a)/da = 1 - tanh(a)^2
        t = math.tanh(self.data)
        return Value(t, (self,), (1.0 - t * t,), "tanh")

    def exp(self):                                  # d exp(a)/da = exp(a)
        e = math.exp(self.data)
        return Value(e, (self,), (e,), "exp")

    # The rest is the operations above, rearranged.
    def __neg__(self): return self * -1.0
    def __sub__(self, other): return self + (-other)
    def __rsub__(self, other): return (-self) + other
    def __radd__(self, other): return self + other
    def __rmul__(self, other): return self * other
    def __truediv__(self, other): return self * (other ** -1 if isinstance(other, Value) else 1.0 / other)

    def backward(self):
        """Add dL/dv to v.grad for every Value v that L = self depends on.
        Returns the Values in the order their gradients were passed on."""
        # 1. count the uses of every Value: how many gradients will arrive at it
        uses, stack = {id(self): 0}, [self]
        while stack:
            for parent in stack.pop().parents:
                if id(parent) not in uses:
                    uses[id(parent)] = 0
                    stack.append(parent)
                uses[id(parent)] += 1
        # 2. Kahn's order: a Value is ready when all its uses have passed their share back
        self.grad, ready, order = 1.0, [self], []
        while ready:
            v = ready.pop()
            order.append(v)
            for parent, local in zip(v.parents, v.local_grads):
                parent.grad += local * v.grad       # the chain rule, summed over every use
                uses[id(parent)] -= 1
                if uses[id(parent)] == 0:
                    ready.append(parent)
        return order
# =========================================================================== end of the engine


def graph_size(root):
    """How many Values the graph of root holds."""
    seen, stack = {id(root)}, [root]
    while stack:
        for parent in stack.pop().parents:
            if id(parent) not in seen:
                seen.add(id(parent))
                stack.append(parent)
    return len(seen)


# ---------------------------------------------------------------------------
section("1. Your engine on one expression: L = tanh(a*b + c) * a + b^2 / c")
a, b, c = Value(0.8), Value(-1.5), Value(0.3)
for v, name in ((a, "a"), (b, "b"), (c, "c")):
    v.op = name
d = a * b + c
L = d.tanh() * a + b ** 2 / c
order = L.backward()
print(f"L = {L.data:.12f}")
print(f"dL/da = {a.grad:.12f}   dL/db = {b.grad:.12f}   dL/dc = {c.grad:.12f}")
print(f"backward passed gradients on in this order ({len(order)} Values, output first):")
print("   ", " -> ".join(v.op or "const" for v in order))
# a is used twice (in a*b and in the final product): its gradient is the sum of both paths,
# and it is passed on only after both have arrived, so it appears after every Value that uses it.
position = {id(v): i for i, v in enumerate(order)}
for v in order:
    assert all(position[id(p)] > position[id(v)] for p in v.parents), "a Value came before one of its users"
print("every Value came after all the Values computed from it (a reverse topological order)")

# ---------------------------------------------------------------------------
section("2. The same expression in minigrad: the same numbers")
ta, tb, tc = (mg.tensor(v.data, dtype="float64", requires_grad=True) for v in (a, b, c))
tL = (ta * tb + tc).tanh() * ta + tb ** 2 / tc
tL.backward()
rows = [("L", L.data, tL.item()), ("dL/da", a.grad, ta.grad.item()),
        ("dL/db", b.grad, tb.grad.item()), ("dL/dc", c.grad, tc.grad.item())]
for name, mine, theirs in rows:
    print(f"  {name:6s} your engine {mine: .15f}   minigrad {theirs: .15f}")
largest = max(abs(mine - theirs) for _, mine, theirs in rows)
assert largest < 1e-12, largest
print(f"largest difference {largest:.1e}: both do the same float64 arithmetic")
# and both agree with calculus by hand: dL/da = (1 - tanh(d)^2) * b * a + tanh(d)
t = math.tanh(0.8 * -1.5 + 0.3)
by_hand = (1 - t * t) * -1.5 * 0.8 + t
assert abs(a.grad - by_hand) < 1e-12
print(f"by hand, dL/da = (1 - tanh(ab+c)^2) b a + tanh(ab+c) = {by_hand:.15f}")

# ---------------------------------------------------------------------------
section("3. Why a loop and not recursion: a chain of 5,000 steps")
depth = 5000
x = Value(1.0)
y = x
for _ in range(depth):
    y = y * 1.0001
y.backward()
expected = 1.0001 ** depth
assert abs(x.grad - expected) < 1e-9 * expected
print(f"y = x * 1.0001 * ... (5,000 times): dy/dx = {x.grad:.9f} = 1.0001^5000 = {expected:.9f}")


def topological_order_recursive(v, seen, order):
    """The textbook depth-first version (micrograd's): one Python call per level of the graph."""
    if id(v) not in seen:
        seen.add(id(v))
        for parent in v.parents:
            topological_order_recursive(parent, seen, order)
        order.append(v)


try:
    topological_order_recursive(y, set(), [])
    recursion_failed = False
except RecursionError:
    recursion_failed = True
assert recursion_failed
print(f"the recursive walk fails on the same graph: RecursionError (Python's limit is "
      f"{sys.getrecursionlimit()} calls deep)")
tx = mg.tensor(1.0, dtype="float64", requires_grad=True)
ty = tx
for _ in range(depth):
    ty = ty * 1.0001
ty.backward()
assert abs(tx.grad.item() - expected) < 1e-9 * expected
print(f"minigrad walks its graph with a loop too: d/dx = {tx.grad.item():.9f}")

# ---------------------------------------------------------------------------
section("4. Train a neuron with your engine, and the same neuron with minigrad")
# Six points in the plane; the target is +1 above the line x2 = x1 and -1 below.
points = [(0.5, 1.0), (-1.0, 0.0), (1.5, 2.5), (1.0, -0.5), (-0.5, -1.5), (2.0, 0.5)]
targets = [1.0, 1.0, 1.0, -1.0, -1.0, -1.0]
rng = random.Random(0)
w = [Value(rng.uniform(-1, 1)) for _ in range(2)]
bias = Value(0.0)
neuron_steps, neuron_lr = (30 if args.quick else 100), 0.5


def neuron(p):
    """tanh(w . p + bias)"""
    return (w[0] * p[0] + w[1] * p[1] + bias).tanh()


tw = mg.tensor([v.data for v in w], dtype="float64", requires_grad=True)
tbias = mg.tensor(0.0, dtype="float64", requires_grad=True)
X_points = mg.tensor(points, dtype="float64")
T_targets = mg.tensor(targets, dtype="float64")
optimizer = optim.GD([tw, tbias], lr=neuron_lr)
neuron_losses, neuron_losses_mg = [], []
for step in range(neuron_steps):
    # your engine: the mean squared error, backward, and w <- w - lr * dL/dw
    loss = sum((neuron(p) - target) ** 2 for p, target in zip(points, targets)) / len(points)
    for parameter in w + [bias]:
        parameter.grad = 0.0                     # gradients add up: zero them first
    loss.backward()
    for parameter in w + [bias]:
        parameter.data -= neuron_lr * parameter.grad
    # minigrad: the same network on all six points at once
    loss_mg = (((X_points @ tw + tbias).tanh() - T_targets) ** 2).mean()
    optimizer.zero_grad()
    loss_mg.backward()
    optimizer.step()
    neuron_losses.append(loss.data)
    neuron_losses_mg.append(loss_mg.item())
difference = max(abs(p - q) for p, q in zip(neuron_losses, neuron_losses_mg))
print(f"first loss {neuron_losses[0]:.6f}, last loss {neuron_losses[-1]:.6f} after {neuron_steps} steps")
print(f"minigrad's losses, step by step, differ from yours by at most {difference:.1e}")
assert difference < 1e-12 and neuron_losses[-1] < 0.5 * neuron_losses[0]
correct = sum((neuron(p).data > 0) == (target > 0) for p, target in zip(points, targets))
assert correct == len(points)
print(f"the neuron puts all {correct} points on the right side of its line")

# ---------------------------------------------------------------------------
section("5. A tiny network (2 -> 4 -> 1, tanh) learns XOR")
# XOR: no single line separates the two classes, so a neuron cannot do it; a hidden layer can.
xor_points = [(-1.0, -1.0), (-1.0, 1.0), (1.0, -1.0), (1.0, 1.0)]
xor_targets = [-1.0, 1.0, 1.0, -1.0]
rng = random.Random(1)
hidden = 4
W1 = [[Value(rng.uniform(-1, 1)) for _ in range(hidden)] for _ in range(2)]     # W1[i][j]: input i -> unit j
b1 = [Value(0.0) for _ in range(hidden)]
W2 = [Value(rng.uniform(-1, 1)) for _ in range(hidden)]
b2 = Value(0.0)
parameters = [v for row in W1 for v in row] + b1 + W2 + [b2]


def mlp(p):
    h = [(W1[0][j] * p[0] + W1[1][j] * p[1] + b1[j]).tanh() for j in range(hidden)]
    return (sum(W2[j] * h[j] for j in range(hidden)) + b2).tanh()


# the same weights as minigrad tensors: one matrix product replaces eight scalar products
tW1 = mg.tensor([[v.data for v in row] for row in W1], dtype="float64", requires_grad=True)   # (2, 4)
tb1 = mg.tensor([v.data for v in b1], dtype="float64", requires_grad=True)                  # (4,)
tW2 = mg.tensor([v.data for v in W2], dtype="float64", requires_grad=True)                  # (4,)
tb2 = mg.tensor(0.0, dtype="float64", requires_grad=True)
X_xor, T_xor = mg.tensor(xor_points, dtype="float64"), mg.tensor(xor_targets, dtype="float64")


def mlp_mg(X):
    return ((X @ tW1 + tb1).tanh() @ tW2 + tb2).tanh()


optimizer = optim.GD([tW1, tb1, tW2, tb2], lr=0.2)
mlp_steps = 150 if args.quick else 400
mlp_losses, mlp_losses_mg = [], []
for step in range(mlp_steps):
    loss = sum((mlp(p) - target) ** 2 for p, target in zip(xor_points, xor_targets)) / 4
    for parameter in parameters:
        parameter.grad = 0.0
    loss.backward()
    for parameter in parameters:
        parameter.data -= 0.2 * parameter.grad
    loss_mg = ((mlp_mg(X_xor) - T_xor) ** 2).mean()
    optimizer.zero_grad()
    loss_mg.backward()
    optimizer.step()
    mlp_losses.append(loss.data)
    mlp_losses_mg.append(loss_mg.item())
    if step == 0:
        value_nodes = graph_size(loss)
        function_nodes, stack = set(), [loss_mg.grad_fn]     # minigrad's graph: Functions, linked by next_nodes
        while stack:
            node = stack.pop()
            if node is not None and hasattr(node, "next_nodes") and id(node) not in function_nodes:
                function_nodes.add(id(node))
                stack.extend(node.next_nodes)
difference = max(abs(p - q) for p, q in zip(mlp_losses, mlp_losses_mg))
predictions = [mlp(p).data for p in xor_points]
print(f"first loss {mlp_losses[0]:.4f}, last loss {mlp_losses[-1]:.4f} after {mlp_steps} steps")
print("predictions:", ", ".join(f"{p:+.2f}" for p in predictions), "  targets:", xor_targets)
print(f"minigrad's losses differ from yours by at most {difference:.1e}")
assert difference < 1e-10
assert all((p > 0) == (t > 0) for p, t in zip(predictions, xor_targets)) and mlp_losses[-1] < 0.1
print(f"one step's graph: {value_nodes} Values in yours, {len(function_nodes)} Functions in minigrad's")
print("(one node per number against one per array: the same algorithm, and why minigrad is fast)")
assert value_nodes > 10 * len(function_nodes)

figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
left.semilogy(neuron_losses, "C0", lw=3, alpha=0.5, label="neuron: your engine")
left.semilogy(neuron_losses_mg, "C0:", label="neuron: minigrad")
left.semilogy(mlp_losses, "C1", lw=3, alpha=0.5, label="XOR network: your engine")
left.semilogy(mlp_losses_mg, "C1:", label="XOR network: minigrad")
left.set_xlabel("step"); left.set_ylabel("mean squared error"); left.grid(alpha=0.3)
left.set_title("The same losses from both engines"); left.legend()
grid = np.linspace(-1.5, 1.5, 61)
mesh = np.array([(gx, gy) for gy in grid for gx in grid])
with mg.no_grad():
    surface = mlp_mg(mg.tensor(mesh, dtype="float64")).numpy().reshape(len(grid), len(grid))
image = right.contourf(grid, grid, surface, levels=np.linspace(-1, 1, 21), cmap="coolwarm")
figure.colorbar(image, ax=right, label="network output")
for (px, py), target in zip(xor_points, xor_targets):
    right.scatter(px, py, s=120, c="red" if target > 0 else "blue", edgecolors="black")
right.set_xlabel("x1"); right.set_ylabel("x2"); right.set_title("What the XOR network learned")
figure.tight_layout()
figure.savefig(os.path.join(args.out, "training.png"), dpi=100)
plt.close(figure)

# ---------------------------------------------------------------------------
section("6. The same ideas in minigrad's core")
package_root = os.path.dirname(os.path.dirname(os.path.abspath(mg.__file__)))


def where(obj):
    """'minigrad/ops/elementwise.py:42' for a class or function of minigrad."""
    path = os.path.relpath(inspect.getsourcefile(obj), package_root)
    return f"{path}:{inspect.getsourcelines(obj)[1]}"


def source_of(path, name, keep=lambda line: True):
    """The lines of function `name` (or Class.method) in minigrad file `path` that `keep` accepts."""
    text = open(os.path.join(package_root, path), encoding="utf-8").read()
    lines = text.splitlines()
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.ClassDef) and "." in name and node.name == name.split(".")[0]:
            node = next(n for n in node.body if isinstance(n, ast.FunctionDef) and n.name == name.split(".")[1])
            return node.lineno, [line for line in lines[node.lineno - 1:node.end_lineno] if keep(line)]
        if isinstance(node, ast.FunctionDef) and node.name == name:
            return node.lineno, [line for line in lines[node.lineno - 1:node.end_lineno] if keep(line)]
    raise AssertionError(f"{path} no longer defines {name}: this lesson needs updating")


ma = mg.tensor(0.8, dtype="float64", requires_grad=True)
mb = mg.tensor(-1.5, dtype="float64", requires_grad=True)
product = ma * mb
activation = product.tanh()

print("(a) Recording the graph.  Yours: Value(data, parents, local_grads).")
line, recording = source_of("minigrad/autograd.py", "Function.__call__",
                           lambda s: any(key in s for key in ("grad_fn =", "next_nodes", "nodes.append")))
print(f"    minigrad/autograd.py:{line} Function.__call__ runs the op's forward on arrays and, when an")
print("    input needs a gradient, makes the op the output's grad_fn with an edge per input:")
for text in recording:
    print("       ", text.strip())
assert recording, "Function.__call__ should record next_nodes"
assert type(activation.grad_fn).__name__ == "Tanh" and type(product.grad_fn).__name__ == "Mul"
assert activation.grad_fn.next_nodes == [product.grad_fn]
assert product.grad_fn.next_nodes[0] is ma and product.grad_fn.next_nodes[1] is mb
print(f"    tanh(a*b).grad_fn = {type(activation.grad_fn).__name__}, whose next_nodes = "
      f"[{type(product.grad_fn).__name__}] (the op that made its input);")
print("    the Mul's next_nodes are the leaves a and b themselves, as your parents are Values.")
print("    One difference: minigrad's inner nodes are operations (Functions) on whole arrays, yours are")
print("    single numbers; its leaves, like yours, are what the user made.")

print("\n(b) Local derivatives.  Yours: local_grads, multiplied by v.grad in backward.")
for op in (product.grad_fn, activation.grad_fn):
    backward_method = type(op).backward
    print(f"    {where(backward_method)}  {type(op).__name__}.backward:")
    for text in inspect.getsource(backward_method).splitlines():
        print("       ", text)
    assert where(backward_method).startswith(os.path.join("minigrad", "ops", "elementwise.py"))
with mg.no_grad():
    grad_a, grad_b = product.grad_fn.backward(mg.tensor(1.0, dtype="float64"))
    (grad_product,) = (activation.grad_fn.backward(mg.tensor(1.0, dtype="float64")),)
assert grad_a.item() == mb.item() and grad_b.item() == ma.item()
assert abs(grad_product.item() - (1 - math.tanh(0.8 * -1.5) ** 2)) < 1e-15
print("    Mul.backward(g=1) gives (b, a) and Tanh.backward(g=1) gives 1 - tanh^2: your local_grads.")
print("    For arrays the local derivative is a Jacobian matrix, never built: backward computes")
print("    g times it directly (g * b for a product), which is why it receives g.")

print("\n(c) What backward needs, kept by forward.  Yours: the numbers inside local_grads.")
saved_mul = product.grad_fn.saved_tensors
saved_tanh = activation.grad_fn.saved_tensors
assert saved_mul[0] is ma and saved_mul[1] is mb and saved_tanh[0] is activation
print("    minigrad/saved.py: forward calls save_for_backward(a, b) (Mul) or save_for_backward(y)")
print("    (Tanh keeps its output, since 1 - y^2 needs nothing else); backward reads saved_tensors,")
print("    which here are the very tensors a, b and tanh(a*b) (checked with `is`).")
with mg.no_grad():
    ma += 1.0                     # change a in place after Mul saved it
try:
    activation.backward()
    refused = None
except RuntimeError as error:
    refused = str(error)
assert refused is not None and "modified in place" in refused
print("    Your Values never change; a tensor can, so saved.py notes a version number and refuses")
print("    to compute with a changed input:\n       ", refused[:110] + "...")

print("\n(d) The walk.  Yours: Value.backward counts uses, then Kahn's order.")
line, comments = source_of("minigrad/autograd.py", "run_backward", lambda s: s.strip().startswith("#"))
print(f"    minigrad/autograd.py:{line} run_backward does the same, on Functions:")
for text in comments[:6]:
    print("       ", text.strip())
assert comments, "run_backward's steps are explained in its comments"
# Watch the order with hooks: a tensor's hook runs when its gradient is complete.
pa = mg.tensor(0.8, dtype="float64", requires_grad=True)
pb = mg.tensor(-1.5, dtype="float64", requires_grad=True)
pc = mg.tensor(0.3, dtype="float64", requires_grad=True)
pd = pa * pb + pc
pe = pd.tanh()
pL = pe * pa + pb ** 2 / pc
named = {"a": pa, "b": pb, "c": pc, "d": pd, "tanh(d)": pe}
used_by = {"a": ["d", "L"], "b": ["d", "L"], "c": ["d", "L"], "d": ["tanh(d)"], "tanh(d)": ["L"]}
completed = ["L"]
for name, tensor in named.items():
    tensor.register_hook(lambda grad, name=name: completed.append(name))
pL.backward()
print("    gradients became complete in this order:", " -> ".join(completed))
for name, users in used_by.items():
    assert all(completed.index(user) < completed.index(name) for user in users), (name, completed)
assert abs(pa.grad.item() - a.grad) < 1e-12
print("    each tensor's gradient was complete only after those of all the tensors computed from it,")
print("    and a's gradient (two uses, summed) equals your engine's.")

section("7. Next")
print("Write backward passes for arrays yourself: lessons/exercises/ holds functions to fill in")
print("(cross-entropy, layer norm, attention, convolution by im2col, Adam), and")
print("    python lessons check            grades every exercise")
print("    python lessons check layer_norm grades one, naming the element that is wrong")
print(f"\nWrote training.png to {args.out}")
