"""The exercises grade themselves: the reference solutions pass, the blank files are
reported as not written, and a plausible mistake planted in a solution fails with a
message that names the case, the output, the element, both values and the right hint.

(`python lessons check`, the command around this grader, is tested in test_lessons.py.)
"""
import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXERCISES_DIR = ROOT / "lessons" / "exercises"
SOLUTIONS_DIR = EXERCISES_DIR / "solutions"
if str(ROOT / "lessons") not in sys.path:
    sys.path.insert(0, str(ROOT / "lessons"))          # as `python lessons check` has it

from exercises import checks  # noqa: E402

NAMES = list(checks.EXERCISES)


def grade_source(tmp_path, name, source):
    (tmp_path / f"{name}.py").write_text(source, encoding="utf-8")
    (result,) = checks.check([name], tmp_path)
    return result


def planted(name, old, new):
    """The reference solution of `name` with one plausible mistake: old replaced by new."""
    source = (SOLUTIONS_DIR / f"{name}.py").read_text(encoding="utf-8")
    assert source.count(old) == 1, f"the planted bug's anchor {old!r} is not (once) in solutions/{name}.py"
    return source.replace(old, new)


def test_the_course_has_the_exercises_the_issue_asks_for():
    assert {"cross_entropy", "layer_norm", "attention", "conv2d", "adam"} <= set(NAMES)


def test_every_exercise_has_a_blank_file_a_solution_and_a_line_in_the_index():
    on_disk = {path.stem for path in EXERCISES_DIR.glob("*.py")} - {"__init__", "grading", "checks"}
    assert on_disk == set(NAMES)
    assert {path.stem for path in SOLUTIONS_DIR.glob("*.py")} - {"__init__"} == set(NAMES)
    index = (EXERCISES_DIR / "__init__.py").read_text(encoding="utf-8")
    for name in NAMES:
        assert f"{name}.py" in index, f"lessons/exercises/__init__.py does not list {name}.py"


@pytest.mark.parametrize("name", NAMES)
def test_each_blank_function_states_the_math_and_raises_not_implemented(name):
    tree = ast.parse((EXERCISES_DIR / f"{name}.py").read_text(encoding="utf-8"))
    docstring = ast.get_docstring(tree)
    for heading in ("What to write", "The math", "In minigrad", f"python lessons check {name}"):
        assert heading in docstring, f"exercises/{name}.py: its docstring lacks {heading!r}"
    functions = {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}
    for function in checks.EXERCISES[name].functions:
        raises = [node for node in ast.walk(functions[function]) if isinstance(node, ast.Raise)]
        assert raises and "NotImplementedError" in ast.unparse(raises[0]), f"{function} should be left blank"


def test_the_reference_solutions_pass_every_check():
    results = checks.check(NAMES, SOLUTIONS_DIR)
    failed = {result.name: result.message for result in results if not result.passed}
    assert not failed, failed


def test_the_blank_exercises_are_reported_as_not_written_naming_the_function_and_the_file():
    for name, result in zip(NAMES, checks.check(NAMES, EXERCISES_DIR)):
        assert result.status == "TODO", (name, result.message)
        first_function = checks.EXERCISES[name].functions[0]
        assert f"{first_function} in " in result.message and f"exercises/{name}.py" in result.message
        assert "not written yet" in result.message and "the math is at the top of this file" in result.message


# (exercise, text in the solution, the mistake put in its place, words the hint must contain)
MISTAKES = [
    ("matmul", "dA = G @ B.T", "dA = 2 * G @ B.T", "2 times the right one"),
    ("matmul", "return dA, dB.reshape(-1, *B.shape).sum(axis=0)", "return dA, dB.reshape(-1, *B.shape)[0]",
     "first item of the batch"),
    ("softmax", "return y * (g - (g * y).sum(axis=-1, keepdims=True))", "return g * y * (1 - y)",
     "diagonal of the Jacobian"),
    ("softmax", "(g * y).sum(axis=-1, keepdims=True)", "(g * y).sum()", "per row"),
    ("cross_entropy", "return probs / n", "return probs", "divide by N"),
    ("cross_entropy", "return probs / n", "return -probs / n", "sign"),
    ("cross_entropy", "probs[np.arange(n), target] -= 1.0", "pass", "-1 at the target"),
    ("cross_entropy", "np.exp(logits - logits.max(axis=-1, keepdims=True))", "np.exp(logits)", "nan or inf"),
    ("layer_norm", "dx = inv_std * (g_hat - g_hat.mean(axis=-1, keepdims=True)\n",
     "dx = inv_std * (g_hat\n", "path through the mean"),
    ("layer_norm", "- x_hat * (g_hat * x_hat).mean(axis=-1, keepdims=True))", ")",
     "path through the variance"),
    ("layer_norm", "((x - mu) ** 2).mean(axis=-1, keepdims=True)",
     "((x - mu) ** 2).sum(axis=-1, keepdims=True) / (x.shape[-1] - 1)", "not d - 1"),
    ("layer_norm", "(g * x_hat).sum(axis=leading)", "(g * x).sum(axis=leading)", "NORMALISED"),
    ("layer_norm", "g.sum(axis=leading)", "g.sum(axis=0)", "every axis but the last"),
    ("attention", "dq = d_scores @ k * scale", "dq = d_scores @ k", "1/sqrt(d_k)"),
    ("attention", "dk = np.swapaxes(d_scores, -1, -2) @ q * scale", "dk = np.swapaxes(d_scores, -1, -2) @ q",
     "1/sqrt(d_k)"),
    ("attention", "d_scores = weights * (d_weights - (d_weights * weights).sum(axis=-1, keepdims=True))",
     "d_scores = weights * (1 - weights) * d_weights", "diagonal of its Jacobian"),
    ("attention", "    if mask is not None:\n        scores = np.where(mask, scores, -np.inf)\n", "",
     "ignores the mask"),
    ("conv2d", "] += cols[:, :, i, j]", "] = cols[:, :, i, j]", "(+=, not =)"),
    ("conv2d", ".sum(axis=0)      # sum_n", "[0]      # sum_n", "first image"),
    ("conv2d", "g.sum(axis=(0, 2, 3))", "g.sum(axis=(2, 3))", "shape"),
    ("adam", "m_hat = m / (1 - beta1 ** t)", "m_hat = m", "bias correction"),
    ("adam", "v_hat = v / (1 - beta2 ** t)", "v_hat = v", "bias correction"),
    ("adam", "np.sqrt(v_hat) + eps", "np.sqrt(v_hat + eps)", "outside the square root"),
    ("adam", "    grad = grad + weight_decay * param\n", "", "weight_decay is ignored"),
    ("adam", "    grad = grad + weight_decay * param\n", "    param = param * (1 - lr * weight_decay)\n",
     "AdamW's decoupled decay"),
    ("adam", "return param - lr * m_hat / (np.sqrt(v_hat) + eps), m, v",
     "return param - lr * m_hat / (np.sqrt(v_hat) + eps), m_hat, v_hat", "raw moments"),
]


@pytest.mark.parametrize("name, old, new, hint", MISTAKES, ids=[f"{m[0]}-{m[3]}" for m in MISTAKES])
def test_a_planted_mistake_fails_with_the_element_both_values_and_the_right_hint(tmp_path, name, old, new, hint):
    result = grade_source(tmp_path, name, planted(name, old, new))
    assert result.status == "FAIL", f"the mistake {new!r} in {name} was not caught"
    assert "case " in result.message and "hint:" in result.message, result.message
    if "has shape" not in result.message:
        assert "at index" in result.message or "a single number" in result.message, result.message
        assert "expected " in result.message and ", got " in result.message, result.message
    assert hint in result.message, result.message


def test_a_wrong_gradient_is_shown_with_minigrads_value_and_a_central_difference(tmp_path):
    result = grade_source(tmp_path, "cross_entropy", planted("cross_entropy", "return probs / n",
                                                             "return probs / n * 1.01"))
    assert result.status == "FAIL"
    assert "(minigrad; central difference " in result.message
    assert "1.01 times the right one" in result.message


def test_an_error_inside_the_students_code_is_reported_with_its_line(tmp_path):
    source = "def softmax_backward(g, y):\n    return g @ y @ g\n"
    result = grade_source(tmp_path, "softmax", source)
    assert result.status == "FAIL"
    assert "softmax_backward raised ValueError" in result.message and "line 2" in result.message


def test_a_file_that_does_not_load_is_reported_with_its_line(tmp_path):
    result = grade_source(tmp_path, "adam", "def adam_step(param, grad, m, v, t:\n    pass\n")
    assert result.status == "FAIL"
    assert "cannot be loaded (line 1)" in result.message and "SyntaxError" in result.message


def test_a_missing_function_or_a_wrong_number_of_results_is_named(tmp_path):
    result = grade_source(tmp_path, "conv2d", "from exercises.conv2d import im2col\n\ndef col2im(*a):\n    pass\n")
    assert result.status == "FAIL" and "defines no function conv2d_backward" in result.message
    result = grade_source(tmp_path, "layer_norm", "def layer_norm_backward(g, x, weight, eps):\n    return g\n")
    assert result.status == "FAIL"
    assert "should return 3 value(s) (dx, dweight, dbias), it returned 1" in result.message
