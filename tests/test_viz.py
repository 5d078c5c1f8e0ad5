"""mg.viz.to_dot: the DOT text is parsed back into nodes and edges, and the graph must
be exactly the DAG of the expression, with each tensor's shape in its label."""
import re

import numpy as np
import pytest

import minigrad as mg

NODE = re.compile(r'^\s*(\w+) \[label="([^"]*)", shape=(\w+)([^\]]*)\];\s*$')
EDGE = re.compile(r"^\s*(\w+) -> (\w+);\s*$")


def parse_dot(text):
    """{node id: (label, shape, extra attributes)} and a list of (tail, head) edges.
    Every line must be a header, a node, an edge or the closing brace."""
    lines = text.strip().splitlines()
    assert lines[0] == "digraph minigrad {" and lines[-1] == "}", text
    nodes, edges = {}, []
    for line in lines[1:-1]:
        if line.strip() in ("rankdir=LR;",) or line.strip().startswith("node ["):
            continue
        if (found := NODE.match(line)):
            assert found[1] not in nodes, f"node {found[1]} declared twice"
            nodes[found[1]] = (found[2], found[3], found[4])
        elif (found := EDGE.match(line)):
            edges.append((found[1], found[2]))
        else:
            raise AssertionError(f"unexpected DOT line: {line!r}")
    return nodes, edges


def test_dot_of_a_small_expression_is_exactly_its_graph(device):
    a = mg.randn(2, 3, requires_grad=True)
    a.name = "a"
    b = mg.randn(3, requires_grad=True)
    b.name = "b"
    ab = a * b
    t = ab + a                      # a is used twice: one node, two out-edges
    out = t.sum()
    nodes, edges = parse_dot(mg.viz.to_dot(out))

    tensor_names = {f"t{id(x)}": n for x, n in [(a, "a"), (b, "b"), (ab, "ab"), (t, "t"), (out, "out")]}
    tensor_nodes = {k for k, (_, shape, _) in nodes.items() if shape == "ellipse"}
    op_nodes = {k for k, (_, shape, _) in nodes.items() if shape == "box"}
    assert tensor_nodes == set(tensor_names), "one ellipse per tensor of the expression, no more"
    assert sorted(nodes[k][0] for k in op_nodes) == ["Add", "Mul", "Sum"]
    assert len(nodes) == 8

    # shapes (and names, for named tensors) in the labels
    assert nodes[f"t{id(a)}"][0] == "a: (2, 3) float32"
    assert nodes[f"t{id(b)}"][0] == "b: (3,) float32"
    assert nodes[f"t{id(ab)}"][0] == "(2, 3) float32"
    assert nodes[f"t{id(t)}"][0] == "(2, 3) float32"
    assert nodes[f"t{id(out)}"][0] == "() float32"
    # leaves that require grad are highlighted, the others are not
    highlighted = {tensor_names[k] for k in tensor_nodes if "fillcolor" in nodes[k][2]}
    assert highlighted == {"a", "b"}

    def name(node):
        return tensor_names.get(node) or nodes[node][0]

    named_edges = sorted((name(u), name(v)) for u, v in edges)
    assert len(named_edges) == len(set(named_edges)), f"an edge is drawn twice: {named_edges}"
    assert named_edges == sorted([("a", "Mul"), ("b", "Mul"), ("Mul", "ab"),
                                  ("ab", "Add"), ("a", "Add"), ("Add", "t"),
                                  ("t", "Sum"), ("Sum", "out")])


def test_dot_of_a_leaf_is_a_single_node_and_a_constant_is_not_highlighted(device):
    x = mg.tensor(np.zeros((4, 1)))
    nodes, edges = parse_dot(mg.viz.to_dot(x))
    assert edges == []
    assert list(nodes.values()) == [("(4, 1) float64", "ellipse", "")]


def test_a_shared_subexpression_is_drawn_once(device):
    x = mg.randn(3, requires_grad=True)
    h = x.tanh()
    y = (h * h).sum()               # Mul takes h twice: two edges h -> Mul, one h node
    nodes, edges = parse_dot(mg.viz.to_dot(y))
    assert sorted(label for label, shape, _ in nodes.values() if shape == "box") == ["Mul", "Sum", "Tanh"]
    mul = next(k for k, (label, _, _) in nodes.items() if label == "Mul")
    assert edges.count((f"t{id(h)}", mul)) == 2
    assert sum(1 for k in nodes if k == f"t{id(h)}") == 1
    with pytest.raises(TypeError, match="to_dot"):
        mg.viz.to_dot([x])
